/**
 * Reconcile: an agent that starts again repairs drift (a deleted veth, bridge or rule table) and
 * removes orphans it owns (a namespace and a veth with its prefixes), leaving others' objects alone.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { makeLab, sh, canPing, eventually, WEFT, type TestLab } from './helpers.js';

describe('reconcile at agent start', () => {
  let lab: TestLab;
  let nodeId: string;
  before(async () => {
    lab = await makeLab('trec');
    nodeId = JSON.parse(await readFile(path.join(lab.dir, 'state', 'node.json'), 'utf8')).nodeId;
    await lab.ok('network', 'create', '--subnet', '10.43.0.0/24', '--opt', 'mtu=1400', 'net');
    await lab.ok('run', '-d', '--name', 'r1', '--network', 'net', 'sleep', '3600');
    await lab.ok('run', '-d', '--name', 'r2', '--network', 'net', 'sleep', '3600');
  });
  after(async () => {
    await sh('ip', ['netns', 'delete', `weft-${nodeId}-000000000000`]);
    await lab?.down();
  });

  it('sets the MTU on the bridge and both veth ends', async () => {
    const r1 = await lab.inspect('r1');
    const inside = JSON.parse((await sh('ip', ['-n', r1.netns, '-j', 'link', 'show', 'eth0'])).stdout)[0];
    assert.equal(inside.mtu, 1400);
    const host = JSON.parse((await sh('ip', ['-n', lab.hostNetns, '-j', 'link', 'show', r1.networks.net.hostIfname])).stdout)[0];
    assert.equal(host.mtu, 1400);
  });

  it('reports drift and orphans with system check, and repairs them on restart', async () => {
    const r1 = await lab.inspect('r1');
    const r2 = await lab.inspect('r2');
    await lab.ok('lab', 'agent', 'stop', lab.name).catch(() => sh(WEFT, ['lab', 'agent', 'stop', lab.name]));
    // drift: r1's veth is gone, weft's inet table is gone; orphans: a netns and a veth with weft's prefixes
    await sh('ip', ['-n', lab.hostNetns, 'link', 'del', r1.networks.net.hostIfname]);
    await sh('ip', ['netns', 'exec', lab.hostNetns, 'nft', 'delete', 'table', 'inet', 'weft']);
    await sh('ip', ['netns', 'add', `weft-${nodeId}-000000000000`]);
    await sh('ip', ['-n', lab.hostNetns, 'link', 'add', 'name', 'wv0000000000', 'type', 'veth', 'peer', 'name', 'other0']);
    // an object that is not weft's: must survive
    await sh('ip', ['-n', lab.hostNetns, 'link', 'add', 'name', 'mine0', 'type', 'veth', 'peer', 'name', 'mine1']);
    assert.equal(await canPing(r2.netns, r1.networks.net.ipv4!), false, 'the drift breaks traffic');

    const start = await sh(WEFT, ['lab', 'agent', 'start', lab.name]);
    assert.equal(start.code, 0, start.stderr);
    assert.ok(await eventually(() => canPing(r2.netns, r1.networks.net.ipv4!), 8000, 'repaired endpoint'));
    const check = await lab.weft('system', 'check');
    assert.equal(check.code, 0, check.stdout);
    const links = JSON.parse((await sh('ip', ['-n', lab.hostNetns, '-j', 'link'])).stdout).map((l: { ifname: string }) => l.ifname);
    assert.ok(!links.includes('wv0000000000'), 'orphan veth removed');
    assert.ok(links.includes('mine0'), "someone else's link left alone");
    const ns = (await sh('ip', ['netns', 'list'])).stdout;
    assert.doesNotMatch(ns, new RegExp(`weft-${nodeId}-000000000000`), 'orphan namespace removed');
    const tables = (await sh('ip', ['netns', 'exec', lab.hostNetns, 'nft', 'list', 'tables'])).stdout;
    assert.match(tables, /table inet weft/);
  });

  it('lists leaks with system check while the agent runs', async () => {
    await sh('ip', ['-n', lab.hostNetns, 'link', 'add', 'name', 'wv1111111111', 'type', 'veth', 'peer', 'name', 'other1']);
    const r = await lab.weft('system', 'check');
    assert.equal(r.code, 1);
    assert.match(r.stdout + r.stderr, /wv1111111111/);
    await sh('ip', ['-n', lab.hostNetns, 'link', 'del', 'wv1111111111']);
    assert.equal((await lab.weft('system', 'check')).code, 0);
  });
});
