/**
 * Bridge networks end to end, in a lab: reachability on one network, isolation between networks,
 * internal networks, masquerading to the outside, ICC off, anti-spoofing, connect/disconnect.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { makeLab, canPing, httpGet, ECHO, eventually, sh, type TestLab } from './helpers.js';

describe('bridge networks in a lab', () => {
  let lab: TestLab;
  before(async () => {
    lab = await makeLab('tnet');
    await lab.ok('network', 'create', '--subnet', '10.31.1.0/24', 'front');
    await lab.ok('network', 'create', '--subnet', '10.31.2.0/24', 'back');
    await lab.ok('network', 'create', '--internal', '--subnet', '10.31.3.0/24', 'vault');
    await lab.ok('network', 'create', '--opt', 'icc=false', '--subnet', '10.31.4.0/24', 'lonely');
    for (const [name, net] of [['a1', 'front'], ['a2', 'front'], ['b1', 'back'], ['v1', 'vault'], ['v2', 'vault'], ['l1', 'lonely'], ['l2', 'lonely']])
      await lab.ok('run', '-d', '--name', name, '--network', net, 'node', ECHO, '8080');
  });
  after(async () => lab?.down());

  const ip = async (name: string, net: string) => (await lab.inspect(name)).networks[net].ipv4!;

  it('gives each container an address from its network, a gateway route and its own namespace', async () => {
    const a1 = await lab.inspect('a1');
    assert.match(a1.networks.front.ipv4!, /^10\.31\.1\./);
    assert.equal(a1.networks.front.ifname, 'eth0');
    const routes = await sh('ip', ['-n', a1.netns, '-j', 'route', 'show', 'default']);
    assert.equal(JSON.parse(routes.stdout)[0].gateway, '10.31.1.1');
  });

  it('reaches containers on the same network by address', async () => {
    const a1 = await lab.inspect('a1');
    assert.ok(await canPing(a1.netns, await ip('a2', 'front')));
    const a2ip = await ip('a2', 'front');
    const body = await eventually(() => httpGet(a1.netns, `http://${a2ip}:8080/`), 10_000, 'a2 http');
    assert.equal(JSON.parse(body).server, (await lab.inspect('a2')).id.slice(0, 12));
  });

  it('isolates networks from each other', async () => {
    const a1 = await lab.inspect('a1');
    assert.equal(await canPing(a1.netns, await ip('b1', 'back')), false);
    assert.equal(await httpGet(a1.netns, `http://${await ip('b1', 'back')}:8080/`), undefined);
  });

  it('masquerades traffic to the outside as the host address', async () => {
    const a1 = await lab.inspect('a1');
    const srv = await lab.outside(['sh', '-c', `node ${ECHO} 9090 >/dev/null 2>&1 & echo $!`]);
    const pid = Number(srv.stdout.trim());
    try {
      const body = await eventually(() => httpGet(a1.netns, `http://${lab.outsideAddress}:9090/`), 10_000, 'outside http');
      assert.equal(JSON.parse(body).client, lab.hostAddress);
    } finally {
      process.kill(pid, 'SIGKILL');
    }
  });

  it('refuses new connections from outside straight to a container address, even when routed', async () => {
    await sh('ip', ['-n', lab.outsideNetns, 'route', 'replace', '10.31.0.0/16', 'via', lab.hostAddress]);
    assert.equal(await canPing(lab.outsideNetns, await ip('a1', 'front')), false);
    assert.equal(await httpGet(lab.outsideNetns, `http://${await ip('a1', 'front')}:8080/`), undefined);
  });

  it('gives an internal network no way out but keeps it reachable inside', async () => {
    const v1 = await lab.inspect('v1');
    assert.equal(await canPing(v1.netns, lab.outsideAddress), false);
    assert.ok(await canPing(v1.netns, await ip('v2', 'vault')));
    const routes = JSON.parse((await sh('ip', ['-n', v1.netns, '-j', 'route', 'show', 'default'])).stdout);
    assert.equal(routes.length, 0, 'an internal network gives no default route');
  });

  it('blocks container-to-container traffic with icc=false', async () => {
    const l1 = await lab.inspect('l1');
    assert.equal(await canPing(l1.netns, await ip('l2', 'lonely')), false);
    assert.ok(await canPing(l1.netns, lab.outsideAddress), 'the way out stays open');
  });

  it('drops packets from addresses and MACs that are not the container\'s', async () => {
    const a1 = await lab.inspect('a1');
    const target = await ip('a2', 'front');
    assert.ok(await canPing(a1.netns, target));
    // a second address on the container's interface: the kernel lets it send, weft must not
    await sh('ip', ['-n', a1.netns, 'addr', 'add', '10.31.1.250/24', 'dev', 'eth0']);
    const spoofed = await sh('ip', ['netns', 'exec', a1.netns, 'ping', '-c', '1', '-W', '1', '-I', '10.31.1.250', target]);
    assert.notEqual(spoofed.code, 0, 'a spoofed source address must be dropped');
    await sh('ip', ['-n', a1.netns, 'addr', 'del', '10.31.1.250/24', 'dev', 'eth0']);
    // a different MAC
    await sh('ip', ['-n', a1.netns, 'link', 'set', 'eth0', 'address', '02:42:de:ad:be:ef']);
    assert.equal(await canPing(a1.netns, target), false, 'a spoofed MAC must be dropped');
    await sh('ip', ['-n', a1.netns, 'link', 'set', 'eth0', 'address', a1.networks.front.mac]);
    await eventually(() => canPing(a1.netns, target), 5000, 'ping with the real MAC again');
  });

  it('connects and disconnects a running container', async () => {
    await lab.ok('network', 'connect', 'back', 'a2');
    const a2 = await lab.inspect('a2');
    assert.equal(a2.networks.back.ifname, 'eth1');
    const b1 = await lab.inspect('b1');
    assert.ok(await canPing(b1.netns, a2.networks.back.ipv4!));
    const hosts = await lab.weft('exec', 'a2', 'cat', '/etc/hosts');
    assert.match(hosts.stdout, new RegExp(a2.networks.back.ipv4!.replace(/\./g, '\\.')), 'the running container sees its new address in /etc/hosts');
    await lab.ok('network', 'disconnect', 'back', 'a2');
    const after = await lab.inspect('a2');
    assert.equal(after.networks.back, undefined);
    assert.equal(await canPing(b1.netns, a2.networks.back.ipv4!), false);
    const links = JSON.parse((await sh('ip', ['-n', a2.netns, '-j', 'link'])).stdout).map((l: { ifname: string }) => l.ifname);
    assert.deepEqual(links.sort(), ['eth0', 'lo']);
  });

  it('refuses to remove a network with containers and names them', async () => {
    const r = await lab.weft('network', 'rm', 'back');
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /b1/);
  });
});
