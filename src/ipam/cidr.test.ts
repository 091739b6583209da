import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  addressIndex,
  broadcastAddress,
  canonicalCidr,
  canonicalIp,
  compareIp,
  containsCidr,
  containsIp,
  familyOf,
  firstUsable,
  formatCidr,
  formatIp,
  lastAddress,
  networkAddress,
  nthAddress,
  overlaps,
  parseCidr,
  parseIp,
  reservedAddresses,
  size,
  usableCount,
} from './cidr.js';
import { IpamError } from './errors.js';

function throwsMessage(fn: () => unknown, message: string | RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof IpamError, `expected IpamError, got ${String(err)}`);
    if (typeof message === 'string') assert.equal(err.message, message);
    else assert.match(err.message, message);
    return true;
  });
}

describe('parseIp / formatIp', () => {
  it('parses IPv4 and prints it back', () => {
    assert.deepEqual(parseIp('10.0.0.1'), { family: 4, value: 0x0a000001n });
    assert.equal(formatIp({ family: 4, value: 0xffffffffn }), '255.255.255.255');
    assert.equal(formatIp({ family: 4, value: 0n }), '0.0.0.0');
  });

  it('parses IPv6 and prints RFC 5952 form', () => {
    assert.equal(canonicalIp('FD00:0000:0:0::0001'), 'fd00::1');
    assert.equal(canonicalIp('2001:db8:0:0:1:0:0:1'), '2001:db8::1:0:0:1');
    assert.equal(canonicalIp('::'), '::');
    assert.equal(parseIp('::1').value, 1n);
    assert.equal(
      parseIp('ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff').value,
      (1n << 128n) - 1n,
    );
  });

  it('rejects octal-looking, short, out-of-range and zoned addresses', () => {
    throwsMessage(() => parseIp('010.0.0.1'), /invalid address "010.0.0.1": .*no leading zeros/);
    throwsMessage(() => parseIp('10.1'), /invalid address "10.1"/);
    throwsMessage(() => parseIp('10.0.0.256', 'gateway'), /^invalid gateway "10.0.0.256": /);
    throwsMessage(() => parseIp('0x0a.0.0.1'), /not a valid IPv4 or IPv6 address/);
    throwsMessage(() => parseIp('fe80::1%eth0'), /zone indexes/);
    throwsMessage(() => parseIp('fd00::1::2'), /not a valid IPv6 address/);
    throwsMessage(() => parseIp(''), /empty address/);
    throwsMessage(() => parseIp(' 10.0.0.1'), /invalid address " 10.0.0.1"/);
  });
});

describe('parseCidr', () => {
  it('parses and canonicalises', () => {
    assert.deepEqual(parseCidr('172.18.0.0/16'), { family: 4, network: 0xac120000n, prefix: 16 });
    assert.equal(canonicalCidr('FD12:3456:789A:0001::/64'), 'fd12:3456:789a:1::/64');
    assert.equal(canonicalCidr('0.0.0.0/0'), '0.0.0.0/0');
    assert.equal(canonicalCidr('::/0'), '::/0');
    assert.equal(canonicalCidr('10.0.0.7/32'), '10.0.0.7/32');
  });

  it('names the value and the fix', () => {
    throwsMessage(
      () => parseCidr('10.0.0.300/24'),
      /^invalid subnet "10.0.0.300\/24": 10.0.0.300 is not a valid IPv4 address/,
    );
    throwsMessage(
      () => parseCidr('10.0.0.5/24'),
      'subnet 10.0.0.5/24 is not a network address; did you mean 10.0.0.0/24?',
    );
    throwsMessage(
      () => parseCidr('fd00::1/64', { what: 'ip-range' }),
      'ip-range fd00::1/64 is not a network address; did you mean fd00::/64?',
    );
    throwsMessage(() => parseCidr('10.0.0.0'), /invalid subnet "10.0.0.0": missing prefix length/);
    throwsMessage(() => parseCidr('10.0.0.0/33'), /prefix length must be a number from 0 to 32 for IPv4/);
    throwsMessage(() => parseCidr('fd00::/129'), /from 0 to 128 for IPv6/);
    throwsMessage(() => parseCidr('10.0.0.0/024'), /prefix length/);
    throwsMessage(() => parseCidr('10.0.0.0/'), /prefix length/);
    throwsMessage(() => parseCidr('10.0.0.0/-1'), /prefix length/);
  });

  it('clears host bits when not strict, and reads bare addresses when allowed', () => {
    assert.equal(formatCidr(parseCidr('10.0.0.5/24', { strict: false })), '10.0.0.0/24');
    assert.equal(formatCidr(parseCidr('10.1.2.3', { allowBareAddress: true })), '10.1.2.3/32');
    assert.equal(formatCidr(parseCidr('fd00::9', { allowBareAddress: true })), 'fd00::9/128');
  });

  it('detects the family', () => {
    assert.equal(familyOf('10.0.0.1'), 4);
    assert.equal(familyOf('10.0.0.0/8'), 4);
    assert.equal(familyOf('fd00::/8'), 6);
    assert.equal(familyOf('::ffff:1.2.3.4'), 6);
    assert.equal(familyOf('nonsense'), undefined);
    assert.equal(familyOf('10.0.0.0/99'), undefined);
  });
});

describe('prefix math', () => {
  it('sizes, network, broadcast and last address', () => {
    assert.equal(size('10.0.0.0/24'), 256n);
    assert.equal(size('0.0.0.0/0'), 1n << 32n);
    assert.equal(size('fd00::/64'), 1n << 64n);
    assert.equal(size('::/0'), 1n << 128n);
    assert.equal(formatIp(networkAddress('10.0.0.0/24')), '10.0.0.0');
    assert.equal(formatIp(broadcastAddress('10.0.0.0/24')!), '10.0.0.255');
    assert.equal(broadcastAddress('10.0.0.0/31'), undefined);
    assert.equal(broadcastAddress('fd00::/64'), undefined);
    assert.equal(formatIp(lastAddress('fd00::/64')), 'fd00::ffff:ffff:ffff:ffff');
    assert.equal(formatIp(lastAddress('255.255.255.0/24')), '255.255.255.255');
  });

  it('reserved and usable addresses, including RFC 3021 /31 and /32', () => {
    assert.deepEqual(reservedAddresses('10.0.0.0/30').map(formatIp), ['10.0.0.0', '10.0.0.3']);
    assert.deepEqual(reservedAddresses('10.0.0.0/31'), []);
    assert.deepEqual(reservedAddresses('fd00::/64').map(formatIp), ['fd00::']);
    assert.equal(usableCount('10.0.0.0/30'), 2n);
    assert.equal(usableCount('10.0.0.0/31'), 2n);
    assert.equal(usableCount('10.0.0.0/32'), 1n);
    assert.equal(formatIp(firstUsable('172.18.0.0/16')), '172.18.0.1');
    assert.equal(formatIp(firstUsable('10.0.0.0/31')), '10.0.0.0');
    assert.equal(formatIp(firstUsable('fd00:1::/64')), 'fd00:1::1');
  });

  it('contains and overlaps', () => {
    assert.ok(containsIp('10.0.0.0/8', '10.255.255.255'));
    assert.ok(!containsIp('10.0.0.0/8', '11.0.0.0'));
    assert.ok(!containsIp('10.0.0.0/8', '::a00:1'));
    assert.ok(containsIp('0.0.0.0/0', '1.2.3.4'));
    assert.ok(containsCidr('10.0.0.0/8', '10.1.0.0/16'));
    assert.ok(containsCidr('10.0.0.0/8', '10.0.0.0/8'));
    assert.ok(!containsCidr('10.1.0.0/16', '10.0.0.0/8'));
    assert.ok(overlaps('10.1.0.0/16', '10.0.0.0/8'));
    assert.ok(overlaps('10.0.0.0/8', '10.1.0.0/16'));
    assert.ok(!overlaps('10.0.0.0/24', '10.0.1.0/24'));
    assert.ok(!overlaps('10.0.0.0/8', 'fd00::/8'));
    assert.ok(overlaps('fd00:1::/64', 'fd00::/16'));
    assert.ok(overlaps('192.168.1.7', '192.168.1.0/24'));
  });

  it('nth address and index are inverse, with bounds', () => {
    assert.equal(formatIp(nthAddress('172.18.0.0/16', 258)), '172.18.1.2');
    assert.equal(addressIndex('172.18.0.0/16', '172.18.1.2'), 258n);
    const v6 = 'fd00:1:2:3::/64';
    const ip = nthAddress(v6, (1n << 64n) - 1n);
    assert.equal(formatIp(ip), 'fd00:1:2:3:ffff:ffff:ffff:ffff');
    assert.equal(addressIndex(v6, ip), (1n << 64n) - 1n);
    assert.throws(() => nthAddress('10.0.0.0/30', 4), RangeError);
    assert.throws(() => nthAddress('10.0.0.0/30', -1), RangeError);
    assert.throws(() => addressIndex('10.0.0.0/30', '10.0.0.4'), RangeError);
  });

  it('orders addresses numerically, IPv4 first', () => {
    const sorted = ['fd00::1', '10.0.0.10', '10.0.0.9', '9.0.0.1'].sort(compareIp);
    assert.deepEqual(sorted, ['9.0.0.1', '10.0.0.9', '10.0.0.10', 'fd00::1']);
  });
});
