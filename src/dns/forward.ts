/**
 * Relays queries that are not for local names to the upstream resolvers (the host's, as the
 * agent reads them from its resolv.conf) and hands back their replies.
 *
 * - Upstreams are tried in order: the next one when the current one times out, cannot be
 *   reached, or answers SERVFAIL or REFUSED. When all have failed the caller answers SERVFAIL
 *   (or relays the last SERVFAIL/REFUSED reply, if there was one).
 * - UDP queries go out over UDP from one shared socket per address family, with a fresh random
 *   query ID (unique among pending forwards) that is restored in the reply. A reply is accepted
 *   only from an upstream this query was sent to, with the right ID and the same question.
 *   Sharing the socket keeps forwarding cheap; the price is a fixed source port, so spoofing
 *   resistance rests on the 16-bit ID and the question match (as dnsmasq with a fixed
 *   query-port). The upstreams are normally on the host's own network.
 * - A query that came over TCP is forwarded over TCP (one connection per query). A UDP reply
 *   with TC set is retried over TCP to the same upstream; if the full answer fits the client's
 *   UDP limit it is sent, otherwise the truncated one is, and the client retries over TCP.
 * - At most maxPending forwards are in flight; forward() refuses more (the caller drops them).
 */
import dgram from 'node:dgram';
import { randomFillSync } from 'node:crypto';
import { isIP, Socket } from 'node:net';
import { canonicalIp } from '../ipam/cidr.js';
import { FrameReader, RCODE, answersQuestion, isTruncated, rcodeOf, truncateReply } from './wire.js';

export interface Upstream {
  host: string;
  port: number;
}

export interface ForwarderOptions {
  /** how long to wait for one upstream before trying the next */
  timeoutMs: number;
  maxPending: number;
  /** an unexpected error (a bug, or a socket failing): for the log */
  onError: (err: unknown, what: string) => void;
}

/** Called once: the reply (ID restored, fitting the client's transport), or null if all failed. */
export type ForwardDone = (reply: Buffer | null) => void;

interface Pending {
  /** the ID the upstreams see; the key in `pending` */
  id: number;
  clientId: number;
  /** the client's query, with `id` written in */
  query: Buffer;
  qEnd: number;
  /** the client asked over TCP: forward over TCP, no size limit */
  tcp: boolean;
  udpLimit: number;
  upstreams: Upstream[];
  /** the upstream being tried */
  index: number;
  /** bumped on every move to another upstream, so stale timers and callbacks do nothing */
  attempt: number;
  /** waiting for a TCP retry after a truncated UDP reply: ignore further UDP replies */
  retrying: boolean;
  timer: NodeJS.Timeout | undefined;
  conn: Socket | undefined;
  /** the reply to give if nothing better comes: a SERVFAIL/REFUSED or a truncated reply */
  fallback: Buffer | null;
  done: ForwardDone;
}

/** dgram looks every destination up; ours are always IP literals, so skip the resolver. */
function literalLookup(address: string, family: number, cb: (err: Error | null, address: string, family: number) => void): void {
  cb(null, address, family);
}

export class Forwarder {
  private readonly pending = new Map<number, Pending>();
  private udp4: dgram.Socket | undefined;
  private udp6: dgram.Socket | undefined;
  private readonly ids = Buffer.alloc(4096);
  private idOffset = this.ids.length;
  /** canonical text of upstream addresses as given (to compare with reply sources) */
  private readonly canonical = new Map<string, string>();

  constructor(private readonly opts: ForwarderOptions) {}

  /** Forwards in flight. */
  get size(): number {
    return this.pending.size;
  }

  /**
   * Starts relaying `query` (a client's query; not modified) whose question ends at `qEnd` to
   * `to`, in order. Returns false, without calling `done`, if too many forwards are in flight.
   */
  forward(query: Buffer, qEnd: number, tcp: boolean, udpLimit: number, to: Upstream[], done: ForwardDone): boolean {
    if (this.pending.size >= this.opts.maxPending) return false;
    const upstreams = this.usable(to);
    if (upstreams.length === 0) {
      done(null);
      return true;
    }
    const id = this.freeId();
    const copy = Buffer.from(query);
    copy.writeUInt16BE(id, 0);
    const p: Pending = {
      id, clientId: query.readUInt16BE(0), query: copy, qEnd, tcp, udpLimit, upstreams,
      index: 0, attempt: 0, retrying: false, timer: undefined, conn: undefined, fallback: null, done,
    };
    this.pending.set(id, p);
    this.attempt(p);
    return true;
  }

  /** Abandons every forward (their `done` is not called) and closes the upstream sockets. */
  close(): void {
    for (const p of this.pending.values()) this.clear(p);
    this.pending.clear();
    this.udp4?.close();
    this.udp6?.close();
    this.udp4 = this.udp6 = undefined;
  }

  /** Valid upstreams, their addresses canonical (as reply sources are reported). */
  private usable(list: Upstream[]): Upstream[] {
    const out: Upstream[] = [];
    for (const u of list) {
      if (!Number.isInteger(u.port) || u.port <= 0 || u.port > 0xffff) continue;
      let host = this.canonical.get(u.host);
      if (host === undefined) {
        try {
          host = isIP(u.host) ? canonicalIp(u.host) : '';
        } catch {
          host = '';
        }
        if (this.canonical.size > 256) this.canonical.clear();
        this.canonical.set(u.host, host);
      }
      if (host) out.push(host === u.host ? u : { host, port: u.port });
    }
    return out;
  }

  /** Sends the query to the current upstream. Never throws: a failure moves on to the next. */
  private attempt(p: Pending): void {
    const upstream = p.upstreams[p.index];
    const attempt = p.attempt;
    try {
      if (p.tcp) {
        this.exchangeTcp(p, upstream, (reply) => {
          if (p.attempt !== attempt) return;
          if (reply) this.onReply(p, reply, true);
          else this.next(p);
        });
        return;
      }
      p.timer = setTimeout(() => {
        if (p.attempt === attempt) this.next(p);
      }, this.opts.timeoutMs);
      this.socketFor(upstream.host).send(p.query, upstream.port, upstream.host, (err) => {
        if (err && p.attempt === attempt) this.next(p);
      });
    } catch (err) {
      this.opts.onError(err, `forward to ${upstream.host}`);
      if (p.attempt === attempt) this.next(p);
    }
  }

  /** Gives up on the current upstream and tries the next, or finishes with the fallback. */
  private next(p: Pending): void {
    if (this.pending.get(p.id) !== p) return;
    this.clear(p);
    p.attempt++;
    p.index++;
    p.retrying = false;
    if (p.index >= p.upstreams.length) this.finish(p, p.fallback);
    else this.attempt(p);
  }

  private onReply(p: Pending, reply: Buffer, viaTcp: boolean): void {
    const rcode = rcodeOf(reply);
    if ((rcode === RCODE.SERVFAIL || rcode === RCODE.REFUSED) && p.index + 1 < p.upstreams.length) {
      p.fallback = reply;
      this.next(p);
      return;
    }
    if (!viaTcp && !p.tcp && isTruncated(reply)) {
      // retry over TCP with the same upstream; keep the truncated reply in case that fails
      this.clear(p);
      p.fallback = reply;
      p.retrying = true;
      const attempt = p.attempt;
      this.exchangeTcp(p, p.upstreams[p.index], (full) => {
        if (p.attempt !== attempt) return;
        this.finish(p, full && full.length <= p.udpLimit ? full : reply);
      });
      return;
    }
    this.finish(p, reply);
  }

  private finish(p: Pending, reply: Buffer | null): void {
    if (this.pending.get(p.id) !== p) return;
    this.pending.delete(p.id);
    this.clear(p);
    p.attempt++;
    if (reply) {
      reply.writeUInt16BE(p.clientId, 0);
      if (!p.tcp && reply.length > p.udpLimit) reply = truncateReply(reply, p.qEnd);
    }
    try {
      p.done(reply);
    } catch (err) {
      this.opts.onError(err, 'forward reply');
    }
  }

  private clear(p: Pending): void {
    if (p.timer) clearTimeout(p.timer);
    p.timer = undefined;
    p.conn?.destroy();
    p.conn = undefined;
  }

  /** The shared UDP socket for upstreams of this address's family, made on first use. */
  private socketFor(host: string): dgram.Socket {
    const v6 = host.includes(':');
    let sock = v6 ? this.udp6 : this.udp4;
    if (sock) return sock;
    sock = dgram.createSocket({
      type: v6 ? 'udp6' : 'udp4',
      lookup: literalLookup as unknown as dgram.SocketOptions['lookup'],
    });
    sock.on('message', (msg, rinfo) => {
      try {
        this.onUdpMessage(msg, rinfo);
      } catch (err) {
        this.opts.onError(err, 'upstream reply');
      }
    });
    sock.on('error', (err) => this.opts.onError(err, 'upstream socket'));
    if (v6) this.udp6 = sock;
    else this.udp4 = sock;
    return sock;
  }

  private onUdpMessage(msg: Buffer, rinfo: dgram.RemoteInfo): void {
    if (msg.length < 12) return;
    const p = this.pending.get(msg.readUInt16BE(0));
    if (!p || p.tcp || p.retrying) return;
    let sentThere = false;
    for (let i = 0; i <= p.index && !sentThere; i++) {
      sentThere = p.upstreams[i].host === rinfo.address && p.upstreams[i].port === rinfo.port;
    }
    if (!sentThere || !answersQuestion(msg, p.query, p.qEnd)) return;
    this.onReply(p, msg, false);
  }

  /**
   * One query over a new TCP connection; `cb` gets the reply (an answer to our question with
   * our ID) or null on any failure or after timeoutMs. The connection is closed either way.
   */
  private exchangeTcp(p: Pending, upstream: Upstream, cb: (reply: Buffer | null) => void): void {
    let settled = false;
    const conn = new Socket();
    const timer = setTimeout(() => settle(null), this.opts.timeoutMs);
    const settle = (reply: Buffer | null): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (p.timer === timer) p.timer = undefined;
      if (p.conn === conn) p.conn = undefined;
      conn.destroy();
      cb(reply);
    };
    p.conn = conn;
    p.timer = timer;
    const reader = new FrameReader();
    conn.on('error', () => settle(null));
    conn.on('close', () => settle(null));
    conn.on('data', (chunk: Buffer) => {
      reader.push(chunk, (frame) => {
        if (frame.length >= 12 && frame.readUInt16BE(0) === p.id && answersQuestion(frame, p.query, p.qEnd)) {
          settle(Buffer.from(frame));
        }
      });
    });
    conn.setNoDelay(true);
    conn.connect(upstream.port, upstream.host);
    const framed = Buffer.allocUnsafe(2 + p.query.length);
    framed.writeUInt16BE(p.query.length, 0);
    p.query.copy(framed, 2);
    conn.write(framed);
  }

  /** A random query ID not used by a pending forward (crypto-random, drawn in batches). */
  private freeId(): number {
    while (true) {
      if (this.idOffset + 2 > this.ids.length) {
        randomFillSync(this.ids);
        this.idOffset = 0;
      }
      const id = this.ids.readUInt16BE(this.idOffset);
      this.idOffset += 2;
      if (!this.pending.has(id)) return id;
    }
  }
}
