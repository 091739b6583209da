/** `weft agent --netns NS`: the agent moves itself into NS, its bridges live there, and SIGTERM stops it. */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { sh, eventually, uniqueName, WEFT } from './helpers.js';

describe('weft agent --netns', () => {
  const ns = uniqueName('weft-t-agentns');
  const dir = mkdtempSync(path.join(tmpdir(), 'weft-t-agentns-'));
  const socket = path.join(dir, 'agent.sock');
  let pid: number | undefined;
  after(async () => {
    if (pid) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    for (const p of (await sh('ip', ['netns', 'pids', ns])).stdout.split(/\s+/).filter(Boolean)) {
      try {
        process.kill(Number(p), 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    await sh('ip', ['netns', 'delete', ns]);
    rmSync(dir, { recursive: true, force: true });
  });

  it('runs inside the namespace it is given', async () => {
    assert.equal((await sh('ip', ['netns', 'add', ns])).code, 0);
    const env = { ...process.env };
    delete env.NODE_EXTRA_CA_CERTS;
    const agent = spawn(WEFT, ['agent', '--netns', ns, '--state-dir', path.join(dir, 'state'), '--socket', socket], { env, stdio: 'ignore' });
    pid = agent.pid;
    const exited = new Promise<number | null>((resolve) => agent.on('exit', (code) => resolve(code)));
    await eventually(async () => existsSync(socket) && (await sh(WEFT, ['-H', `unix://${socket}`, 'version'])).code === 0, 15_000, 'agent socket');
    await sh(WEFT, ['-H', `unix://${socket}`, 'network', 'create', '--subnet', '10.44.0.0/24', 'inside']);
    const links = JSON.parse((await sh('ip', ['-n', ns, '-j', 'link'])).stdout).map((l: { ifname: string }) => l.ifname);
    assert.ok(links.includes('weft0'), 'the default bridge is in the namespace');
    assert.ok(links.some((l: string) => l.startsWith('wb-')), 'the new bridge is in the namespace');
    const tables = (await sh('ip', ['netns', 'exec', ns, 'nft', 'list', 'tables'])).stdout;
    assert.match(tables, /inet weft/);
    agent.kill('SIGTERM');
    assert.equal(await exited, 0);
    pid = undefined;
    assert.equal(existsSync(socket), false, 'the socket is removed on a clean stop');
  });
});
