import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import dnsPacket from 'dns-packet';
import {
  FrameReader,
  ParsedQuery,
  QTYPE,
  RCODE,
  type WireRecord,
  answersQuestion,
  isTruncated,
  parseQuery,
  truncateReply,
  writeHeaderOnly,
  writeResponse,
} from './wire.js';

function query(name: string, type: dnsPacket.RecordType = 'A', opts: { edns?: number; do?: boolean; id?: number } = {}): Buffer {
  return dnsPacket.encode({
    type: 'query',
    id: opts.id ?? 0x1234,
    flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ type, name }],
    additionals: opts.edns
      ? [{ type: 'OPT', name: '.', udpPayloadSize: opts.edns, extendedRcode: 0, ednsVersion: 0, flags: opts.do ? dnsPacket.DNSSEC_OK : 0, flag_do: !!opts.do, options: [] }]
      : [],
  });
}

function parsed(msg: Buffer): ParsedQuery {
  const q = new ParsedQuery();
  assert.equal(parseQuery(msg, q), 'ok');
  return q;
}

/** An A record tail for 10.0.0.<n> as records.ts makes them. */
function aRecord(n: number): WireRecord {
  return { wire: Buffer.from([0, 1, 0, 1, 0, 0, 0, 5, 0, 4, 10, 0, 0, n]) };
}

describe('parseQuery', () => {
  test('reads id, flags, the question in lower case, and EDNS', () => {
    const q = parsed(query('WeB.Example.', 'AAAA', { edns: 1400, do: true, id: 77 }));
    assert.equal(q.id, 77);
    assert.equal(q.name, 'web.example');
    assert.equal(q.qtype, QTYPE.AAAA);
    assert.equal(q.qclass, 1);
    assert.equal(q.edns, true);
    assert.equal(q.ednsPayload, 1400);
    assert.equal(q.ednsDo, true);
    assert.equal(q.udpLimit(), 1400);
    const plain = parsed(query('x'));
    assert.equal(plain.edns, false);
    assert.equal(plain.udpLimit(), 512);
    assert.equal(parsed(query('x', 'A', { edns: 100 })).udpLimit(), 512, 'never below 512');
    assert.equal(parsed(query('x', 'A', { edns: 65000 })).udpLimit(), 4096, 'capped');
  });

  test('the root name is the empty string', () => {
    assert.equal(parsed(query('.', 'NS')).name, '');
  });

  test('bytes that cannot be in a host name are escaped, so they never match one', () => {
    // one label "a.b" (with a dot inside) and one label with a space and a backslash
    const msg = Buffer.concat([
      Buffer.from([0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0]),
      Buffer.from([3, 0x61, 0x2e, 0x62, 3, 0x20, 0x5c, 0xff, 0]),
      Buffer.from([0, 1, 0, 1]),
    ]);
    assert.equal(parsed(msg).name, 'a\\046b.\\032\\092\\255');
  });

  test('drops what is not worth an answer', () => {
    const q = new ParsedQuery();
    assert.equal(parseQuery(Buffer.alloc(0), q), 'drop');
    assert.equal(parseQuery(Buffer.alloc(11), q), 'drop');
    const response = query('x');
    response[2] |= 0x80;
    assert.equal(parseQuery(response, q), 'drop');
  });

  test('FORMERR for a readable header with a bad body', () => {
    const q = new ParsedQuery();
    const good = query('web.example');
    const cases: [string, Buffer][] = [
      ['no question', Buffer.from([0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])],
      ['two questions', dnsPacket.encode({ type: 'query', id: 1, questions: [{ type: 'A', name: 'a' }, { type: 'A', name: 'b' }] })],
      ['cut in the name', good.subarray(0, 16)],
      ['cut in the type', good.subarray(0, good.length - 3)],
      ['pointer in the question', Buffer.from([0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1])],
      ['pointer loop', Buffer.from([0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 0x61, 0xc0, 12, 0, 1, 0, 1])],
      ['reserved label type', Buffer.from([0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0x41, 0, 0, 1, 0, 1])],
      ['name over 255 bytes', Buffer.concat([Buffer.from([0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0]), Buffer.from(Array(5).fill([63, ...Array(63).fill(0x61)]).flat()), Buffer.from([0, 0, 1, 0, 1])])],
      ['huge additional count', Buffer.concat([good.subarray(0, 10), Buffer.from([0xff, 0xff]), good.subarray(12)])],
      ['huge answer count', Buffer.concat([good.subarray(0, 6), Buffer.from([0xff, 0xff]), good.subarray(8)])],
      ['two OPT records', Buffer.concat([query('x', 'A', { edns: 1232 }).subarray(0, 10), Buffer.from([0, 2]), query('x', 'A', { edns: 1232 }).subarray(12), query('x', 'A', { edns: 1232 }).subarray(19)])],
    ];
    for (const [what, msg] of cases) assert.equal(parseQuery(msg, q), 'formerr', what);
  });

  test('NOTIMP for opcodes other than QUERY', () => {
    const q = new ParsedQuery();
    for (const opcode of [1, 2, 4, 5, 15]) {
      const msg = query('x');
      msg[2] = (msg[2] & 0x87) | (opcode << 3);
      assert.equal(parseQuery(msg, q), 'notimp', `opcode ${opcode}`);
    }
  });

  test('skips answer records in a query and ignores trailing bytes', () => {
    const msg = dnsPacket.encode({
      type: 'query', id: 9, questions: [{ type: 'A', name: 'a.b' }],
      answers: [{ type: 'A', name: 'a.b', data: '1.2.3.4' }],
      additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 2000, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [] }],
    });
    const q = parsed(Buffer.concat([msg, Buffer.from([1, 2, 3])]));
    assert.equal(q.name, 'a.b');
    assert.equal(q.ednsPayload, 2000);
  });
});

describe('writeResponse', () => {
  test('echoes the question as sent, points records at it, copies RD', () => {
    const msg = query('WeB.example', 'A', { id: 4242 });
    const q = parsed(msg);
    const out = writeResponse(msg, q, { rcode: RCODE.NOERROR, aa: true, ra: true, limit: 512, prefix: 0 }, [aRecord(1), aRecord(2), aRecord(3)], 1);
    const p = dnsPacket.decode(out);
    assert.equal(p.id, 4242);
    assert.equal(p.type, 'response');
    assert.ok(p.flag_aa && p.flag_rd && p.flag_ra && !p.flag_tc);
    assert.deepEqual(p.questions, [{ name: 'WeB.example', type: 'A', class: 'IN' }]);
    assert.deepEqual(p.answers?.map((a) => [a.name, 'ttl' in a ? a.ttl : 0, 'data' in a ? a.data : undefined]), [
      ['WeB.example', 5, '10.0.0.2'],
      ['WeB.example', 5, '10.0.0.3'],
      ['WeB.example', 5, '10.0.0.1'],
    ]);
  });

  test('NXDOMAIN with EDNS carries an OPT record and echoes DO', () => {
    const msg = query('nosuch', 'A', { edns: 1232, do: true });
    const out = writeResponse(msg, parsed(msg), { rcode: RCODE.NXDOMAIN, aa: true, ra: false, limit: 1232, prefix: 0 });
    const p = dnsPacket.decode(out) as dnsPacket.DecodedPacket & { rcode: string };
    assert.equal(p.rcode, 'NXDOMAIN');
    assert.equal(p.flag_ra, false);
    assert.equal(p.answers?.length, 0);
    const opt = p.additionals?.[0] as dnsPacket.OptAnswer;
    assert.equal(opt.type, 'OPT');
    assert.equal(opt.udpPayloadSize, 1232);
    assert.equal(opt.flag_do, true);
  });

  test('BADVERS goes into the extended rcode', () => {
    const msg = query('x', 'A', { edns: 1232 });
    const out = writeResponse(msg, parsed(msg), { rcode: RCODE.BADVERS, aa: false, ra: true, limit: 512, prefix: 0 });
    assert.equal(out[3] & 0xf, 0);
    const opt = dnsPacket.decode(out).additionals?.[0] as dnsPacket.OptAnswer;
    assert.equal(opt.extendedRcode, 1);
  });

  test('cuts to whole records and sets TC when over the limit', () => {
    const msg = query('many.example');
    const q = parsed(msg);
    const records = Array.from({ length: 60 }, (_, i) => aRecord(i));
    const out = writeResponse(msg, q, { rcode: 0, aa: true, ra: true, limit: 512, prefix: 0 }, records);
    assert.ok(out.length <= 512);
    assert.ok(isTruncated(out));
    const p = dnsPacket.decode(out);
    assert.ok(p.flag_tc);
    assert.equal(p.answers?.length, Math.floor((512 - 12 - (q.qEnd - 12)) / 16));
    const full = writeResponse(msg, q, { rcode: 0, aa: true, ra: true, limit: 65535, prefix: 2 }, records);
    assert.equal(full.readUInt16BE(0), full.length - 2, 'TCP length prefix');
    assert.ok(!isTruncated(full, 2));
    assert.equal(dnsPacket.decode(full.subarray(2)).answers?.length, 60);
  });

  test('header-only answers echo id, opcode and RD', () => {
    const msg = query('x', 'A', { id: 999 });
    msg[2] |= 2 << 3; // opcode STATUS
    const out = writeHeaderOnly(msg, RCODE.NOTIMP, 2);
    assert.equal(out.readUInt16BE(0), 12);
    assert.equal(out.readUInt16BE(2), 999);
    assert.equal((out[4] >> 3) & 0xf, 2);
    assert.ok(out[4] & 0x80, 'QR');
    assert.ok(out[4] & 0x01, 'RD');
    assert.equal(out[5] & 0xf, RCODE.NOTIMP);
  });
});

describe('upstream replies', () => {
  test('answersQuestion compares the question case-insensitively and needs QR', () => {
    const msg = query('Example.COM');
    const q = parsed(msg);
    const reply = dnsPacket.encode({ type: 'response', id: 1, questions: [{ type: 'A', name: 'example.com' }] });
    assert.ok(answersQuestion(reply, msg, q.qEnd));
    const other = dnsPacket.encode({ type: 'response', id: 1, questions: [{ type: 'AAAA', name: 'example.com' }] });
    assert.ok(!answersQuestion(other, msg, q.qEnd));
    assert.ok(!answersQuestion(msg, msg, q.qEnd), 'a query is no answer');
    assert.ok(!answersQuestion(reply.subarray(0, 14), msg, q.qEnd));
  });

  test('truncateReply keeps header and question, sets TC', () => {
    const msg = query('example.com');
    const q = parsed(msg);
    const reply = dnsPacket.encode({
      type: 'response', id: 7, questions: [{ type: 'A', name: 'example.com' }],
      answers: [{ type: 'A', name: 'example.com', data: '1.2.3.4' }],
    });
    const cut = dnsPacket.decode(truncateReply(reply, q.qEnd));
    assert.ok(cut.flag_tc);
    assert.equal(cut.id, 7);
    assert.equal(cut.questions?.length, 1);
    assert.equal(cut.answers?.length, 0);
  });
});

describe('FrameReader', () => {
  const frame = (n: number, fill: number): Buffer => Buffer.concat([Buffer.from([n >> 8, n & 0xff]), Buffer.alloc(n, fill)]);

  test('whole frames, several per chunk, and zero-length ones', () => {
    const got: number[][] = [];
    const r = new FrameReader();
    r.push(Buffer.concat([frame(3, 1), frame(0, 0), frame(2, 2)]), (f) => got.push([...f]));
    assert.deepEqual(got, [[1, 1, 1], [], [2, 2]]);
    assert.equal(r.partialSince, 0);
  });

  test('frames split anywhere, down to single bytes', () => {
    const stream = Buffer.concat([frame(300, 7), frame(1, 9), frame(5, 3)]);
    for (const step of [1, 2, 3, 299, 302]) {
      const got: Buffer[] = [];
      const r = new FrameReader();
      for (let i = 0; i < stream.length; i += step) {
        r.push(stream.subarray(i, i + step), (f) => got.push(Buffer.from(f)));
        if (i + step < stream.length && got.length < 3) assert.ok(r.partialSince > 0 || got.length > 0);
      }
      assert.deepEqual(got.map((f) => f.length), [300, 1, 5], `step ${step}`);
      assert.ok(got[0].every((b) => b === 7));
      assert.equal(r.partialSince, 0);
    }
  });

  test('a half-read frame is marked', () => {
    const r = new FrameReader();
    r.push(Buffer.from([0]), () => assert.fail());
    assert.ok(r.partialSince > 0);
    r.push(Buffer.from([2, 1]), () => assert.fail());
    assert.ok(r.partialSince > 0);
    let done = false;
    r.push(Buffer.from([1]), () => (done = true));
    assert.ok(done);
    assert.equal(r.partialSince, 0);
  });
});
