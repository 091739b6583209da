/** Container lifecycle through the CLI in a lab: run, exec, logs, ps, stop/start/restart, rm, restart policies, host/none. */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { makeLab, eventually, sh, type TestLab } from './helpers.js';

describe('containers', () => {
  let lab: TestLab;
  before(async () => {
    lab = await makeLab('tctr');
    await lab.ok('network', 'create', 'apps');
  });
  after(async () => lab?.down());

  it('runs in the foreground, streams output and exits with the command\'s code', async () => {
    const r = await lab.weft('run', '--rm', '--network', 'apps', 'sh', '-c', 'echo out; echo err >&2; exit 7');
    assert.equal(r.code, 7);
    assert.equal(r.stdout, 'out\n');
    assert.equal(r.stderr, 'err\n');
  });

  it('gives the container its hostname, env, workdir, /etc/hosts and resolv.conf', async () => {
    const r = await lab.weft('run', '--rm', '--network', 'apps', '-h', 'box1', '-e', 'FOO=bar', '-w', '/tmp', 'sh', '-c',
      'hostname; echo $FOO; pwd; grep -c box1 /etc/hosts; test -f /etc/resolv.conf && echo resolv');
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split('\n'), ['box1', 'bar', '/tmp', '1', 'resolv']);
  });

  it('runs detached, lists, logs, execs, stops, starts and removes', async () => {
    const id = (await lab.ok('run', '-d', '--name', 'ticker', '--network', 'apps', '-l', 'tier=x', 'sh', '-c',
      'echo started; trap "echo bye; exit 3" TERM; while :; do sleep 0.1; done')).trim();
    assert.match(id, /^[0-9a-f]{64}$/);
    assert.match(await lab.ok('ps'), /ticker/);
    assert.equal((await lab.ok('ps', '-q', '-f', 'label=tier=x')).trim(), id.slice(0, 12));
    await eventually(async () => (await lab.ok('logs', 'ticker')).includes('started'), 5000, 'logs');
    const ex = await lab.weft('exec', 'ticker', 'sh', '-c', 'hostname; exit 5');
    assert.equal(ex.code, 5);
    assert.equal(ex.stdout.trim(), id.slice(0, 12), 'exec runs in the container (its hostname)');
    await lab.ok('stop', 'ticker');
    const stopped = await lab.inspect('ticker');
    assert.equal(stopped.state.phase, 'exited');
    assert.equal(stopped.state.exitCode, 3);
    assert.match(await lab.ok('logs', 'ticker'), /bye/);
    assert.doesNotMatch(await lab.ok('ps'), /ticker/);
    assert.match(await lab.ok('ps', '-a'), /Exited \(3\).*ticker/);
    await lab.ok('start', 'ticker');
    assert.equal((await lab.inspect('ticker')).state.phase, 'running');
    await lab.ok('restart', '-t', '1', 'ticker');
    assert.equal((await lab.inspect('ticker')).state.phase, 'running');
    const rm = await lab.weft('rm', 'ticker');
    assert.notEqual(rm.code, 0, 'rm refuses a running container');
    await lab.ok('rm', '-f', id.slice(0, 8));
    assert.equal((await lab.weft('inspect', 'ticker')).code, 1);
  });

  it('keeps names unique and resolves id prefixes', async () => {
    await lab.ok('run', '-d', '--name', 'uniq', '--network', 'apps', 'sleep', '600');
    const dup = await lab.weft('run', '-d', '--name', 'uniq', '--network', 'apps', 'sleep', '600');
    assert.notEqual(dup.code, 0);
    assert.match(dup.stderr, /already in use/);
    const c = await lab.inspect('uniq');
    assert.equal((await lab.inspect(c.id.slice(0, 6))).name, 'uniq');
    await lab.ok('rm', '-f', 'uniq');
  });

  it('restarts on failure up to the limit, and always', async () => {
    await lab.ok('run', '-d', '--name', 'flaky', '--network', 'apps', '--restart', 'on-failure:2', 'sh', '-c', 'exit 1');
    const c = await eventually(async () => {
      const x = await lab.inspect('flaky');
      return x.state.restartCount === 2 && x.state.phase === 'exited' ? x : undefined;
    }, 15_000, 'two restarts');
    assert.equal(c.state.exitCode, 1);
    await lab.ok('run', '-d', '--name', 'phoenix', '--network', 'apps', '--restart', 'always', 'sh', '-c', 'sleep 0.2');
    await eventually(async () => (await lab.inspect('phoenix')).state.restartCount >= 2, 15_000, 'always restarts');
    await lab.ok('stop', 'phoenix');
    const stopped = await lab.inspect('phoenix');
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal((await lab.inspect('phoenix')).state.restartCount, stopped.state.restartCount, 'stop ends restarting');
    await lab.ok('rm', '-f', 'flaky', 'phoenix');
  });

  it('removes a detached --rm container when it exits or is stopped, with its address', async () => {
    await lab.ok('run', '-d', '--rm', '--name', 'brief', '--network', 'apps', 'sh', '-c', 'sleep 0.3');
    const ip = (await lab.inspect('brief')).networks.apps.ipv4!;
    await eventually(async () => !(await lab.ok('ps', '-a', '-q', '-f', 'name=brief')).trim(), 10_000, 'brief removed');
    await lab.ok('run', '-d', '--rm', '--name', 'halted', '--network', 'apps', 'sleep', '600');
    await lab.ok('stop', '-t', '1', 'halted');
    assert.equal((await lab.ok('ps', '-a', '-q', '-f', 'name=halted')).trim(), '', 'stop removes it');
    // the address went back to the pool: a static request for it succeeds
    await lab.ok('run', '-d', '--name', 'heir', '--network', 'apps', '--ip', ip, 'sleep', '600');
    await lab.ok('rm', '-f', 'heir');
    const conflict = await lab.weft('run', '-d', '--rm', '--restart', 'always', 'sleep', '1');
    assert.equal(conflict.code, 125);
    assert.match(conflict.stderr, /conflicting options: restart policy always and auto-remove/);
  });

  it('joins another container\'s namespace with --network container:NAME', async () => {
    await lab.ok('run', '-d', '--name', 'owner', '--network', 'apps', 'sh', '-c', 'while :; do echo hi | busybox nc -l -p 7070; done');
    const owner = await lab.inspect('owner');
    const r = await lab.weft('run', '--rm', '--network', 'container:owner', 'sh', '-c', 'ip -br -4 addr show eth0; busybox nc 127.0.0.1 7070 </dev/null');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`${owner.networks.apps.ipv4!.replace(/\./g, '\\.')}/`), "the owner's address");
    assert.match(r.stdout, /^hi$/m, "the owner's loopback");
    await lab.ok('run', '-d', '--name', 'sidecar', '--network', 'container:owner', 'sleep', '600');
    const refused = await lab.weft('rm', '-f', 'owner');
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /owner shares its network namespace with sidecar: remove them first/);
    const ports = await lab.weft('run', '-d', '--network', 'container:owner', '-p', '80', 'sleep', '1');
    assert.match(ports.stderr, /conflicting options: published ports and network mode container:owner/);
    await lab.ok('rm', '-f', 'sidecar');
    assert.equal((await sh('ip', ['netns', 'exec', owner.netns, 'true'])).code, 0, 'the namespace outlives its guest');
    await lab.ok('rm', '-f', 'owner');
    assert.match(await lab.ok('system', 'check'), /no leaks/);
  });

  it('runs with --network host in the host namespace and --network none with loopback only', async () => {
    const host = await lab.weft('run', '--rm', '--network', 'host', 'ip', '-br', 'addr');
    assert.match(host.stdout, new RegExp(lab.hostAddress.replace(/\./g, '\\.')));
    const none = await lab.weft('run', '--rm', '--network', 'none', 'ip', '-br', 'link');
    assert.deepEqual(none.stdout.trim().split('\n').map((l) => l.split(/\s+/)[0]), ['lo']);
  });

  it('runs on the default bridge network when none is given', async () => {
    const id = (await lab.ok('run', '-d', 'sleep', '600')).trim();
    const c = await lab.inspect(id);
    assert.match(c.networks.bridge.ipv4!, /^172\.17\./);
    const gw = JSON.parse((await sh('ip', ['-n', c.netns, '-j', 'route', 'show', 'default'])).stdout)[0].gateway;
    assert.equal(gw, '172.17.0.1');
    await lab.ok('rm', '-f', id);
  });
});
