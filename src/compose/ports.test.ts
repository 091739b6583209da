import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { PortRequest } from '../api/schemas.js';
import { type PortMapping, expandPorts, parseLongPort, parseShortPort, replicaPortRequest } from './ports.js';

function fixed(spec: string | number, replicas = 1): PortRequest[] {
  const [e] = expandPorts([parseShortPort(spec)], replicas);
  assert.deepEqual(e.perReplica, []);
  return e.fixed;
}

describe('short port syntax', () => {
  it('container port only', () => {
    assert.deepEqual(fixed('80'), [{ containerPort: 80, protocol: 'tcp' }]);
    assert.deepEqual(fixed(80), [{ containerPort: 80, protocol: 'tcp' }]);
  });

  it('host:container, ip:host:container, ip::container', () => {
    assert.deepEqual(fixed('8080:80'), [{ containerPort: 80, hostPort: 8080, protocol: 'tcp' }]);
    assert.deepEqual(fixed('127.0.0.1:8080:80'), [{ containerPort: 80, hostPort: 8080, hostIp: '127.0.0.1', protocol: 'tcp' }]);
    assert.deepEqual(fixed('127.0.0.1::80'), [{ containerPort: 80, hostIp: '127.0.0.1', protocol: 'tcp' }]);
  });

  it('IPv6 host addresses, bracketed or not', () => {
    assert.deepEqual(fixed('[::1]:80:80'), [{ containerPort: 80, hostPort: 80, hostIp: '::1', protocol: 'tcp' }]);
    assert.deepEqual(fixed('[::1]::80'), [{ containerPort: 80, hostIp: '::1', protocol: 'tcp' }]);
    assert.deepEqual(fixed('::1:81:80'), [{ containerPort: 80, hostPort: 81, hostIp: '::1', protocol: 'tcp' }]);
  });

  it('ranges and protocols', () => {
    assert.deepEqual(fixed('8000-8001:80-81'), [
      { containerPort: 80, hostPort: 8000, protocol: 'tcp' },
      { containerPort: 81, hostPort: 8001, protocol: 'tcp' },
    ]);
    assert.deepEqual(fixed('80-81/udp'), [
      { containerPort: 80, protocol: 'udp' },
      { containerPort: 81, protocol: 'udp' },
    ]);
    assert.deepEqual(fixed('9090:9090/udp'), [{ containerPort: 9090, hostPort: 9090, protocol: 'udp' }]);
    assert.deepEqual(fixed('53:53/UDP'), [{ containerPort: 53, hostPort: 53, protocol: 'udp' }]);
  });

  it('a host range for one container port is shared out among replicas: each takes a free one', () => {
    const [e] = expandPorts([parseShortPort('127.0.0.1:8000-8002:80')], 3);
    assert.deepEqual(e.fixed, []);
    assert.deepEqual(e.perReplica, [{ hostIp: '127.0.0.1', hostPortStart: 8000, hostPortEnd: 8002, containerPort: 80, protocol: 'tcp' }]);
    assert.deepEqual(replicaPortRequest(e.perReplica[0], 3), { containerPort: 80, hostPort: 8000, hostPortEnd: 8002, hostIp: '127.0.0.1', protocol: 'tcp' });
  });

  it('rejects what cannot work, saying why', () => {
    const cases: [string, RegExp][] = [
      ['80:eighty', /: container port "eighty" is not a number 1-65535/],
      ['70000', /container port 70000 is out of range/],
      ['0', /container port 0 is out of range \(1-65535\)/],
      ['80:90/sctp', /sctp is not supported by weft/],
      ['80/icmp', /protocol "icmp" is not tcp or udp/],
      ['8080:', /container port is missing/],
      ['300.1.1.1:80:80', /host address "300.1.1.1" is not an IP address/],
      ['[::1:80:80', /missing "\]"/],
      ['', /empty/],
      ['81-80', /ends before it starts/],
    ];
    for (const [spec, re] of cases) assert.throws(() => parseShortPort(spec), re, spec);
    assert.throws(() => fixed('8000-8002:80-81'), /must be ranges of the same length/);
    assert.throws(() => fixed('8080:80-81'), /must be ranges of the same length/);
    assert.throws(() => fixed('8080:80', 2), /host port 8080 cannot be published by each of 2 replicas/);
    assert.throws(() => expandPorts([parseShortPort('8000-8001:80')], 3), /has 2 ports for 3 replicas/);
  });
});

describe('long port syntax', () => {
  it('maps target, published (number or range string), host_ip and protocol', () => {
    const m: PortMapping = parseLongPort({ target: 80, published: '8080', hostIp: '127.0.0.1', protocol: 'udp' });
    assert.deepEqual(expandPorts([m], 1)[0].fixed, [{ containerPort: 80, hostPort: 8080, hostIp: '127.0.0.1', protocol: 'udp' }]);
    assert.deepEqual(expandPorts([parseLongPort({ target: 80 })], 1)[0].fixed, [{ containerPort: 80, protocol: 'tcp' }]);
    assert.deepEqual(expandPorts([parseLongPort({ target: 80, published: 81 })], 1)[0].fixed, [{ containerPort: 80, hostPort: 81, protocol: 'tcp' }]);
    const ranged = expandPorts([parseLongPort({ target: 80, published: '9000-9001' })], 2)[0];
    assert.deepEqual(ranged.perReplica, [{ hostPortStart: 9000, hostPortEnd: 9001, containerPort: 80, protocol: 'tcp' }]);
    assert.deepEqual(expandPorts([parseLongPort({ target: 80, hostIp: '[::1]' })], 1)[0].fixed, [{ containerPort: 80, hostIp: '::1', protocol: 'tcp' }]);
  });
});
