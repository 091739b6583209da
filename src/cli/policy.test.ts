import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { checkText, matrixText, parseLabelArgs, parseTarget, selectorText } from './policy.js';
import { parseExpose } from './container.js';
import type { PolicyCheckResult, PolicyMatrix } from '../api/schemas.js';

describe('policy CLI', () => {
  it('parses targets: container or address, port, protocol; IPv6 in brackets', () => {
    assert.deepEqual(parseTarget('db'), { to: 'db', port: undefined, protocol: undefined });
    assert.deepEqual(parseTarget('db:5432'), { to: 'db', port: 5432, protocol: undefined });
    assert.deepEqual(parseTarget('10.0.0.3:53/udp'), { to: '10.0.0.3', port: 53, protocol: 'udp' });
    assert.deepEqual(parseTarget('[fd00::2]:80/tcp'), { to: 'fd00::2', port: 80, protocol: 'tcp' });
    assert.throws(() => parseTarget('db:70000'), /1-65535/);
    assert.throws(() => parseTarget('db:80/icmpx'), /invalid target/);
  });

  it('labels as kubectl label: k=v sets, k- removes', () => {
    assert.deepEqual(parseLabelArgs(['app=web', 'tier-', 'empty=']), { set: { app: 'web', empty: '' }, remove: ['tier'] });
    assert.throws(() => parseLabelArgs(['=x']), /KEY=VALUE/);
    assert.throws(() => parseLabelArgs([]), /give labels/);
  });

  it('--expose takes names, ranges and protocols', () => {
    assert.deepEqual(parseExpose('http=8080'), [{ name: 'http', port: 8080, protocol: 'tcp' }]);
    assert.deepEqual(parseExpose('53/udp'), [{ port: 53, protocol: 'udp' }]);
    assert.deepEqual(parseExpose('7000-7001'), [{ port: 7000, protocol: 'tcp' }, { port: 7001, protocol: 'tcp' }]);
    assert.throws(() => parseExpose('web=80-81'), /invalid --expose/);
    assert.throws(() => parseExpose('0'), /invalid --expose/);
  });

  it('prints selectors as kubectl does', () => {
    assert.equal(selectorText({ matchLabels: {}, matchExpressions: [] }), '<none>');
    assert.equal(
      selectorText({ matchLabels: { app: 'db' }, matchExpressions: [{ key: 'env', operator: 'In', values: ['a', 'b'] }, { key: 'x', operator: 'DoesNotExist', values: [] }] }),
      'app=db,env in (a,b),!x',
    );
  });

  it('prints the matrix with every disagreement flagged', () => {
    const m: PolicyMatrix = {
      containers: [{ container: 'a', project: 'p', ip: '10.0.0.2' }, { container: 'b', project: 'default', ip: '10.0.0.3' }],
      ports: ['80/tcp'],
      cells: [[[''], ['deny']], [['allow'], ['']]],
      probed: [[[''], ['allow']], [['allow'], ['']]],
      disagreements: [{ from: 'a', to: 'b', port: '80/tcp', model: 'deny', kernel: 'allow' }],
    };
    const text = matrixText(m);
    assert.match(text, /1 p\/a\s+\.\s+DENY!\(kernel: allow\)/);
    assert.match(text, /2 b\s+ok\s+\./);
    assert.match(text, /1 cell\(s\) where the kernel disagrees with the model:\n {2}a -> b 80\/tcp: model deny, kernel allow/);
  });

  it('prints a check with its reasons and a missing path', () => {
    const r = {
      allowed: false,
      from: { container: 'a', ip: '10.0.0.2' },
      to: { container: 'b', ip: '10.0.1.3' },
      protocol: 'tcp',
      port: 80,
      reasons: ['b is isolated for ingress by policy p/deny, and no rule of it admits this connection'],
      noPath: 'a and b share no network',
    } as PolicyCheckResult;
    assert.equal(checkText(r), 'denied: a (10.0.0.2) -> b (10.0.1.3) 80/tcp\n  b is isolated for ingress by policy p/deny, and no rule of it admits this connection\n  note: a and b share no network\n');
  });
});
