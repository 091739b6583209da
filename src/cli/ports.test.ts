import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CliError } from './errors.js';
import { parsePortSpec, parsePortSpecs, parsePrivatePort } from './ports.js';

function fails(spec: string, pattern: RegExp): void {
  assert.throws(
    () => parsePortSpec(spec),
    (err: unknown) => {
      assert.ok(err instanceof CliError, `expected a CliError for '${spec}'`);
      assert.ok(err.message.includes(`'${spec}'`), `message names the spec: ${err.message}`);
      assert.match(err.message, pattern);
      return true;
    },
  );
}

describe('parsePortSpec', () => {
  it('container port only: the agent picks the host port', () => {
    assert.deepEqual(parsePortSpec('80'), [{ containerPort: 80, protocol: 'tcp' }]);
  });

  it('hostPort:containerPort', () => {
    assert.deepEqual(parsePortSpec('8080:80'), [{ containerPort: 80, hostPort: 8080, protocol: 'tcp' }]);
  });

  it('protocol suffix, case-insensitive', () => {
    assert.deepEqual(parsePortSpec('53:53/udp'), [{ containerPort: 53, hostPort: 53, protocol: 'udp' }]);
    assert.deepEqual(parsePortSpec('53/UDP'), [{ containerPort: 53, protocol: 'udp' }]);
    assert.deepEqual(parsePortSpec('80/tcp'), [{ containerPort: 80, protocol: 'tcp' }]);
  });

  it('hostIP:hostPort:containerPort', () => {
    assert.deepEqual(parsePortSpec('127.0.0.1:8080:80'), [
      { containerPort: 80, hostIp: '127.0.0.1', hostPort: 8080, protocol: 'tcp' },
    ]);
  });

  it('hostIP::containerPort picks the host port', () => {
    assert.deepEqual(parsePortSpec('127.0.0.1::80'), [{ containerPort: 80, hostIp: '127.0.0.1', protocol: 'tcp' }]);
  });

  it('an empty host IP is no host IP', () => {
    assert.deepEqual(parsePortSpec(':8080:80'), [{ containerPort: 80, hostPort: 8080, protocol: 'tcp' }]);
  });

  it('host port 0 means pick one', () => {
    assert.deepEqual(parsePortSpec('0:80'), [{ containerPort: 80, protocol: 'tcp' }]);
  });

  it('IPv6 host addresses in brackets', () => {
    assert.deepEqual(parsePortSpec('[::1]:8080:80'), [{ containerPort: 80, hostIp: '::1', hostPort: 8080, protocol: 'tcp' }]);
    assert.deepEqual(parsePortSpec('[::]::80/udp'), [{ containerPort: 80, hostIp: '::', protocol: 'udp' }]);
    assert.deepEqual(parsePortSpec('[fd00::1]:53:53/udp'), [
      { containerPort: 53, hostIp: 'fd00::1', hostPort: 53, protocol: 'udp' },
    ]);
  });

  it('ranges of the same length pair in order', () => {
    assert.deepEqual(parsePortSpec('8000-8002:80-82'), [
      { containerPort: 80, hostPort: 8000, protocol: 'tcp' },
      { containerPort: 81, hostPort: 8001, protocol: 'tcp' },
      { containerPort: 82, hostPort: 8002, protocol: 'tcp' },
    ]);
    assert.deepEqual(parsePortSpec('10.0.0.1:9000-9001:90-91/udp'), [
      { containerPort: 90, hostIp: '10.0.0.1', hostPort: 9000, protocol: 'udp' },
      { containerPort: 91, hostIp: '10.0.0.1', hostPort: 9001, protocol: 'udp' },
    ]);
  });

  it('a container range alone: each port gets a free host port', () => {
    assert.deepEqual(parsePortSpec('80-81'), [
      { containerPort: 80, protocol: 'tcp' },
      { containerPort: 81, protocol: 'tcp' },
    ]);
    assert.deepEqual(parsePortSpec('127.0.0.1::80-81'), [
      { containerPort: 80, hostIp: '127.0.0.1', protocol: 'tcp' },
      { containerPort: 81, hostIp: '127.0.0.1', protocol: 'tcp' },
    ]);
  });

  it('a range of host ports with one container port: one free port of the range, as in Docker', () => {
    assert.deepEqual(parsePortSpec('8000-8002:80'), [{ containerPort: 80, hostPort: 8000, hostPortEnd: 8002, protocol: 'tcp' }]);
  });

  it('a one-port range is a port', () => {
    assert.deepEqual(parsePortSpec('8080-8080:80-80'), [{ containerPort: 80, hostPort: 8080, protocol: 'tcp' }]);
  });

  it('surrounding spaces are ignored', () => {
    assert.deepEqual(parsePortSpec(' 8080:80 '), [{ containerPort: 80, hostPort: 8080, protocol: 'tcp' }]);
  });

  it('parsePortSpecs concatenates in order', () => {
    assert.deepEqual(parsePortSpecs(['80', '53:53/udp']), [
      { containerPort: 80, protocol: 'tcp' },
      { containerPort: 53, hostPort: 53, protocol: 'udp' },
    ]);
    assert.deepEqual(parsePortSpecs(undefined), []);
  });

  describe('errors name the spec and the fix', () => {
    it('empty', () => fails('', /empty/));
    it('not a number', () => fails('8080:http', /container port 'http' is not a number/));
    it('bad host port', () => fails('x:80', /host port 'x' is not a number/));
    it('out of range', () => {
      fails('70000:80', /host port 70000 is out of range/);
      fails('8080:0', /container port 0 is out of range/);
      fails('8080:65536', /out of range/);
    });
    it('unknown protocol', () => fails('80/sctp', /protocol 'sctp' is not tcp or udp/));
    it('missing protocol after the slash', () => fails('80/', /protocol '' is not tcp or udp/));
    it('missing container port', () => {
      fails('8080:', /container port is missing/);
      fails('127.0.0.1:8080:', /container port is missing/);
    });
    it('backwards range', () => fails('82-80', /ends before it starts/));
    it('ranges of different lengths', () => fails('8000-8001:80-82', /same length/));
    it('one host port for a container range', () => fails('8080:80-81', /same length/));
    it('bad IPv4 host address', () => fails('300.1.1.1:80:80', /'300.1.1.1' is not an IPv4 address/));
    it('unbracketed IPv6', () => fails('::1:8080:80', /brackets/));
    it('IPv6 without its ports', () => fails('[::1]:80', /\[::1\]:8080:80/));
    it('bad IPv6 in brackets', () => fails('[zz::1]:80:80', /not an IPv6 address/));
    it('unclosed bracket', () => fails('[::1:80:80', /missing '\]'/));
    it('an address where the host port goes hints at ip::port', () => fails('127.0.0.1:80', /127\.0\.0\.1::PORT/));
    it('too many parts', () => fails('1:2:3:4', /brackets/));
    it('negative port', () => fails('-1', /not a number/));
  });
});

describe('parsePrivatePort', () => {
  it('port with and without protocol', () => {
    assert.deepEqual(parsePrivatePort('80'), { port: 80 });
    assert.deepEqual(parsePrivatePort('53/udp'), { port: 53, protocol: 'udp' });
    assert.deepEqual(parsePrivatePort('80/TCP'), { port: 80, protocol: 'tcp' });
  });
  it('rejects nonsense', () => {
    assert.throws(() => parsePrivatePort('http'), /invalid port 'http'/);
    assert.throws(() => parsePrivatePort('0'), /invalid port '0'/);
    assert.throws(() => parsePrivatePort('80/sctp'), /invalid port/);
  });
});
