import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { canonicalJson } from './model.js';
import { parseDuration, parseHostEntry, parseRestart, shellSplit } from './values.js';

describe('shellSplit', () => {
  it('splits like a shell without expanding', () => {
    assert.deepEqual(shellSplit('node server.js --port 8080'), ['node', 'server.js', '--port', '8080']);
    assert.deepEqual(shellSplit(`sh -c 'echo "hi there" $HOME'`), ['sh', '-c', 'echo "hi there" $HOME']);
    assert.deepEqual(shellSplit('echo "a \\"b\\" \\$c" d\\ e'), ['echo', 'a "b" $c', 'd e']);
    assert.deepEqual(shellSplit('  a\t\tb  '), ['a', 'b']);
    assert.deepEqual(shellSplit('x "" y'), ['x', '', 'y']);
    assert.deepEqual(shellSplit(''), []);
  });

  it('rejects unterminated quotes', () => {
    assert.throws(() => shellSplit('echo "open'), /unterminated double quote/);
    assert.throws(() => shellSplit("echo 'open"), /unterminated single quote/);
  });
});

describe('parseDuration', () => {
  it('reads Go durations into milliseconds', () => {
    assert.equal(parseDuration('10s'), 10_000);
    assert.equal(parseDuration('1m30s'), 90_000);
    assert.equal(parseDuration('1.5h'), 5_400_000);
    assert.equal(parseDuration('500ms'), 500);
    assert.equal(parseDuration('2500us'), 3);
    assert.equal(parseDuration('0'), 0);
    assert.throws(() => parseDuration('10'), /"10" is not a duration; use a number with a unit/);
    assert.throws(() => parseDuration('10 s'), /not a duration/);
    assert.throws(() => parseDuration('1d'), /not a duration/);
  });
});

describe('parseRestart', () => {
  it('reads the four policies and a retry count', () => {
    assert.deepEqual(parseRestart('no'), { name: 'no' });
    assert.deepEqual(parseRestart('always'), { name: 'always' });
    assert.deepEqual(parseRestart('unless-stopped'), { name: 'unless-stopped' });
    assert.deepEqual(parseRestart('on-failure:3'), { name: 'on-failure', maxRetries: 3 });
    assert.throws(() => parseRestart('always:3'), /only on-failure takes a retry count/);
    assert.throws(() => parseRestart('sometimes'), /is not a restart policy/);
  });
});

describe('parseHostEntry', () => {
  it('reads name:ip and name=ip', () => {
    assert.deepEqual(parseHostEntry('db:10.0.0.5'), ['db', '10.0.0.5']);
    assert.deepEqual(parseHostEntry('db=10.0.0.5'), ['db', '10.0.0.5']);
    assert.deepEqual(parseHostEntry('v6=[::1]'), ['v6', '::1']);
    assert.deepEqual(parseHostEntry('v6:::1'), ['v6', '::1']);
    assert.throws(() => parseHostEntry('db'), /is not name:ip/);
    assert.throws(() => parseHostEntry('db:nope'), /"nope" is not an IP address/);
    assert.throws(() => parseHostEntry('gw:host-gateway'), /host-gateway is not supported/);
  });
});

describe('canonicalJson', () => {
  it('sorts keys at every level and drops undefined', () => {
    assert.equal(canonicalJson({ b: 1, a: { d: [2, { z: 1, y: undefined, x: 0 }], c: null } }), '{"a":{"c":null,"d":[2,{"x":0,"z":1}]},"b":1}');
  });
});
