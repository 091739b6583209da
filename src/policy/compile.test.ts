/**
 * The policy compiler: the layout of `table inet weft-policy`, its determinism, and — through a
 * tracer of the compiled text (./trace.test-helper.ts) — its agreement with evaluate() on every
 * connection of seeded random worlds.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { isIP } from 'node:net';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { compilePolicies, dropCounter, renderPolicyTable, type CompiledPolicies } from './compile.js';
import { evaluate, policyRef, type Party } from './evaluate.js';
import { PolicyTable, TraceParseError, type Packet } from './trace.test-helper.js';
import type { Pod, PolicyWorld } from './types.js';
import { Dice, pod, policiesFrom, policyId, randomWorld, PROBES, worldOf } from './world.test-helper.js';

const np = (name: string, body: string, namespace = 'default') =>
  `---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: ${name}\n  namespace: ${namespace}\nspec:\n${body
    .trim()
    .split('\n')
    .map((l) => `  ${l}`)
    .join('\n')}\n`;

function compiled(world: PolicyWorld): { c: CompiledPolicies; text: string; table: PolicyTable } {
  const c = compilePolicies(world);
  const text = renderPolicyTable(c);
  return { c, text, table: PolicyTable.parse(text) };
}

/** The chain an address jumps to from a verdict map (`ingress4`, `egress6`...), if any. */
function chainFor(table: PolicyTable, map: string, ip: string): string | undefined {
  const e = table.sets.get(map)!.elements.find((x) => x.text.startsWith(`${ip} : `));
  return e?.verdict?.kind === 'jump' ? e.verdict.chain : undefined;
}
const rulesOf = (table: PolicyTable, chain: string) => table.chains.get(chain)!.rules.map((r) => r.text);
/** The elements of the set a rule looks up (the `n`th lookup of the rule). */
function lookedUp(table: PolicyTable, rule: string, n = 0): string[] {
  const name = [...rule.matchAll(/@(\w+)/g)][n]?.[1];
  assert.ok(name, `rule "${rule}" looks up no set #${n}`);
  return table.sets.get(name)!.elements.map((e) => e.text);
}
const trace = (table: PolicyTable, saddr: string, daddr: string, protocol = 'tcp', dport: number | undefined = protocol === 'icmp' ? undefined : 80, extra: Partial<Packet> = {}) =>
  table.trace({ saddr, daddr, protocol, dport, ...extra });

// ------------------------------------------------------------------------------------ layout

describe('layout', () => {
  const web = pod('default/web', { app: 'web' }, ['10.0.0.2', 'fd00::2'], ['http=8080/tcp']);
  const db = pod('default/db', { app: 'db' }, ['10.0.0.3']);
  const policies = policiesFrom(
    np('db', `podSelector: {matchLabels: {app: db}}
ingress:
- from: [{podSelector: {matchLabels: {app: web}}}, {ipBlock: {cidr: 192.0.2.0/24, except: [192.0.2.64/26]}}]
  ports: [{port: 5432}, {protocol: SCTP}]`) +
      np('web', `podSelector: {matchLabels: {app: web}}
policyTypes: [Egress]
egress:
- to: [{podSelector: {matchLabels: {app: db}}}]
- ports: [{port: http}]`),
  );
  const dbId = policyId('default', 'db').slice(0, 16);
  const webId = policyId('default', 'web').slice(0, 16);

  test('the whole table of a small world', () => {
    const c = compilePolicies(worldOf([web, db], policies));
    assert.equal(
      renderPolicyTable(c),
      `  counter drop-${dbId} {
    packets 0 bytes 0
  }

  counter drop-${webId} {
    packets 0 bytes 0
  }

  comment "weft: network policy (managed by weft, do not edit)"

  set s0 {
    type inet_proto . inet_service
    flags interval
    elements = { sctp . 0-65535, tcp . 5432 }
  }

  set s1 {
    type ipv4_addr
    flags interval
    elements = { 10.0.0.2, 192.0.2.0-192.0.2.63, 192.0.2.128-192.0.2.255 }
  }

  set s2 {
    type ipv6_addr
    flags interval
    elements = { fd00::2 }
  }

  set s3 {
    type ipv4_addr
    flags interval
    elements = { 10.0.0.3 }
  }

  set s4 {
    type ipv4_addr . inet_proto . inet_service
    elements = { 10.0.0.2 . tcp . 8080 }
  }

  set s5 {
    type ipv6_addr . inet_proto . inet_service
    elements = { fd00::2 . tcp . 8080 }
  }

  set self4 {
    type ipv4_addr . ipv4_addr
    elements = { 10.0.0.2 . 10.0.0.2, 10.0.0.3 . 10.0.0.3 }
  }

  map egress4 {
    type ipv4_addr : verdict
    elements = { 10.0.0.2 : jump eg-1 }
  }

  map ingress4 {
    type ipv4_addr : verdict
    elements = { 10.0.0.3 : jump in-0 }
  }

  set self6 {
    type ipv6_addr . ipv6_addr
    elements = { fd00::2 . fd00::2 }
  }

  map egress6 {
    type ipv6_addr : verdict
    elements = { fd00::2 : jump eg-1 }
  }

  map ingress6 {
    type ipv6_addr : verdict
  }

  chain forward {
    type filter hook forward priority filter - 10; policy accept;
    ct state established,related accept
    icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert, nd-router-solicit, mld-listener-query, mld-listener-report, mld2-listener-report } accept
    ip saddr . ip daddr @self4 accept
    ip6 saddr . ip6 daddr @self6 accept
    ip saddr vmap @egress4
    ip6 saddr vmap @egress6
    ip daddr vmap @ingress4
    ip6 daddr vmap @ingress6
  }

  chain in-0 {
    ip saddr @s1 meta l4proto . th dport @s0 return
    ip6 saddr @s2 meta l4proto . th dport @s0 return
    counter name "drop-${dbId}"
    drop
  }

  chain eg-1 {
    ip daddr @s3 return
    ip daddr . meta l4proto . th dport @s4 return
    ip6 daddr . meta l4proto . th dport @s5 return
    counter name "drop-${webId}"
    drop
  }
`,
    );
    assert.deepEqual(c.stats, { pods: 2, isolatedIngress: 1, isolatedEgress: 1, chains: 2, sets: 6, elements: 15 });
    assert.deepEqual(
      c.counters,
      new Map([
        [`drop-${dbId}`, policyId('default', 'db')],
        [`drop-${webId}`, policyId('default', 'web')],
      ]),
    );
  });

  test('no policy: empty maps, the forward chain, no program', () => {
    const { c, table } = compiled(worldOf([web, db], []));
    assert.deepEqual([...table.chains.keys()], ['forward']);
    for (const m of ['egress4', 'ingress4', 'egress6', 'ingress6']) assert.deepEqual(table.sets.get(m)!.elements, [], m);
    assert.deepEqual(table.sets.get('self4')!.elements.map((e) => e.text), ['10.0.0.2 . 10.0.0.2', '10.0.0.3 . 10.0.0.3']);
    assert.deepEqual(c.counters, new Map());
    assert.deepEqual(c.stats, { pods: 2, isolatedIngress: 0, isolatedEgress: 0, chains: 0, sets: 0, elements: 3 });
    assert.equal(trace(table, '10.0.0.2', '10.0.0.3').verdict, 'accept');
  });

  test('replies, related packets and IPv6 neighbour discovery pass an isolated pod', () => {
    const sealed = worldOf([web, db], policiesFrom(np('seal', 'podSelector: {}\npolicyTypes: [Ingress, Egress]')));
    const { table } = compiled(sealed);
    assert.equal(trace(table, '10.0.0.2', '10.0.0.3').verdict, 'drop');
    assert.equal(trace(table, '10.0.0.2', '10.0.0.3', 'tcp', 80, { ct: 'established' }).verdict, 'accept');
    assert.equal(trace(table, '10.0.0.2', '10.0.0.3', 'icmp', undefined, { ct: 'related' }).verdict, 'accept');
    assert.equal(trace(table, 'fd00::9', 'fd00::2', 'icmp', undefined, { icmpv6Type: 'nd-neighbor-solicit' }).verdict, 'accept');
    assert.equal(trace(table, 'fd00::9', 'fd00::2', 'icmp', undefined, { icmpv6Type: 'echo-request' }).verdict, 'drop');
  });
});

// ------------------------------------------------------------------------------------ programs

describe('programs and chains', () => {
  test('pods with equal programs share one chain', () => {
    const pods = [1, 2, 3].map((i) => pod(`default/web${i}`, { app: 'web' }, [`10.0.0.${i + 1}`]));
    const client = pod('default/client', { app: 'client' }, ['10.0.0.9']);
    const other = pod('default/other', { app: 'web', extra: 'yes' }, ['10.0.0.8']);
    const policies = policiesFrom(
      np('web', 'podSelector: {matchLabels: {app: web}}\ningress: [{from: [{podSelector: {matchLabels: {app: client}}}]}]') +
        np('extra', 'podSelector: {matchLabels: {extra: "yes"}}\ningress: [{ports: [{port: 22}]}]'),
    );
    const { c, table } = compiled(worldOf([...pods, client, other], policies));
    const chains = pods.map((p) => chainFor(table, 'ingress4', p.ips[0]));
    assert.ok(chains[0]);
    assert.deepEqual(chains, [chains[0], chains[0], chains[0]]);
    assert.notEqual(chainFor(table, 'ingress4', '10.0.0.8'), chains[0], 'a pod selected by one more policy has its own program');
    assert.equal(chainFor(table, 'ingress4', '10.0.0.9'), undefined, 'the client is not isolated');
    assert.equal(c.stats.chains, 2);
    assert.equal(c.stats.isolatedIngress, 4);
    for (const p of pods) {
      assert.equal(trace(table, '10.0.0.9', p.ips[0]).verdict, 'accept');
      assert.equal(trace(table, '10.0.0.8', p.ips[0]).verdict, 'drop');
    }
  });

  test('each isolating policy counts its drops, in project/name order, before the drop', () => {
    const db = pod('default/db', { app: 'db' }, ['10.0.0.3']);
    const policies = policiesFrom(
      np('z-db', 'podSelector: {matchLabels: {app: db}}\ningress: [{ports: [{port: 5432}]}]') +
        np('a-all', 'podSelector: {}\ningress: []') +
        np('unused', 'podSelector: {matchLabels: {app: nothing}}\ningress: []') +
        np('elsewhere', 'podSelector: {}\ningress: []', 'empty-project'),
    );
    const { c, table } = compiled(worldOf([db], policies));
    const chain = chainFor(table, 'ingress4', '10.0.0.3')!;
    const a = dropCounter(policyId('default', 'a-all'));
    const z = dropCounter(policyId('default', 'z-db'));
    assert.deepEqual(rulesOf(table, chain).slice(-3), [`counter name "${a}"`, `counter name "${z}"`, 'drop']);
    // a counter for every policy, also those that select nothing
    assert.deepEqual(
      new Set(c.counters.keys()),
      new Set(['a-all', 'z-db', 'unused'].map((n) => dropCounter(policyId('default', n))).concat(dropCounter(policyId('empty-project', 'elsewhere')))),
    );
    for (const [name, id] of c.counters) assert.equal(name, dropCounter(id));
    const dropped = trace(table, '10.0.0.9', '10.0.0.3', 'tcp', 80);
    assert.deepEqual([dropped.verdict, dropped.counters], ['drop', [a, z]]);
    const passed = trace(table, '10.0.0.9', '10.0.0.3', 'tcp', 5432);
    assert.deepEqual([passed.verdict, passed.counters], ['accept', []]);
  });

  test('dropCounter: drop- and the first 16 characters of the policy id', () => {
    assert.equal(dropCounter('0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef'), 'drop-0123456789abcdef');
  });

  test('renderPolicyTable declares every counter with the values it is given, then the body', () => {
    const db = pod('default/db', { app: 'db' }, ['10.0.0.3']);
    const c = compilePolicies(worldOf([db], policiesFrom(np('a', 'podSelector: {}\ningress: []') + np('b', 'podSelector: {}\ningress: []'))));
    const [a, b] = [dropCounter(policyId('default', 'a')), dropCounter(policyId('default', 'b'))];
    const text = renderPolicyTable(
      c,
      new Map([
        [a, { packets: 12, bytes: 3456 }],
        ['drop-ffffffffffffffff', { packets: 1, bytes: 1 }],
      ]),
    );
    assert.ok(text.startsWith(`  counter ${a} {\n    packets 12 bytes 3456\n  }\n\n  counter ${b} {\n    packets 0 bytes 0\n  }\n\n`));
    assert.ok(text.endsWith(c.body));
    assert.ok(!text.includes('drop-ffffffffffffffff'), 'values of counters that no policy owns are dropped');
    const table = PolicyTable.parse(text);
    assert.deepEqual(table.counters, new Map([[a, { packets: 12, bytes: 3456 }], [b, { packets: 0, bytes: 0 }]]));
    // the body alone names counters it does not declare: render is what nft loads
    assert.throws(() => PolicyTable.parse(c.body), /no counter/);
  });
});

// ------------------------------------------------------------------------------------ peers and ports

describe('peers and ports in the text', () => {
  test('an ipBlock except becomes holes in an interval set, merged with the pods a rule names', () => {
    const db = pod('default/db', { app: 'db' }, ['10.0.0.3']);
    const web = pod('default/web', { app: 'web' }, ['10.0.0.2']);
    const world = worldOf([db, web], policiesFrom(np('db', `podSelector: {matchLabels: {app: db}}
ingress:
- from:
  - ipBlock: {cidr: 10.0.0.0/24, except: [10.0.0.0/30, 10.0.0.128/25]}
  - podSelector: {matchLabels: {app: web}}
  - ipBlock: {cidr: 192.0.2.0/24, except: [192.0.2.64/26]}`)));
    const { table } = compiled(world);
    const [rule] = rulesOf(table, chainFor(table, 'ingress4', '10.0.0.3')!);
    assert.equal(table.sets.get(rule.match(/@(\w+)/)![1])!.interval, true);
    assert.deepEqual(lookedUp(table, rule), ['10.0.0.2', '10.0.0.4-10.0.0.127', '192.0.2.0-192.0.2.63', '192.0.2.128-192.0.2.255']);
    assert.deepEqual(
      ['10.0.0.1', '10.0.0.2', '10.0.0.4', '10.0.0.127', '10.0.0.128', '192.0.2.64', '192.0.2.200'].map((s) => trace(table, s, '10.0.0.3').verdict),
      ['drop', 'accept', 'accept', 'accept', 'drop', 'drop', 'accept'],
    );
  });

  test('ingress named ports resolve per destination pod: different numbers, different chains', () => {
    const a = pod('default/a', { app: 'web' }, ['10.0.0.2'], ['http=8080/tcp']);
    const b = pod('default/b', { app: 'web' }, ['10.0.0.3'], ['http=80/tcp']);
    const c = pod('default/c', { app: 'web' }, ['10.0.0.4'], ['http=80/udp']);
    const d = pod('default/d', { app: 'web' }, ['10.0.0.5'], ['http=8080/tcp', 'metrics=9090/tcp']);
    const world = worldOf([a, b, c, d], policiesFrom(np('web', 'podSelector: {matchLabels: {app: web}}\ningress: [{ports: [{port: http}, {port: 443}]}]')));
    const { table } = compiled(world);
    const chain = (p: Pod) => chainFor(table, 'ingress4', p.ips[0])!;
    assert.equal(chain(a), chain(d), 'equal resolution, equal program');
    assert.equal(new Set([chain(a), chain(b), chain(c)]).size, 3);
    assert.deepEqual(lookedUp(table, rulesOf(table, chain(a))[0]), ['tcp . 443', 'tcp . 8080']);
    assert.deepEqual(lookedUp(table, rulesOf(table, chain(b))[0]), ['tcp . 80', 'tcp . 443']);
    assert.deepEqual(lookedUp(table, rulesOf(table, chain(c))[0]), ['tcp . 443'], 'a UDP http is not the TCP http the rule names');
    assert.deepEqual(
      [trace(table, '10.0.0.9', '10.0.0.2', 'tcp', 8080), trace(table, '10.0.0.9', '10.0.0.2', 'tcp', 80), trace(table, '10.0.0.9', '10.0.0.3', 'tcp', 80), trace(table, '10.0.0.9', '10.0.0.4', 'udp', 80)].map((t) => t.verdict),
      ['accept', 'drop', 'accept', 'drop'],
    );
  });

  test('a rule whose only port is a named port the pod lacks admits nothing', () => {
    const a = pod('default/a', { app: 'web' }, ['10.0.0.2']);
    const world = worldOf([a], policiesFrom(np('web', 'podSelector: {}\ningress: [{ports: [{port: http}]}]')));
    const { table } = compiled(world);
    assert.deepEqual(rulesOf(table, chainFor(table, 'ingress4', '10.0.0.2')!), [`counter name "${dropCounter(policyId('default', 'web'))}"`, 'drop']);
  });

  test('egress named ports: address . protocol . port elements of the destination pods', () => {
    const client = pod('default/client', { app: 'client' }, ['10.0.0.9']);
    const a = pod('default/a', { app: 'web' }, ['10.0.0.2', 'fd00::2'], ['http=8080/tcp', 'diam=3868/sctp']);
    const b = pod('default/b', { app: 'web' }, ['10.0.0.3'], ['http=80/tcp']);
    const c = pod('prod/c', { app: 'web' }, ['10.1.0.3'], ['http=81/tcp']);
    const n = pod('default/n', { app: 'web' }, ['10.0.0.4']);
    const world = worldOf(
      [client, a, b, c, n],
      policiesFrom(np('client', `podSelector: {matchLabels: {app: client}}
policyTypes: [Egress]
egress:
- to: [{podSelector: {matchLabels: {app: web}}}]
  ports: [{port: http}, {protocol: SCTP, port: diam}]
- ports: [{port: http}]
  to: [{ipBlock: {cidr: 10.1.0.0/16}}]`)),
    );
    const { table } = compiled(world);
    const rules = rulesOf(table, chainFor(table, 'egress4', '10.0.0.9')!);
    assert.deepEqual(rules.slice(0, 3), [
      `ip daddr . meta l4proto . th dport @${rules[0].match(/@(\w+)/)![1]} return`,
      `ip6 daddr . meta l4proto . th dport @${rules[1].match(/@(\w+)/)![1]} return`,
      `ip daddr . meta l4proto . th dport @${rules[2].match(/@(\w+)/)![1]} return`,
    ]);
    assert.deepEqual(lookedUp(table, rules[0]), ['10.0.0.2 . sctp . 3868', '10.0.0.2 . tcp . 8080', '10.0.0.3 . tcp . 80']);
    assert.deepEqual(lookedUp(table, rules[1]), ['fd00::2 . sctp . 3868', 'fd00::2 . tcp . 8080']);
    assert.deepEqual(lookedUp(table, rules[2]), ['10.1.0.3 . tcp . 81'], 'pods inside an ipBlock, with their own named port');
    assert.equal(table.sets.get(rules[0].match(/@(\w+)/)![1])!.interval, false);
    assert.deepEqual(
      [
        trace(table, '10.0.0.9', '10.0.0.2', 'tcp', 8080),
        trace(table, '10.0.0.9', '10.0.0.2', 'tcp', 80),
        trace(table, '10.0.0.9', '10.0.0.3', 'tcp', 80),
        trace(table, '10.0.0.9', '10.0.0.2', 'sctp', 3868),
        trace(table, '10.0.0.9', '10.0.0.4', 'tcp', 80),
        trace(table, '10.0.0.9', '10.1.0.3', 'tcp', 81),
        trace(table, '10.0.0.9', '10.1.0.99', 'tcp', 81),
      ].map((t) => t.verdict),
      ['accept', 'drop', 'accept', 'accept', 'drop', 'accept', 'drop'],
    );
  });

  test('SCTP and port ranges', () => {
    const db = pod('default/db', { app: 'db' }, ['10.0.0.3']);
    const world = worldOf([db], policiesFrom(np('db', 'podSelector: {}\ningress: [{ports: [{protocol: SCTP, port: 3868}, {protocol: UDP, port: 32000, endPort: 32767}, {protocol: TCP}]}]')));
    const { table } = compiled(world);
    const [rule] = rulesOf(table, chainFor(table, 'ingress4', '10.0.0.3')!);
    assert.match(rule, /^meta l4proto \. th dport @\w+ return$/);
    assert.deepEqual(lookedUp(table, rule), ['sctp . 3868', 'tcp . 0-65535', 'udp . 32000-32767']);
    const v = (pr: string, p?: number) => trace(table, '192.0.2.1', '10.0.0.3', pr, p).verdict;
    assert.deepEqual([v('sctp', 3868), v('sctp', 3869), v('udp', 31999), v('udp', 32767), v('tcp', 1), v('icmp')], ['accept', 'drop', 'drop', 'accept', 'accept', 'drop']);
  });

  test('IPv6: maps, peer sets and self pairs of their own family', () => {
    const a = pod('default/a', { app: 'a' }, ['fd00::2']);
    const b = pod('default/b', { app: 'b' }, ['fd00::3', '10.0.0.3']);
    const world = worldOf([a, b], policiesFrom(np('a', 'podSelector: {matchLabels: {app: a}}\ningress: [{from: [{podSelector: {matchLabels: {app: b}}}, {ipBlock: {cidr: "2001:db8::/32", except: ["2001:db8::/33"]}}]}]')));
    const { table } = compiled(world);
    assert.deepEqual(table.sets.get('ingress4')!.elements, []);
    const chain = chainFor(table, 'ingress6', 'fd00::2')!;
    const rules = rulesOf(table, chain);
    assert.match(rules[0], /^ip saddr @\w+ return$/);
    assert.match(rules[1], /^ip6 saddr @\w+ return$/);
    assert.deepEqual(table.sets.get(rules[1].match(/@(\w+)/)![1])!.key, ['ipv6_addr']);
    assert.deepEqual(lookedUp(table, rules[1]), ['2001:db8:8000::-2001:db8:ffff:ffff:ffff:ffff:ffff:ffff', 'fd00::3']);
    assert.deepEqual(table.sets.get('self6')!.elements.map((e) => e.text), ['fd00::2 . fd00::2', 'fd00::3 . fd00::3']);
    assert.deepEqual(table.sets.get('self4')!.elements.map((e) => e.text), ['10.0.0.3 . 10.0.0.3']);
    assert.deepEqual(
      [trace(table, 'fd00::3', 'fd00::2'), trace(table, '2001:db8::1', 'fd00::2'), trace(table, '2001:db8:8000::1', 'fd00::2'), trace(table, 'fd00::2', 'fd00::2')].map((t) => t.verdict),
      ['accept', 'drop', 'accept', 'accept'],
    );
  });

  test('a pod with several addresses: every address in the maps, self pairs across them', () => {
    const a = pod('default/a', {}, ['10.0.0.2', '10.1.0.2']);
    const { table } = compiled(worldOf([a], policiesFrom(np('seal', 'podSelector: {}\npolicyTypes: [Ingress, Egress]'))));
    assert.deepEqual(table.sets.get('ingress4')!.elements.map((e) => e.text.split(' : ')[0]), ['10.0.0.2', '10.1.0.2']);
    assert.deepEqual(table.sets.get('self4')!.elements.map((e) => e.text), ['10.0.0.2 . 10.0.0.2', '10.0.0.2 . 10.1.0.2', '10.1.0.2 . 10.0.0.2', '10.1.0.2 . 10.1.0.2']);
    assert.equal(trace(table, '10.0.0.2', '10.1.0.2').verdict, 'accept');
    assert.equal(trace(table, '10.0.0.2', '10.1.0.3').verdict, 'drop');
  });

  test('pods without addresses are left out, as targets and as peers', () => {
    const ghost = pod('default/ghost', { app: 'web' }, []);
    const web = pod('default/web', { app: 'web' }, ['10.0.0.2']);
    const db = pod('default/db', { app: 'db' }, ['10.0.0.3']);
    const world = worldOf([ghost, web, db], policiesFrom(np('p', 'podSelector: {}\ningress: [{from: [{podSelector: {matchLabels: {app: web}}}]}]')));
    const { c, table } = compiled(world);
    assert.deepEqual(c.stats, { pods: 2, isolatedIngress: 2, isolatedEgress: 0, chains: 1, sets: 1, elements: 5 });
    assert.equal(table.elementCount(), 5);
    const [rule] = rulesOf(table, chainFor(table, 'ingress4', '10.0.0.3')!);
    assert.deepEqual(lookedUp(table, rule), ['10.0.0.2']);
  });

  test('stats', () => {
    const pods = [
      pod('default/a', { app: 'web' }, ['10.0.0.2', 'fd00::2']),
      pod('default/b', { app: 'db' }, ['10.0.0.3']),
      pod('prod/c', { app: 'web' }, ['10.1.0.2']),
    ];
    const world = worldOf(
      pods,
      policiesFrom(
        np('web', 'podSelector: {matchLabels: {app: web}}\npolicyTypes: [Ingress, Egress]\ningress: [{from: [{podSelector: {matchLabels: {app: db}}}]}]\negress: [{ports: [{port: 53, protocol: UDP}]}]') +
          np('all', 'podSelector: {}\ningress: []', 'prod'),
      ),
    );
    const { c, table } = compiled(world);
    assert.deepEqual(c.stats, {
      pods: 3,
      isolatedIngress: 2, // default/a (web), prod/c (all)
      isolatedEgress: 1, // default/a
      chains: 3, // a's egress, a's ingress, c's ingress
      sets: 2, // {udp . 53}, {10.0.0.3}
      elements: 2 + 4 + 5, // set elements + self pairs (a: one per family) + map elements (a: 4, c: 1)
    });
    assert.equal(c.stats.chains, table.chains.size - 1);
    assert.equal(c.stats.elements, table.elementCount());
  });
});

// ------------------------------------------------------------------------------------ determinism

describe('determinism', () => {
  const { world } = randomWorld(1);

  test('equal worlds give byte-equal text', () => {
    assert.equal(renderPolicyTable(compilePolicies(world)), renderPolicyTable(compilePolicies(structuredClone(world))));
  });

  test('the order of policies and projects does not matter', () => {
    const base = renderPolicyTable(compilePolicies(world));
    const d = new Dice(1);
    for (let i = 0; i < 10; i++) {
      const shuffled: PolicyWorld = { projects: new Map(d.shuffle([...world.projects])), pods: world.pods, policies: d.shuffle(world.policies) };
      assert.equal(renderPolicyTable(compilePolicies(shuffled)), base);
    }
  });

  test(
    'the order of pods does not matter',
    () => {
      const a = pod('default/a', { app: 'a' }, ['10.0.0.2']);
      const b = pod('default/b', { app: 'b' }, ['10.0.0.3']);
      const policies = policiesFrom(np('a', 'podSelector: {matchLabels: {app: a}}\ningress: []') + np('b', 'podSelector: {matchLabels: {app: b}}\ningress: [{ports: [{port: 1}]}]'));
      assert.equal(renderPolicyTable(compilePolicies(worldOf([b, a], policies))), renderPolicyTable(compilePolicies(worldOf([a, b], policies))));
      const base = renderPolicyTable(compilePolicies(world));
      const d = new Dice(2);
      for (let i = 0; i < 10; i++) {
        assert.equal(renderPolicyTable(compilePolicies({ ...world, pods: d.shuffle(world.pods) })), base);
      }
    },
  );

  test('a reordered world is still the same policy (what the kernel decides)', () => {
    const d = new Dice(3);
    const a = PolicyTable.parse(renderPolicyTable(compilePolicies(world)));
    const b = PolicyTable.parse(renderPolicyTable(compilePolicies({ projects: world.projects, pods: d.shuffle(world.pods), policies: d.shuffle(world.policies) })));
    const addrs = world.pods.flatMap((p) => p.ips).concat('192.0.2.10', '2001:db8::10');
    let n = 0;
    for (const s of addrs)
      for (const t of addrs) {
        if (isIP(s) !== isIP(t)) continue;
        for (const { protocol, port } of PROBES) {
          n++;
          assert.equal(a.trace({ saddr: s, daddr: t, protocol, dport: port }).verdict, b.trace({ saddr: s, daddr: t, protocol, dport: port }).verdict);
        }
      }
    assert.ok(n > 1000);
  });

  test(
    'the text does not depend on the process locale',
    () => {
      const script = `
        import { compilePolicies, renderPolicyTable } from './compile.ts';
        import { policiesFrom, worldOf, pod } from './world.test-helper.ts';
        const np = (n) => 'apiVersion: networking.k8s.io/v1\\nkind: NetworkPolicy\\nmetadata: {name: ' + n + '}\\nspec: {podSelector: {}, ingress: [{ports: [{port: ' + (n === 'aa' ? 1 : 2) + '}]}]}\\n---\\n';
        const w = worldOf([pod('default/a', {}, ['10.0.0.2'])], policiesFrom(np('aa') + np('b')));
        process.stdout.write(renderPolicyTable(compilePolicies(w)));`;
      const dir = fileURLToPath(new URL('.', import.meta.url));
      const run = (locale: string) =>
        execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: dir, env: { ...process.env, LC_ALL: locale, LANG: locale }, encoding: 'utf8' });
      assert.equal(run('da_DK.UTF-8'), run('C.UTF-8'));
    },
  );
});

// ------------------------------------------------------------------------------------ nft's rules

describe('what nft accepts', () => {
  test(
    'overlapping ports in one rule still give a table nft can load',
    () => {
      const web = pod('default/web', { app: 'web' }, ['10.0.0.2'], ['http=8080/tcp']);
      for (const ports of ['[{port: 80}, {port: 80, endPort: 81}]', '[{protocol: TCP}, {port: 443}]', '[{port: 8000, endPort: 9000}, {port: http}]']) {
        const world = worldOf([web], policiesFrom(np('web', `podSelector: {}\ningress: [{ports: ${ports}}]`)));
        assert.doesNotThrow(() => PolicyTable.parse(renderPolicyTable(compilePolicies(world))), ports);
      }
    },
  );

  test('the tracer refuses what nft refuses', () => {
    const head = '  chain forward {\n    type filter hook forward priority filter - 10; policy accept;\n';
    const set = (type: string, els: string, interval = true) => `  set s0 {\n    type ${type}${interval ? '\n    flags interval' : ''}\n    elements = { ${els} }\n  }\n`;
    const ok = set('ipv4_addr', '10.0.0.1, 10.0.0.2-10.0.0.9') + head + '    ip saddr @s0 accept\n  }\n';
    assert.doesNotThrow(() => PolicyTable.parse(ok));
    const bad: Array<[string, RegExp]> = [
      [set('ipv4_addr', '10.0.0.1-10.0.0.5, 10.0.0.3') + head + '  }\n', /overlap/],
      [set('inet_proto . inet_service', 'tcp . 80, tcp . 80-81') + head + '  }\n', /overlap/],
      [set('ipv4_addr', '10.0.0.1, 10.0.0.1') + head + '  }\n', /duplicate/],
      [set('ipv4_addr . inet_proto . inet_service', '10.0.0.1-10.0.0.3 . tcp . 80', false) + head + '  }\n', /flags interval/],
      [set('ipv4_addr', '10.0.0.1') + head + '    ip6 saddr @s0 accept\n  }\n', /datatype mismatch/],
      [head + '    ip saddr @nope accept\n  }\n', /no set or map nope/],
      [head + '    tcp dport 22 accept\n  }\n', /unknown statement/],
      [head + '    jump nowhere\n  }\n', /no chain nowhere/],
      [head + '    counter name "x" drop\n  }\n', /no counter x/],
    ];
    for (const [text, err] of bad) assert.throws(() => PolicyTable.parse(text), (e: unknown) => e instanceof TraceParseError && err.test(e.message), text);
  });
});

// ------------------------------------------------------------------------------------ differential

interface Disagreement {
  seed: number;
  what: string;
}

/** Every connection of a world through the compiled table and through evaluate(); returns counts. */
function differential(seed: number, world: PolicyWorld, externals: string[], text: string, fails: Disagreement[]) {
  const table = PolicyTable.parse(text);
  const counterOf = new Map(world.policies.map((p) => [policyRef(p), dropCounter(p.id)]));
  const parties: Party[] = [...world.pods.flatMap((p) => p.ips.map((ip) => ({ ip, pod: p }))), ...externals.map((ip) => ({ ip }))];
  let connections = 0;
  let allowed = 0;
  for (const from of parties) {
    for (const to of parties) {
      if (isIP(from.ip) !== isIP(to.ip)) continue;
      for (const { protocol, port } of PROBES) {
        connections++;
        const v = evaluate(world, { from, to, protocol, port });
        const t = table.trace({ saddr: from.ip, daddr: to.ip, protocol, dport: port });
        const what = `${from.pod?.name ?? from.ip} (${from.ip}) -> ${to.pod?.name ?? to.ip} (${to.ip}) ${protocol}/${port ?? '-'}`;
        if (v.allowed) allowed++;
        if (v.allowed !== (t.verdict === 'accept')) {
          fails.push({ seed, what: `${what}: evaluate ${v.allowed ? 'allows' : 'denies'}, the table ${t.verdict}s (chains ${t.chains.join(' > ')})` });
          continue;
        }
        // a drop is counted by every policy that isolates the side that dropped it, and only then
        const denying = v.allowed ? undefined : v.egress && !v.egress.allowed ? v.egress : v.ingress;
        const want = denying ? denying.isolatedBy.map((r) => counterOf.get(r)!) : [];
        if (JSON.stringify(t.counters) !== JSON.stringify(want)) fails.push({ seed, what: `${what}: counters ${t.counters.join(',')} instead of ${want.join(',')}` });
      }
    }
  }
  return { connections, allowed, table };
}

describe('differential: the compiled table decides as evaluate() does', () => {
  const WORLDS = 50;

  test(`every connection of ${WORLDS} seeded random worlds, and of the same worlds reordered`, () => {
    const fails: Disagreement[] = [];
    let connections = 0;
    let allowed = 0;
    const features = { ingressChains: 0, egressChains: 0, namedEgressSets: 0, ipv6Chains: 0, holes: 0 };
    for (let seed = 1; seed <= WORLDS; seed++) {
      const { world, externals } = randomWorld(seed);
      const c = compilePolicies(world);
      const r = differential(seed, world, externals, renderPolicyTable(c), fails);
      connections += r.connections;
      allowed += r.allowed;
      // stats agree with the text
      assert.equal(c.stats.chains, r.table.chains.size - 1, `seed ${seed}: chains`);
      assert.equal(c.stats.sets, [...r.table.sets.keys()].filter((n) => /^s\d+$/.test(n)).length, `seed ${seed}: sets`);
      assert.equal(c.stats.pods, world.pods.filter((p) => p.ips.length).length);
      for (const ch of r.table.chains.keys()) {
        if (ch.startsWith('in-')) features.ingressChains++;
        if (ch.startsWith('eg-')) features.egressChains++;
      }
      for (const s of r.table.sets.values()) {
        if (s.key.length === 3) features.namedEgressSets++;
        if (/^s\d+$/.test(s.name) && s.key[0] === 'ipv6_addr') features.ipv6Chains++;
        if (s.key[0] === 'ipv4_addr' && s.key.length === 1 && s.elements.some((e) => e.text.includes('-'))) features.holes++;
      }
      // the same world, pods and policies reordered: other names, the same decisions
      if (seed % 2 === 0) {
        const d = new Dice(seed);
        const shuffled: PolicyWorld = { projects: new Map(d.shuffle([...world.projects])), pods: d.shuffle(world.pods), policies: d.shuffle(world.policies) };
        differential(seed, world, externals, renderPolicyTable(compilePolicies(shuffled)), fails);
      }
    }
    assert.deepEqual(fails.slice(0, 10), [], `${fails.length} disagreements`);
    // the worlds exercise what they should
    assert.ok(connections > 150_000, `${connections} connections`);
    assert.ok(allowed > connections * 0.3 && allowed < connections * 0.9, `${allowed} of ${connections} allowed`);
    for (const [k, v] of Object.entries(features)) assert.ok(v >= 10, `${k}: ${v}`);
  });

  test('the differential notices a wrong table', () => {
    const { world, externals } = randomWorld(23);
    const text = renderPolicyTable(compilePolicies(world));
    const mutations: Array<[string, string]> = [
      ['a rule that admitted drops', text.replace(/ return\n/, ' drop\n')],
      ['a policy accepts instead of dropping', text.replace(/\n {4}drop\n/, '\n    accept\n')],
      ['an egress named port resolves to another number', text.replace(/(\d \. tcp \. )(8080|8081|9090|9091)\b/, '$11')],
      ['an ingress named port resolves to another number', text.replace(/([{,] tcp \. )(8080|8081|9090|9091)\b/, '$11')],
      ['pods do not reach themselves', text.replace(/ {4}ip saddr \. ip daddr @self4 accept\n/, '')],
    ];
    for (const [what, mutated] of mutations) {
      assert.notEqual(mutated, text, `${what}: the mutation applies`);
      const fails: Disagreement[] = [];
      differential(23, world, externals, mutated, fails);
      assert.ok(fails.length > 0, `${what}: the differential notices`);
    }
  });
});
