/**
 * AddrRanges, merge and subtract: the address sets that ipBlock peers (cidr minus except) and pod
 * addresses become before they are written as elements of an nftables interval set, whose
 * elements must be disjoint.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { AddrRanges, cidrContains, merge, subtract, type Range } from './ranges.js';
import { Dice } from './world.test-helper.js';

const r = (lo: number, hi: number): Range => [BigInt(lo), BigInt(hi)];
const v4 = (...build: Array<(a: AddrRanges) => AddrRanges>) => build.reduce((a, f) => f(a), new AddrRanges()).elements(4);

describe('AddrRanges', () => {
  test('a single address is one element, written without a range', () => {
    const a = new AddrRanges().addIp('10.0.0.2');
    assert.deepEqual(a.elements(4), ['10.0.0.2']);
    assert.deepEqual(a.ranges(4), [r(0x0a000002, 0x0a000002)]);
    assert.deepEqual(a.elements(6), []);
  });

  test('a block without except is its first to its last address', () => {
    assert.deepEqual(v4((a) => a.addBlock('10.1.0.0/16')), ['10.1.0.0-10.1.255.255']);
    assert.deepEqual(v4((a) => a.addBlock('192.0.2.7/32')), ['192.0.2.7']);
    assert.deepEqual(v4((a) => a.addBlock('0.0.0.0/0')), ['0.0.0.0-255.255.255.255']);
  });

  test('except cuts holes: at the start, in the middle, at the end', () => {
    assert.deepEqual(v4((a) => a.addBlock('10.0.0.0/24', ['10.0.0.0/25'])), ['10.0.0.128-10.0.0.255']);
    assert.deepEqual(v4((a) => a.addBlock('10.0.0.0/24', ['10.0.0.16/28'])), ['10.0.0.0-10.0.0.15', '10.0.0.32-10.0.0.255']);
    assert.deepEqual(v4((a) => a.addBlock('10.0.0.0/24', ['10.0.0.255/32'])), ['10.0.0.0-10.0.0.254']);
    assert.deepEqual(v4((a) => a.addBlock('10.0.0.0/30', ['10.0.0.1/32', '10.0.0.2/32'])), ['10.0.0.0', '10.0.0.3']);
  });

  test('overlapping and nested excepts cut once', () => {
    assert.deepEqual(
      v4((a) => a.addBlock('10.0.0.0/24', ['10.0.0.0/28', '10.0.0.0/29', '10.0.0.8/30', '10.0.0.64/26', '10.0.0.96/27'])),
      ['10.0.0.16-10.0.0.63', '10.0.0.128-10.0.0.255'],
    );
  });

  test('an except that covers the whole block leaves nothing', () => {
    assert.deepEqual(v4((a) => a.addBlock('10.0.0.0/24', ['10.0.0.0/24'])), []);
    assert.deepEqual(v4((a) => a.addBlock('10.0.0.0/24', ['10.0.0.0/25', '10.0.0.128/25'])), []);
  });

  test('an except only cuts its own block, not another one added to the same set', () => {
    assert.deepEqual(
      v4(
        (a) => a.addBlock('10.0.0.0/24', ['10.0.0.0/25']),
        (a) => a.addBlock('10.0.0.0/26'),
      ),
      ['10.0.0.0-10.0.0.63', '10.0.0.128-10.0.0.255'],
    );
  });

  test('adjacent and overlapping parts merge; a gap of one address does not', () => {
    assert.deepEqual(v4((a) => a.addIp('10.0.0.1').addIp('10.0.0.2').addIp('10.0.0.3')), ['10.0.0.1-10.0.0.3']);
    assert.deepEqual(v4((a) => a.addIp('10.0.0.1').addIp('10.0.0.3')), ['10.0.0.1', '10.0.0.3']);
    assert.deepEqual(v4((a) => a.addBlock('10.0.0.0/25').addBlock('10.0.0.128/25')), ['10.0.0.0-10.0.0.255']);
    assert.deepEqual(v4((a) => a.addBlock('10.0.0.0/24').addIp('10.0.0.9').addBlock('10.0.0.0/25')), ['10.0.0.0-10.0.0.255']);
    assert.deepEqual(v4((a) => a.addBlock('10.0.0.0/24').addIp('10.0.1.0')), ['10.0.0.0-10.0.1.0']);
    assert.deepEqual(v4((a) => a.addIp('10.0.0.255').addIp('10.0.1.0')), ['10.0.0.255-10.0.1.0'], 'merges across an octet boundary');
    // the same address twice is one element (nft refuses duplicates)
    assert.deepEqual(v4((a) => a.addIp('10.0.0.5').addIp('10.0.0.5')), ['10.0.0.5']);
  });

  test('elements come out sorted by address, whatever the order they went in', () => {
    const a = new AddrRanges().addIp('10.0.0.20').addBlock('10.0.0.128/30').addIp('9.255.255.255').addIp('10.0.0.3');
    assert.deepEqual(a.elements(4), ['9.255.255.255', '10.0.0.3', '10.0.0.20', '10.0.0.128-10.0.0.131']);
    // numeric, not text order
    assert.deepEqual(new AddrRanges().addIp('10.0.0.100').addIp('10.0.0.20').elements(4), ['10.0.0.20', '10.0.0.100']);
  });

  test('IPv6: blocks, excepts, single addresses, canonical text', () => {
    assert.deepEqual(new AddrRanges().addBlock('fd00::/64', ['fd00::/65']).elements(6), ['fd00::8000:0:0:0-fd00::ffff:ffff:ffff:ffff']);
    assert.deepEqual(new AddrRanges().addIp('FD00:0:0::0002').elements(6), ['fd00::2']);
    assert.deepEqual(new AddrRanges().addBlock('::/0', ['::1/128']).elements(6), ['::', '::2-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff']);
    assert.deepEqual(new AddrRanges().addIp('fd00::1').addIp('fd00::2').elements(6), ['fd00::1-fd00::2']);
  });

  test('the families stay apart', () => {
    const a = new AddrRanges().addIp('10.0.0.1').addIp('fd00::1').addBlock('::/0', ['fd00::/8']).addBlock('10.0.0.0/31');
    assert.deepEqual(a.elements(4), ['10.0.0.0-10.0.0.1']);
    // fd00::1 was added on its own: the block's except does not remove it
    assert.deepEqual(a.elements(6), ['::-fcff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', 'fd00::1', 'fe00::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff']);
    // ::a.b.c.d style does not leak into IPv4
    assert.deepEqual(new AddrRanges().addIp('::ffff:10.0.0.1').elements(4), []);
  });
});

describe('merge', () => {
  test('empty, one, unsorted, nested, touching, apart', () => {
    assert.deepEqual(merge([]), []);
    assert.deepEqual(merge([r(5, 9)]), [r(5, 9)]);
    assert.deepEqual(merge([r(20, 30), r(1, 2), r(10, 12)]), [r(1, 2), r(10, 12), r(20, 30)]);
    assert.deepEqual(merge([r(1, 100), r(5, 9), r(50, 60)]), [r(1, 100)]);
    assert.deepEqual(merge([r(1, 4), r(5, 9)]), [r(1, 9)]);
    assert.deepEqual(merge([r(5, 9), r(1, 4)]), [r(1, 9)]);
    assert.deepEqual(merge([r(1, 4), r(6, 9)]), [r(1, 4), r(6, 9)]);
    assert.deepEqual(merge([r(1, 5), r(3, 9), r(9, 9), r(10, 10)]), [r(1, 10)]);
  });

  test('does not change its input', () => {
    const input = [r(5, 9), r(1, 6)];
    merge(input);
    assert.deepEqual(input, [r(5, 9), r(1, 6)]);
  });

  test('handles 128-bit values', () => {
    const top = (1n << 128n) - 1n;
    assert.deepEqual(merge([[top - 1n, top], [0n, 0n], [1n, top - 2n]]), [[0n, top]]);
  });
});

describe('subtract', () => {
  test('a cut outside, over, inside, at either edge, and several cuts', () => {
    assert.deepEqual(subtract([r(10, 20)], [r(30, 40)]), [r(10, 20)]);
    assert.deepEqual(subtract([r(10, 20)], [r(0, 9)]), [r(10, 20)]);
    assert.deepEqual(subtract([r(10, 20)], [r(0, 100)]), []);
    assert.deepEqual(subtract([r(10, 20)], [r(10, 20)]), []);
    assert.deepEqual(subtract([r(10, 20)], [r(12, 14)]), [r(10, 11), r(15, 20)]);
    assert.deepEqual(subtract([r(10, 20)], [r(10, 10)]), [r(11, 20)]);
    assert.deepEqual(subtract([r(10, 20)], [r(20, 25)]), [r(10, 19)]);
    assert.deepEqual(subtract([r(10, 20)], [r(5, 12), r(18, 30)]), [r(13, 17)]);
    assert.deepEqual(subtract([r(10, 20), r(30, 40)], [r(15, 35)]), [r(10, 14), r(36, 40)]);
    assert.deepEqual(subtract([r(10, 20)], []), [r(10, 20)]);
    assert.deepEqual(subtract([], [r(1, 2)]), []);
  });

  test('the input ranges are merged first', () => {
    assert.deepEqual(subtract([r(10, 15), r(16, 20), r(12, 18)], [r(0, 1)]), [r(10, 20)]);
  });

  test('agrees with a bitmap on random ranges (seeded)', () => {
    const d = new Dice(7);
    const SPACE = 200;
    const rand = (): Range[] =>
      Array.from({ length: d.int(0, 6) }, () => {
        const lo = d.int(0, SPACE - 1);
        return r(lo, Math.min(SPACE - 1, lo + d.int(0, 40)));
      });
    const bits = (rs: Range[]) => {
      const b = new Array<boolean>(SPACE).fill(false);
      for (const [lo, hi] of rs) for (let i = Number(lo); i <= Number(hi); i++) b[i] = true;
      return b;
    };
    const wellFormed = (rs: Range[]) => rs.every(([lo, hi], i) => lo <= hi && (i === 0 || lo > rs[i - 1][1] + 1n));
    for (let n = 0; n < 500; n++) {
      const a = rand();
      const b = rand();
      const m = merge(a);
      assert.ok(wellFormed(m), `merge(${JSON.stringify(a, (_, v) => (typeof v === 'bigint' ? Number(v) : v))}) is sorted, disjoint, not adjacent`);
      assert.deepEqual(bits(m), bits(a));
      const s = subtract(a, b);
      assert.ok(wellFormed(s));
      const ba = bits(a);
      const bb = bits(b);
      assert.deepEqual(bits(s), ba.map((x, i) => x && !bb[i]));
    }
  });
});

describe('cidrContains', () => {
  test('inside, outside, edges, /0, /32, and never across families', () => {
    assert.equal(cidrContains('10.0.0.0/24', '10.0.0.0'), true);
    assert.equal(cidrContains('10.0.0.0/24', '10.0.0.255'), true);
    assert.equal(cidrContains('10.0.0.0/24', '10.0.1.0'), false);
    assert.equal(cidrContains('10.0.0.0/24', '9.255.255.255'), false);
    assert.equal(cidrContains('0.0.0.0/0', '203.0.113.9'), true);
    assert.equal(cidrContains('192.0.2.7/32', '192.0.2.7'), true);
    assert.equal(cidrContains('192.0.2.7/32', '192.0.2.8'), false);
    assert.equal(cidrContains('fd00:1::/64', 'fd00:1::ffff'), true);
    assert.equal(cidrContains('fd00:1::/64', 'fd00:2::1'), false);
    assert.equal(cidrContains('::/0', '10.0.0.1'), false);
    assert.equal(cidrContains('0.0.0.0/0', '::1'), false);
    assert.equal(cidrContains('0.0.0.0/0', '::ffff:10.0.0.1'), false);
  });
});
