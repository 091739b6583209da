/**
 * The DNS wire format, only as far as the server's hot path needs it: read a query's header,
 * its one question and its EDNS OPT record; write a response from pre-encoded records.
 *
 * Why not dns-packet here: decoding a query and encoding its answer with dns-packet costs about
 * 5 µs, as much as the socket send and receive together, and allocates an object tree per query.
 * A query needs much less: the header, the question name (as a lower-case string for the lookup),
 * the type and class, and the client's EDNS UDP size. Answers copy the question as it arrived
 * (0x20 case randomisation survives) and point every owner name at it (0xC00C), followed by the
 * record's pre-encoded tail (TYPE CLASS TTL RDLENGTH RDATA) that records.ts builds once per
 * snapshot with dns-packet. Everything here is bounds-checked and allocation-free apart from the
 * name string and the response buffer; nothing throws on hostile input.
 */

export const HEADER_LEN = 12;
/** The classic UDP payload limit (RFC 1035) when the client sent no EDNS OPT record. */
export const UDP_MIN_PAYLOAD = 512;
/** Largest UDP answer we send even if a client advertises more (fragmentation beyond this). */
export const UDP_MAX_PAYLOAD = 4096;
/** The UDP payload size we advertise in our OPT record (DNS flag day 2020). */
export const EDNS_ADVERTISED_PAYLOAD = 1232;
/** A DNS message over TCP is at most this long (2-byte length prefix). */
export const TCP_MAX_MESSAGE = 65535;

export const RCODE = {
  NOERROR: 0,
  FORMERR: 1,
  SERVFAIL: 2,
  NXDOMAIN: 3,
  NOTIMP: 4,
  REFUSED: 5,
  /** extended (EDNS) rcode: the upper 8 bits go in the OPT record */
  BADVERS: 16,
} as const;

export const QTYPE = { A: 1, NS: 2, CNAME: 5, SOA: 6, PTR: 12, MX: 15, TXT: 16, AAAA: 28, SRV: 33, OPT: 41, ANY: 255 } as const;
export const QCLASS = { IN: 1, CH: 3, ANY: 255 } as const;

// header flag bits (second 16-bit word)
const FLAG_QR = 0x8000;
const FLAG_AA = 0x0400;
const FLAG_TC = 0x0200;
const FLAG_RD = 0x0100;
const FLAG_RA = 0x0080;
const FLAG_CD = 0x0010;
const OPCODE_MASK = 0x7800;

/** Largest wire length of a domain name (RFC 1035 2.3.4). */
const MAX_NAME_WIRE = 255;

/**
 * What parseQuery learnt about a query. One instance is reused for every query (the server
 * handles a query synchronously); copy it with clone() to keep it across an await.
 */
export class ParsedQuery {
  id = 0;
  /** the raw flags word of the query */
  flags = 0;
  /** the question name in presentation form: lower case, no trailing dot, '' for the root */
  name = '';
  qtype = 0;
  qclass = 0;
  /** offset just after the question: bytes [12, qEnd) are the question as it arrived */
  qEnd = 0;
  /** the query carried an EDNS OPT record */
  edns = false;
  ednsPayload = 0;
  ednsVersion = 0;
  /** the DNSSEC OK bit, echoed in our OPT record */
  ednsDo = false;

  clone(): ParsedQuery {
    return Object.assign(new ParsedQuery(), this);
  }

  /** The UDP payload size the client accepts: 512 without EDNS, its own figure (capped) with. */
  udpLimit(): number {
    if (!this.edns) return UDP_MIN_PAYLOAD;
    return Math.min(UDP_MAX_PAYLOAD, Math.max(UDP_MIN_PAYLOAD, this.ednsPayload));
  }
}

/**
 * - ok: a standard query with one question; `q` is filled in.
 * - drop: not worth an answer: shorter than a header, or a response (QR set; answering responses
 *   invites loops).
 * - formerr: the header is readable but the rest is not (qdcount != 1, bad name, cut short...).
 * - notimp: an opcode other than QUERY.
 */
export type ParseStatus = 'ok' | 'drop' | 'formerr' | 'notimp';

// Scratch space for building the name string: at most 255 wire bytes, each at most 4 characters
// once escaped (\DDD).
const nameScratch = Buffer.alloc(MAX_NAME_WIRE * 4);

/** Reads the header, the question and any OPT record of `msg` into `q`. Never throws. */
export function parseQuery(msg: Buffer, q: ParsedQuery): ParseStatus {
  if (msg.length < HEADER_LEN) return 'drop';
  const flags = msg.readUInt16BE(2);
  if (flags & FLAG_QR) return 'drop';
  q.id = msg.readUInt16BE(0);
  q.flags = flags;
  q.edns = false;
  q.ednsPayload = 0;
  q.ednsVersion = 0;
  q.ednsDo = false;
  if ((flags & OPCODE_MASK) !== 0) return 'notimp';
  if (msg.readUInt16BE(4) !== 1) return 'formerr';
  const an = msg.readUInt16BE(6);
  const ns = msg.readUInt16BE(8);
  const ar = msg.readUInt16BE(10);

  let off = readQuestionName(msg, HEADER_LEN, q);
  if (off < 0 || off + 4 > msg.length) return 'formerr';
  q.qtype = msg.readUInt16BE(off);
  q.qclass = msg.readUInt16BE(off + 2);
  off += 4;
  q.qEnd = off;

  // A query normally has no answer or authority records, but nothing forbids them: skip them.
  for (let i = 0; i < an + ns; i++) {
    off = skipRecord(msg, off);
    if (off < 0) return 'formerr';
  }
  for (let i = 0; i < ar; i++) {
    const start = off;
    off = skipName(msg, off);
    if (off < 0 || off + 10 > msg.length) return 'formerr';
    if (msg.readUInt16BE(off) === QTYPE.OPT) {
      // RFC 6891 6.1.1: one OPT record, owned by the root name
      if (q.edns || off !== start + 1) return 'formerr';
      q.edns = true;
      q.ednsPayload = msg.readUInt16BE(off + 2);
      q.ednsVersion = msg[off + 5];
      q.ednsDo = (msg[off + 6] & 0x80) !== 0;
    }
    const rdlen = msg.readUInt16BE(off + 8);
    off += 10 + rdlen;
    if (off > msg.length) return 'formerr';
  }
  // Bytes after the last record are ignored, as dnsmasq and BIND do.
  return 'ok';
}

/**
 * Reads the question name at `off` into q.name and returns the offset after it, or -1.
 * Compression pointers are refused: the first name of a message has nothing before it to point
 * at but the header. Bytes that cannot appear in a plain host name ('.', '\', spaces, controls,
 * non-ASCII) are escaped as \DDD, so such a label can never match a registered name but still
 * forms a distinct, printable string.
 */
function readQuestionName(msg: Buffer, off: number, q: ParsedQuery): number {
  let n = 0;
  const start = off;
  while (true) {
    if (off >= msg.length) return -1;
    const len = msg[off++];
    if (len === 0) break;
    if (len > 63) return -1; // a pointer (0xC0) or a reserved label type (0x40, 0x80)
    if (off + len > msg.length || off + len - start >= MAX_NAME_WIRE) return -1;
    if (n > 0) nameScratch[n++] = 0x2e; // '.'
    for (const end = off + len; off < end; off++) {
      let c = msg[off];
      if (c >= 0x41 && c <= 0x5a) {
        c |= 0x20; // ASCII lower case
      } else if (c <= 0x20 || c >= 0x7f || c === 0x2e || c === 0x5c) {
        nameScratch[n++] = 0x5c; // '\'
        nameScratch[n++] = 0x30 + Math.floor(c / 100);
        nameScratch[n++] = 0x30 + (Math.floor(c / 10) % 10);
        c = 0x30 + (c % 10);
      }
      nameScratch[n++] = c;
    }
  }
  q.name = n === 0 ? '' : nameScratch.toString('latin1', 0, n);
  return off;
}

/** The offset after the name at `off` (labels, ending in a zero byte or a pointer), or -1. */
function skipName(msg: Buffer, off: number): number {
  while (true) {
    if (off >= msg.length) return -1;
    const len = msg[off];
    if (len === 0) return off + 1;
    if ((len & 0xc0) === 0xc0) return off + 2 <= msg.length ? off + 2 : -1;
    if (len > 63) return -1;
    off += 1 + len;
  }
}

/** The offset after the resource record at `off`, or -1. */
function skipRecord(msg: Buffer, off: number): number {
  off = skipName(msg, off);
  if (off < 0 || off + 10 > msg.length) return -1;
  off += 10 + msg.readUInt16BE(off + 8);
  return off <= msg.length ? off : -1;
}

/** Something with a pre-encoded record tail: TYPE CLASS TTL RDLENGTH RDATA (no owner name). */
export interface WireRecord {
  readonly wire: Buffer;
}

export interface ResponseOptions {
  rcode: number;
  /** authoritative answer (our own names) */
  aa: boolean;
  /** recursion available (the asker may have queries forwarded) */
  ra: boolean;
  /** largest message to write (the UDP limit, or TCP_MAX_MESSAGE) */
  limit: number;
  /** bytes reserved before the message: 2 for the TCP length prefix, else 0 */
  prefix: number;
}

/**
 * A response to the query `msg` (parsed into `q`): its question copied back, then `records`
 * from index `start` on, wrapping around (round-robin), each owned by the question name. If they
 * do not all fit in opts.limit, as many whole records as fit are written and TC is set, so that
 * the client retries over TCP. An OPT record is added when the query had one.
 */
export function writeResponse(
  msg: Buffer,
  q: ParsedQuery,
  opts: ResponseOptions,
  records: readonly WireRecord[] = [],
  start = 0,
): Buffer {
  const qLen = q.qEnd - HEADER_LEN;
  const optLen = q.edns ? 11 : 0;
  let size = HEADER_LEN + qLen + optLen;
  let count = 0;
  const total = records.length;
  for (; count < total; count++) {
    const rrLen = 2 + records[(start + count) % total].wire.length;
    if (size + rrLen > opts.limit) break;
    size += rrLen;
  }
  const truncated = count < total;

  const buf = Buffer.allocUnsafe(opts.prefix + size);
  let off = 0;
  if (opts.prefix === 2) buf.writeUInt16BE(size, 0);
  off = opts.prefix;
  buf.writeUInt16BE(q.id, off);
  buf.writeUInt16BE(
    FLAG_QR |
      (opts.aa ? FLAG_AA : 0) |
      (truncated ? FLAG_TC : 0) |
      (q.flags & (FLAG_RD | FLAG_CD)) |
      (opts.ra ? FLAG_RA : 0) |
      (opts.rcode & 0xf),
    off + 2,
  );
  buf.writeUInt16BE(1, off + 4);
  buf.writeUInt16BE(count, off + 6);
  buf.writeUInt16BE(0, off + 8);
  buf.writeUInt16BE(q.edns ? 1 : 0, off + 10);
  off += HEADER_LEN;
  off += msg.copy(buf, off, HEADER_LEN, q.qEnd);
  for (let i = 0; i < count; i++) {
    const wire = records[(start + i) % total].wire;
    buf[off] = 0xc0; // pointer to the question name at offset 12
    buf[off + 1] = HEADER_LEN;
    off += 2 + wire.copy(buf, off + 2);
  }
  if (q.edns) writeOpt(buf, off, opts.rcode >> 4, q.ednsDo);
  return buf;
}

/** Our OPT record: root owner, our payload size, extended rcode, version 0, DO echoed. */
function writeOpt(buf: Buffer, off: number, extRcode: number, dnssecOk: boolean): void {
  buf[off] = 0;
  buf.writeUInt16BE(QTYPE.OPT, off + 1);
  buf.writeUInt16BE(EDNS_ADVERTISED_PAYLOAD, off + 3);
  buf[off + 5] = extRcode & 0xff;
  buf[off + 6] = 0; // version
  buf[off + 7] = dnssecOk ? 0x80 : 0;
  buf[off + 8] = 0;
  buf.writeUInt16BE(0, off + 9); // no options
}

/**
 * A header-only response (no question) for a query whose question could not be read or is not
 * handled: FORMERR, NOTIMP. The opcode and RD bit are echoed. `msg` must be at least a header.
 */
export function writeHeaderOnly(msg: Buffer, rcode: number, prefix: number): Buffer {
  const buf = Buffer.alloc(prefix + HEADER_LEN);
  if (prefix === 2) buf.writeUInt16BE(HEADER_LEN, 0);
  msg.copy(buf, prefix, 0, 2); // id
  buf.writeUInt16BE(FLAG_QR | (msg.readUInt16BE(2) & (OPCODE_MASK | FLAG_RD)) | (rcode & 0xf), prefix + 2);
  return buf;
}

/** True if the message's TC bit is set (`off` skips a TCP length prefix). */
export function isTruncated(msg: Buffer, off = 0): boolean {
  return msg.length >= off + 4 && (msg[off + 2] & 0x02) !== 0;
}

/** The rcode (low 4 bits) of a message. */
export function rcodeOf(msg: Buffer): number {
  return msg[3] & 0x0f;
}

/**
 * True if `reply` is a response whose question is the question of `query` (bytes [12, qEnd)),
 * compared case-insensitively: an upstream's answer is accepted only if it answers what we asked.
 */
export function answersQuestion(reply: Buffer, query: Buffer, qEnd: number): boolean {
  if (reply.length < qEnd || (reply[2] & 0x80) === 0 || reply.readUInt16BE(4) !== 1) return false;
  for (let i = HEADER_LEN; i < qEnd; i++) {
    let a = reply[i];
    let b = query[i];
    if (a >= 0x41 && a <= 0x5a) a |= 0x20;
    if (b >= 0x41 && b <= 0x5a) b |= 0x20;
    if (a !== b) return false;
  }
  return true;
}

/**
 * An upstream reply that is larger than the client's UDP limit cut down to its header and
 * question with TC set (counts of the other sections zeroed), so the client retries over TCP.
 */
export function truncateReply(reply: Buffer, qEnd: number): Buffer {
  const buf = Buffer.from(reply.subarray(0, qEnd));
  buf[2] |= 0x02;
  buf.writeUInt16BE(0, 6);
  buf.writeUInt16BE(0, 8);
  buf.writeUInt16BE(0, 10);
  return buf;
}

/**
 * Splits a TCP byte stream into DNS messages (RFC 1035 4.2.2: a 2-byte length, then the message).
 * A frame that arrives whole in one chunk is handed on as a view of that chunk; a frame split
 * over chunks is gathered into a buffer of its announced size, so a client that dribbles bytes
 * costs linear copying, never quadratic. Zero-length frames are handed on (and then dropped by
 * the caller as too short).
 */
export class FrameReader {
  private frame: Buffer | null = null;
  private filled = 0;
  /** first byte of a length prefix that was split across chunks, or -1 */
  private halfLength = -1;
  /** Date.now() when the incomplete frame now waiting began arriving; 0 when none waits */
  partialSince = 0;

  push(chunk: Buffer, onFrame: (frame: Buffer) => void): void {
    let off = 0;
    let completed = false;
    while (off < chunk.length) {
      if (this.frame === null) {
        let len: number;
        if (this.halfLength >= 0) {
          len = (this.halfLength << 8) | chunk[off];
          this.halfLength = -1;
          off += 1;
        } else if (chunk.length - off >= 2) {
          len = chunk.readUInt16BE(off);
          off += 2;
        } else {
          this.halfLength = chunk[off];
          off += 1;
          break;
        }
        if (chunk.length - off >= len) {
          completed = true;
          onFrame(chunk.subarray(off, off + len));
          off += len;
          continue;
        }
        this.frame = Buffer.allocUnsafe(len);
        this.filled = 0;
      }
      const n = Math.min(this.frame.length - this.filled, chunk.length - off);
      chunk.copy(this.frame, this.filled, off, off + n);
      this.filled += n;
      off += n;
      if (this.filled === this.frame.length) {
        const frame = this.frame;
        this.frame = null;
        completed = true;
        onFrame(frame);
      }
    }
    if (this.frame === null && this.halfLength < 0) this.partialSince = 0;
    else if (completed || this.partialSince === 0) this.partialSince = Date.now();
  }
}
