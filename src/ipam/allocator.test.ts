import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { IpamSubnet } from '../model/types.js';
import { openSqliteStore } from '../store/sqlite.js';
import type { Store } from '../store/types.js';
import {
  allocate,
  allocationKey,
  cursorKey,
  listAllocations,
  prepareClaim,
  prepareRelease,
  release,
  releaseNetwork,
  releaseNetworkOps,
  releaseOwner,
} from './allocator.js';
import { compareIp, containsIp } from './cidr.js';
import { IpamError, type IpamErrorCode } from './errors.js';

const NET = 'a'.repeat(64);
const V4: IpamSubnet = { subnet: '172.18.0.0/24', gateway: '172.18.0.1', family: 4, auto: true };
const V6: IpamSubnet = { subnet: 'fd12:3456:789a:1::/64', gateway: 'fd12:3456:789a:1::1', family: 6, auto: true };

async function rejectsWith(p: Promise<unknown>, code: IpamErrorCode, message: string | RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof IpamError, String(err));
    assert.equal(err.code, code);
    if (typeof message === 'string') assert.equal(err.message, message);
    else assert.match(err.message, message);
    return true;
  });
}

describe('allocator (SQLite store in memory)', () => {
  let store: Store;
  beforeEach(() => {
    store = openSqliteStore(':memory:');
  });
  afterEach(async () => {
    await store.close();
  });

  it('allocates sequentially, skipping network and gateway, and records the owner', async () => {
    assert.equal(await allocate(store, NET, V4, 'c1'), '172.18.0.2');
    assert.equal(await allocate(store, NET, V4, 'c2', { ownerLabel: 'container web-2' }), '172.18.0.3');
    assert.equal(await allocate(store, NET, V4, 'c3'), '172.18.0.4');
    const list = await listAllocations(store, NET);
    assert.deepEqual(
      list.map((a) => [a.ip, a.owner, a.subnet, a.static]),
      [
        ['172.18.0.2', 'c1', '172.18.0.0/24', false],
        ['172.18.0.3', 'c2', '172.18.0.0/24', false],
        ['172.18.0.4', 'c3', '172.18.0.0/24', false],
      ],
    );
    assert.equal(list[1].label, 'container web-2');
    assert.ok(!Number.isNaN(Date.parse(list[0].allocated)));
  });

  it('uses the documented key layout', async () => {
    await allocate(store, NET, V4, 'c1');
    const kv = await store.get(`/weft/ipam/${NET}/addr/172.18.0.2`);
    assert.ok(kv);
    assert.equal(JSON.parse(kv.value).owner, 'c1');
    assert.equal(allocationKey(NET, '172.18.0.2'), kv.key);
    const cursor = await store.get(`/weft/ipam/${NET}/cursor/172.18.0.0_24`);
    assert.deepEqual(JSON.parse(cursor!.value), { next: '172.18.0.3' });
    assert.equal(cursorKey(NET, '172.18.0.0/24'), cursor!.key);
    assert.throws(() => allocationKey('bad/id', '10.0.0.1'), /invalid network id/);
  });

  it('gives a static address, idempotently for its owner, and refuses it to others', async () => {
    assert.equal(await allocate(store, NET, V4, 'c1', { requested: '172.18.0.5' }), '172.18.0.5');
    assert.equal(await allocate(store, NET, V4, 'c1', { requested: '172.18.0.5' }), '172.18.0.5');
    await rejectsWith(
      allocate(store, NET, V4, 'c2', { requested: '172.18.0.5', networkName: 'web' }),
      'in-use',
      'address 172.18.0.5 is already in use by container c1 (network web)',
    );
    await allocate(store, NET, V4, 'c3', { requested: '172.18.0.6', ownerLabel: 'container db' });
    await rejectsWith(allocate(store, NET, V4, 'c4', { requested: '172.18.0.6' }), 'in-use', /already in use by container db /);
    const list = await listAllocations(store, NET);
    assert.deepEqual(list.map((a) => [a.ip, a.owner, a.static]), [
      ['172.18.0.5', 'c1', true],
      ['172.18.0.6', 'c3', true],
    ]);
  });

  it('refuses static addresses outside the subnet or reserved, naming them', async () => {
    const o = { networkName: 'web' };
    await rejectsWith(
      allocate(store, NET, V4, 'c1', { ...o, requested: '10.0.0.5' }),
      'invalid',
      'address 10.0.0.5 is outside subnet 172.18.0.0/24 (network web)',
    );
    await rejectsWith(
      allocate(store, NET, V4, 'c1', { ...o, requested: 'fd00::5' }),
      'invalid',
      'address fd00::5 is outside subnet 172.18.0.0/24 (network web)',
    );
    await rejectsWith(
      allocate(store, NET, V4, 'c1', { ...o, requested: '172.18.0.1' }),
      'invalid',
      'address 172.18.0.1 is the gateway of network web; give another address in 172.18.0.0/24',
    );
    await rejectsWith(
      allocate(store, NET, V4, 'c1', { ...o, requested: '172.18.0.0' }),
      'invalid',
      'address 172.18.0.0 is the network address of 172.18.0.0/24 (network web)',
    );
    await rejectsWith(
      allocate(store, NET, V4, 'c1', { ...o, requested: '172.18.0.255' }),
      'invalid',
      'address 172.18.0.255 is the broadcast address of 172.18.0.0/24 (network web)',
    );
    await rejectsWith(allocate(store, NET, V4, 'c1', { requested: '172.18.0.1234' }), 'invalid', /^invalid address "172.18.0.1234"/);
    assert.deepEqual(await listAllocations(store, NET), []);
  });

  it('a static address outside the ip-range is fine; dynamic ones step over statics', async () => {
    const ranged: IpamSubnet = { ...V4, ipRange: '172.18.0.128/25' };
    assert.equal(await allocate(store, NET, ranged, 's', { requested: '172.18.0.7' }), '172.18.0.7');
    assert.equal(await allocate(store, NET, ranged, 's2', { requested: '172.18.0.129' }), '172.18.0.129');
    assert.equal(await allocate(store, NET, ranged, 'd1'), '172.18.0.128');
    assert.equal(await allocate(store, NET, ranged, 'd2'), '172.18.0.130');
    assert.equal(await allocate(store, NET, ranged, 'd3'), '172.18.0.131');
  });

  it('goes on from the cursor after a release, then wraps and reuses', async () => {
    const small: IpamSubnet = { subnet: '10.1.0.0/29', gateway: '10.1.0.1', family: 4, auto: false };
    const got: string[] = [];
    for (let i = 0; i < 5; i++) got.push(await allocate(store, NET, small, `c${i}`));
    assert.deepEqual(got, ['10.1.0.2', '10.1.0.3', '10.1.0.4', '10.1.0.5', '10.1.0.6']);
    assert.equal(await release(store, NET, '10.1.0.3', 'c1'), true);
    assert.equal(await release(store, NET, '10.1.0.5', 'c3'), true);
    // the cursor wrapped past .7 (broadcast) and .0/.1: the first free from the start is .3
    assert.equal(await allocate(store, NET, small, 'n1'), '10.1.0.3');
    assert.equal(await allocate(store, NET, small, 'n2'), '10.1.0.5');
    await rejectsWith(allocate(store, NET, small, 'n3', { networkName: 'small' }), 'exhausted', 'no free address in 10.1.0.0/29 (network small)');
  });

  it('does not hand a just-released address out again at once', async () => {
    assert.equal(await allocate(store, NET, V4, 'c1'), '172.18.0.2');
    assert.equal(await allocate(store, NET, V4, 'c2'), '172.18.0.3');
    assert.ok(await release(store, NET, '172.18.0.2', 'c1'));
    assert.equal(await allocate(store, NET, V4, 'c3'), '172.18.0.4');
  });

  it('a /30 holds one container', async () => {
    const s: IpamSubnet = { subnet: '172.18.0.0/30', gateway: '172.18.0.1', family: 4, auto: false };
    assert.equal(await allocate(store, NET, s, 'c1'), '172.18.0.2');
    await rejectsWith(allocate(store, NET, s, 'c2', { networkName: 'tiny' }), 'exhausted', 'no free address in 172.18.0.0/30 (network tiny)');
    await rejectsWith(allocate(store, NET, s, 'c2', { networkName: 'tiny' }), 'exhausted', 'no free address in 172.18.0.0/30 (network tiny)');
    assert.equal((await listAllocations(store, NET)).length, 1);
  });

  it('a /29 with an ip-range runs out at the range, not the subnet', async () => {
    const s: IpamSubnet = { subnet: '10.0.0.0/29', ipRange: '10.0.0.4/30', gateway: '10.0.0.1', family: 4, auto: false };
    const got = [await allocate(store, NET, s, 'a'), await allocate(store, NET, s, 'b'), await allocate(store, NET, s, 'c')];
    // .7 is the subnet's broadcast address
    assert.deepEqual(got, ['10.0.0.4', '10.0.0.5', '10.0.0.6']);
    await rejectsWith(allocate(store, NET, s, 'd', { networkName: 'r' }), 'exhausted', 'no free address in ip-range 10.0.0.4/30 of 10.0.0.0/29 (network r)');
    // a static address outside the range still works
    assert.equal(await allocate(store, NET, s, 'd', { requested: '10.0.0.2' }), '10.0.0.2');
  });

  it('50 concurrent allocations never share an address', async () => {
    const owners = Array.from({ length: 50 }, (_, i) => `c${i}`);
    const ips = await Promise.all(owners.map((o) => allocate(store, NET, V4, o)));
    assert.equal(new Set(ips).size, 50);
    for (const ip of ips) {
      assert.ok(containsIp(V4.subnet, ip));
      assert.ok(!['172.18.0.0', '172.18.0.1', '172.18.0.255'].includes(ip), ip);
    }
    const list = await listAllocations(store, NET);
    assert.equal(list.length, 50);
    // each owner got what it was told
    const byOwner = new Map(list.map((a) => [a.owner, a.ip]));
    owners.forEach((o, i) => assert.equal(byOwner.get(o), ips[i]));
  });

  it('concurrent allocations on a small subnet: the rest get "no free address"', async () => {
    const s: IpamSubnet = { subnet: '10.2.0.0/29', gateway: '10.2.0.1', family: 4, auto: false };
    const results = await Promise.allSettled(
      Array.from({ length: 12 }, (_, i) => allocate(store, NET, s, `c${i}`, { networkName: 'small' })),
    );
    const ok = results.filter((r) => r.status === 'fulfilled').map((r) => (r as PromiseFulfilledResult<string>).value);
    assert.deepEqual(ok.sort(compareIp), ['10.2.0.2', '10.2.0.3', '10.2.0.4', '10.2.0.5', '10.2.0.6']);
    for (const r of results) {
      if (r.status === 'rejected') {
        assert.ok(r.reason instanceof IpamError);
        assert.equal(r.reason.message, 'no free address in 10.2.0.0/29 (network small)');
      }
    }
  });

  it('concurrent requests for one static address: one wins, the others hear who has it', async () => {
    const results = await Promise.allSettled(
      Array.from({ length: 10 }, (_, i) => allocate(store, NET, V4, `c${i}`, { requested: '172.18.0.9', networkName: 'web' })),
    );
    const ok = results.filter((r) => r.status === 'fulfilled');
    assert.equal(ok.length, 1);
    const holder = (await listAllocations(store, NET))[0].owner;
    for (const r of results) {
      if (r.status === 'rejected') {
        assert.equal((r.reason as Error).message, `address 172.18.0.9 is already in use by container ${holder} (network web)`);
      }
    }
  });

  it('IPv6 /64: sequential, static, concurrent, without enumerating the space', async () => {
    assert.equal(await allocate(store, NET, V6, 'c1'), 'fd12:3456:789a:1::2');
    assert.equal(await allocate(store, NET, V6, 'c2'), 'fd12:3456:789a:1::3');
    assert.equal(await allocate(store, NET, V6, 'c3', { requested: 'FD12:3456:789A:1:0:0:0:ABCD' }), 'fd12:3456:789a:1::abcd');
    await rejectsWith(allocate(store, NET, V6, 'c4', { requested: 'fd12:3456:789a:2::1' }), 'invalid', /is outside subnet fd12:3456:789a:1::\/64/);
    await rejectsWith(allocate(store, NET, V6, 'c4', { requested: 'fd12:3456:789a:1::' }), 'invalid', /is the network address/);
    // the last address of a /64 is a host address (no broadcast in IPv6)
    assert.equal(await allocate(store, NET, V6, 'c5', { requested: 'fd12:3456:789a:1:ffff:ffff:ffff:ffff' }), 'fd12:3456:789a:1:ffff:ffff:ffff:ffff');
    const ips = await Promise.all(Array.from({ length: 30 }, (_, i) => allocate(store, NET, V6, `p${i}`)));
    assert.equal(new Set(ips).size, 30);
    assert.equal((await listAllocations(store, NET)).length, 34);
    assert.ok(await store.get(`/weft/ipam/${NET}/addr/fd12:3456:789a:1::abcd`));
  });

  it('IPv6 cursor wraps at the end of a huge range', async () => {
    await store.put(cursorKey(NET, V6.subnet), JSON.stringify({ next: 'fd12:3456:789a:1:ffff:ffff:ffff:ffff' }));
    assert.equal(await allocate(store, NET, V6, 'c1'), 'fd12:3456:789a:1:ffff:ffff:ffff:ffff');
    assert.equal(await allocate(store, NET, V6, 'c2'), 'fd12:3456:789a:1::2');
  });

  it('IPv6 ip-range exhaustion', async () => {
    const s: IpamSubnet = { ...V6, ipRange: 'fd12:3456:789a:1::/126' };
    assert.equal(await allocate(store, NET, s, 'a'), 'fd12:3456:789a:1::2');
    assert.equal(await allocate(store, NET, s, 'b'), 'fd12:3456:789a:1::3');
    await rejectsWith(
      allocate(store, NET, s, 'c', { networkName: 'six' }),
      'exhausted',
      'no free address in ip-range fd12:3456:789a:1::/126 of fd12:3456:789a:1::/64 (network six)',
    );
  });

  it('IPv4 and IPv6 of one network live side by side', async () => {
    assert.equal(await allocate(store, NET, V4, 'c1'), '172.18.0.2');
    assert.equal(await allocate(store, NET, V6, 'c1'), 'fd12:3456:789a:1::2');
    assert.equal(await allocate(store, NET, V4, 'c2'), '172.18.0.3');
    assert.deepEqual((await listAllocations(store, NET)).map((a) => a.ip), ['172.18.0.2', '172.18.0.3', 'fd12:3456:789a:1::2']);
  });

  it('release checks the owner', async () => {
    const ip = await allocate(store, NET, V4, 'c1');
    assert.equal(await release(store, NET, ip, 'intruder'), false);
    assert.equal((await listAllocations(store, NET)).length, 1);
    assert.equal(await release(store, NET, ip, 'c1'), true);
    assert.equal(await release(store, NET, ip, 'c1'), false);
    assert.equal(await release(store, NET, '172.18.0.77', 'c1'), false);
    assert.deepEqual(await listAllocations(store, NET), []);
  });

  it('releaseOwner frees only that owner, in both families', async () => {
    await allocate(store, NET, V4, 'c1');
    await allocate(store, NET, V4, 'c2');
    await allocate(store, NET, V6, 'c1');
    await allocate(store, NET, V4, 'c1', { requested: '172.18.0.100' });
    assert.deepEqual(await releaseOwner(store, NET, 'c1'), ['172.18.0.2', '172.18.0.100', 'fd12:3456:789a:1::2']);
    assert.deepEqual((await listAllocations(store, NET)).map((a) => [a.ip, a.owner]), [['172.18.0.3', 'c2']]);
    assert.deepEqual(await releaseOwner(store, NET, 'c1'), []);
  });

  it('networks are separate, and releaseNetwork drops one', async () => {
    const other = 'b'.repeat(64);
    assert.equal(await allocate(store, NET, V4, 'c1'), '172.18.0.2');
    assert.equal(await allocate(store, other, V4, 'c1'), '172.18.0.2');
    assert.equal(await releaseNetwork(store, NET), 2); // the address and the cursor
    assert.deepEqual(await listAllocations(store, NET), []);
    assert.equal((await listAllocations(store, other)).length, 1);
    const res = await store.txn([], releaseNetworkOps(other));
    assert.ok(res.succeeded);
    assert.deepEqual(await listAllocations(store, other), []);
  });

  it('claims addresses and a container record in one txn, leaking nothing when it fails', async () => {
    const record = '/test/containers/c1';
    // the caller's own compare fails (the record exists): no address is taken
    await store.put(record, 'someone else');
    const c4 = await prepareClaim(store, NET, V4, 'c1');
    const c6 = await prepareClaim(store, NET, V6, 'c1');
    const failed = await store.txn(
      [...c4.compares, ...c6.compares, { key: record, target: 'create', op: '=', value: 0 }],
      [...c4.ops, ...c6.ops, { type: 'put', key: record, value: JSON.stringify({ ipv4: c4.ip, ipv6: c6.ip }) }],
    );
    assert.equal(failed.succeeded, false);
    assert.deepEqual(await listAllocations(store, NET), []);

    // the address is taken between prepare and txn: the txn fails, the next attempt picks another
    await store.delete(record);
    const claim = await prepareClaim(store, NET, V4, 'c1');
    assert.equal(claim.ip, '172.18.0.2');
    assert.equal(await allocate(store, NET, V4, 'racer'), '172.18.0.2');
    let attempt = 0;
    let current = claim;
    for (;;) {
      const res = await store.txn(
        [...current.compares, { key: record, target: 'create', op: '=', value: 0 }],
        [...current.ops, { type: 'put', key: record, value: current.ip }],
      );
      if (res.succeeded) break;
      attempt++;
      assert.ok(attempt < 5);
      current = await prepareClaim(store, NET, V4, 'c1', { attempt });
    }
    assert.equal(attempt, 1);
    assert.equal((await store.get(record))!.value, '172.18.0.3');
    assert.deepEqual((await listAllocations(store, NET)).map((a) => [a.ip, a.owner]), [
      ['172.18.0.2', 'racer'],
      ['172.18.0.3', 'c1'],
    ]);

    // and release together with deleting the record
    const rel = await prepareRelease(store, NET, '172.18.0.3', 'c1');
    assert.ok(rel);
    assert.equal(await prepareRelease(store, NET, '172.18.0.2', 'c1'), undefined);
    const done = await store.txn(rel.compares, [...rel.ops, { type: 'delete', key: record }]);
    assert.ok(done.succeeded);
    assert.deepEqual((await listAllocations(store, NET)).map((a) => a.ip), ['172.18.0.2']);
  });

  it('a static claim held by its owner is idempotent inside a txn too', async () => {
    await allocate(store, NET, V4, 'c1', { requested: '172.18.0.9' });
    const claim = await prepareClaim(store, NET, V4, 'c1', { requested: '172.18.0.9' });
    assert.equal(claim.held, true);
    assert.deepEqual(claim.ops, []);
    assert.ok((await store.txn(claim.compares, [])).succeeded);
  });
});

describe('allocator (SQLite store in a file)', () => {
  it('50 concurrent allocations across two store handles never share an address', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'weft-ipam-test-'));
    const a = openSqliteStore(join(dir, 'store.db'));
    const b = openSqliteStore(join(dir, 'store.db'));
    try {
      const ips = await Promise.all(
        Array.from({ length: 50 }, (_, i) => allocate(i % 2 ? a : b, NET, V4, `c${i}`)),
      );
      assert.equal(new Set(ips).size, 50);
      assert.equal((await listAllocations(a, NET)).length, 50);
    } finally {
      await a.close();
      await b.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
