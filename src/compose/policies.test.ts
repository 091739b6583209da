import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { projectPolicies } from './policies.js';

const pol = (name: string, extra: Record<string, unknown> = {}) => ({
  apiVersion: 'networking.k8s.io/v1',
  kind: 'NetworkPolicy',
  metadata: { name, ...extra },
  spec: { podSelector: { matchLabels: { 'com.docker.compose.service': 'db' } }, ingress: [{ ports: [{ port: 5432 }] }] },
});

describe('compose x-weft.policies', () => {
  it('none: no policies', () => {
    assert.deepEqual(projectPolicies({ name: 'shop', extensions: {} }), []);
  });

  it('each policy lands in the project, labelled as compose\'s, normalized', () => {
    const [p] = projectPolicies({ name: 'shop', extensions: { 'x-weft': { policies: [pol('db-in')] } } });
    assert.equal(p!.namespace, 'shop');
    assert.equal(p!.labels['com.docker.compose.project'], 'shop');
    assert.deepEqual(p!.spec.policyTypes, ['Ingress']);
    assert.deepEqual(p!.spec.ingress[0]!.ports, [{ protocol: 'TCP', port: 5432 }]);
  });

  it('refuses another namespace, duplicates, unknown keys, invalid policies and non-namespace project names, all at once', () => {
    assert.throws(
      () => projectPolicies({ name: 'shop', extensions: { 'x-weft': { policies: [pol('a', { namespace: 'other' }), pol('a'), { ...pol('b'), spec: { podSelector: {}, ingress: [{ ports: [{ port: 70000 }] }] } }], polices: [] } } }),
      (e: Error) => {
        assert.match(e.message, /x-weft\.polices: unknown key/);
        assert.match(e.message, /metadata\.namespace is "other", but a compose file's policies belong to its own project "shop"/);
        assert.match(e.message, /a second policy named "a"/);
        assert.match(e.message, /spec\.ingress\[0\]\.ports\[0\]\.port/);
        return true;
      },
    );
    assert.throws(() => projectPolicies({ name: 'my_app', extensions: { 'x-weft': { policies: [pol('a')] } } }), /not a Kubernetes namespace name/);
  });
});
