/**
 * Services in a lab: each algorithm's real distribution over real connections through the VIP,
 * names (VIP, tasks.NAME, SRV), health transitions, no backend = refused at once, scaling without
 * dropping surviving connections, clearing a removed backend's connections, hairpin, published
 * service ports, and a client's own address kept across networks.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { rmSync, writeFileSync } from 'node:fs';
import { makeLab, eventually, sh, ECHO, type TestLab } from './helpers.js';

/** a TCP probe: replicas serve once they listen (a process takes a moment to bind) */
const READY = ['--health-tcp', '8080', '--health-interval', '200ms'];

interface Echo {
  server: string;
  client: string;
}

describe('services', () => {
  let lab: TestLab;
  const ns: Record<string, string> = {};
  const children: ChildProcess[] = [];
  const marks = `/tmp/weft-svc-test-${process.pid}`;

  /** One HTTP GET through busybox wget from a container; the echo's answer, or undefined (refused...). */
  async function get(from: string, url: string): Promise<Echo | undefined> {
    const r = await sh('ip', ['netns', 'exec', ns[from] ?? from, 'busybox', 'wget', '-q', '-O', '-', url], { timeoutMs: 8000 });
    return r.code === 0 ? (JSON.parse(r.stdout) as Echo) : undefined;
  }
  async function names(from: string, url: string, n: number): Promise<string[]> {
    const out: string[] = [];
    for (let i = 0; i < n; i++) out.push((await get(from, url))?.server ?? 'FAILED');
    return out;
  }
  const count = (list: string[]) => list.reduce<Record<string, number>>((m, x) => ((m[x] = (m[x] ?? 0) + 1), m), {});
  async function service(name: string): Promise<{ vip: string; backends: { name: string; ip: string; active: boolean; conns?: number }[] }> {
    return JSON.parse(await lab.ok('service', 'inspect', name))[0];
  }
  async function ready(name: string, n: number): Promise<void> {
    await eventually(async () => (await service(name)).backends.filter((b) => b.active).length === n, 10_000, `${n} backends of ${name} serving`);
  }
  async function run(name: string, net: string, ...more: string[]): Promise<void> {
    await lab.ok('run', '-d', '--name', name, '--network', net, '-e', `NAME=${name}`, ...more);
    ns[name] = (await lab.inspect(name)).netns;
  }
  async function dig(from: string, ...args: string[]): Promise<string[]> {
    const r = await sh('ip', ['netns', 'exec', ns[from], 'dig', '+short', '+time=2', '+tries=1', ...args]);
    return r.stdout.trim().split('\n').filter(Boolean).sort();
  }
  /**
   * A client holding one keep-alive HTTP connection through the VIP, asking every 150 ms; each
   * line of its output is the server that answered or ERR <code>.
   */
  function holder(from: string, url: string): { lines: string[]; child: ChildProcess } {
    const script = `const http=require('http');const a=new http.Agent({keepAlive:true,maxSockets:1});
      let first=true;const tick=()=>http.get(${JSON.stringify(url)},{agent:a},r=>{let b='';r.on('data',d=>b+=d);r.on('end',()=>{console.log(JSON.parse(b).server);setTimeout(tick,150)})}).on('error',e=>{console.log('ERR '+e.code);setTimeout(tick,150)});tick();`;
    const child = spawn('ip', ['netns', 'exec', ns[from], process.execPath, '-e', script], { stdio: ['ignore', 'pipe', 'ignore'] });
    children.push(child);
    const lines: string[] = [];
    createInterface({ input: child.stdout! }).on('line', (l) => lines.push(l));
    return { lines, child };
  }
  /** A client that opens n TCP connections to addr:port and keeps them open, idle. */
  function idle(from: string, addr: string, port: number, n: number): ChildProcess {
    const script = `const net=require('net');for(let i=0;i<${n};i++)net.connect(${port},${JSON.stringify(addr)}).on('error',()=>{});setInterval(()=>{},1e6);`;
    const child = spawn('ip', ['netns', 'exec', ns[from], process.execPath, '-e', script], { stdio: 'ignore' });
    children.push(child);
    return child;
  }
  const stopChild = (c: ChildProcess) => {
    if (c.exitCode === null) c.kill('SIGKILL');
  };

  before(async () => {
    lab = await makeLab('tsvc');
    await lab.ok('network', 'create', 'app');
    await lab.ok('network', 'create', 'other');
    await run('client', 'app', 'sleep', '600');
    await run('stranger', 'other', 'sleep', '600');
  });

  after(async () => {
    for (const c of children) stopChild(c);
    for (const f of ['hc-1', 'hc-2']) rmSync(`${marks}-${f}`, { force: true });
    await lab?.down();
  });

  it('round robin is exact; the name gives the VIP, tasks.NAME the backends, SRV the named port', async () => {
    await lab.ok('service', 'create', 'rr', '--network', 'app', '--replicas', '3', '--port', 'http=80:8080', ...READY, '--', 'node', ECHO, '8080');
    await ready('rr', 3);
    const s = await service('rr');
    assert.match(s.vip, /^10\.96\./);
    const seen = await names('client', 'http://rr/', 30);
    assert.deepEqual(count(seen), { 'rr-1': 10, 'rr-2': 10, 'rr-3': 10 });
    // strictly cyclic: each backend once in every three
    for (let i = 3; i < seen.length; i++) assert.equal(seen[i], seen[i - 3]);
    assert.deepEqual(await dig('client', 'rr'), [s.vip]);
    assert.deepEqual(await dig('client', 'tasks.rr'), s.backends.map((b) => b.ip).sort());
    assert.deepEqual(await dig('client', 'SRV', '_http._tcp.rr'), ['0 0 80 rr.']);
    assert.deepEqual(await dig('stranger', 'rr'), [], 'the name is scoped to the service network');
  });

  it('weighted round robin follows the weights exactly; weights come from --weight or the weft.weight label', async () => {
    await run('w-a', 'app', '-l', 'role=w', '-l', 'weft.weight=3', 'node', ECHO, '8080');
    await run('w-b', 'app', '-l', 'role=w', 'node', ECHO, '8080');
    await run('w-c', 'app', '-l', 'role=w', 'node', ECHO, '8080');
    await lab.ok('service', 'create', 'wrr', '--network', 'app', '--selector', 'role=w', '--port', '80:8080', '--algorithm', 'weighted-round-robin', '--weight', 'w-b=2');
    assert.deepEqual(count(await names('client', 'http://wrr/', 60)), { 'w-a': 30, 'w-b': 20, 'w-c': 10 });
  });

  it('random reaches every backend; source affinity keeps each client on one backend', async () => {
    await lab.ok('service', 'create', 'rnd', '--network', 'app', '--selector', 'role=w', '--port', '80:8080', '--algorithm', 'random');
    assert.deepEqual(Object.keys(count(await names('client', 'http://rnd/', 60))).sort(), ['w-a', 'w-b', 'w-c']);
    await lab.ok('service', 'create', 'aff', '--network', 'app', '--selector', 'role=w', '--port', '80:8080', '--algorithm', 'source-affinity', '--affinity-timeout', '60');
    for (const from of ['client', 'stranger']) {
      const seen = await names(from, `http://${(await service('aff')).vip}/`, 12);
      assert.equal(new Set(seen).size, 1, `${from} stays with one backend: ${seen.join(' ')}`);
    }
  });

  it('maglev: each client keeps its backend; removing one of four moves only that backend\'s clients', async () => {
    for (let i = 1; i <= 4; i++) await run(`mg-${i}`, 'app', '-l', 'role=mg', 'node', ECHO, '8080');
    const clients = Array.from({ length: 10 }, (_, i) => `mgc-${i}`);
    for (const c of clients) await run(c, 'app', 'sleep', '600');
    await lab.ok('service', 'create', 'mg', '--network', 'app', '--selector', 'role=mg', '--port', '80:8080', '--algorithm', 'maglev');
    const before: Record<string, string> = {};
    for (const c of clients) {
      const seen = await names(c, 'http://mg/', 3);
      assert.equal(new Set(seen).size, 1, `${c} is hashed to one backend`);
      before[c] = seen[0];
    }
    assert.ok(new Set(Object.values(before)).size >= 2, 'ten clients spread over more than one backend');
    const gone = Object.values(before)[0];
    await lab.ok('stop', '-t', '1', gone);
    for (const c of clients) {
      const now = (await names(c, 'http://mg/', 1))[0];
      if (before[c] === gone) assert.notEqual(now, gone);
      else assert.equal(now, before[c], `${c} was on a surviving backend and stays there`);
    }
  });

  it('least connections sends new connections to the backend with the fewest open ones', async () => {
    await run('lc-a', 'app', '-l', 'role=lc', 'node', ECHO, '8080');
    await lab.ok('service', 'create', 'lc', '--network', 'app', '--selector', 'role=lc', '--port', '80:8080', '--algorithm', 'least-connections');
    const { vip } = await service('lc');
    // three long, idle connections, all on the only backend
    idle('client', vip, 80, 3);
    await eventually(async () => (await service('lc')).backends[0].conns === 3, 10_000, 'three open connections counted');
    await run('lc-b', 'app', '-l', 'role=lc', 'node', ECHO, '8080');
    // short requests now all go to lc-b: it has fewer open connections (round robin would alternate)
    await eventually(async () => (await service('lc')).backends.every((b) => b.active), 10_000, 'lc-b in the balancer');
    assert.deepEqual(await names('client', `http://${vip}/`, 6), Array(6).fill('lc-b'));
  });

  it('an unhealthy backend leaves the balancer and DNS and comes back; with none healthy, connections are refused at once', async () => {
    const check = `test ! -f ${marks}-$(cat /proc/sys/kernel/hostname)`;
    await run('hc-1', 'app', '-l', 'role=hc', '--hostname', 'hc-1', '--health-cmd', check, '--health-interval', '300ms', '--health-retries', '1', 'node', ECHO, '8080');
    await run('hc-2', 'app', '-l', 'role=hc', '--hostname', 'hc-2', '--health-cmd', check, '--health-interval', '300ms', '--health-retries', '1', 'node', ECHO, '8080');
    await lab.ok('service', 'create', 'hc', '--network', 'app', '--selector', 'role=hc', '--port', '80:8080');
    await eventually(async () => (await service('hc')).backends.every((b) => b.active), 10_000, 'both backends healthy');
    assert.deepEqual(Object.keys(count(await names('client', 'http://hc/', 4))).sort(), ['hc-1', 'hc-2']);
    writeFileSync(`${marks}-hc-1`, '');
    await eventually(async () => !(await service('hc')).backends.find((b) => b.name === 'hc-1')!.active, 10_000, 'hc-1 out');
    const psLine = (await lab.ok('ps')).split('\n').find((l) => l.trimEnd().endsWith(' hc-1'));
    assert.match(psLine ?? '', /\(unhealthy\)/, 'ps shows hc-1 unhealthy');
    assert.deepEqual(count(await names('client', 'http://hc/', 4)), { 'hc-2': 4 });
    assert.equal((await dig('client', 'tasks.hc')).length, 1);
    writeFileSync(`${marks}-hc-2`, '');
    await eventually(async () => (await service('hc')).backends.every((b) => !b.active), 10_000, 'both out');
    const r = await sh('ip', ['netns', 'exec', ns.client, 'busybox', 'wget', '-q', '-O', '-', 'http://hc/'], { timeoutMs: 8000 });
    assert.match(r.stderr, /refused/, 'no healthy backend: refused, not left hanging');
    rmSync(`${marks}-hc-1`);
    await eventually(async () => (await service('hc')).backends.find((b) => b.name === 'hc-1')!.active, 10_000, 'hc-1 back');
    assert.deepEqual(count(await names('client', 'http://hc/', 3)), { 'hc-1': 3 });
  });

  it('a service probe (HTTP) gates backends before they serve', async () => {
    await lab.ok('service', 'create', 'probe', '--network', 'app', '--replicas', '2', '--port', '80:8080', '--health-http', '8080/', '--health-interval', '300ms', '--', 'node', ECHO, '8080');
    await eventually(async () => (await service('probe')).backends.filter((b) => b.active).length === 2, 10_000, 'probes pass');
    assert.equal(Object.keys(count(await names('client', 'http://probe/', 4))).length, 2);
  });

  it('scaling keeps connections to surviving backends; connections to a removed one fail fast', async () => {
    await lab.ok('service', 'create', 'sc', '--network', 'app', '--replicas', '2', '--port', '80:8080', ...READY, '--', 'node', ECHO, '8080');
    await ready('sc', 2);
    const first = holder('client', 'http://sc/');
    await eventually(async () => first.lines.length >= 2, 10_000, 'first connection answering');
    const second = holder('client', 'http://sc/');
    await eventually(async () => second.lines.length >= 2, 10_000, 'second connection answering');
    // keep-alive: each holder stays on the backend round robin gave its one connection
    assert.deepEqual([first.lines[0], second.lines[0]].sort(), ['sc-1', 'sc-2']);
    const onOne = first.lines[0] === 'sc-1' ? first : second;
    const onTwo = onOne === first ? second : first;
    const twoIp = (await service('sc')).backends.find((b) => b.name === 'sc-2')!.ip;
    await lab.ok('service', 'scale', 'sc=4');
    await lab.ok('service', 'scale', 'sc=1');
    const mark = onOne.lines.length;
    await eventually(async () => onOne.lines.length >= mark + 3, 10_000, 'the surviving connection goes on');
    assert.ok(onOne.lines.slice(mark).every((l) => l === 'sc-1'), `no error on the surviving connection: ${onOne.lines.slice(mark).join(' ')}`);
    // the client of sc-2 moves to sc-1 at once, and no tracked flow to sc-2 is left behind
    await eventually(async () => onTwo.lines.at(-1) === 'sc-1', 10_000, 'its client reconnects to sc-1');
    const flows = await lab.host(['conntrack', '-L', '-p', 'tcp', '--reply-src', twoIp]);
    assert.equal(flows.stdout.trim(), '', `flows to the removed backend are cleared: ${flows.stdout}`);
    stopChild(first.child);
    stopChild(second.child);
  });

  it('published service ports balance from outside, the host and 127.0.0.1; a backend reaches its own VIP (hairpin)', async () => {
    await lab.ok('service', 'create', 'pub', '--network', 'app', '--replicas', '2', '--port', '80:8080', '-p', '18080:80', ...READY, '--', 'node', ECHO, '8080');
    await ready('pub', 2);
    const outside = await names(lab.outsideNetns, `http://${lab.hostAddress}:18080/`, 4);
    assert.deepEqual(count(outside), { 'pub-1': 2, 'pub-2': 2 });
    assert.equal(Object.keys(count(await names(lab.hostNetns, 'http://127.0.0.1:18080/', 4))).length, 2);
    assert.equal(Object.keys(count(await names(lab.hostNetns, `http://${(await service('pub')).vip}/`, 4))).length, 2);
    ns['pub-1'] = (await lab.inspect('pub-1')).netns;
    assert.deepEqual(Object.keys(count(await names('pub-1', 'http://pub/', 4))).sort(), ['pub-1', 'pub-2']);
    const clash = await lab.weft('run', '-d', '--network', 'app', '-p', '18080:80', 'sleep', '5');
    assert.notEqual(clash.code, 0, 'the host port is taken by the service');
  });

  it('a client on another network reaches the VIP with its own address', async () => {
    const me = (await lab.inspect('stranger')).networks.other.ipv4;
    const answer = await get('stranger', `http://${(await service('rr')).vip}/`);
    assert.equal(answer?.client, me);
  });

  it('rm removes the service, its replicas, its VIP and its names', async () => {
    const { vip } = await service('rr');
    await lab.ok('service', 'rm', 'rr');
    assert.doesNotMatch(await lab.ok('ps', '-a'), /rr-1/);
    assert.deepEqual(await dig('client', 'rr'), []);
    // an address of the service range with no service is refused here, never routed on to the network
    const r = await sh('ip', ['netns', 'exec', ns.client, 'busybox', 'wget', '-q', '-O', '-', `http://${vip}/`], { timeoutMs: 8000 });
    assert.match(r.stderr, /refused/);
    assert.doesNotMatch((await lab.host(['nft', 'list', 'table', 'inet', 'weft-svc'])).stdout, new RegExp(vip.replace(/\./g, '\\.')));
  });
});
