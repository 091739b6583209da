/**
 * The embedded DNS in a lab, asked with dig from inside containers (through their resolv.conf):
 * scoping to shared networks, aliases and rotation, NAME.NETWORK, lifecycle, AAAA/NODATA, PTR,
 * forwarding to an upstream (dnsmasq in the outside namespace), internal networks, TCP and
 * truncation, the default bridge, and silence towards the outside.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { makeLab, eventually, sh, type TestLab } from './helpers.js';

interface Dig {
  status: string;
  flags: string[];
  answers: { name: string; type: string; data: string }[];
}

function parseDig(out: string): Dig {
  const status = /status: (\w+)/.exec(out)?.[1] ?? 'NO-REPLY';
  const flags = (/;; flags: ([^;]*);/.exec(out)?.[1] ?? '').trim().split(/\s+/);
  const answers = out
    .split('\n')
    .filter((l) => l && !l.startsWith(';'))
    .map((l) => l.split(/\s+/))
    .filter((f) => f.length >= 5)
    .map((f) => ({ name: f[0], type: f[3], data: f.slice(4).join(' ') }));
  return { status, flags, answers };
}

describe('embedded DNS', () => {
  let lab: TestLab;
  let dnsmasq: ChildProcess | undefined;
  const ids: Record<string, string> = {};

  /** dig from inside a container, through the resolv.conf weft wrote for it. */
  async function dig(container: string, ...args: string[]): Promise<Dig> {
    const r = await lab.inContainer(container, ['dig', '+time=2', '+tries=1', '+noall', '+comments', '+answer', ...args]);
    return parseDig(r.stdout);
  }
  const addrs = (d: Dig, type = 'A') => d.answers.filter((a) => a.type === type).map((a) => a.data).sort();
  const ip = async (c: string, net: string) => (await lab.inspect(c)).networks[net].ipv4!;

  before(async () => {
    lab = await makeLab('tdns');
    // the lab's upstream resolver: dnsmasq in the outside namespace, knowing one name
    dnsmasq = spawn('ip', ['netns', 'exec', lab.outsideNetns, 'dnsmasq', '--keep-in-foreground', '--conf-file=/dev/null', '--pid-file=', '--no-resolv', '--no-hosts',
      '--bind-interfaces', `--listen-address=${lab.outsideAddress}`, '--address=/upstream.test/203.0.113.7',
      ...Array.from({ length: 12 }, (_, i) => `--txt-record=big.test,${'x'.repeat(60)}${i}`)], { stdio: 'ignore' });
    await lab.ok('network', 'create', 'front');
    await lab.ok('network', 'create', '--internal', 'back');
    await lab.ok('network', 'create', '--ipv6', 'dual');
    const run = async (name: string, net: string, ...more: string[]) => {
      ids[name] = (await lab.ok('run', '-d', '--name', name, '--network', net, ...more, 'sleep', '600')).trim();
    };
    await run('web', 'front', '--network-alias', 'www');
    await run('api', 'front');
    await lab.ok('network', 'connect', '--alias', 'service', 'back', 'api');
    await run('db', 'back');
    await run('lonely', 'back');
    await run('d1', 'dual');
    await eventually(async () => (await sh('ip', ['netns', 'exec', lab.outsideNetns, 'dig', `@${lab.outsideAddress}`, '+short', 'upstream.test'])).stdout.includes('203.0.113.7'), 10_000, 'dnsmasq');
  });
  after(async () => {
    dnsmasq?.kill();
    await lab?.down();
  });

  it('points resolv.conf of user-defined networks at the gateway, with ndots:0', async () => {
    const r = await lab.inContainer('web', ['cat', '/etc/resolv.conf']);
    const front = JSON.parse(await lab.ok('network', 'inspect', 'front'))[0];
    assert.match(r.stdout, new RegExp(`^nameserver ${front.subnets[0].gateway.replace(/\./g, '\\.')}$`, 'm'));
    assert.match(r.stdout, /^options ndots:0$/m);
  });

  it('resolves names, short ids, aliases and NAME.NETWORK only on shared networks', async () => {
    assert.deepEqual(addrs(await dig('web', 'api')), [await ip('api', 'front')]);
    assert.deepEqual(addrs(await dig('web', ids.api.slice(0, 12))), [await ip('api', 'front')]);
    assert.deepEqual(addrs(await dig('api', 'www')), [await ip('web', 'front')]);
    assert.deepEqual(addrs(await dig('web', 'api.front')), [await ip('api', 'front')]);
    assert.deepEqual(addrs(await dig('db', 'service')), [await ip('api', 'back')], 'connect --alias');
    assert.deepEqual(addrs(await dig('db', 'API')), [await ip('api', 'back')], 'case-insensitive; the shared network only');
    // web is not on back: db, the alias there and api.back are not its to see. Single-label names
    // stop here (NXDOMAIN, never forwarded); api.back goes upstream, which knows nothing of it.
    for (const name of ['db', 'service']) {
      const d = await dig('web', name);
      assert.equal(d.status, 'NXDOMAIN', name);
      assert.equal(d.answers.length, 0, name);
    }
    assert.equal((await dig('web', 'api.back')).answers.length, 0);
  });

  it('answers AAAA on dual-stack networks and NODATA where a name has no such record', async () => {
    const c = await lab.inspect('d1');
    assert.deepEqual(addrs(await dig('d1', 'd1', 'AAAA'), 'AAAA'), [c.networks.dual.ipv6]);
    const v4only = await dig('web', 'api', 'AAAA');
    assert.equal(v4only.status, 'NOERROR');
    assert.equal(v4only.answers.length, 0);
  });

  it('answers PTR for container addresses as NAME.NETWORK', async () => {
    const d = await dig('web', '-x', await ip('api', 'front'));
    assert.deepEqual(d.answers.map((a) => a.data), ['api.front.']);
  });

  it('gives all addresses of a shared alias, in rotating order', async () => {
    await lab.ok('run', '-d', '--name', 'p1', '--network', 'front', '--network-alias', 'pool', 'sleep', '600');
    await lab.ok('run', '-d', '--name', 'p2', '--network', 'front', '--network-alias', 'pool', 'sleep', '600');
    const want = [await ip('p1', 'front'), await ip('p2', 'front')].sort();
    const firsts = new Set<string>();
    for (let i = 0; i < 4; i++) {
      const d = await dig('web', 'pool');
      assert.deepEqual(addrs(d), want);
      firsts.add(d.answers[0].data);
    }
    assert.equal(firsts.size, 2, 'the first address rotates');
    await lab.ok('rm', '-f', 'p1', 'p2');
  });

  it('names appear on start and connect, and go on stop, disconnect and rm', async () => {
    await lab.ok('run', '-d', '--name', 'fleeting', '--network', 'front', 'sleep', '600');
    assert.equal(addrs(await dig('web', 'fleeting')).length, 1, 'resolvable once run -d returned');
    await lab.ok('stop', '-t', '1', 'fleeting');
    assert.equal((await dig('web', 'fleeting')).status, 'NXDOMAIN', 'stopped');
    await lab.ok('start', 'fleeting');
    assert.equal(addrs(await dig('web', 'fleeting')).length, 1, 'started again');
    await lab.ok('network', 'connect', 'back', 'fleeting');
    assert.equal(addrs(await dig('db', 'fleeting')).length, 1, 'connected');
    await lab.ok('network', 'disconnect', 'back', 'fleeting');
    assert.equal((await dig('db', 'fleeting')).status, 'NXDOMAIN', 'disconnected');
    await lab.ok('rm', '-f', 'fleeting');
    assert.equal((await dig('web', 'fleeting')).status, 'NXDOMAIN', 'removed');
  });

  it('forwards other names upstream, over UDP and TCP, but not from internal networks', async () => {
    assert.deepEqual(addrs(await dig('web', 'upstream.test')), ['203.0.113.7']);
    assert.deepEqual(addrs(await dig('web', '+tcp', 'upstream.test')), ['203.0.113.7']);
    // a long upstream answer: truncated over UDP, complete over TCP (dig retries by itself)
    const big = await dig('web', '+noedns', 'big.test', 'TXT');
    assert.equal(big.answers.length, 12);
    const lonely = await dig('lonely', 'upstream.test');
    assert.notEqual(lonely.status, 'NOERROR', 'an internal-only container gets no forwarding');
    assert.equal(lonely.answers.length, 0);
    assert.equal(addrs(await dig('lonely', 'db')).length, 1, 'but local names still resolve');
  });

  it("forwards a container's names to its own --dns servers, and still answers local names", async () => {
    // a second resolver in the outside world, with another answer for the same name
    const other = lab.outsideAddress.replace(/\.1$/, '.53');
    await sh('ip', ['-n', lab.outsideNetns, 'addr', 'add', `${other}/24`, 'dev', 'eth0']);
    const second = spawn('ip', ['netns', 'exec', lab.outsideNetns, 'dnsmasq', '--keep-in-foreground', '--conf-file=/dev/null', '--pid-file=',
      '--no-resolv', '--no-hosts', '--bind-interfaces', `--listen-address=${other}`, '--address=/upstream.test/203.0.113.99'], { stdio: 'ignore' });
    try {
      await lab.ok('run', '-d', '--name', 'picky', '--network', 'front', '--dns', other, 'sleep', '600');
      const conf = await lab.inContainer('picky', ['cat', '/etc/resolv.conf']);
      assert.doesNotMatch(conf.stdout, new RegExp(other.replace(/\./g, '\\.')), 'resolv.conf still names the embedded DNS');
      await eventually(async () => addrs(await dig('picky', 'upstream.test'))[0] === '203.0.113.99', 10_000, 'own resolver');
      assert.deepEqual(addrs(await dig('web', 'upstream.test')), ['203.0.113.7'], 'others keep the agent upstream');
      assert.deepEqual(addrs(await dig('picky', 'web')), [await ip('web', 'front')]);
      await lab.ok('rm', '-f', 'picky');
    } finally {
      second.kill();
    }
  });

  it('sets TC on a long local answer over UDP and serves it whole over TCP', async () => {
    for (let i = 0; i < 20; i++) await lab.ok('run', '-d', '--name', `m${i}`, '--network', 'dual', '--network-alias', 'many', 'sleep', '600');
    const udp = await dig('d1', '+noedns', '+ignore', 'many', 'AAAA');
    assert.ok(udp.flags.includes('tc'), `tc flag: ${udp.flags}`);
    const full = await dig('d1', '+noedns', 'many', 'AAAA');
    assert.equal(addrs(full, 'AAAA').length, 20);
    const tcp = await dig('d1', '+tcp', 'many', 'AAAA');
    assert.equal(addrs(tcp, 'AAAA').length, 20);
    await lab.ok('rm', '-f', ...Array.from({ length: 20 }, (_, i) => `m${i}`));
  });

  it('gives containers on the default bridge the host resolvers, as Docker does', async () => {
    await lab.ok('run', '-d', '--name', 'classic', 'sleep', '600');
    const r = await lab.inContainer('classic', ['cat', '/etc/resolv.conf']);
    assert.match(r.stdout, new RegExp(`^nameserver ${lab.outsideAddress.replace(/\./g, '\\.')}$`, 'm'));
    assert.deepEqual(addrs(await dig('classic', 'upstream.test')), ['203.0.113.7']);
    await lab.ok('rm', '-f', 'classic');
  });

  it('never answers a query from outside the host', async () => {
    const front = JSON.parse(await lab.ok('network', 'inspect', 'front'))[0];
    const gw = front.subnets[0].gateway;
    await sh('ip', ['-n', lab.outsideNetns, 'route', 'replace', front.subnets[0].subnet, 'via', lab.hostAddress]);
    const r = await sh('ip', ['netns', 'exec', lab.outsideNetns, 'dig', `@${gw}`, '+time=1', '+tries=1', 'web']);
    assert.match(r.stdout, /timed out|no servers could be reached/);
    const tcp = await sh('ip', ['netns', 'exec', lab.outsideNetns, 'dig', `@${gw}`, '+tcp', '+time=1', '+tries=1', 'web']);
    assert.doesNotMatch(tcp.stdout, /status: NOERROR/);
  });
});
