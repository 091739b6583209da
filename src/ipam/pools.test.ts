import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { IpamError } from './errors.js';
import {
  BRIDGE_IPV4_POOLS,
  DEFAULT_IPV4_POOLS,
  generateUlaPrefix,
  pickSubnet,
  poolSubnetCount,
  ulaPools,
} from './pools.js';

describe('pickSubnet IPv4', () => {
  it('starts at 172.18.0.0/16 and never gives 172.17.0.0/16 to a user network', () => {
    assert.equal(pickSubnet(4, []), '172.18.0.0/16');
    assert.equal(pickSubnet(4, ['172.18.0.0/16']), '172.19.0.0/16');
  });

  it('the bridge pool starts at 172.17.0.0/16 and falls back when it is routed', () => {
    assert.equal(pickSubnet(4, [], BRIDGE_IPV4_POOLS), '172.17.0.0/16');
    assert.equal(pickSubnet(4, ['172.17.5.0/24'], BRIDGE_IPV4_POOLS), '172.18.0.0/16');
  });

  it('skips subnets overlapping networks and host routes, either way round', () => {
    const used = [
      '172.18.0.0/16', // a weft network
      '172.19.3.0/24', // a host route inside the next /16
      '172.20.0.0/14', // a route covering 172.20-23
      '10.0.0.0/8', // unrelated
      'fd00::/8', // the other family: ignored
      '172.24.9.9', // a host route (bare address)
    ];
    assert.equal(pickSubnet(4, used), '172.25.0.0/16');
  });

  it('ignores default routes', () => {
    assert.equal(pickSubnet(4, ['0.0.0.0/0', 'default']), '172.18.0.0/16');
    assert.equal(pickSubnet(4, ['multicast', '']), '172.18.0.0/16');
  });

  it('moves to 192.168.0.0/16 as /20s once 172.18-31 are taken', () => {
    assert.equal(pickSubnet(4, ['172.16.0.0/12']), '192.168.0.0/20');
    assert.equal(pickSubnet(4, ['172.16.0.0/12', '192.168.0.0/24', '192.168.16.1']), '192.168.32.0/20');
  });

  it('says all pools are in use, with the count and the fix', () => {
    assert.equal(poolSubnetCount(DEFAULT_IPV4_POOLS), 14n + 16n);
    assert.throws(
      () => pickSubnet(4, ['172.16.0.0/12', '192.168.0.0/16']),
      (err: unknown) =>
        err instanceof IpamError &&
        err.code === 'exhausted' &&
        err.message === 'all default address pools are in use (30 IPv4 subnets); give --subnet',
    );
  });

  it('custom pools are checked', () => {
    assert.equal(pickSubnet(4, ['10.10.0.0/24'], [{ base: '10.10.0.0/16', size: 24 }]), '10.10.1.0/24');
    assert.throws(() => pickSubnet(4, [], [{ base: '10.10.0.0/16', size: 8 }]), /size 8 must be a prefix length from 16 to 32/);
    assert.throws(() => pickSubnet(4, [], [{ base: 'fd00::/48', size: 64 }]), /is IPv6, expected an IPv4 pool/);
    assert.throws(() => pickSubnet(4, [], [{ base: '10.10.0.1/16', size: 24 }]), /did you mean 10.10.0.0\/16/);
    assert.throws(
      () => pickSubnet(4, ['10.0.0.0/8'], [{ base: '10.10.0.0/16', size: 24 }]),
      /: all address pools are in use \(256 IPv4 subnets\); give --subnet$/,
    );
  });
});

describe('pickSubnet IPv6', () => {
  const prefix = 'fd12:3456:789a::/48';

  it('needs the agent ULA pool', () => {
    assert.throws(() => pickSubnet(6, []), /no IPv6 address pool is configured.*give an IPv6 --subnet/);
  });

  it('cuts the ULA /48 into /64s, skipping used ones without enumerating', () => {
    const pools = ulaPools(prefix);
    assert.deepEqual(pools, [{ base: 'fd12:3456:789a::/48', size: 64 }]);
    assert.equal(pickSubnet(6, [], pools), 'fd12:3456:789a::/64');
    assert.equal(pickSubnet(6, ['fd12:3456:789a::/64', '10.0.0.0/8'], pools), 'fd12:3456:789a:1::/64');
    // a route over the first half of the /48: one jump, not 32768 steps
    assert.equal(pickSubnet(6, ['fd12:3456:789a::/49'], pools), 'fd12:3456:789a:8000::/64');
    assert.throws(() => pickSubnet(6, ['fd12:3456::/32'], pools), /all address pools are in use \(65536 IPv6 subnets\)/);
  });

  it('a huge pool is fine too', () => {
    assert.equal(pickSubnet(6, ['fd00::/9'], [{ base: 'fd00::/8', size: 64 }]), 'fd80::/64');
  });

  it('generates a random ULA /48 in fd00::/8', () => {
    const a = generateUlaPrefix();
    assert.match(a, /^fd[0-9a-f]{2}:[0-9a-f]{1,4}:[0-9a-f]{1,4}::\/48$|^fd[0-9a-f]{2}(:[0-9a-f]{1,4})?::\/48$/);
    assert.doesNotThrow(() => ulaPools(a));
    const fixed = generateUlaPrefix(() => Uint8Array.from([0x12, 0x34, 0x56, 0x78, 0x9a]));
    assert.equal(fixed, prefix);
    const zero = generateUlaPrefix(() => new Uint8Array(5));
    assert.equal(zero, 'fd00::/48');
  });

  it('rejects a prefix that is not a ULA /48', () => {
    assert.throws(() => ulaPools('fd12:3456::/32'), /must be an IPv6 \/48 inside fd00::\/8/);
    assert.throws(() => ulaPools('2001:db8::/48'), /must be an IPv6 \/48 inside fd00::\/8/);
    assert.throws(() => ulaPools('10.0.0.0/8'), /must be an IPv6 \/48/);
  });
});
