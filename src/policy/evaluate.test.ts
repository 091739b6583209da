/**
 * The reachability evaluator against Kubernetes NetworkPolicy semantics (networking.k8s.io/v1, the
 * "Network Policies" concept page and the API reference), with answers derived by hand: each test
 * names the rule of Kubernetes it holds the evaluator to. A last suite compares evaluate() with an
 * independent reading of the same rules on seeded random worlds.
 */
import assert from 'node:assert/strict';
import { isIP } from 'node:net';
import { describe, test } from 'node:test';
import ipaddr from 'ipaddr.js';
import { evaluate, explain, policyRef, type Party, type Verdict } from './evaluate.js';
import { NAMESPACE_NAME_LABEL, type LabelSelector, type Pod, type Policy, type PolicyPeer, type PolicyPort, type PolicyWorld } from './types.js';
import { pod, policiesFrom, randomWorld, PROBES, worldOf } from './world.test-helper.js';

// ------------------------------------------------------------------------------------ the world

const web = pod('default/web', { app: 'web', tier: 'front' }, ['10.0.0.2'], ['http=8080/tcp']);
const db = pod('default/db', { app: 'db', tier: 'back' }, ['10.0.0.3'], ['pg=5432/tcp', 'dns=53/udp']);
const client = pod('default/client', { app: 'client' }, ['10.0.0.4', '10.0.1.4']);
const prodWeb = pod('prod/web', { app: 'web' }, ['10.1.0.2', 'fd00:1::2'], ['http=80/tcp', 'diam=3868/sctp']);
const prodApi = pod('prod/api', { app: 'api' }, ['10.1.0.3', 'fd00:1::3']);
const devWeb = pod('dev/web', { app: 'web' }, ['10.2.0.2'], ['http=8081/tcp']);
const devClient = pod('dev/client', { app: 'client' }, ['10.2.0.4']);
const PODS = [web, db, client, prodWeb, prodApi, devWeb, devClient];
const PROJECT_LABELS = { prod: { env: 'prod', team: 'a' }, dev: { env: 'dev' } };
const OUTSIDE = ['192.0.2.10', '203.0.113.5'];

/** The fixture world with these policies (YAML; documents without a namespace go to `default`). */
const w = (yaml = ''): PolicyWorld => worldOf(PODS, yaml.trim() ? policiesFrom(yaml) : [], PROJECT_LABELS);

const party = (x: Pod | string, ip?: string): Party => (typeof x === 'string' ? { ip: x } : { ip: ip ?? x.ips[0], pod: x });
const name = (x: Pod | string): string => (typeof x === 'string' ? x : x.name);
const defaultPort = (protocol: string) => (['tcp', 'udp', 'sctp'].includes(protocol) ? 80 : undefined);

/** a pod (by its first address), an outside address, or a party as it is */
const toParty = (x: Pod | string | Party): Party => (typeof x === 'string' || 'ips' in x ? party(x) : x);

function verdict(world: PolicyWorld, from: Pod | string | Party, to: Pod | string | Party, protocol = 'tcp', port = defaultPort(protocol)): Verdict {
  return evaluate(world, { from: toParty(from), to: toParty(to), protocol, port });
}
const allowed = (world: PolicyWorld, from: Pod | string | Party, to: Pod | string | Party, protocol = 'tcp', port = defaultPort(protocol)) =>
  verdict(world, from, to, protocol, port).allowed;

const EVERYONE: Array<Pod | string> = [...PODS, ...OUTSIDE];
/** Who may open this connection to `to` (pods by their first address, outside addresses), itself left out. */
const sourcesOf = (world: PolicyWorld, to: Pod, protocol = 'tcp', port = defaultPort(protocol)): string[] =>
  EVERYONE.filter((f) => f !== to && allowed(world, f, to, protocol, port)).map(name);
/** Whom `from` may reach. */
const destinationsOf = (world: PolicyWorld, from: Pod, protocol = 'tcp', port = defaultPort(protocol)): string[] =>
  EVERYONE.filter((t) => t !== from && allowed(world, from, t, protocol, port)).map(name);
const everyoneBut = (x: Pod) => EVERYONE.filter((e) => e !== x).map(name);

/** A policy in `default` (or the given namespace) selecting `selector`, with a spec body in YAML. */
const np = (policyName: string, body: string, namespace = 'default') =>
  `---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: ${policyName}\n  namespace: ${namespace}\nspec:\n${body
    .trim()
    .split('\n')
    .map((l) => `  ${l}`)
    .join('\n')}\n`;

// ------------------------------------------------------------------------------------ isolation

describe('isolation: which pods a policy selects', () => {
  test('without policies every pod reaches every address, and no side is isolated', () => {
    const world = w();
    for (const x of PODS) assert.deepEqual(sourcesOf(world, x), everyoneBut(x));
    const v = verdict(world, client, db);
    assert.equal(v.allowed, true);
    assert.deepEqual(v.egress, { direction: 'Egress', pod: 'default/client', isolatedBy: [], allowed: true });
    assert.deepEqual(v.ingress, { direction: 'Ingress', pod: 'default/db', isolatedBy: [], allowed: true });
  });

  test('an empty podSelector selects every pod of its project, and only those', () => {
    const world = w(np('deny', 'podSelector: {}\npolicyTypes: [Ingress]'));
    for (const x of [web, db, client]) {
      assert.deepEqual(sourcesOf(world, x), [], `${x.name} is isolated for ingress`);
      assert.deepEqual(verdict(world, devClient, x).ingress?.isolatedBy, ['default/deny']);
    }
    for (const x of [prodWeb, prodApi, devWeb, devClient]) assert.deepEqual(sourcesOf(world, x), everyoneBut(x), `${x.name} is not`);
    // isolated for ingress only: default's pods still reach out
    assert.deepEqual(destinationsOf(world, web), ['prod/web', 'prod/api', 'dev/web', 'dev/client', ...OUTSIDE]);
  });

  test('a podSelector with matchLabels selects the pods with those labels', () => {
    const world = w(np('db', 'podSelector: {matchLabels: {app: db}}\ningress: []'));
    assert.deepEqual(sourcesOf(world, db), []);
    assert.deepEqual(sourcesOf(world, web), everyoneBut(web));
    assert.deepEqual(sourcesOf(world, client), everyoneBut(client));
  });

  const isolated = (world: PolicyWorld) => [web, db, client].filter((x) => verdict(world, devClient, x).ingress!.isolatedBy.length).map(name);
  test('matchExpressions: In, NotIn (pods without the key too), Exists, DoesNotExist, ANDed with matchLabels', () => {
    const sel = (s: string) => w(np('p', `podSelector:\n  ${s}\ningress: []`));
    assert.deepEqual(isolated(sel('matchExpressions: [{key: app, operator: In, values: [web, client]}]')), ['default/web', 'default/client']);
    assert.deepEqual(isolated(sel('matchExpressions: [{key: tier, operator: NotIn, values: [front]}]')), ['default/db', 'default/client']);
    assert.deepEqual(isolated(sel('matchExpressions: [{key: tier, operator: Exists}]')), ['default/web', 'default/db']);
    assert.deepEqual(isolated(sel('matchExpressions: [{key: tier, operator: DoesNotExist}]')), ['default/client']);
    assert.deepEqual(isolated(sel('{matchLabels: {tier: back}, matchExpressions: [{key: app, operator: In, values: [web]}]}')), []);
    assert.deepEqual(isolated(sel('{matchLabels: {tier: back}, matchExpressions: [{key: app, operator: NotIn, values: [web]}]}')), ['default/db']);
  });

  test('a policy never selects pods of another project, whatever its selectors say', () => {
    const world = w(
      np('all-of-prod', 'podSelector: {}\ningress: []\negress: []\npolicyTypes: [Ingress, Egress]', 'prod') +
        np('web-of-dev', 'podSelector: {matchLabels: {app: web}}\ningress: [{from: [{namespaceSelector: {}}]}]', 'dev'),
    );
    for (const x of [web, db, client]) {
      const v = verdict(world, devClient, x);
      assert.deepEqual([v.ingress?.isolatedBy, v.egress?.isolatedBy], [[], []], x.name);
      // everyone but prod's pods, which may send nowhere
      assert.deepEqual(sourcesOf(world, x), everyoneBut(x).filter((s) => !s.startsWith('prod/')));
    }
    assert.deepEqual(sourcesOf(world, prodApi), []);
    assert.deepEqual(destinationsOf(world, prodApi), []);
    assert.deepEqual(verdict(world, client, devWeb).ingress?.isolatedBy, ['dev/web-of-dev']);
    assert.deepEqual(verdict(world, client, devClient).ingress?.isolatedBy, []);
  });
});

// ------------------------------------------------------------------------------------ peers

describe('peers: who a rule names', () => {
  const ingressTo = (peers: string, selector = '{matchLabels: {app: db}}') =>
    w(np('db', `podSelector: ${selector}\ningress:\n- from:\n${peers.trim().split('\n').map((l) => `  ${l}`).join('\n')}`));

  test('a podSelector alone names pods of the policy’s own project only', () => {
    assert.deepEqual(sourcesOf(ingressTo('- podSelector: {matchLabels: {app: client}}'), db), ['default/client']);
    assert.deepEqual(sourcesOf(ingressTo('- podSelector: {}'), db), ['default/web', 'default/client']);
  });

  test('a namespaceSelector alone names every pod of the matching projects', () => {
    assert.deepEqual(sourcesOf(ingressTo('- namespaceSelector: {matchLabels: {env: prod}}'), db), ['prod/web', 'prod/api']);
    assert.deepEqual(sourcesOf(ingressTo('- namespaceSelector: {matchExpressions: [{key: env, operator: NotIn, values: [prod]}]}'), db), [
      'default/web',
      'default/client',
      'dev/web',
      'dev/client',
    ]);
  });

  test('every project carries kubernetes.io/metadata.name, also one nobody labelled', () => {
    assert.deepEqual(sourcesOf(ingressTo(`- namespaceSelector: {matchLabels: {${NAMESPACE_NAME_LABEL}: dev}}`), db), ['dev/web', 'dev/client']);
    // a project the world does not list (no labels stored) still has its name label
    const ghost = pod('ghost/g', {}, ['10.9.0.2']);
    const world = worldOf([...PODS, ghost], policiesFrom(np('db', `podSelector: {matchLabels: {app: db}}\ningress: [{from: [{namespaceSelector: {matchLabels: {${NAMESPACE_NAME_LABEL}: ghost}}}]}]`)), PROJECT_LABELS);
    world.projects.delete('ghost');
    assert.equal(allowed(world, ghost, db), true);
    assert.equal(allowed(world, devWeb, db), false);
  });

  test('an empty namespaceSelector names every pod of every project, but no other address', () => {
    assert.deepEqual(sourcesOf(ingressTo('- namespaceSelector: {}'), db), ['default/web', 'default/client', 'prod/web', 'prod/api', 'dev/web', 'dev/client']);
  });

  test('podSelector and namespaceSelector in one peer: both must match (AND)', () => {
    const world = ingressTo(`
- namespaceSelector: {matchLabels: {${NAMESPACE_NAME_LABEL}: dev}}
  podSelector: {matchLabels: {app: client}}`);
    assert.deepEqual(sourcesOf(world, db), ['dev/client']);
  });

  test('podSelector and namespaceSelector as two peers: either may match (OR)', () => {
    const world = ingressTo(`
- namespaceSelector: {matchLabels: {${NAMESPACE_NAME_LABEL}: dev}}
- podSelector: {matchLabels: {app: client}}`);
    assert.deepEqual(sourcesOf(world, db), ['default/client', 'dev/web', 'dev/client']);
  });

  test('egress peers name destinations the same way', () => {
    const world = w(np('c', `podSelector: {matchLabels: {app: client}}\npolicyTypes: [Egress]\negress:\n- to:\n  - namespaceSelector: {matchLabels: {team: a}}\n    podSelector: {matchLabels: {app: api}}\n  - podSelector: {matchLabels: {app: db}}`));
    assert.deepEqual(destinationsOf(world, client), ['default/db', 'prod/api']);
    assert.deepEqual(destinationsOf(world, web), everyoneBut(web), 'web is not selected');
  });
});

// ------------------------------------------------------------------------------------ ipBlock

describe('ipBlock', () => {
  test('outside addresses: inside cidr and outside every except', () => {
    const world = w(np('db', 'podSelector: {matchLabels: {app: db}}\ningress:\n- from:\n  - ipBlock: {cidr: 192.0.2.0/24, except: [192.0.2.0/28, 192.0.2.64/26]}'));
    assert.equal(allowed(world, '192.0.2.10', db), false, 'in an except');
    assert.equal(allowed(world, '192.0.2.15', db), false, 'last address of the except');
    assert.equal(allowed(world, '192.0.2.16', db), true, 'first address after it');
    assert.equal(allowed(world, '192.0.2.63', db), true);
    assert.equal(allowed(world, '192.0.2.64', db), false);
    assert.equal(allowed(world, '192.0.2.128', db), true);
    assert.equal(allowed(world, '192.0.2.255', db), true);
    assert.equal(allowed(world, '203.0.113.5', db), false, 'outside the cidr');
    assert.equal(allowed(world, '2001:db8::1', { ip: 'fd00::3' }), true, 'not a pod: no policy applies');
  });

  test('pod addresses are judged by the address the connection uses', () => {
    const world = w(np('db', 'podSelector: {matchLabels: {app: db}}\ningress:\n- from:\n  - ipBlock: {cidr: 10.0.0.0/16, except: [10.0.0.4/32]}'));
    assert.equal(allowed(world, web, db), true);
    assert.equal(allowed(world, party(client, '10.0.0.4'), db), false, 'the excepted address');
    assert.equal(allowed(world, party(client, '10.0.1.4'), db), true, 'the same pod from its other address');
    assert.equal(allowed(world, prodWeb, db), false);
    assert.equal(allowed(world, '10.0.0.99', db), true, 'an address in the block that is no pod');
  });

  test('an IPv6 block admits IPv6 addresses only', () => {
    const world = w(np('api', 'podSelector: {matchLabels: {app: api}}\ningress:\n- from:\n  - ipBlock: {cidr: "fd00:1::/64", except: ["fd00:1::4/126"]}', 'prod'));
    assert.equal(allowed(world, party(prodWeb, 'fd00:1::2'), party(prodApi, 'fd00:1::3')), true);
    assert.equal(allowed(world, party(prodWeb, '10.1.0.2'), party(prodApi, '10.1.0.3')), false);
    assert.equal(allowed(world, 'fd00:1::5', party(prodApi, 'fd00:1::3')), false, 'in the except');
    assert.equal(allowed(world, 'fd00:1::8', party(prodApi, 'fd00:1::3')), true);
  });

  test('an except hole is filled by another peer that names the pod', () => {
    const world = w(np('db', 'podSelector: {matchLabels: {app: db}}\ningress:\n- from:\n  - ipBlock: {cidr: 10.0.0.0/16, except: [10.0.0.4/32]}\n  - podSelector: {matchLabels: {app: client}}'));
    assert.equal(allowed(world, party(client, '10.0.0.4'), db), true);
  });

  test('egress to outside addresses and to pods', () => {
    const world = w(np('c', 'podSelector: {matchLabels: {app: client}}\npolicyTypes: [Egress]\negress:\n- to:\n  - ipBlock: {cidr: 0.0.0.0/0, except: [10.0.0.0/8]}\n  - ipBlock: {cidr: 10.1.0.2/32}'));
    assert.deepEqual(destinationsOf(world, client), ['prod/web', ...OUTSIDE]);
    const api = w(np('api', 'podSelector: {matchLabels: {app: api}}\npolicyTypes: [Egress]\negress:\n- to:\n  - ipBlock: {cidr: 10.1.0.2/32}', 'prod'));
    assert.equal(allowed(api, party(prodApi, '10.1.0.3'), party(prodWeb, '10.1.0.2')), true);
    assert.equal(allowed(api, party(prodApi, 'fd00:1::3'), party(prodWeb, 'fd00:1::2')), false, 'an IPv4 block does not admit the IPv6 address of the same pod');
  });
});

// ------------------------------------------------------------------------------------ ports

describe('ports', () => {
  const dbIngress = (ports: string) => w(np('db', `podSelector: {matchLabels: {app: db}}\ningress:\n- ports:\n${ports.trim().split('\n').map((l) => `  ${l}`).join('\n')}`));

  test('a numeric port: that port of that protocol (TCP when none is given)', () => {
    const world = dbIngress('- port: 5432');
    assert.equal(allowed(world, client, db, 'tcp', 5432), true);
    assert.equal(allowed(world, client, db, 'tcp', 5433), false);
    assert.equal(allowed(world, client, db, 'udp', 5432), false);
    assert.equal(allowed(world, client, db, 'sctp', 5432), false);
    assert.equal(allowed(world, client, db, 'icmp'), false);
  });

  test('port..endPort, both ends included', () => {
    const world = dbIngress('- protocol: UDP\n  port: 32000\n  endPort: 32010');
    assert.deepEqual(
      [31999, 32000, 32005, 32010, 32011].map((p) => allowed(world, client, db, 'udp', p)),
      [false, true, true, true, false],
    );
    assert.equal(allowed(world, client, db, 'tcp', 32000), false);
  });

  test('a protocol without a port: every port of that protocol', () => {
    const world = dbIngress('- protocol: SCTP');
    assert.equal(allowed(world, client, db, 'sctp', 1), true);
    assert.equal(allowed(world, client, db, 'sctp', 65535), true);
    assert.equal(allowed(world, client, db, 'tcp', 1), false);
    assert.equal(allowed(world, client, db, 'icmp'), false);
  });

  test('the ports of one rule add up', () => {
    const world = dbIngress('- port: 5432\n- protocol: UDP\n  port: 53\n- protocol: SCTP\n  port: 9');
    assert.deepEqual(
      [['tcp', 5432], ['udp', 53], ['sctp', 9], ['tcp', 53], ['udp', 5432]].map(([pr, p]) => allowed(world, client, db, pr as string, p as number)),
      [true, true, true, false, false],
    );
  });

  test('ingress: a named port resolves on the selected pod, whatever the source declares', () => {
    const world = w(np('all', 'podSelector: {}\ningress:\n- ports:\n  - port: http', 'prod'));
    assert.equal(allowed(world, client, prodWeb, 'tcp', 80), true, 'prod/web: http=80');
    assert.equal(allowed(world, web, prodWeb, 'tcp', 8080), false, 'the source’s http=8080 does not count');
    // prod/api declares no http: the named port matches nothing there
    assert.deepEqual([80, 8080, 8081].map((p) => allowed(world, client, prodApi, 'tcp', p)), [false, false, false]);
  });

  test('a named port must match its protocol too', () => {
    const udp = w(np('all', 'podSelector: {}\ningress:\n- ports:\n  - protocol: UDP\n    port: http', 'prod'));
    assert.equal(allowed(udp, client, prodWeb, 'udp', 80), false);
    assert.equal(allowed(udp, client, prodWeb, 'tcp', 80), false);
    const sctp = w(np('all', 'podSelector: {}\ningress:\n- ports:\n  - protocol: SCTP\n    port: diam', 'prod'));
    assert.equal(allowed(sctp, client, prodWeb, 'sctp', 3868), true);
    assert.equal(allowed(sctp, client, prodWeb, 'tcp', 3868), false);
    const tcpDns = dbIngress('- protocol: TCP\n  port: dns');
    assert.equal(allowed(tcpDns, client, db, 'tcp', 53), false, 'db declares dns as UDP only');
    assert.equal(allowed(tcpDns, client, db, 'udp', 53), false);
  });

  test('egress: a named port resolves on the destination pod (the peer), not the selected one', () => {
    const world = w(np('c', 'podSelector: {matchLabels: {app: client}}\npolicyTypes: [Egress]\negress:\n- ports:\n  - port: http'));
    // client declares no named ports at all
    assert.deepEqual([80, 8080, 8081].map((p) => allowed(world, client, web, 'tcp', p)), [false, true, false]);
    assert.deepEqual([80, 8080, 8081].map((p) => allowed(world, client, prodWeb, 'tcp', p)), [true, false, false]);
    assert.deepEqual([80, 8080, 8081].map((p) => allowed(world, client, devWeb, 'tcp', p)), [false, false, true]);
    assert.deepEqual([80, 5432, 8080].map((p) => allowed(world, client, db, 'tcp', p)), [false, false, false], 'db has no http');
    assert.deepEqual([80, 8080].map((p) => allowed(world, client, '192.0.2.10', 'tcp', p)), [false, false], 'an outside address has no named ports');
  });

  test('ICMP and other protocols without ports: only rules without ports admit them', () => {
    const withPorts = w(np('db', 'podSelector: {matchLabels: {app: db}}\ningress:\n- from: [{podSelector: {matchLabels: {app: client}}}]\n  ports: [{protocol: TCP}, {protocol: UDP}, {protocol: SCTP}]'));
    assert.equal(allowed(withPorts, client, db, 'icmp'), false);
    assert.equal(allowed(withPorts, client, db, 'gre'), false);
    assert.equal(allowed(withPorts, client, db, 'tcp', 1), true);
    const without = w(np('db', 'podSelector: {matchLabels: {app: db}}\ningress:\n- from: [{podSelector: {matchLabels: {app: client}}}]'));
    assert.equal(allowed(without, client, db, 'icmp'), true);
    assert.equal(allowed(without, client, db, 'gre'), true);
    assert.equal(allowed(without, web, db, 'icmp'), false);
  });
});

// ------------------------------------------------------------------------------------ policyTypes

describe('policyTypes', () => {
  test('by default Ingress only, when the spec has no egress rules', () => {
    const [p] = policiesFrom(np('db', 'podSelector: {matchLabels: {app: db}}\ningress: []\negress: []'));
    assert.deepEqual(p.spec.policyTypes, ['Ingress']);
    const world = w(np('db', 'podSelector: {matchLabels: {app: db}}\ningress: []\negress: []'));
    assert.deepEqual(sourcesOf(world, db), []);
    assert.deepEqual(destinationsOf(world, db), everyoneBut(db), '`egress: []` does not make Egress a default type');
  });

  test('Egress is added by default when there are egress rules, and then ingress is isolated too', () => {
    const yaml = np('c', 'podSelector: {matchLabels: {app: client}}\negress:\n- to: [{podSelector: {matchLabels: {app: db}}}]');
    assert.deepEqual(policiesFrom(yaml)[0].spec.policyTypes, ['Ingress', 'Egress']);
    const world = w(yaml);
    assert.deepEqual(destinationsOf(world, client), ['default/db']);
    assert.deepEqual(sourcesOf(world, client), [], 'Ingress is a type and the policy has no ingress rule: nothing comes in');
  });

  test('policyTypes [Egress] leaves ingress open, even with ingress rules written', () => {
    const world = w(np('c', 'podSelector: {matchLabels: {app: client}}\npolicyTypes: [Egress]\ningress: []\negress:\n- to: [{podSelector: {matchLabels: {app: db}}}]'));
    assert.deepEqual(sourcesOf(world, client), everyoneBut(client));
    assert.deepEqual(destinationsOf(world, client), ['default/db']);
    assert.deepEqual(verdict(world, web, client).ingress?.isolatedBy, []);
  });

  test('policyTypes [Ingress] ignores egress rules', () => {
    const world = w(np('c', 'podSelector: {matchLabels: {app: client}}\npolicyTypes: [Ingress]\ningress: [{}]\negress: []'));
    assert.deepEqual(destinationsOf(world, client), everyoneBut(client));
    assert.deepEqual(sourcesOf(world, client), everyoneBut(client));
    assert.deepEqual(verdict(world, client, web).egress?.isolatedBy, []);
  });

  test('policyTypes [Ingress, Egress] without rules isolates both ways', () => {
    const world = w(np('c', 'podSelector: {matchLabels: {app: client}}\npolicyTypes: [Ingress, Egress]'));
    assert.deepEqual(sourcesOf(world, client), []);
    assert.deepEqual(destinationsOf(world, client), []);
    assert.deepEqual(destinationsOf(world, web), everyoneBut(web).filter((x) => x !== 'default/client'));
  });
});

// ------------------------------------------------------------------------------------ rules

describe('rules', () => {
  test('`ingress: []` denies everything: pods, outside addresses, every protocol', () => {
    const world = w(np('db', 'podSelector: {matchLabels: {app: db}}\npolicyTypes: [Ingress]\ningress: []'));
    for (const pr of ['tcp', 'udp', 'sctp', 'icmp']) assert.deepEqual(sourcesOf(world, db, pr), [], pr);
  });

  test('`ingress: [{}]` admits everything: pods of any project, outside addresses, every protocol', () => {
    const world = w(np('deny', 'podSelector: {}\ningress: []') + np('open', 'podSelector: {matchLabels: {app: db}}\ningress: [{}]'));
    for (const pr of ['tcp', 'udp', 'sctp', 'icmp']) assert.deepEqual(sourcesOf(world, db, pr), everyoneBut(db), pr);
    assert.deepEqual(sourcesOf(world, web), []);
  });

  test('`egress: [{}]` admits every destination', () => {
    const world = w(np('c', 'podSelector: {}\npolicyTypes: [Egress]\negress: [{}]'));
    assert.deepEqual(destinationsOf(world, client, 'udp', 9), everyoneBut(client));
  });

  test('`from: []` with ports: every source, on those ports', () => {
    const world = w(np('db', 'podSelector: {matchLabels: {app: db}}\ningress:\n- from: []\n  ports: [{port: 5432}]'));
    assert.deepEqual(sourcesOf(world, db, 'tcp', 5432), everyoneBut(db));
    assert.deepEqual(sourcesOf(world, db, 'tcp', 80), []);
  });

  test('within a rule peers AND ports; between rules OR', () => {
    const world = w(np('db', `podSelector: {matchLabels: {app: db}}
ingress:
- from: [{podSelector: {matchLabels: {app: web}}}]
  ports: [{port: 80}]
- from: [{podSelector: {matchLabels: {app: client}}}]
  ports: [{port: 5432}]`));
    assert.deepEqual(
      [allowed(world, web, db, 'tcp', 80), allowed(world, web, db, 'tcp', 5432), allowed(world, client, db, 'tcp', 5432), allowed(world, client, db, 'tcp', 80)],
      [true, false, true, false],
    );
  });

  test('several policies add up, and their order does not matter', () => {
    const yaml =
      np('from-client', 'podSelector: {matchLabels: {app: db}}\ningress: [{from: [{podSelector: {matchLabels: {app: client}}}], ports: [{port: 5432}]}]') +
      np('from-web', 'podSelector: {matchLabels: {tier: back}}\ningress: [{from: [{podSelector: {matchLabels: {app: web}}}]}]');
    const world = w(yaml);
    const reversed = { ...world, policies: [...world.policies].reverse() };
    for (const x of [world, reversed]) {
      assert.deepEqual(sourcesOf(x, db, 'tcp', 5432), ['default/web', 'default/client']);
      assert.deepEqual(sourcesOf(x, db, 'tcp', 80), ['default/web']);
      assert.deepEqual(sourcesOf(x, db, 'icmp'), ['default/web']);
    }
    assert.deepEqual(verdict(reversed, web, db, 'tcp', 5432), verdict(world, web, db, 'tcp', 5432));
  });
});

// ------------------------------------------------------------------------------------ both ends

describe('a connection between two pods', () => {
  const world = w(
    np('client-out', 'podSelector: {matchLabels: {app: client}}\npolicyTypes: [Egress]\negress: [{to: [{podSelector: {matchLabels: {app: db}}}], ports: [{port: 5432}]}]') +
      np('db-in', 'podSelector: {matchLabels: {app: db}}\ningress: [{from: [{podSelector: {matchLabels: {app: web}}}]}]'),
  );

  test('needs the source’s egress and the destination’s ingress', () => {
    const v = verdict(world, client, db, 'tcp', 5432);
    assert.equal(v.allowed, false);
    assert.equal(v.egress?.allowed, true);
    assert.deepEqual(v.egress?.allowedBy, { policy: 'default/client-out', rule: 'egress[0]' });
    assert.equal(v.ingress?.allowed, false);
    assert.equal(v.ingress?.allowedBy, undefined);
    assert.deepEqual(explain(v), ['default/db is isolated for ingress by policy default/db-in, and no rule of it admits this connection']);

    const out = verdict(world, client, web, 'tcp', 80);
    assert.deepEqual([out.allowed, out.egress?.allowed, out.ingress?.allowed], [false, false, true]);
    assert.deepEqual(explain(out), ['default/client is isolated for egress by policy default/client-out, and no rule of it admits this connection']);

    assert.equal(allowed(world, web, db, 'tcp', 5432), true, 'web is not isolated for egress');
  });

  test('when neither side admits, both are named, egress first', () => {
    assert.deepEqual(explain(verdict(world, client, db, 'tcp', 80)), [
      'default/client is isolated for egress by policy default/client-out, and no rule of it admits this connection',
      'default/db is isolated for ingress by policy default/db-in, and no rule of it admits this connection',
    ]);
  });

  test('an outside party has no side', () => {
    const inbound = verdict(world, '192.0.2.10', db, 'tcp', 5432);
    assert.deepEqual([inbound.allowed, inbound.egress, inbound.ingress?.allowed], [false, undefined, false]);
    const outbound = verdict(world, client, '192.0.2.10', 'tcp', 5432);
    assert.deepEqual([outbound.allowed, outbound.egress?.allowed, outbound.ingress], [false, false, undefined]);
    const neither = verdict(world, '192.0.2.10', '203.0.113.5');
    assert.deepEqual(neither, { allowed: true, egress: undefined, ingress: undefined });
    assert.deepEqual(explain(neither), ['neither end is a container: network policy does not apply']);
  });

  test('a pod always reaches itself, on any of its addresses, however isolated', () => {
    const sealed = w(np('seal', 'podSelector: {}\npolicyTypes: [Ingress, Egress]'));
    for (const pr of ['tcp', 'udp', 'icmp']) {
      const v = verdict(sealed, party(client, '10.0.0.4'), party(client, '10.0.1.4'), pr);
      assert.deepEqual(v, { allowed: true, self: true });
      assert.deepEqual(explain(v), ['a container always reaches itself']);
    }
    assert.equal(allowed(sealed, client, client), true);
    // a twin with the same labels is another pod
    const twin = pod('default/client2', { ...client.labels }, ['10.0.0.5']);
    const world2 = worldOf([...PODS, twin], sealed.policies, PROJECT_LABELS);
    assert.equal(allowed(world2, client, twin), false);
  });
});

// ------------------------------------------------------------------------------------ explain

describe('verdicts name the policy and rule that decided', () => {
  const world = w(
    np('b-web', `podSelector: {matchLabels: {app: web}}
ingress:
- from: [{podSelector: {matchLabels: {app: client}}}]
  ports: [{port: 80}]
- from: [{podSelector: {matchLabels: {app: client}}}]`) +
      np('a-web', `podSelector: {matchLabels: {tier: front}}
ingress:
- from: [{namespaceSelector: {matchLabels: {env: dev}}}]
- from: [{podSelector: {matchLabels: {app: client}}}]
  ports: [{port: 80}]
- from: [{podSelector: {}}]
  ports: [{port: 80}]`) +
      np('c-unrelated', 'podSelector: {matchLabels: {app: db}}\ningress: []'),
  );

  test('isolatedBy lists every selecting policy by project/name; allowedBy is the first admitting rule in that order', () => {
    const v = verdict(world, client, web, 'tcp', 80);
    assert.deepEqual(v.ingress, {
      direction: 'Ingress',
      pod: 'default/web',
      isolatedBy: ['default/a-web', 'default/b-web'],
      allowed: true,
      allowedBy: { policy: 'default/a-web', rule: 'ingress[1]' },
    });
    assert.deepEqual(explain(v), ['default/client is not isolated for egress', 'ingress of default/web allowed by policy default/a-web rule ingress[1]']);
  });

  test('a later policy decides when the first admits nothing', () => {
    assert.deepEqual(verdict(world, client, web, 'tcp', 81).ingress?.allowedBy, { policy: 'default/b-web', rule: 'ingress[1]' });
    assert.deepEqual(verdict(world, devClient, web, 'tcp', 81).ingress?.allowedBy, { policy: 'default/a-web', rule: 'ingress[0]' });
    assert.deepEqual(verdict(world, db, web, 'tcp', 80).ingress?.allowedBy, { policy: 'default/a-web', rule: 'ingress[2]' });
  });

  test('a denial by several policies names them all', () => {
    const v = verdict(world, db, web, 'tcp', 81);
    assert.equal(v.allowed, false);
    assert.deepEqual(explain(v), ['default/web is isolated for ingress by policies default/a-web, default/b-web, and no rule of them admits this connection']);
  });

  test('egress rules are named egress[i]', () => {
    const e = w(np('out', 'podSelector: {}\npolicyTypes: [Egress]\negress:\n- to: [{ipBlock: {cidr: 192.0.2.0/24}}]\n- ports: [{port: 53, protocol: UDP}]'));
    assert.deepEqual(verdict(e, db, '203.0.113.5', 'udp', 53).egress?.allowedBy, { policy: 'default/out', rule: 'egress[1]' });
    assert.deepEqual(verdict(e, db, '192.0.2.10', 'udp', 53).egress?.allowedBy, { policy: 'default/out', rule: 'egress[0]' });
    assert.deepEqual(explain(verdict(e, db, '192.0.2.10', 'udp', 53)), ['egress of default/db allowed by policy default/out rule egress[0]']);
  });

  test('policyRef is project/name', () => {
    assert.equal(policyRef({ project: 'prod', name: 'a.b-c' }), 'prod/a.b-c');
  });
});

// ------------------------------------------------------------------------------------ random worlds

/**
 * An independent reading of the Kubernetes rules, written from the API reference without select.ts:
 * used only to cross-check evaluate() on random worlds.
 */
function kubernetesAllows(world: PolicyWorld, from: Party, to: Party, protocol: string, port?: number): boolean {
  if (from.pod && to.pod && from.pod.id === to.pod.id) return true;
  const selects = (sel: LabelSelector, labels: Record<string, string>) =>
    Object.entries(sel.matchLabels).every(([k, v]) => labels[k] === v) &&
    sel.matchExpressions.every((e) => {
      const v = Object.prototype.hasOwnProperty.call(labels, e.key) ? labels[e.key] : undefined;
      if (e.operator === 'Exists') return v !== undefined;
      if (e.operator === 'DoesNotExist') return v === undefined;
      if (e.operator === 'In') return v !== undefined && e.values.includes(v);
      return v === undefined || !e.values.includes(v);
    });
  const inCidr = (cidr: string, ip: string) => {
    const a = ipaddr.parse(ip);
    const [net, len] = ipaddr.parseCIDR(cidr);
    return a.kind() === net.kind() && a.match(net, len);
  };
  const names = (p: Policy, peer: PolicyPeer, other: Party) => {
    if (peer.ipBlock) return inCidr(peer.ipBlock.cidr, other.ip) && !peer.ipBlock.except.some((e) => inCidr(e, other.ip));
    if (!other.pod) return false;
    const ns = world.projects.get(other.pod.project) ?? { [NAMESPACE_NAME_LABEL]: other.pod.project };
    const nsOk = peer.namespaceSelector ? selects(peer.namespaceSelector, ns) : other.pod.project === p.project;
    return nsOk && (!peer.podSelector || selects(peer.podSelector, other.pod.labels));
  };
  const portOk = (ports: PolicyPort[]) =>
    !ports.length ||
    ports.some((pp) => {
      const proto = pp.protocol.toLowerCase();
      if (proto !== protocol) return false;
      if (pp.port === undefined) return true;
      if (port === undefined) return false;
      if (typeof pp.port === 'number') return pp.port <= port && port <= (pp.endPort ?? pp.port);
      return !!to.pod?.namedPorts.some((n) => n.name === pp.port && n.protocol === proto && n.port === port);
    });
  const side = (subject: Party, other: Party, dir: 'Ingress' | 'Egress') => {
    const s = subject.pod;
    if (!s) return true;
    const pols = world.policies.filter((p) => p.project === s.project && p.spec.policyTypes.includes(dir) && selects(p.spec.podSelector, s.labels));
    if (!pols.length) return true;
    return pols.some((p) => {
      const rules = dir === 'Ingress' ? p.spec.ingress.map((r) => ({ peers: r.from, ports: r.ports })) : p.spec.egress.map((r) => ({ peers: r.to, ports: r.ports }));
      return rules.some((r) => (!r.peers.length || r.peers.some((x) => names(p, x, other))) && portOk(r.ports));
    });
  };
  return side(from, to, 'Egress') && side(to, from, 'Ingress');
}

describe('random worlds', () => {
  test('evaluate() agrees with an independent reading of the Kubernetes rules (60 seeded worlds)', () => {
    let connections = 0;
    let allowedCount = 0;
    for (let seed = 1000; seed < 1060; seed++) {
      const { world, externals } = randomWorld(seed);
      const parties: Party[] = [...world.pods.flatMap((p) => p.ips.map((ip) => ({ ip, pod: p }))), ...externals.map((ip) => ({ ip }))];
      const refs = [...world.policies].map(policyRef).sort();
      for (const from of parties) {
        for (const to of parties) {
          if (isIP(from.ip) !== isIP(to.ip)) continue;
          for (const { protocol, port } of PROBES) {
            const v = evaluate(world, { from, to, protocol, port });
            const want = kubernetesAllows(world, from, to, protocol, port);
            connections++;
            if (want) allowedCount++;
            if (v.allowed !== want) {
              assert.fail(`seed ${seed}: ${from.pod?.name ?? from.ip} (${from.ip}) -> ${to.pod?.name ?? to.ip} (${to.ip}) ${protocol}/${port}: evaluate says ${v.allowed}, Kubernetes ${want}`);
            }
            // the sides' reasons are consistent with the verdict
            for (const s of [v.egress, v.ingress]) {
              if (!s) continue;
              assert.deepEqual(s.isolatedBy, [...s.isolatedBy].sort());
              assert.ok(s.isolatedBy.every((r) => refs.includes(r)));
              assert.equal(s.allowed, !s.isolatedBy.length || s.allowedBy !== undefined);
              if (s.allowedBy) assert.ok(s.isolatedBy.includes(s.allowedBy.policy));
            }
          }
        }
      }
    }
    // the worlds are not trivially open or closed
    assert.ok(connections > 100_000, `${connections} connections`);
    assert.ok(allowedCount > connections * 0.3 && allowedCount < connections * 0.9, `${allowedCount} of ${connections} allowed`);
  });
});
