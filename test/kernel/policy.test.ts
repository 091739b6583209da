/**
 * Network policy truth tables in a lab: three projects × three containers on one network, two
 * ports, TCP and UDP. For each policy set, `weft policy matrix --probe` tries every cell with a real
 * connection and reports each cell where the kernel disagrees with the model's evaluator; the
 * suite requires none, and pins a few cells of each table by hand so the model itself is held to
 * Kubernetes' semantics too. Then: label changes at once, an established connection surviving
 * policy changes, drop counters, `policy check`'s reasons, and a probe that catches a kernel gone
 * out of step with the model.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { makeLab, eventually, type TestLab } from './helpers.js';

const PORTS = ['80/tcp', '81/tcp', '80/udp', '81/udp'];
const PROJECTS = ['pa', 'pb', 'pc'];
const ROLES = ['web', 'api', 'db'];
/** x-1 web, x-2 api, x-3 db; pa .11-.13, pb .21-.23, pc .31-.33 */
const ip = (p: string, i: number) => `10.77.0.${(PROJECTS.indexOf(p) + 1) * 10 + i}`;

interface Matrix {
  containers: { container: string }[];
  ports: string[];
  cells: string[][][];
  disagreements: { from: string; to: string; port: string; model: string; kernel: string }[];
}

describe('network policy', () => {
  let lab: TestLab;
  let dir: string;
  const children: ChildProcess[] = [];
  let applied: string[] = [];

  /** Replaces every policy with these documents (YAML). */
  async function policies(yaml: string): Promise<void> {
    for (const f of applied) await lab.ok('policy', 'delete', '-f', f);
    applied = [];
    if (!yaml.trim()) return;
    const f = path.join(dir, `p-${Date.now()}-${Math.random().toString(16).slice(2)}.yaml`);
    writeFileSync(f, yaml);
    await lab.ok('policy', 'apply', '-f', f);
    applied.push(f);
  }

  /** The probed matrix; fails on any cell where the kernel disagrees with the model. */
  async function table(): Promise<(from: string, to: string, port: string) => boolean> {
    const r = await lab.weft('policy', 'matrix', '--probe', '--timeout', '700', '--format', 'json', ...PORTS.flatMap((p) => ['--port', p]));
    assert.ok(r.code === 0 || r.code === 1, `matrix failed: ${r.stderr}`);
    const m = JSON.parse(r.stdout) as Matrix;
    assert.deepEqual(m.disagreements, [], 'the kernel agrees with the model in every cell');
    const idx = new Map(m.containers.map((c, i) => [c.container, i]));
    return (from, to, port) => {
      const cell = m.cells[idx.get(from)!]![idx.get(to)!]![m.ports.indexOf(port)]!;
      assert.ok(cell === 'allow' || cell === 'deny', `cell ${from} -> ${to} ${port} is ${cell}`);
      return cell === 'allow';
    };
  }

  /** Asserts cells by hand: [from, to, port, allowed]. */
  function expect(t: (f: string, to: string, p: string) => boolean, cells: Array<[string, string, string, boolean]>): void {
    for (const [f, to, p, want] of cells) assert.equal(t(f, to, p), want, `${f} -> ${to} ${p} should be ${want ? 'allowed' : 'denied'}`);
  }

  /** One TCP connection attempt from a container (1 s); true if it connected. */
  async function connects(from: string, addr: string, port: number): Promise<boolean> {
    const script = `const s=require('net').connect(${port},${JSON.stringify(addr)},()=>process.exit(0));s.on('error',()=>process.exit(1));setTimeout(()=>process.exit(2),1000);`;
    return (await lab.inContainer(from, [process.execPath, '-e', script])).code === 0;
  }

  const np = (name: string, ns: string, spec: string) =>
    `---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: ${name}\n  namespace: ${ns}\nspec:\n${spec.replace(/^/gm, '  ')}\n`;

  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'weft-policy-test-'));
    lab = await makeLab('tpol');
    await lab.ok('network', 'create', '--subnet', '10.77.0.0/24', 'tt');
    for (const p of PROJECTS)
      for (let i = 1; i <= 3; i++) {
        const role = ROLES[i - 1]!;
        // named ports differ between roles: http is 80 on web and api, 81 on db
        const http = role === 'db' ? 81 : 80;
        await lab.ok('run', '-d', '--name', `${p}-${i}`, '--network', 'tt', '--ip', ip(p, i), '--project', p, '-l', `role=${role}`, '-l', `num=${i}`,
          '--expose', `http=${http}/tcp`, '--expose', `dns=${161 - http}/udp`, 'sleep', '3600');
      }
    await lab.ok('project', 'label', 'pa', 'team=red');
    await lab.ok('project', 'label', 'pb', 'team=blue', 'env=prod');
  });

  after(async () => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    await lab?.down();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('no policy: everything reaches everything', async () => {
    await policies('');
    const t = await table();
    for (const p of PORTS) expect(t, [['pa-1', 'pb-3', p, true], ['pc-2', 'pa-1', p, true]]);
  });

  it('default deny ingress (empty podSelector) isolates the project for ingress only; replies of its own connections pass', async () => {
    await policies(np('deny-in', 'pa', 'podSelector: {}\npolicyTypes: [Ingress]'));
    const t = await table();
    expect(t, [
      ['pb-1', 'pa-1', '80/tcp', false],
      ['pa-2', 'pa-1', '80/udp', false],
      // egress of pa is not isolated, and the answers come back (conntrack)
      ['pa-1', 'pb-1', '80/tcp', true],
      ['pa-1', 'pc-3', '81/udp', true],
    ]);
  });

  it('default deny egress isolates for egress only', async () => {
    await policies(np('deny-out', 'pb', 'podSelector: {}\npolicyTypes: [Egress]'));
    const t = await table();
    expect(t, [
      ['pb-1', 'pa-1', '80/tcp', false],
      ['pb-1', 'pb-2', '81/udp', false],
      ['pa-1', 'pb-1', '80/tcp', true],
    ]);
  });

  it('podSelector peers stay in the policy\'s project; ports narrow by number and protocol', async () => {
    await policies(np('db-from-web', 'pa', 'podSelector: {matchLabels: {role: db}}\ningress:\n- from:\n  - podSelector: {matchLabels: {role: web}}\n  ports:\n  - port: 80\n    protocol: TCP'));
    const t = await table();
    expect(t, [
      ['pa-1', 'pa-3', '80/tcp', true],
      ['pa-1', 'pa-3', '81/tcp', false],
      ['pa-1', 'pa-3', '80/udp', false],
      ['pb-1', 'pa-3', '80/tcp', false], // a web of another project
      ['pa-2', 'pa-3', '80/tcp', false],
      ['pa-2', 'pa-1', '81/tcp', true], // web is not selected
    ]);
  });

  it('namespaceSelector alone, and AND with podSelector in one peer versus OR as two peers', async () => {
    await policies(
      np('ns-only', 'pc', 'podSelector: {matchLabels: {role: web}}\ningress:\n- from:\n  - namespaceSelector: {matchLabels: {team: red}}') +
        np('and', 'pc', 'podSelector: {matchLabels: {role: api}}\ningress:\n- from:\n  - namespaceSelector: {matchLabels: {team: blue}}\n    podSelector: {matchLabels: {role: web}}') +
        np('or', 'pc', 'podSelector: {matchLabels: {role: db}}\ningress:\n- from:\n  - namespaceSelector: {matchLabels: {team: blue}}\n  - podSelector: {matchLabels: {role: web}}'),
    );
    const t = await table();
    expect(t, [
      ['pa-3', 'pc-1', '81/udp', true], // any pod of a team=red project
      ['pb-1', 'pc-1', '80/tcp', false],
      ['pc-2', 'pc-1', '80/tcp', false], // its own project is not team=red
      ['pb-1', 'pc-2', '80/tcp', true], // AND: blue and web
      ['pb-2', 'pc-2', '80/tcp', false],
      ['pc-1', 'pc-2', '80/tcp', false], // web but not blue
      ['pb-2', 'pc-3', '80/tcp', true], // OR: blue
      ['pc-1', 'pc-3', '80/tcp', true], // OR: web of its own project
      ['pa-1', 'pc-3', '80/tcp', false],
    ]);
  });

  it('ipBlock with except; several policies add up', async () => {
    await policies(
      np('block', 'pb', 'podSelector: {matchLabels: {role: web}}\ningress:\n- from:\n  - ipBlock: {cidr: 10.77.0.0/27, except: [10.77.0.16/28]}') +
        np('plus-pc2', 'pb', 'podSelector: {matchLabels: {role: web}}\ningress:\n- from:\n  - ipBlock: {cidr: 10.77.0.32/32}'),
    );
    const t = await table();
    expect(t, [
      ['pa-1', 'pb-1', '80/tcp', true], // .11 inside the /27
      ['pb-2', 'pb-1', '80/tcp', false], // .22 in the except
      ['pc-1', 'pb-1', '80/tcp', false], // .31 in the except
      ['pc-2', 'pb-1', '81/udp', true], // .32 from the second policy
      ['pc-3', 'pb-1', '80/tcp', false],
    ]);
  });

  it('port ranges (endPort), named ports resolved on each destination, UDP', async () => {
    await policies(
      np('range', 'pa', 'podSelector: {matchLabels: {role: web}}\ningress:\n- ports:\n  - port: 80\n    endPort: 81\n    protocol: UDP') +
        np('named', 'pb', 'podSelector: {}\npolicyTypes: [Ingress]\ningress:\n- ports:\n  - port: http') +
        np('named-out', 'pc', 'podSelector: {matchLabels: {role: web}}\npolicyTypes: [Egress]\negress:\n- ports:\n  - port: dns\n    protocol: UDP'),
    );
    const t = await table();
    expect(t, [
      ['pb-1', 'pa-1', '80/udp', true],
      ['pb-1', 'pa-1', '81/udp', true],
      ['pb-1', 'pa-1', '80/tcp', false],
      ['pa-1', 'pb-1', '80/tcp', true], // http is 80 on web
      ['pa-1', 'pb-1', '81/tcp', false],
      ['pa-1', 'pb-3', '81/tcp', true], // http is 81 on db
      ['pa-1', 'pb-3', '80/tcp', false],
      ['pc-1', 'pa-1', '81/udp', true], // dns is 81/udp on web
      ['pc-1', 'pa-3', '80/udp', true], // and 80/udp on db
      ['pc-1', 'pa-3', '81/udp', false],
      ['pc-1', 'pa-1', '80/tcp', false],
    ]);
  });

  it('matchExpressions: In, NotIn, Exists, DoesNotExist', async () => {
    await policies(
      np('expr', 'pa', 'podSelector: {matchExpressions: [{key: role, operator: NotIn, values: [web]}]}\ningress:\n- from:\n  - namespaceSelector: {matchExpressions: [{key: env, operator: Exists}]}\n    podSelector: {matchExpressions: [{key: num, operator: In, values: ["1", "3"]}]}\n  - namespaceSelector: {matchExpressions: [{key: team, operator: DoesNotExist}]}'),
    );
    const t = await table();
    expect(t, [
      ['pb-1', 'pa-2', '80/tcp', true], // env exists on pb, num=1
      ['pb-2', 'pa-2', '80/tcp', false], // num=2
      ['pc-2', 'pa-3', '81/udp', true], // pc has no team
      ['pa-1', 'pa-3', '80/tcp', false], // pa has a team and no env
      ['pb-2', 'pa-1', '80/tcp', true], // web is not selected
    ]);
  });

  it('label changes take effect at once, on pods and on projects', async () => {
    await policies(np('web-only', 'pa', 'podSelector: {matchLabels: {role: db}}\ningress:\n- from:\n  - namespaceSelector: {matchLabels: {trusted: "yes"}}\n    podSelector: {matchLabels: {role: web}}'));
    let t = await table();
    expect(t, [['pc-1', 'pa-3', '80/tcp', false]]);
    await lab.ok('project', 'label', 'pc', 'trusted=yes');
    t = await table();
    expect(t, [['pc-1', 'pa-3', '80/tcp', true], ['pc-2', 'pa-3', '80/tcp', false]]);
    await lab.ok('label', 'pc-2', 'role=web');
    t = await table();
    expect(t, [['pc-2', 'pa-3', '80/tcp', true]]);
    await lab.ok('label', 'pc-2', 'role=api');
    await lab.ok('project', 'label', 'pc', 'trusted-');
    t = await table();
    expect(t, [['pc-1', 'pa-3', '80/tcp', false], ['pc-2', 'pa-3', '80/tcp', false]]);
  });

  it('check names the deciding policy and rule; drops are counted per policy', async () => {
    await policies(np('deny-all', 'pb', 'podSelector: {}') + np('allow-api', 'pb', 'podSelector: {matchLabels: {role: db}}\ningress:\n- from:\n  - podSelector: {matchLabels: {role: api}}'));
    const ok = JSON.parse(await lab.ok('policy', 'check', 'pb-2', 'pb-3:5432', '--format', 'json'));
    assert.equal(ok.allowed, true);
    assert.deepEqual(ok.verdict.ingress.allowedBy, { policy: 'pb/allow-api', rule: 'ingress[0]' });
    const no = await lab.ok('policy', 'check', 'pa-1', 'pb-3:5432/tcp');
    assert.match(no, /^denied: pa-1 \(10\.77\.0\.11\) -> pb-3 \(10\.77\.0\.23\) 5432\/tcp/);
    assert.match(no, /pb-3 is isolated for ingress by policies pb\/allow-api, pb\/deny-all/);
    assert.equal(await connects('pa-1', '10.77.0.23', 5432), false);
    const views = JSON.parse(await lab.ok('policy', 'ls', '-n', 'pb', '--format', 'json')) as { name: string; drops: { packets: number }; selected: string[] }[];
    const deny = views.find((v) => v.name === 'deny-all')!;
    assert.ok(deny.drops.packets >= 1, `deny-all counted the dropped SYN: ${JSON.stringify(deny.drops)}`);
    assert.deepEqual(deny.selected, ['pb-1', 'pb-2', 'pb-3']);
  });

  it('an allowed established connection survives every policy change', async () => {
    await policies('');
    await lab.ok('run', '-d', '--name', 'echo', '--network', 'tt', '--project', 'pb', '-l', 'role=echo', 'node', '-e',
      "require('net').createServer(s=>s.pipe(s)).listen(9000)");
    const echoIp = (await lab.inspect('echo')).networks.tt!.ipv4!;
    await eventually(async () => connects('pa-1', echoIp, 9000), 10_000, 'echo listening');
    const ns = (await lab.inspect('pa-1')).netns;
    const script = `const s=require('net').connect(9000,${JSON.stringify(echoIp)});let n=0;s.on('data',()=>{console.log('ok '+(++n))});
      s.on('error',e=>{console.log('ERR '+e.code);process.exit(1)});s.on('close',()=>{console.log('CLOSED');process.exit(1)});setInterval(()=>s.write('x'),50);`;
    const child = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', script], { stdio: ['ignore', 'pipe', 'ignore'] });
    children.push(child);
    const lines: string[] = [];
    createInterface({ input: child.stdout! }).on('line', (l) => lines.push(l));
    await eventually(async () => lines.length > 3, 5000, 'echo answering');
    // isolate both ends; allow the connection; then churn: every label flip below rewrites the table
    await policies(
      np('deny-pb', 'pb', 'podSelector: {}\npolicyTypes: [Ingress, Egress]') +
        np('deny-pa', 'pa', 'podSelector: {}\npolicyTypes: [Ingress, Egress]') +
        np('echo-in', 'pb', 'podSelector: {matchLabels: {role: echo}}\ningress:\n- from:\n  - namespaceSelector: {matchLabels: {team: red}}\n    podSelector: {matchLabels: {role: web}}\n  ports:\n  - port: 9000') +
        np('web-out', 'pa', 'podSelector: {matchLabels: {role: web}}\npolicyTypes: [Egress]\negress:\n- to:\n  - ipBlock: {cidr: 10.77.0.0/24}\n  ports:\n  - port: 9000') +
        np('pc-web', 'pc', 'podSelector: {matchLabels: {role: web}}'),
    );
    for (let i = 0; i < 6; i++) await lab.ok('label', 'pc-1', `role=${i % 2 ? 'web' : 'api'}`);
    const before = lines.length;
    await eventually(async () => lines.length > before + 5, 5000, 'echo still answering');
    assert.ok(!lines.some((l) => l.startsWith('ERR') || l === 'CLOSED'), lines.filter((l) => !l.startsWith('ok')).join(' '));
    // and new connections follow the policies: pa-2 is not a web pod
    assert.equal(await connects('pa-2', echoIp, 9000), false);
  });

  it('the probe catches a kernel out of step with the model', async () => {
    await policies(np('deny-in', 'pc', 'podSelector: {}\npolicyTypes: [Ingress]'));
    await table();
    // someone deletes weft's table behind the agent's back
    const del = await lab.host(['nft', 'delete', 'table', 'inet', 'weft-policy']);
    assert.equal(del.code, 0, del.stderr);
    const r = await lab.weft('policy', 'matrix', '--probe', '--timeout', '700', '--port', '80/tcp');
    assert.equal(r.code, 1, 'matrix --probe exits 1 on a disagreement');
    assert.match(r.stdout, /pa-1 -> pc-1 80\/tcp: model deny, kernel allow/);
    // the next change puts the table back
    await lab.ok('label', 'pc-1', 'again=1');
    await table();
  });
});
