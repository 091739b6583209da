/**
 * Reliability: an agent killed with -9 in the middle of 50 parallel `run -d` leaves, after a
 * restart, every container complete or absent and nothing leaked; an agent restart keeps an
 * established TCP connection between two containers.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { makeLab, sh, eventually, canPing, WEFT, type TestLab } from './helpers.js';

async function agentPid(lab: TestLab): Promise<number> {
  return Number((await readFile(path.join(lab.dir, 'agent.pid'), 'utf8')).trim());
}

async function restartAgent(lab: TestLab): Promise<void> {
  const r = await sh(WEFT, ['lab', 'agent', 'start', lab.name]);
  assert.equal(r.code, 0, r.stderr);
}

describe('reliability', () => {
  let lab: TestLab;
  before(async () => {
    lab = await makeLab('trel');
    await lab.ok('network', 'create', '--subnet', '10.33.0.0/24', 'many');
  });
  after(async () => lab?.down());

  it('survives kill -9 during 50 parallel run -d: all or nothing, no leaks', async (t) => {
    const runs = Array.from({ length: 50 }, (_, i) => lab.weft('run', '-d', '--name', `p${i}`, '--network', 'many', 'sleep', '3600'));
    await new Promise((r) => setTimeout(r, 700));
    process.kill(await agentPid(lab), 'SIGKILL');
    const results = await Promise.all(runs);
    const succeeded = results.filter((r) => r.code === 0).length;
    await restartAgent(lab);
    const check = await lab.weft('system', 'check');
    assert.equal(check.code, 0, `leaks after restart:\n${check.stdout}${check.stderr}`);
    const ps = JSON.parse(await lab.ok('ps', '-a', '--format', 'json')) as { name: string; netns: string; state: { phase: string }; networks: Record<string, { ipv4?: string }> }[];
    t.diagnostic(`${succeeded} of 50 runs answered ok before the kill; ${ps.length} containers exist after the restart`);
    assert.ok(ps.length >= succeeded, `${ps.length} containers, ${succeeded} runs answered ok`);
    // every container that exists is complete: namespace, address, and reachable
    const addrs = new Set<string>();
    for (const c of ps) {
      // complete: running, or created when the kill fell between create and start (as Docker leaves it)
      assert.ok(['running', 'created'].includes(c.state.phase), `${c.name} is ${c.state.phase}`);
      const ip = c.networks.many?.ipv4;
      assert.ok(ip, `${c.name} has an address`);
      assert.ok(!addrs.has(ip), `duplicate address ${ip}`);
      addrs.add(ip);
      const links = await sh('ip', ['-n', c.netns, '-br', 'link']);
      assert.match(links.stdout, /eth0/, `${c.name} has its interface`);
    }
    if (ps.length >= 2) assert.ok(await canPing(ps[0].netns, ps[1].networks.many.ipv4!));
    // a removal of everything leaves nothing behind
    for (const c of ps) await lab.ok('rm', '-f', c.name);
    const after = await lab.weft('system', 'check');
    assert.equal(after.code, 0, after.stdout);
    const nsLeft = (await sh('ip', ['netns', 'list'])).stdout.split('\n').filter((l) => ps.some((c) => l.startsWith(c.netns)));
    assert.deepEqual(nsLeft, []);
  });

  it('keeps an established TCP connection between two containers across an agent restart', async () => {
    await lab.ok('run', '-d', '--name', 'srv', '--network', 'many', 'busybox', 'nc', '-l', '-p', '7000', '-e', 'cat');
    const srv = await lab.inspect('srv');
    await lab.ok('run', '-d', '--name', 'cli', '--network', 'many', 'sleep', '3600');
    const cli = await lab.inspect('cli');
    // a long-lived client: opens one connection and keeps echoing through it
    const script = `exec 3<>/dev/tcp/${srv.networks.many.ipv4}/7000; for i in $(seq 1 40); do echo ping$i >&3; read -r line <&3; echo "$line"; sleep 0.1; done`;
    const client = sh('ip', ['netns', 'exec', cli.netns, 'bash', '-c', script], { timeoutMs: 30_000 });
    await new Promise((r) => setTimeout(r, 800));
    await sh(WEFT, ['lab', 'agent', 'stop', lab.name]);
    await new Promise((r) => setTimeout(r, 500));
    await restartAgent(lab);
    const r = await client;
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.equal(lines.length, 40);
    assert.equal(lines[39], 'ping40');
    await eventually(async () => (await lab.weft('ps')).code === 0, 5000, 'agent answers');
  });
});
