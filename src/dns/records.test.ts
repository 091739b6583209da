import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  DNS_TTL,
  type Asker,
  type DnsSnapshot,
  type LocalAnswer,
  NameTable,
  reverseName,
  rotated,
} from './records.js';
import { QCLASS, QTYPE } from './wire.js';

const id = (c: string): string => c.repeat(64);
const FRONT = id('f');
const BACK = id('b');
const PRIV = id('p');
const BRIDGE = id('0');

const WEB_ID = `abcdef012345${'9'.repeat(52)}`;

function snapshot(): DnsSnapshot {
  return {
    networks: [
      { id: FRONT, name: 'front', internal: false, userDefined: true },
      { id: BACK, name: 'back', internal: false, userDefined: true },
      { id: PRIV, name: 'priv', internal: true, userDefined: true },
      { id: BRIDGE, name: 'bridge', internal: false, userDefined: false },
    ],
    containers: [
      {
        id: WEB_ID, name: '/web', running: true, endpoints: [
          { networkId: FRONT, ipv4: '172.18.0.2', ipv6: 'fd00:1:0:0::2', aliases: ['www', 'Api'] },
          { networkId: BACK, ipv4: '172.19.0.3', aliases: ['backend-only'] },
        ],
      },
      { id: id('d'), name: 'db', running: true, endpoints: [{ networkId: BACK, ipv4: '172.19.0.2', aliases: ['database'] }] },
      { id: id('c'), name: 'cli', running: true, endpoints: [{ networkId: FRONT, ipv4: '172.18.0.3', aliases: [] }] },
      { id: id('e'), name: 'old', running: false, endpoints: [{ networkId: FRONT, ipv4: '172.18.0.9', aliases: ['pool'] }] },
      { id: id('1'), name: 'w1', running: true, endpoints: [{ networkId: FRONT, ipv4: '172.18.0.11', aliases: ['pool'] }] },
      { id: id('2'), name: 'w2', running: true, endpoints: [{ networkId: FRONT, ipv4: '172.18.0.12', aliases: ['pool'] }] },
      { id: id('3'), name: 'w3', running: true, endpoints: [{ networkId: FRONT, ipv4: '172.18.0.13', aliases: ['pool'] }] },
      { id: id('7'), name: 'lonely', running: true, endpoints: [{ networkId: BRIDGE, ipv4: '172.17.0.2', aliases: [] }] },
      {
        id: id('8'), name: 'both', running: true, endpoints: [
          { networkId: BRIDGE, ipv4: '172.17.0.3', aliases: [] },
          { networkId: FRONT, ipv4: '172.18.0.20', aliases: [] },
        ],
      },
      { id: id('5'), name: 'secret', running: true, endpoints: [{ networkId: PRIV, ipv4: '172.20.0.2', aliases: [] }] },
      { id: id('6'), name: 'vault', running: true, endpoints: [{ networkId: PRIV, ipv4: '172.20.0.3', ipv6: 'fd00:20::3', aliases: [] }] },
    ],
    srv: [{ name: '_http._tcp.web', networkIds: [FRONT], target: 'web.front', port: 8080, weight: 10 }],
    extra: [{ name: 'svc', networkIds: [BACK], ipv4: ['10.96.0.1'], ipv6: ['fd00:96::1'] }],
  };
}

function asker(t: NameTable, ip: string): Asker {
  const a = t.askerOf(ip);
  assert.ok(a, `no asker at ${ip}`);
  return a;
}

/** The answer's data in sent order, or its kind. */
function data(ans: LocalAnswer): unknown {
  return ans.kind === 'records' ? rotated(ans).map((r) => r.data) : ans.kind;
}

function ask(t: NameTable, from: string, name: string, qtype: number = QTYPE.A): unknown {
  return data(t.answer(asker(t, from), name, qtype));
}

const CLI = '172.18.0.3'; // on front
const WEB = '172.18.0.2'; // on front and back
const DB = '172.19.0.2'; // on back

describe('NameTable', () => {
  test('askers are running containers, known by their addresses on user-defined networks', () => {
    const t = new NameTable(snapshot());
    assert.equal(t.askerOf(CLI)?.containerName, 'cli');
    assert.deepEqual(t.askerOf('172.19.0.3')?.networkIds, [BACK, FRONT].sort());
    assert.equal(t.askerOf('fd00:1::2')?.containerName, 'web');
    assert.equal(t.askerOf('FD00:1:0::2')?.containerName, 'web', 'IPv6 text is canonicalised');
    assert.equal(t.askerOf('::ffff:172.18.0.3')?.containerName, 'cli', 'IPv4-mapped');
    assert.equal(t.askerOf('172.18.0.9'), undefined, 'stopped');
    assert.equal(t.askerOf('172.17.0.2'), undefined, 'only on the predefined bridge');
    assert.equal(t.askerOf('172.17.0.3'), undefined, 'its bridge address does not identify it');
    assert.equal(t.askerOf('172.18.0.20')?.containerName, 'both');
    assert.equal(t.askerOf('10.0.0.1'), undefined);
    assert.equal(t.askerOf('not an ip'), undefined);
    assert.deepEqual(t.warnings, []);
  });

  test('names resolve only on networks the asker shares with the target', () => {
    const t = new NameTable(snapshot());
    assert.deepEqual(ask(t, CLI, 'web'), ['172.18.0.2'], 'only the address on the shared network');
    assert.deepEqual(ask(t, DB, 'web'), ['172.19.0.3']);
    assert.deepEqual(ask(t, WEB, 'db'), ['172.19.0.2']);
    assert.equal(ask(t, CLI, 'db'), 'nxdomain', 'db is on back only; a bare name is not forwarded');
    assert.equal(ask(t, CLI, 'db.back'), 'forward', 'not local for cli: goes upstream');
    assert.equal(ask(t, CLI, 'lonely'), 'nxdomain', 'containers on the predefined bridge have no names');
  });

  test('a target on two shared networks answers with both addresses', () => {
    const t = new NameTable(snapshot());
    // web asks for itself: it shares front and back with itself
    assert.deepEqual(new Set(ask(t, WEB, 'web') as string[]), new Set(['172.18.0.2', '172.19.0.3']));
  });

  test('aliases are per network', () => {
    const t = new NameTable(snapshot());
    assert.deepEqual(ask(t, CLI, 'www'), ['172.18.0.2']);
    assert.deepEqual(ask(t, CLI, 'api'), ['172.18.0.2'], 'aliases are case-insensitive');
    assert.equal(ask(t, CLI, 'backend-only'), 'nxdomain', 'an alias on back is not seen from front');
    assert.deepEqual(ask(t, DB, 'backend-only'), ['172.19.0.3']);
    assert.deepEqual(ask(t, WEB, 'database'), ['172.19.0.2']);
  });

  test('NAME.NETWORK and ALIAS.NETWORK', () => {
    const t = new NameTable(snapshot());
    assert.deepEqual(ask(t, CLI, 'web.front'), ['172.18.0.2']);
    assert.deepEqual(ask(t, CLI, 'www.front'), ['172.18.0.2']);
    assert.deepEqual(ask(t, DB, 'web.back'), ['172.19.0.3']);
    assert.equal(ask(t, CLI, 'web.back'), 'forward', 'cli is not on back');
    assert.equal(ask(t, CLI, 'www.back'), 'forward');
  });

  test('the 12-character short id resolves, the full id does not', () => {
    const t = new NameTable(snapshot());
    assert.deepEqual(ask(t, CLI, 'abcdef012345'), ['172.18.0.2']);
    assert.deepEqual(ask(t, CLI, 'ABCDEF012345'), ['172.18.0.2']);
    assert.equal(ask(t, CLI, WEB_ID), 'nxdomain');
  });

  test('stopped containers have no names', () => {
    const t = new NameTable(snapshot());
    assert.equal(ask(t, CLI, 'old'), 'nxdomain');
    assert.equal(ask(t, CLI, 'old.front'), 'forward');
    assert.ok(!(ask(t, CLI, 'pool') as string[]).includes('172.18.0.9'));
  });

  test('a shared alias answers with every address, rotated between queries', () => {
    const t = new NameTable(snapshot());
    const all = ['172.18.0.11', '172.18.0.12', '172.18.0.13'];
    const seen: string[][] = [];
    for (let i = 0; i < 4; i++) seen.push(ask(t, CLI, 'pool') as string[]);
    for (const s of seen) assert.deepEqual([...s].sort(), all);
    assert.equal(new Set(seen.slice(0, 3).map((s) => s[0])).size, 3, 'each address comes first once in three queries');
    assert.deepEqual(seen[3], seen[0], 'the rotation cycles');
    assert.deepEqual(seen[1], [...seen[0].slice(1), seen[0][0]], 'round robin: the list turns by one');
  });

  test('A, AAAA, NODATA and NXDOMAIN', () => {
    const t = new NameTable(snapshot());
    assert.deepEqual(ask(t, CLI, 'web', QTYPE.AAAA), ['fd00:1::2'], 'canonical IPv6');
    assert.equal(ask(t, CLI, 'cli', QTYPE.AAAA), 'nodata', 'the name exists, without IPv6');
    assert.equal(ask(t, CLI, 'web', QTYPE.MX), 'nodata');
    assert.equal(ask(t, CLI, 'web', QTYPE.TXT), 'nodata');
    assert.equal(ask(t, CLI, 'web', QTYPE.SRV), 'nodata');
    assert.equal(ask(t, CLI, 'nosuch'), 'nxdomain');
    assert.equal(ask(t, CLI, 'nosuch', QTYPE.AAAA), 'nxdomain');
    assert.deepEqual(new Set(ask(t, CLI, 'web', QTYPE.ANY) as string[]), new Set(['172.18.0.2', 'fd00:1::2']));
  });

  test('bare names of other types, dotted names and the root are forwarded', () => {
    const t = new NameTable(snapshot());
    assert.equal(ask(t, CLI, 'com', QTYPE.NS), 'forward');
    assert.equal(ask(t, CLI, 'example.com'), 'forward');
    assert.equal(ask(t, CLI, '', QTYPE.NS), 'forward');
    assert.equal(ask(t, CLI, '.', QTYPE.NS), 'forward');
  });

  test('records carry the short TTL and a decodable wire form', () => {
    const t = new NameTable(snapshot());
    const ans = t.answer(asker(t, CLI), 'web', QTYPE.A);
    assert.equal(ans.kind, 'records');
    const [rr] = rotated(ans);
    assert.equal(DNS_TTL, 5);
    // TYPE A, CLASS IN, TTL, RDLENGTH 4, 172.18.0.2
    assert.deepEqual([...rr.wire], [0, 1, 0, 1, 0, 0, 0, DNS_TTL, 0, 4, 172, 18, 0, 2]);
  });

  test('PTR answers NAME.NETWORK for addresses on shared networks', () => {
    const t = new NameTable(snapshot());
    assert.equal(reverseName('172.18.0.2'), '2.0.18.172.in-addr.arpa');
    assert.deepEqual(ask(t, CLI, '2.0.18.172.in-addr.arpa', QTYPE.PTR), ['web.front']);
    assert.deepEqual(ask(t, CLI, '2.0.18.172.IN-ADDR.ARPA.', QTYPE.PTR), ['web.front']);
    assert.deepEqual(ask(t, WEB, '2.0.19.172.in-addr.arpa', QTYPE.PTR), ['db.back']);
    assert.equal(ask(t, CLI, '2.0.19.172.in-addr.arpa', QTYPE.PTR), 'forward', 'db is not on a network cli shares');
    assert.equal(ask(t, CLI, '9.0.18.172.in-addr.arpa', QTYPE.PTR), 'forward', 'stopped');
    const v6 = reverseName('fd00:1::2');
    assert.equal(v6, `2.${'0.'.repeat(23)}1.${'0.'.repeat(5)}d.f.ip6.arpa`);
    assert.deepEqual(ask(t, CLI, v6, QTYPE.PTR), ['web.front']);
    assert.deepEqual(ask(t, CLI, v6.toUpperCase(), QTYPE.PTR), ['web.front']);
    assert.equal(ask(t, CLI, v6, QTYPE.A), 'nodata');
  });

  test('SRV records are scoped to their networks', () => {
    const t = new NameTable(snapshot());
    assert.deepEqual(ask(t, CLI, '_http._tcp.web', QTYPE.SRV), [{ target: 'web.front', port: 8080, priority: 0, weight: 10 }]);
    assert.deepEqual(ask(t, CLI, '_HTTP._tcp.web.front.', QTYPE.SRV), [{ target: 'web.front', port: 8080, priority: 0, weight: 10 }]);
    assert.equal(ask(t, CLI, '_http._tcp.web', QTYPE.A), 'nodata');
    assert.equal(ask(t, DB, '_http._tcp.web', QTYPE.SRV), 'forward', 'db is not on front');
  });

  test('extra names are scoped to their networks', () => {
    const t = new NameTable(snapshot());
    assert.deepEqual(ask(t, DB, 'svc'), ['10.96.0.1']);
    assert.deepEqual(ask(t, DB, 'svc.back', QTYPE.AAAA), ['fd00:96::1']);
    assert.equal(ask(t, CLI, 'svc'), 'nxdomain');
  });

  test('an asker on internal networks only never has names forwarded', () => {
    const t = new NameTable(snapshot());
    const secret = asker(t, '172.20.0.2');
    assert.equal(secret.canForward, false);
    assert.equal(asker(t, CLI).canForward, true);
    assert.deepEqual(ask(t, '172.20.0.2', 'vault'), ['172.20.0.3']);
    assert.deepEqual(ask(t, '172.20.0.2', 'vault.priv', QTYPE.AAAA), ['fd00:20::3']);
    assert.equal(ask(t, '172.20.0.2', 'example.com'), 'nxdomain');
    assert.equal(ask(t, '172.20.0.2', 'com', QTYPE.NS), 'nxdomain');
    assert.equal(ask(t, '172.20.0.2', 'web'), 'nxdomain');
  });

  test('names are case-insensitive and tolerate the trailing dot', () => {
    const t = new NameTable(snapshot());
    for (const n of ['WEB', 'Web.', 'web.FRONT.', 'wWw.Front']) assert.deepEqual(ask(t, CLI, n), ['172.18.0.2'], n);
  });

  test('only class IN (and ANY) is local', () => {
    const t = new NameTable(snapshot());
    const a = asker(t, CLI);
    assert.equal(t.answer(a, 'web', QTYPE.A, QCLASS.ANY).kind, 'records');
    assert.equal(t.answer(a, 'web.front', QTYPE.A, QCLASS.CH).kind, 'forward');
  });

  test('invalid input is skipped with a warning, never thrown', () => {
    const t = new NameTable({
      networks: [{ id: FRONT, name: 'front', internal: false, userDefined: true }],
      containers: [
        { id: id('a'), name: 'a', running: true, endpoints: [{ networkId: FRONT, ipv4: '300.1.1.1', ipv6: '172.18.0.5', aliases: ['x'.repeat(64), 'ok'] }] },
        { id: id('b'), name: 'b', running: true, endpoints: [{ networkId: FRONT, ipv4: '172.18.0.6', aliases: [] }] },
        { id: id('c'), name: 'c', running: true, endpoints: [{ networkId: FRONT, ipv4: '172.18.0.6', aliases: [] }] },
        { id: id('d'), name: 'd', running: true, endpoints: [{ networkId: 'unknown', ipv4: '172.18.0.7', aliases: [] }] },
      ],
      srv: [{ name: '_x._tcp.b', networkIds: [FRONT], target: 'b', port: 70000 }],
    });
    assert.equal(t.warnings.length, 6, t.warnings.join('\n')); // the long alias twice: bare and .front
    assert.equal(t.askerOf('172.18.0.6')?.containerName, 'c');
    assert.equal(t.askerOf('172.18.0.7'), undefined);
    // 'a' has no valid address: its names exist (NODATA), it cannot ask
    const b = asker(t, '172.18.0.6');
    assert.equal(t.answer(b, 'ok', QTYPE.A).kind, 'nodata');
    assert.equal(t.answer(b, '_x._tcp.b', QTYPE.SRV).kind, 'forward');
  });
});
