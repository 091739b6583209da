import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { IpamSubnet } from '../model/types.js';
import { IpamError, type IpamErrorCode } from './errors.js';
import { ulaPools } from './pools.js';
import { type ResolveIpamInput, resolveIpam } from './validate.js';

const ULA = ulaPools('fd12:3456:789a::/48');

function input(over: Partial<ResolveIpamInput>): ResolveIpamInput {
  return { name: 'web', enableIPv6: false, networks: [], routes: [], ipv6Pools: ULA, ...over };
}

function sub(subnet: string, gateway: string, auto = false): IpamSubnet {
  return { subnet, gateway, family: subnet.includes(':') ? 6 : 4, auto };
}

function rejects(over: Partial<ResolveIpamInput>, message: string | RegExp, code: IpamErrorCode = 'invalid'): void {
  assert.throws(
    () => resolveIpam(input(over)),
    (err: unknown) => {
      assert.ok(err instanceof IpamError, String(err));
      if (typeof message === 'string') assert.equal(err.message, message);
      else assert.match(err.message, message);
      assert.equal(err.code, code);
      return true;
    },
  );
}

describe('resolveIpam', () => {
  it('picks an IPv4 subnet and the first address as gateway when none is given', () => {
    assert.deepEqual(resolveIpam(input({})), [sub('172.18.0.0/16', '172.18.0.1', true)]);
  });

  it('picks around other networks and host routes', () => {
    const got = resolveIpam(
      input({
        networks: [{ name: 'bridge', subnets: [sub('172.17.0.0/16', '172.17.0.1')] }, { name: 'a', subnets: [sub('172.18.0.0/16', '172.18.0.1')] }],
        routes: [{ dst: '172.19.0.0/24', dev: 'eth1' }, '0.0.0.0/0'],
      }),
    );
    assert.deepEqual(got, [sub('172.20.0.0/16', '172.20.0.1', true)]);
  });

  it('adds an IPv6 /64 from the ULA pool with enableIPv6', () => {
    const got = resolveIpam(input({ enableIPv6: true }));
    assert.deepEqual(got, [sub('172.18.0.0/16', '172.18.0.1', true), sub('fd12:3456:789a::/64', 'fd12:3456:789a::1', true)]);
  });

  it('without enableIPv6, IPv6 follows from a given IPv6 subnet', () => {
    const base = { name: 'web', networks: [], routes: [], ipv6Pools: ULA };
    assert.deepEqual(resolveIpam(base), [sub('172.18.0.0/16', '172.18.0.1', true)]);
    assert.deepEqual(resolveIpam({ ...base, config: [{ subnet: 'fd00:1::/64' }] }), [
      sub('172.18.0.0/16', '172.18.0.1', true),
      sub('fd00:1::/64', 'fd00:1::1'),
    ]);
  });

  it('no IPv4 when the caller says so', () => {
    assert.deepEqual(resolveIpam(input({ enableIPv4: false })), []);
    assert.deepEqual(resolveIpam(input({ enableIPv4: false, enableIPv6: true })), [
      sub('fd12:3456:789a::/64', 'fd12:3456:789a::1', true),
    ]);
  });

  it('keeps given subnets, canonical, and only auto-picks the missing family', () => {
    const got = resolveIpam(
      input({
        enableIPv6: true,
        config: [
          { subnet: 'FD00:AB::/64', gateway: 'fd00:ab::fe' },
          { subnet: '10.5.0.0/24', ipRange: '10.5.0.128/25' },
          { subnet: '10.6.0.0/24', gateway: '10.6.0.254' },
        ],
      }),
    );
    assert.deepEqual(got, [
      { subnet: '10.5.0.0/24', ipRange: '10.5.0.128/25', gateway: '10.5.0.1', family: 4, auto: false },
      sub('10.6.0.0/24', '10.6.0.254'),
      sub('fd00:ab::/64', 'fd00:ab::fe'),
    ]);
    const v6only = resolveIpam(input({ enableIPv6: true, config: [{ subnet: 'fd00:ab::/64' }] }));
    assert.deepEqual(v6only, [sub('172.18.0.0/16', '172.18.0.1', true), sub('fd00:ab::/64', 'fd00:ab::1')]);
  });

  it('auto-picks around the subnets given in the same request', () => {
    const got = resolveIpam(input({ enableIPv6: true, config: [{ subnet: 'fd12:3456:789a::/56' }] }));
    assert.equal(got[1].subnet, 'fd12:3456:789a::/56');
    assert.equal(got[0].subnet, '172.18.0.0/16');
  });

  it('accepts /31 with both addresses usable', () => {
    assert.deepEqual(resolveIpam(input({ config: [{ subnet: '10.9.0.0/31' }] })), [sub('10.9.0.0/31', '10.9.0.0')]);
    assert.deepEqual(resolveIpam(input({ config: [{ subnet: '10.9.0.0/31', gateway: '10.9.0.1' }] })), [
      sub('10.9.0.0/31', '10.9.0.1'),
    ]);
  });

  it('rejects bad CIDRs with the value and the fix', () => {
    rejects({ config: [{ subnet: '10.0.0.300/24' }] }, /^invalid subnet "10.0.0.300\/24": 10.0.0.300 is not a valid IPv4 address/);
    rejects({ config: [{ subnet: '10.0.0.5/24' }] }, 'subnet 10.0.0.5/24 is not a network address; did you mean 10.0.0.0/24?');
    rejects({ config: [{ subnet: '10.0.0.0/32' }] }, /subnet 10.0.0.0\/32 is too small/);
    rejects({ config: [{ subnet: '10.0.0.0/24', ipRange: '10.0.0.5/28' }] }, 'ip-range 10.0.0.5/28 is not a network address; did you mean 10.0.0.0/28?');
  });

  it('rejects an ip-range outside the subnet or of the other family', () => {
    rejects(
      { config: [{ subnet: '10.0.0.0/24', ipRange: '10.0.1.0/28' }] },
      'ip-range 10.0.1.0/28 is outside subnet 10.0.0.0/24; give a range inside it',
    );
    rejects({ config: [{ subnet: '10.0.0.0/24', ipRange: '10.0.0.0/16' }] }, /ip-range 10.0.0.0\/16 is outside subnet/);
    rejects({ config: [{ subnet: '10.0.0.0/24', ipRange: 'fd00::/64' }] }, 'ip-range fd00::/64 is IPv6 but subnet 10.0.0.0/24 is IPv4');
  });

  it('rejects a bad gateway', () => {
    rejects({ config: [{ subnet: '10.0.0.0/24', gateway: '10.0.1.1' }] }, 'gateway 10.0.1.1 is outside subnet 10.0.0.0/24; give an address inside it');
    rejects(
      { config: [{ subnet: '10.0.0.0/24', gateway: '10.0.0.0' }] },
      'gateway 10.0.0.0 is the network address of 10.0.0.0/24; use a host address such as 10.0.0.1',
    );
    rejects(
      { config: [{ subnet: '10.0.0.0/24', gateway: '10.0.0.255' }] },
      'gateway 10.0.0.255 is the broadcast address of 10.0.0.0/24; use a host address such as 10.0.0.1',
    );
    rejects({ config: [{ subnet: '10.0.0.0/24', gateway: '10.0.0.x' }] }, /^invalid gateway "10.0.0.x"/);
    rejects({ enableIPv6: true, config: [{ subnet: 'fd00::/64', gateway: '10.0.0.1' }] }, 'gateway 10.0.0.1 is IPv4 but subnet fd00::/64 is IPv6');
    rejects({ enableIPv6: true, config: [{ subnet: 'fd00::/64', gateway: 'fd00::' }] }, /gateway fd00:: is the network address of fd00::\/64/);
  });

  it('rejects an ip-range or gateway without a subnet', () => {
    rejects({ config: [{ gateway: '10.0.0.1' }] }, /^gateway 10.0.0.1 needs a subnet/);
    rejects({ config: [{ ipRange: '10.0.0.0/28' }] }, /^ip-range 10.0.0.0\/28 needs a subnet/);
  });

  it('rejects a family that is not enabled', () => {
    rejects({ config: [{ subnet: 'fd00::/64' }] }, 'IPv6 subnet fd00::/64 given but IPv6 is not enabled for network "web"; add --ipv6');
    rejects({ enableIPv4: false, config: [{ subnet: '10.0.0.0/24' }] }, 'IPv4 subnet 10.0.0.0/24 given but IPv4 is disabled for network "web"');
  });

  it('names the overlapping subnet, network or route', () => {
    rejects(
      { config: [{ subnet: '10.0.0.0/16' }, { subnet: '10.0.5.0/24' }] },
      'subnets 10.0.0.0/16 and 10.0.5.0/24 overlap; give non-overlapping subnets',
      'overlap',
    );
    rejects(
      { config: [{ subnet: '172.18.4.0/24' }], networks: [{ name: 'front', subnets: [sub('172.18.0.0/16', '172.18.0.1')] }] },
      'subnet 172.18.4.0/24 overlaps subnet 172.18.0.0/16 of network "front"; choose another subnet',
      'overlap',
    );
    rejects(
      { config: [{ subnet: '10.0.0.0/8' }], routes: [{ dst: '10.3.0.0/16', dev: 'eth0' }] },
      'subnet 10.0.0.0/8 overlaps the host route to 10.3.0.0/16 (dev eth0); choose another subnet',
      'overlap',
    );
    rejects({ config: [{ subnet: '192.168.1.0/24' }], routes: ['192.168.1.1'] }, /overlaps the host route to 192.168.1.1;/, 'overlap');
    // default routes are not conflicts
    assert.equal(resolveIpam(input({ config: [{ subnet: '10.0.0.0/8' }], routes: ['0.0.0.0/0', 'default'] }))[0].subnet, '10.0.0.0/8');
  });

  it('reports exhausted pools', () => {
    rejects({ routes: ['172.16.0.0/12', '192.168.0.0/16'] }, 'all default address pools are in use (30 IPv4 subnets); give --subnet', 'exhausted');
    rejects({ enableIPv6: true, enableIPv4: false, ipv6Pools: undefined }, /no IPv6 address pool is configured/);
  });
});
