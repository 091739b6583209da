import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  PolicyParseError,
  labelKeyErrors,
  labelValueErrors,
  normalizePolicy,
  parsePolicies,
  portNameErrors,
  validLabelKey,
  validLabelValue,
  validateLabelSelector,
  type PolicyDocument,
} from './parse.js';
import type { LabelSelector, NetworkPolicySpec } from './types.js';

const all: LabelSelector = { matchLabels: {}, matchExpressions: [] };
const labels = (matchLabels: Record<string, string>): LabelSelector => ({ matchLabels, matchExpressions: [] });

/** The issues parsePolicies reports for `text`; fails the test if it does not throw. */
function issuesOf(text: string, source?: string): string[] {
  try {
    parsePolicies(text, source);
  } catch (err) {
    assert.ok(err instanceof PolicyParseError, `expected PolicyParseError, got ${String(err)}`);
    assert.equal(err.message, err.issues.join('\n'));
    return err.issues;
  }
  assert.fail('expected a PolicyParseError');
}

/** One policy around a spec written as YAML (indented under `spec:`). */
const policy = (spec: string, name = 'p'): string =>
  `apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: ${name}\nspec:\n${spec
    .trim()
    .split('\n')
    .map((l) => `  ${l}`)
    .join('\n')}\n`;

const specOf = (text: string): NetworkPolicySpec => {
  const docs = parsePolicies(text);
  assert.equal(docs.length, 1);
  return docs[0].spec;
};

/** Asserts the one issue of a single-policy file, after its "document 1 (...)" head. */
function rejects(spec: string, ...expected: string[]): void {
  const issues = issuesOf(policy(spec));
  assert.deepEqual(
    issues,
    expected.map((e) => `document 1 (NetworkPolicy "p"): ${e}`),
  );
}

describe('the Kubernetes documentation examples', () => {
  test('test-network-policy: ipBlock with except, namespaceSelector, podSelector, ports', () => {
    const text = `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: test-network-policy
  namespace: default
spec:
  podSelector:
    matchLabels:
      role: db
  policyTypes:
  - Ingress
  - Egress
  ingress:
  - from:
    - ipBlock:
        cidr: 172.17.0.0/16
        except:
        - 172.17.1.0/24
    - namespaceSelector:
        matchLabels:
          project: myproject
    - podSelector:
        matchLabels:
          role: frontend
    ports:
    - protocol: TCP
      port: 6379
  egress:
  - to:
    - ipBlock:
        cidr: 10.0.0.0/24
    ports:
    - protocol: TCP
      port: 5978
`;
    const expected: PolicyDocument = {
      name: 'test-network-policy',
      namespace: 'default',
      labels: {},
      annotations: {},
      doc: 1,
      spec: {
        podSelector: labels({ role: 'db' }),
        policyTypes: ['Ingress', 'Egress'],
        ingress: [
          {
            from: [
              { ipBlock: { cidr: '172.17.0.0/16', except: ['172.17.1.0/24'] } },
              { namespaceSelector: labels({ project: 'myproject' }) },
              { podSelector: labels({ role: 'frontend' }) },
            ],
            ports: [{ protocol: 'TCP', port: 6379 }],
          },
        ],
        egress: [{ to: [{ ipBlock: { cidr: '10.0.0.0/24', except: [] } }], ports: [{ protocol: 'TCP', port: 5978 }] }],
      },
    };
    assert.deepEqual(parsePolicies(text), [expected]);
  });

  test('namespaceSelector and podSelector in one peer (AND) stay one peer', () => {
    const spec = specOf(
      policy(`
podSelector: {}
ingress:
- from:
  - namespaceSelector:
      matchLabels:
        user: alice
    podSelector:
      matchLabels:
        role: client
`),
    );
    assert.deepEqual(spec.ingress[0].from, [{ namespaceSelector: labels({ user: 'alice' }), podSelector: labels({ role: 'client' }) }]);
  });

  test('default-deny-ingress', () => {
    const spec = specOf(policy('podSelector: {}\npolicyTypes:\n- Ingress'));
    assert.deepEqual(spec, { podSelector: all, policyTypes: ['Ingress'], ingress: [], egress: [] });
  });

  test('allow-all-ingress', () => {
    const spec = specOf(policy('podSelector: {}\ningress:\n- {}'));
    assert.deepEqual(spec, { podSelector: all, policyTypes: ['Ingress'], ingress: [{ from: [], ports: [] }], egress: [] });
  });

  test('default-deny-egress', () => {
    const spec = specOf(policy('podSelector: {}\npolicyTypes:\n- Egress'));
    assert.deepEqual(spec, { podSelector: all, policyTypes: ['Egress'], ingress: [], egress: [] });
  });

  test('allow-all-egress', () => {
    const spec = specOf(policy('podSelector: {}\negress:\n- {}\npolicyTypes:\n- Egress'));
    assert.deepEqual(spec, { podSelector: all, policyTypes: ['Egress'], ingress: [], egress: [{ to: [], ports: [] }] });
  });

  test('default-deny-all', () => {
    const spec = specOf(policy('podSelector: {}\npolicyTypes:\n- Ingress\n- Egress'));
    assert.deepEqual(spec.policyTypes, ['Ingress', 'Egress']);
    assert.deepEqual(spec.ingress, []);
    assert.deepEqual(spec.egress, []);
  });

  test('multi-port-egress: endPort', () => {
    const spec = specOf(`
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: multi-port-egress
  namespace: default
spec:
  podSelector:
    matchLabels:
      role: db
  policyTypes:
    - Egress
  egress:
    - to:
        - ipBlock:
            cidr: 10.0.0.0/24
      ports:
        - protocol: TCP
          port: 32000
          endPort: 32768
`);
    assert.deepEqual(spec.egress, [
      { to: [{ ipBlock: { cidr: '10.0.0.0/24', except: [] } }], ports: [{ protocol: 'TCP', port: 32000, endPort: 32768 }] },
    ]);
    assert.deepEqual(spec.policyTypes, ['Egress']);
  });
});

describe('defaults (SetDefaults_NetworkPolicy, SetDefaults_NetworkPolicyPort)', () => {
  test('protocol defaults to TCP; a port without a number is every port of the protocol', () => {
    const spec = specOf(policy('podSelector: {}\ningress:\n- ports:\n  - port: 53\n  - protocol: UDP'));
    assert.deepEqual(spec.ingress[0].ports, [{ protocol: 'TCP', port: 53 }, { protocol: 'UDP' }]);
  });

  test('policyTypes: Ingress, plus Egress only when egress rules are given', () => {
    assert.deepEqual(specOf(policy('podSelector: {}\negress:\n- to: []')).policyTypes, ['Ingress', 'Egress']);
    // len(spec.Egress) == 0: an empty egress list does not add Egress
    assert.deepEqual(specOf(policy('podSelector: {}\negress: []')).policyTypes, ['Ingress']);
    assert.deepEqual(specOf(policy('podSelector: {}\negress:')).policyTypes, ['Ingress']);
    // an explicitly empty policyTypes is defaulted too
    assert.deepEqual(specOf(policy('podSelector: {}\npolicyTypes: []\negress:\n- {}')).policyTypes, ['Ingress', 'Egress']);
    // given types are kept (as a set, Ingress first), never defaulted
    assert.deepEqual(specOf(policy('podSelector: {}\npolicyTypes: [Egress, Ingress]')).policyTypes, ['Ingress', 'Egress']);
    assert.deepEqual(specOf(policy('podSelector: {}\npolicyTypes: [Egress, Egress]')).policyTypes, ['Egress']);
  });

  test('an absent podSelector or spec is the empty selector (optional in networking/v1)', () => {
    assert.deepEqual(specOf(policy('ingress:\n- {}')).podSelector, all);
    const docs = parsePolicies('apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: deny\n');
    assert.deepEqual(docs[0].spec, { podSelector: all, policyTypes: ['Ingress'], ingress: [], egress: [] });
  });

  test('null lists and selectors read as absent, as Go decodes them', () => {
    const spec = specOf(policy('podSelector:\n  matchLabels:\ningress:\n- from:\n  ports:\negress:'));
    assert.deepEqual(spec, { podSelector: all, policyTypes: ['Ingress'], ingress: [{ from: [], ports: [] }], egress: [] });
  });

  test('matchExpressions are kept; a selector has both fields', () => {
    const spec = specOf(
      policy(`
podSelector:
  matchLabels: {app: web}
  matchExpressions:
  - {key: tier, operator: In, values: [a, b]}
  - {key: env, operator: NotIn, values: [prod]}
  - {key: example.com/canary, operator: Exists}
  - {key: legacy, operator: DoesNotExist, values: []}
`),
    );
    assert.deepEqual(spec.podSelector, {
      matchLabels: { app: 'web' },
      matchExpressions: [
        { key: 'tier', operator: 'In', values: ['a', 'b'] },
        { key: 'env', operator: 'NotIn', values: ['prod'] },
        { key: 'example.com/canary', operator: 'Exists', values: [] },
        { key: 'legacy', operator: 'DoesNotExist', values: [] },
      ],
    });
  });

  test('CIDRs are written in canonical form', () => {
    const spec = specOf(policy('podSelector: {}\negress:\n- to:\n  - ipBlock:\n      cidr: 2001:DB8:0:0::/32\n      except: ["2001:db8:0:0:1::/80"]'));
    assert.deepEqual(spec.egress[0].to[0].ipBlock, { cidr: '2001:db8::/32', except: ['2001:db8:0:0:1::/80'] });
  });
});

describe('valid edge cases', () => {
  test('port 65535, port 1, endPort == port, endPort 65535, named ports, UDP and SCTP', () => {
    const spec = specOf(
      policy(`
podSelector: {}
ingress:
- ports:
  - port: 65535
  - port: 1
  - {port: 8080, endPort: 8080}
  - {port: 1, endPort: 65535}
  - {protocol: UDP, port: dns}
  - {protocol: SCTP, port: a-b-1}
  - port: abcdefghijklmno
`),
    );
    assert.deepEqual(spec.ingress[0].ports, [
      { protocol: 'TCP', port: 65535 },
      { protocol: 'TCP', port: 1 },
      { protocol: 'TCP', port: 8080, endPort: 8080 },
      { protocol: 'TCP', port: 1, endPort: 65535 },
      { protocol: 'UDP', port: 'dns' },
      { protocol: 'SCTP', port: 'a-b-1' },
      { protocol: 'TCP', port: 'abcdefghijklmno' },
    ]);
  });

  test('IPv6 and whole-space CIDRs, host prefixes, excepts at any depth', () => {
    const spec = specOf(
      policy(`
podSelector: {}
egress:
- to:
  - ipBlock: {cidr: "fd00::/8", except: ["fd00:1::/32", "fd00::1/128"]}
  - ipBlock: {cidr: "::/0"}
  - ipBlock: {cidr: 0.0.0.0/0, except: [10.0.0.0/8, 192.168.1.1/32]}
  - ipBlock: {cidr: 10.1.2.3/32}
`),
    );
    assert.deepEqual(
      spec.egress[0].to.map((p) => p.ipBlock),
      [
        { cidr: 'fd00::/8', except: ['fd00:1::/32', 'fd00::1/128'] },
        { cidr: '::/0', except: [] },
        { cidr: '0.0.0.0/0', except: ['10.0.0.0/8', '192.168.1.1/32'] },
        { cidr: '10.1.2.3/32', except: [] },
      ],
    );
  });

  test('empty podSelector {} in a peer selects all pods of the namespace; empty namespaceSelector all namespaces', () => {
    const spec = specOf(policy('podSelector: {}\ningress:\n- from:\n  - podSelector: {}\n  - namespaceSelector: {}'));
    assert.deepEqual(spec.ingress[0].from, [{ podSelector: all }, { namespaceSelector: all }]);
  });

  test('labels, annotations, empty label values and prefixed keys', () => {
    const [doc] = parsePolicies(`
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: a.b-c
  namespace: team-1
  labels: {app.kubernetes.io/name: web, empty: "", A_b.c-D: "1.0_x"}
  annotations: {Example.COM/Note: "any text at all: ok", kubectl.kubernetes.io/last-applied-configuration: "{}"}
spec:
  podSelector:
    matchLabels: {example.com/tier: "", x: z}
`);
    assert.equal(doc.name, 'a.b-c');
    assert.equal(doc.namespace, 'team-1');
    assert.deepEqual(doc.labels, { 'app.kubernetes.io/name': 'web', empty: '', 'A_b.c-D': '1.0_x' });
    assert.deepEqual(doc.annotations, { 'Example.COM/Note': 'any text at all: ok', 'kubectl.kubernetes.io/last-applied-configuration': '{}' });
    assert.deepEqual(doc.spec.podSelector.matchLabels, { 'example.com/tier': '', x: 'z' });
  });

  test('names at their maximum lengths', () => {
    const name = `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(61)}`;
    assert.equal(name.length, 253);
    const ns = 'n'.repeat(63);
    const [doc] = parsePolicies(`apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: ${name}, namespace: ${ns}}`);
    assert.equal(doc.name, name);
    assert.equal(doc.namespace, ns);
  });

  test('what kubectl get -o yaml adds is ignored: status and server-set metadata', () => {
    const [doc] = parsePolicies(`
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: web
  namespace: default
  uid: 1b4e28ba-2fa1-11d2-883f-0016d3cca427
  resourceVersion: "4711"
  generation: 3
  creationTimestamp: "2024-05-01T10:00:00Z"
  managedFields:
  - manager: kubectl-client-side-apply
    operation: Update
  selfLink: /apis/networking.k8s.io/v1/namespaces/default/networkpolicies/web
  finalizers: []
spec:
  podSelector: {}
status: {}
`);
    assert.deepEqual(doc, {
      name: 'web',
      namespace: 'default',
      labels: {},
      annotations: {},
      doc: 1,
      spec: { podSelector: all, policyTypes: ['Ingress'], ingress: [], egress: [] },
    });
  });

  test('an empty namespace is "not set"', () => {
    const [doc] = parsePolicies('apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: x, namespace: ""}');
    assert.equal(doc.namespace, undefined);
    assert.ok(!('namespace' in doc));
  });

  test('JSON input is read too', () => {
    const text = JSON.stringify({
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: { name: 'j' },
      spec: { podSelector: { matchLabels: { a: 'b' } }, ingress: [{ ports: [{ port: 443 }] }] },
    });
    assert.deepEqual(specOf(text).ingress, [{ from: [], ports: [{ protocol: 'TCP', port: 443 }] }]);
  });
});

describe('files with several policies', () => {
  test('multi-document YAML: empty and comment-only documents are skipped, doc counts every document', () => {
    const docs = parsePolicies(`# policies for the shop
---
${policy('podSelector: {}', 'one')}
---
# nothing here
---
---
${policy('podSelector: {}', 'two')}
...
`);
    assert.deepEqual(
      docs.map((d) => [d.name, d.doc]),
      [
        ['one', 1],
        ['two', 4],
      ],
    );
  });

  test('an empty file or a file of comments has no policies', () => {
    assert.deepEqual(parsePolicies(''), []);
    assert.deepEqual(parsePolicies('# nothing\n---\n'), []);
  });

  test('kind: List (v1) with items', () => {
    const docs = parsePolicies(`
apiVersion: v1
kind: List
metadata:
  resourceVersion: ""
items:
- apiVersion: networking.k8s.io/v1
  kind: NetworkPolicy
  metadata: {name: a, namespace: x}
  spec: {podSelector: {}}
- apiVersion: networking.k8s.io/v1
  kind: NetworkPolicy
  metadata: {name: b}
  spec: {podSelector: {matchLabels: {app: b}}, policyTypes: [Egress]}
`);
    assert.deepEqual(
      docs.map((d) => [d.name, d.namespace, d.doc, d.spec.policyTypes]),
      [
        ['a', 'x', 1, ['Ingress']],
        ['b', undefined, 1, ['Egress']],
      ],
    );
  });

  test('kind: NetworkPolicyList, whose items may leave out apiVersion and kind', () => {
    const docs = parsePolicies(`
apiVersion: networking.k8s.io/v1
kind: NetworkPolicyList
items:
- metadata: {name: a}
  spec: {podSelector: {}}
- apiVersion: networking.k8s.io/v1
  kind: NetworkPolicy
  metadata: {name: b}
`);
    assert.deepEqual(
      docs.map((d) => d.name),
      ['a', 'b'],
    );
  });

  test('an issue inside a list names the item', () => {
    const issues = issuesOf(
      `apiVersion: v1
kind: List
items:
- {apiVersion: networking.k8s.io/v1, kind: NetworkPolicy, metadata: {name: ok}}
- {apiVersion: networking.k8s.io/v1, kind: NetworkPolicy, metadata: {name: bad}, spec: {policyTypes: [Sideways]}}
- {apiVersion: v1, kind: Service, metadata: {name: svc}}
`,
      'list.yaml',
    );
    assert.deepEqual(issues, [
      'list.yaml: document 1, items[1] (NetworkPolicy "bad"): spec.policyTypes[0]: Unsupported value: "Sideways": supported values: "Ingress", "Egress"',
      'list.yaml: document 1, items[2]: kind Service is not supported: weft applies networking.k8s.io/v1 NetworkPolicy',
    ]);
  });

  test('every issue of every document is reported at once, each on one line', () => {
    const text = [
      policy('podSelector: {}\ningress:\n- ports:\n  - {port: 80, endPort: 70}', 'first'),
      'apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\n',
      policy('podSelector: {}\npolicyTypes: [Ingress, Egress, Ingress]', 'third'),
      policy('podSelector: {}', 'fine'),
    ].join('---\n');
    const issues = issuesOf(text, 'shop.yaml');
    assert.deepEqual(issues, [
      'shop.yaml: document 1 (NetworkPolicy "first"): spec.ingress[0].ports[0].endPort: Invalid value: 70: must be greater than or equal to `port`',
      'shop.yaml: document 2: kind Deployment is not supported: weft applies networking.k8s.io/v1 NetworkPolicy',
      'shop.yaml: document 3 (NetworkPolicy "third"): spec.policyTypes: Invalid value: ["Ingress","Egress","Ingress"]: may not specify more than two policyTypes',
    ]);
    for (const i of issues) assert.ok(!i.includes('\n'));
  });

  test('two policies of the same name and namespace in one file are refused', () => {
    const issues = issuesOf([policy('podSelector: {}', 'web'), policy('ingress:\n- {}', 'web')].join('---\n'));
    assert.deepEqual(issues, [
      'document 2 (NetworkPolicy "web"): metadata.name: Duplicate value: "web": document 1 defines a NetworkPolicy of the same name',
    ]);
    // the same name in two namespaces is two policies
    const docs = parsePolicies(
      [
        'apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: web, namespace: a}\n',
        'apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: web, namespace: b}\n',
      ].join('---\n'),
    );
    assert.equal(docs.length, 2);
  });
});

describe('objects that are not networking.k8s.io/v1 NetworkPolicy', () => {
  test('other kinds, versions, and missing ones', () => {
    const issues = issuesOf(
      [
        'apiVersion: apps/v1\nkind: Deployment\n',
        'apiVersion: extensions/v1beta1\nkind: NetworkPolicy\nmetadata: {name: old}\n',
        'kind: NetworkPolicy\nmetadata: {name: x}\n',
        'apiVersion: networking.k8s.io/v1\nmetadata: {name: x}\n',
        '- a\n- b\n',
        'just text\n',
        'apiVersion: v2\nkind: List\nitems: []\n',
      ].join('---\n'),
    );
    assert.deepEqual(issues, [
      'document 1: kind Deployment is not supported: weft applies networking.k8s.io/v1 NetworkPolicy',
      'document 2: apiVersion extensions/v1beta1 is not supported for NetworkPolicy: use networking.k8s.io/v1',
      'document 3: apiVersion is missing: NetworkPolicy needs apiVersion: networking.k8s.io/v1',
      'document 4: kind is missing: weft applies networking.k8s.io/v1 NetworkPolicy (kind: NetworkPolicy)',
      'document 5: must be a Kubernetes object (a mapping with apiVersion and kind), not a list',
      'document 6: must be a Kubernetes object (a mapping with apiVersion and kind), not string',
      'document 7: apiVersion "v2" is not supported for List: use v1',
    ]);
  });
});

describe('metadata validation (ValidateObjectMeta)', () => {
  const meta = (m: string): string => `apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: ${m}\n`;

  test('name is required', () => {
    assert.deepEqual(issuesOf(meta('{namespace: a}')), ['document 1: metadata.name: Required value: name is required']);
    assert.deepEqual(issuesOf('apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n'), ['document 1: metadata.name: Required value: name is required']);
    assert.deepEqual(issuesOf(meta('{generateName: web-}')), [
      'document 1: metadata.name: Required value: name is required (weft does not support generateName)',
    ]);
  });

  test('name must be a DNS-1123 subdomain of at most 253 characters', () => {
    const [issue] = issuesOf(meta('{name: Web_1}'));
    assert.equal(
      issue,
      `document 1 (NetworkPolicy "Web_1"): metadata.name: Invalid value: "Web_1": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')`,
    );
    const long = 'a'.repeat(254);
    assert.deepEqual(issuesOf(meta(`{name: ${long}}`)), [
      `document 1 (NetworkPolicy "${long}"): metadata.name: Invalid value: "${long}": must be no more than 253 characters`,
    ]);
  });

  test('namespace must be a DNS-1123 label of at most 63 characters', () => {
    assert.deepEqual(issuesOf(meta('{name: x, namespace: a.b}')), [
      'document 1 (NetworkPolicy "x"): metadata.namespace: Invalid value: "a.b": must not contain dots',
    ]);
    const [issue] = issuesOf(meta(`{name: x, namespace: ${'n'.repeat(64)}}`));
    assert.match(issue, /metadata\.namespace: Invalid value: "n{64}": must be no more than 63 characters$/);
    const [upper] = issuesOf(meta('{name: x, namespace: Prod}'));
    assert.match(upper, /metadata\.namespace: Invalid value: "Prod": a lowercase RFC 1123 label must consist of/);
  });

  test('labels: keys with an optional DNS prefix, values of at most 63 characters', () => {
    const issues = issuesOf(meta(`{name: x, labels: {"-a": v, "Bad.Prefix/k": v, "/k": v, "a/b/c": v, ok: "-bad", ok2: "${'v'.repeat(64)}", ok3: 3}}`));
    assert.equal(issues.length, 7);
    // types are checked as the object is decoded, before the values are validated
    assert.match(issues[0], /metadata\.labels\[ok3\]: Invalid value: 3: must be of type string, not integer \(quote it: "3"\)$/);
    assert.match(issues[1], /metadata\.labels: Invalid value: "-a": name part must consist of alphanumeric characters/);
    assert.match(issues[2], /metadata\.labels: Invalid value: "Bad\.Prefix\/k": prefix part a lowercase RFC 1123 subdomain must consist of/);
    assert.match(issues[3], /metadata\.labels: Invalid value: "\/k": prefix part must be non-empty$/);
    assert.match(issues[4], /metadata\.labels: Invalid value: "a\/b\/c": a valid label key must consist of .* with an optional DNS subdomain prefix and '\/'/);
    assert.match(issues[5], /metadata\.labels: Invalid value: "-bad": a valid label must be an empty string or consist of alphanumeric characters/);
    assert.match(issues[6], /metadata\.labels: Invalid value: "v{64}": must be no more than 63 characters$/);
  });

  test('annotations: qualified-name keys in any case, at most 256 KiB in all', () => {
    const issues = issuesOf(meta('{name: x, annotations: {"bad key": v}}'));
    assert.deepEqual(issues.length, 1);
    assert.match(issues[0], /metadata\.annotations: Invalid value: "bad key": name part must consist of/);
    const big = 'x'.repeat(256 * 1024);
    assert.deepEqual(issuesOf(meta(`{name: x, annotations: {a: "${big}"}}`)), [
      'document 1 (NetworkPolicy "x"): metadata.annotations: Too long: must have at most 262144 bytes',
    ]);
  });
});

describe('spec validation (ValidateNetworkPolicySpec)', () => {
  test('the full message: source, document, name, field path, Invalid value', () => {
    const issues = issuesOf(policy('podSelector: {}\ningress:\n- ports:\n  - port: 80\n  - {port: 80, endPort: 70}', 'db'), 'policies.yaml');
    assert.deepEqual(issues, [
      'policies.yaml: document 1 (NetworkPolicy "db"): spec.ingress[0].ports[1].endPort: Invalid value: 70: must be greater than or equal to `port`',
    ]);
  });

  describe('ports (ValidateNetworkPolicyPort)', () => {
    test('protocol must be TCP, UDP or SCTP (case matters)', () => {
      rejects(
        'ingress:\n- ports:\n  - {protocol: ICMP}\n  - {protocol: tcp, port: 80}',
        'spec.ingress[0].ports[0].protocol: Unsupported value: "ICMP": supported values: "TCP", "UDP", "SCTP"',
        'spec.ingress[0].ports[1].protocol: Unsupported value: "tcp": supported values: "TCP", "UDP", "SCTP"',
      );
    });

    test('a port number is 1..65535', () => {
      rejects(
        'egress:\n- ports:\n  - port: 0\n  - port: 65536\n  - port: -1',
        'spec.egress[0].ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive',
        'spec.egress[0].ports[1].port: Invalid value: 65536: must be between 1 and 65535, inclusive',
        'spec.egress[0].ports[2].port: Invalid value: -1: must be between 1 and 65535, inclusive',
      );
    });

    test('a quoted number is a port name, and not a valid one', () => {
      rejects(
        'ingress:\n- ports:\n  - port: "80"',
        'spec.ingress[0].ports[0].port: Invalid value: "80": must contain at least one letter (a-z) (a port number must not be quoted: port: 80)',
      );
    });

    test('port names are IANA_SVC_NAME', () => {
      rejects(
        'ingress:\n- ports:\n  - port: http-alternative-x\n  - port: HTTP\n  - port: -web\n  - port: a--b\n  - port: ""',
        'spec.ingress[0].ports[0].port: Invalid value: "http-alternative-x": must be no more than 15 characters',
        'spec.ingress[0].ports[1].port: Invalid value: "HTTP": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)',
        'spec.ingress[0].ports[1].port: Invalid value: "HTTP": must contain at least one letter (a-z)',
        'spec.ingress[0].ports[2].port: Invalid value: "-web": must not begin or end with a hyphen',
        'spec.ingress[0].ports[3].port: Invalid value: "a--b": must not contain consecutive hyphens',
        'spec.ingress[0].ports[4].port: Invalid value: "": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)',
        'spec.ingress[0].ports[4].port: Invalid value: "": must contain at least one letter (a-z)',
      );
    });

    test('endPort: only with a numeric port, not below it, not above 65535', () => {
      rejects(
        'ingress:\n- ports:\n  - {port: http, endPort: 90}\n  - {endPort: 90}\n  - {port: 80, endPort: 79}\n  - {port: 80, endPort: 65536}',
        'spec.ingress[0].ports[0].endPort: Invalid value: 90: may not be specified when `port` is non-numeric',
        'spec.ingress[0].ports[1].endPort: Invalid value: 90: may not be specified when `port` is not specified',
        'spec.ingress[0].ports[2].endPort: Invalid value: 79: must be greater than or equal to `port`',
        'spec.ingress[0].ports[3].endPort: Invalid value: 65536: must be between 1 and 65535, inclusive',
      );
    });

    test('wrong types', () => {
      rejects(
        'ingress:\n- ports:\n  - {port: true}\n  - {port: 80, endPort: "90"}\n  - {port: 80.5}\n  - {protocol: 6}',
        'spec.ingress[0].ports[0].port: Invalid value: true: must be of type integer or string, not boolean',
        'spec.ingress[0].ports[1].endPort: Invalid value: "90": must be of type integer, not string',
        'spec.ingress[0].ports[2].port: Invalid value: 80.5: must be of type integer or string, not number',
        'spec.ingress[0].ports[3].protocol: Invalid value: 6: must be of type string, not integer (quote it: "6")',
      );
    });
  });

  describe('peers (ValidateNetworkPolicyPeer, ValidateIPBlock)', () => {
    test('a peer must set at least one field', () => {
      rejects('ingress:\n- from:\n  - {}', 'spec.ingress[0].from[0]: Required value: must specify a peer');
      rejects('egress:\n- to:\n  - podSelector:', 'spec.egress[0].to[0]: Required value: must specify a peer');
    });

    test('ipBlock may not be combined with a selector', () => {
      rejects(
        'ingress:\n- from:\n  - ipBlock: {cidr: 10.0.0.0/8}\n    podSelector: {}\n  - ipBlock: {cidr: 10.0.0.0/8}\n    namespaceSelector: {matchLabels: {a: b}}',
        'spec.ingress[0].from[0]: Forbidden: may not specify both ipBlock and another peer',
        'spec.ingress[0].from[1]: Forbidden: may not specify both ipBlock and another peer',
      );
    });

    test('cidr is required and must be a CIDR', () => {
      rejects(
        'egress:\n- to:\n  - ipBlock: {}\n  - ipBlock: {cidr: ""}\n  - ipBlock: {cidr: 10.0.0.1}\n  - ipBlock: {cidr: 10.0.0.0/33}\n  - ipBlock: {cidr: 300.0.0.0/8}\n  - ipBlock: {cidr: "fd00::/129"}\n  - ipBlock: {cidr: "fe80::/10%eth0"}',
        'spec.egress[0].to[0].ipBlock.cidr: Required value',
        'spec.egress[0].to[1].ipBlock.cidr: Required value',
        'spec.egress[0].to[2].ipBlock.cidr: Invalid value: "10.0.0.1": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)',
        'spec.egress[0].to[3].ipBlock.cidr: Invalid value: "10.0.0.0/33": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)',
        'spec.egress[0].to[4].ipBlock.cidr: Invalid value: "300.0.0.0/8": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)',
        'spec.egress[0].to[5].ipBlock.cidr: Invalid value: "fd00::/129": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)',
        'spec.egress[0].to[6].ipBlock.cidr: Invalid value: "fe80::/10%eth0": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)',
      );
    });

    test('strict CIDR rules: host bits, leading zeros, IPv4-mapped IPv6', () => {
      rejects(
        'egress:\n- to:\n  - ipBlock: {cidr: 10.1.2.3/8}\n  - ipBlock: {cidr: 010.0.0.0/8}\n  - ipBlock: {cidr: 10.0.0.0/08}\n  - ipBlock: {cidr: "::ffff:10.0.0.0/104"}\n  - ipBlock: {cidr: "fd00::1/64"}',
        'spec.egress[0].to[0].ipBlock.cidr: Invalid value: "10.1.2.3/8": must not have bits set beyond the prefix length (write "10.0.0.0/8" for the network or "10.1.2.3/32" for the one address)',
        'spec.egress[0].to[1].ipBlock.cidr: Invalid value: "010.0.0.0/8": must not have leading 0s in IP or prefix length',
        'spec.egress[0].to[2].ipBlock.cidr: Invalid value: "10.0.0.0/08": must not have leading 0s in IP or prefix length',
        'spec.egress[0].to[3].ipBlock.cidr: Invalid value: "::ffff:10.0.0.0/104": must not have an IPv4-mapped IPv6 address',
        'spec.egress[0].to[4].ipBlock.cidr: Invalid value: "fd00::1/64": must not have bits set beyond the prefix length (write "fd00::/64" for the network or "fd00::1/128" for the one address)',
      );
    });

    test('every except is a strict subset of the cidr, of the same family', () => {
      rejects(
        'ingress:\n- from:\n  - ipBlock:\n      cidr: 172.17.0.0/16\n      except: [172.17.0.0/16, 172.18.0.0/24, 172.0.0.0/8, "fd00::/64", bogus, 172.17.1.1/24]',
        'spec.ingress[0].from[0].ipBlock.except[0]: Invalid value: "172.17.0.0/16": must be a strict subset of `cidr`',
        'spec.ingress[0].from[0].ipBlock.except[1]: Invalid value: "172.18.0.0/24": must be a strict subset of `cidr`',
        'spec.ingress[0].from[0].ipBlock.except[2]: Invalid value: "172.0.0.0/8": must be a strict subset of `cidr`',
        'spec.ingress[0].from[0].ipBlock.except[3]: Invalid value: "fd00::/64": must be a strict subset of `cidr` (IPv6 inside an IPv4 cidr)',
        'spec.ingress[0].from[0].ipBlock.except[4]: Invalid value: "bogus": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)',
        'spec.ingress[0].from[0].ipBlock.except[5]: Invalid value: "172.17.1.1/24": must not have bits set beyond the prefix length (write "172.17.1.0/24" for the network or "172.17.1.1/32" for the one address)',
      );
    });
  });

  describe('label selectors (ValidateLabelSelector)', () => {
    test('matchLabels keys and values', () => {
      const issues = issuesOf(policy('podSelector:\n  matchLabels: {"a b": x, ok: "no good"}'));
      assert.equal(issues.length, 2);
      assert.match(issues[0], /^document 1 \(NetworkPolicy "p"\): spec\.podSelector\.matchLabels: Invalid value: "a b": name part must consist of/);
      assert.match(issues[1], /spec\.podSelector\.matchLabels: Invalid value: "no good": a valid label must be an empty string or consist of/);
    });

    test('In and NotIn need values; Exists and DoesNotExist take none; unknown operators', () => {
      rejects(
        `podSelector:
  matchExpressions:
  - {key: a, operator: In}
  - {key: a, operator: NotIn, values: []}
  - {key: a, operator: Exists, values: [x]}
  - {key: a, operator: DoesNotExist, values: [x]}
  - {key: a, operator: Equals, values: [x]}
  - {key: a}`,
        "spec.podSelector.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'",
        "spec.podSelector.matchExpressions[1].values: Required value: must be specified when `operator` is 'In' or 'NotIn'",
        "spec.podSelector.matchExpressions[2].values: Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
        "spec.podSelector.matchExpressions[3].values: Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
        'spec.podSelector.matchExpressions[4].operator: Unsupported value: "Equals": supported values: "In", "NotIn", "Exists", "DoesNotExist"',
        'spec.podSelector.matchExpressions[5].operator: Required value: supported values: "In", "NotIn", "Exists", "DoesNotExist"',
      );
    });

    test('expression keys and values are label keys and values', () => {
      const issues = issuesOf(
        policy('ingress:\n- from:\n  - namespaceSelector:\n      matchExpressions:\n      - {key: "bad key", operator: In, values: [ok, "not ok"]}\n      - {operator: Exists}'),
      );
      assert.equal(issues.length, 3);
      assert.match(issues[0], /spec\.ingress\[0\]\.from\[0\]\.namespaceSelector\.matchExpressions\[0\]\.key: Invalid value: "bad key": name part must consist of/);
      assert.match(issues[1], /spec\.ingress\[0\]\.from\[0\]\.namespaceSelector\.matchExpressions\[0\]\.values\[1\]: Invalid value: "not ok": a valid label must be/);
      assert.match(issues[2], /spec\.ingress\[0\]\.from\[0\]\.namespaceSelector\.matchExpressions\[1\]\.key: Required value$/);
    });
  });

  describe('policyTypes', () => {
    test('only Ingress and Egress, at most two', () => {
      rejects(
        'podSelector: {}\npolicyTypes: [Ingress, egress]',
        'spec.policyTypes[1]: Unsupported value: "egress": supported values: "Ingress", "Egress"',
      );
      rejects(
        'podSelector: {}\npolicyTypes: [Ingress, Egress, Both]',
        'spec.policyTypes: Invalid value: ["Ingress","Egress","Both"]: may not specify more than two policyTypes',
      );
    });
  });

  test('wrong shapes are named, not guessed at', () => {
    rejects(
      'podSelector: []\ningress:\n  from:\n  - podSelector: {}\negress: [{to: {ipBlock: {cidr: 10.0.0.0/8}}}]\npolicyTypes: Ingress',
      'spec.podSelector: Invalid value: []: must be of type object, not array',
      'spec.ingress: Invalid value: {...}: must be of type array, not object',
      'spec.egress[0].to: Invalid value: {...}: must be of type array, not object',
      'spec.policyTypes: Invalid value: "Ingress": must be of type array, not string',
    );
  });

  test('an empty list item is refused rather than read as "allow everything"', () => {
    rejects(
      'podSelector: {}\ningress:\n-\n- ports:\n  -',
      'spec.ingress[0]: Invalid value: null: an empty list item is not allowed (write {} for an empty item)',
      'spec.ingress[1].ports[0]: Invalid value: null: an empty list item is not allowed (write {} for an empty item)',
    );
  });
});

describe('unknown fields (kubectl strict field validation)', () => {
  test('typos anywhere are errors, with a suggestion when one is close', () => {
    const issues = issuesOf(`
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: typo
  lables: {a: b}
spec:
  podselector: {}
  ingress:
  - form:
    - podSelector: {matchLabel: {app: web}}
    ports:
    - {port: 80, endport: 90, protocl: TCP}
  - from:
    - ipBlock: {cidr: 10.0.0.0/8, expect: [10.1.0.0/16]}
    - namespaceSelector:
        matchExpressions: [{key: a, operator: Exists, value: []}]
  egres: []
specs: {}
`);
    assert.deepEqual(issues, [
      'document 1 (NetworkPolicy "typo"): unknown field "specs" (did you mean "spec"?)',
      'document 1 (NetworkPolicy "typo"): unknown field "metadata.lables" (did you mean "labels"?)',
      'document 1 (NetworkPolicy "typo"): unknown field "spec.podselector" (did you mean "podSelector"?)',
      'document 1 (NetworkPolicy "typo"): unknown field "spec.egres" (did you mean "egress"?)',
      'document 1 (NetworkPolicy "typo"): unknown field "spec.ingress[0].form" (did you mean "from"?)',
      'document 1 (NetworkPolicy "typo"): unknown field "spec.ingress[0].ports[0].endport" (did you mean "endPort"?)',
      'document 1 (NetworkPolicy "typo"): unknown field "spec.ingress[0].ports[0].protocl" (did you mean "protocol"?)',
      'document 1 (NetworkPolicy "typo"): unknown field "spec.ingress[1].from[0].ipBlock.expect" (did you mean "except"?)',
      'document 1 (NetworkPolicy "typo"): unknown field "spec.ingress[1].from[1].namespaceSelector.matchExpressions[0].value" (did you mean "values"?)',
    ]);
  });

  test('a field nothing resembles gets no suggestion', () => {
    rejects('podSelector: {}\nbandwidth: 10M', 'unknown field "spec.bandwidth"');
  });
});

describe('YAML', () => {
  test('syntax errors name the document and the line', () => {
    const issues = issuesOf(`${policy('podSelector: {}', 'ok')}---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: [unclosed\n`, 'bad.yaml');
    assert.deepEqual(issues, [
      'bad.yaml: document 2: line 12, column 1: YAML syntax error: Flow sequence in block collection must be sufficiently indented and end with a ]',
    ]);
  });

  test('a tab indent and duplicate keys are syntax errors with their line', () => {
    assert.deepEqual(issuesOf('apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nkind: NetworkPolicy\n'), [
      'document 1: line 3, column 1: YAML syntax error: Map keys must be unique',
    ]);
    assert.deepEqual(issuesOf('metadata:\n\tname: x\n'), ['document 1: line 2, column 1: YAML syntax error: Tabs are not allowed as indentation']);
    assert.deepEqual(issuesOf('a: *nope\n'), ['document 1: YAML error: Unresolved alias (the anchor must be set before the alias): nope']);
  });

  test('a syntax error in one document does not hide the problems of the others', () => {
    const issues = issuesOf(`a: [1\n---\n${policy('policyTypes: [Up]')}`);
    assert.equal(issues.length, 2);
    assert.match(issues[0], /^document 1: line \d+, column \d+: YAML syntax error/);
    assert.equal(issues[1], 'document 2 (NetworkPolicy "p"): spec.policyTypes[0]: Unsupported value: "Up": supported values: "Ingress", "Egress"');
  });

  test('a label with no value is refused, not read as ""', () => {
    rejects('podSelector:\n  matchLabels:\n    app:', 'spec.podSelector.matchLabels[app]: Invalid value: null: must be of type string, not null (write "" for an empty value)');
    assert.deepEqual(specOf(policy('podSelector:\n  matchLabels:\n    app: ""')).podSelector, labels({ app: '' }));
  });

  test('YAML 1.1 as kubectl reads it: unquoted on/yes are booleans, timestamps stay strings', () => {
    rejects('podSelector:\n  matchLabels: {enabled: on}', 'spec.podSelector.matchLabels[enabled]: Invalid value: true: must be of type string, not boolean (quote it: "true")');
    const [doc] = parsePolicies('apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: x\n  annotations: {deployed: 2024-05-01}\n');
    assert.deepEqual(doc.annotations, { deployed: '2024-05-01' });
  });

  test('anchors and merge keys are resolved', () => {
    const spec = specOf(policy('podSelector: &sel {matchLabels: {app: web}}\ningress:\n- from:\n  - podSelector: *sel\n  ports:\n  - &p {port: 80}\n  - {<<: *p, protocol: UDP}'));
    assert.deepEqual(spec.ingress[0].from, [{ podSelector: labels({ app: 'web' }) }]);
    assert.deepEqual(spec.ingress[0].ports, [
      { protocol: 'TCP', port: 80 },
      { protocol: 'UDP', port: 80 },
    ]);
  });
});

describe('normalizePolicy (one object: compose x-weft, the API)', () => {
  const obj = {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: { name: 'api', namespace: 'shop', labels: { team: 'a' } },
    spec: { podSelector: { matchLabels: { app: 'api' } }, ingress: [{ from: [{ podSelector: { matchLabels: { app: 'web' } } }], ports: [{ port: 8080 }] }] },
  };

  test('normalizes a valid object', () => {
    assert.deepEqual(normalizePolicy(obj), {
      name: 'api',
      namespace: 'shop',
      labels: { team: 'a' },
      annotations: {},
      doc: 1,
      spec: {
        podSelector: labels({ app: 'api' }),
        policyTypes: ['Ingress'],
        ingress: [{ from: [{ podSelector: labels({ app: 'web' }) }], ports: [{ protocol: 'TCP', port: 8080 }] }],
        egress: [],
      },
    });
  });

  test('does not change its input', () => {
    const copy = structuredClone(obj);
    normalizePolicy(obj);
    assert.deepEqual(obj, copy);
  });

  test('issues start with `where`', () => {
    const bad = { ...obj, spec: { ...obj.spec, ingress: [{ ports: [{ port: 8080, endPort: 80 }] }], extra: 1 } };
    assert.throws(
      () => normalizePolicy(bad, 'compose.yaml: x-weft.policies[0]'),
      (err: unknown) => {
        assert.ok(err instanceof PolicyParseError);
        assert.deepEqual(err.issues, [
          'compose.yaml: x-weft.policies[0] (NetworkPolicy "api"): unknown field "spec.extra"',
          'compose.yaml: x-weft.policies[0] (NetworkPolicy "api"): spec.ingress[0].ports[0].endPort: Invalid value: 80: must be greater than or equal to `port`',
        ]);
        return true;
      },
    );
    assert.throws(() => normalizePolicy({ kind: 'Service' }), (err: unknown) => {
      assert.ok(err instanceof PolicyParseError);
      assert.deepEqual(err.issues, ['kind Service is not supported: weft applies networking.k8s.io/v1 NetworkPolicy']);
      return true;
    });
    assert.throws(() => normalizePolicy(null, 'x'), {
      name: 'PolicyParseError',
      message: 'x: must be a Kubernetes object (a mapping with apiVersion and kind), not null',
    });
  });
});

describe('the validators the CLI reuses', () => {
  test('label keys', () => {
    for (const k of ['app', 'a', 'A1', 'app.kubernetes.io/name', 'example.com/My_Key-1.x', `${'k'.repeat(63)}`, `${'p'.repeat(253)}/n`]) {
      assert.ok(validLabelKey(k), k);
    }
    for (const k of ['', '-a', 'a-', '_a', 'a b', 'a/b/c', '/a', 'a/', 'Example.com/a', `${'k'.repeat(64)}`, `${'p'.repeat(254)}/n`, 'ü']) {
      assert.ok(!validLabelKey(k), k);
    }
    assert.deepEqual(labelKeyErrors('a/'), [
      "name part must be non-empty",
      "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
    ]);
  });

  test('label values', () => {
    for (const v of ['', 'a', 'v1.2_3-x', 'A'.repeat(63)]) assert.ok(validLabelValue(v), v);
    for (const v of ['-a', 'a.', 'a b', 'a/b', 'A'.repeat(64)]) assert.ok(!validLabelValue(v), v);
    assert.deepEqual(labelValueErrors('x'.repeat(64)), ['must be no more than 63 characters']);
  });

  test('port names', () => {
    assert.deepEqual(portNameErrors('http'), []);
    assert.deepEqual(portNameErrors('8080'), ['must contain at least one letter (a-z)']);
  });

  test('validateLabelSelector', () => {
    assert.deepEqual(validateLabelSelector(undefined), { selector: all, issues: [] });
    assert.deepEqual(validateLabelSelector({ matchLabels: { app: 'web' } }), { selector: labels({ app: 'web' }), issues: [] });
    assert.deepEqual(validateLabelSelector({ matchExpressions: [{ key: 'a', operator: 'In' }] }, 'selector').issues, [
      "selector.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'",
    ]);
    assert.deepEqual(validateLabelSelector({ matchLabel: {} }, 'sel').issues, ['unknown field "sel.matchLabel" (did you mean "matchLabels"?)']);
  });
});
