/**
 * The embedded DNS server: UDP and TCP on port 53 of each user-defined network's gateway,
 * answering containers from the current NameTable and forwarding the rest upstream.
 *
 * Per query, in this order: the source address must be a running container on a user-defined
 * network (table.askerOf), else the query is dropped before anything else is looked at; then the
 * header and question are parsed (wire.ts), then the table decides: answer locally (records,
 * NODATA, NXDOMAIN) or forward (forward.ts). Local answers are computed and sent synchronously
 * in the socket callback. Every callback is wrapped: a throw is counted and logged, never
 * an unhandled exception.
 *
 * UDP answers larger than 512 bytes (or the client's EDNS payload size, at most 4096) are cut to
 * whole records with TC set; the client retries over TCP, where a connection carries any number
 * of length-prefixed queries, answered as they complete (forwarded ones may overtake, RFC 7766).
 * A connection is closed when idle for tcpIdleTimeoutMs, when one frame takes longer than
 * tcpFrameTimeoutMs to arrive (slowloris), or when the client stops reading its answers.
 */
import dgram from 'node:dgram';
import { isIP, type Server, type Socket, createServer } from 'node:net';
import { canonicalIp } from '../ipam/cidr.js';
import { Forwarder, type Upstream } from './forward.js';
import type { Asker, NameTable } from './records.js';
import {
  FrameReader,
  HEADER_LEN,
  ParsedQuery,
  RCODE,
  type ResponseOptions,
  TCP_MAX_MESSAGE,
  isTruncated,
  parseQuery,
  writeHeaderOnly,
  writeResponse,
} from './wire.js';

export type { Upstream } from './forward.js';

export interface DnsLogger {
  warn(o: object, msg: string): void;
  debug?(o: object, msg: string): void;
}

export interface DnsServerOptions {
  /** the current name table; called for every query, so a new table takes effect at once */
  table: () => NameTable;
  /** where to forward the asker's non-local names, in order of preference (IP literals) */
  upstreams: (asker: Asker) => Upstream[];
  log?: DnsLogger;
  /** how long to wait for one upstream before trying the next (default 2000 ms) */
  forwardTimeoutMs?: number;
  /** forwards in flight at most; more are dropped (default 1024) */
  maxPendingForwards?: number;
  /** a TCP connection with no traffic for this long is closed (default 10 s) */
  tcpIdleTimeoutMs?: number;
  /** a TCP frame must arrive whole within this long of its first byte (default 5 s) */
  tcpFrameTimeoutMs?: number;
  /** TCP connections open at most, all addresses together; more are refused (default 256) */
  maxTcpConnections?: number;
}

/** Plain counters since the server was made (for Prometheus). */
export interface DnsStats {
  /** datagrams and TCP frames received */
  queries: number;
  /** answered from the table: records, NODATA or NXDOMAIN (truncated answers included) */
  answeredLocally: number;
  /** relayed upstream */
  forwarded: number;
  /** forwards answered SERVFAIL because no upstream answered */
  forwardFailed: number;
  /** not answered at all: unknown source, shorter than a header, a response, forwards over the cap */
  dropped: number;
  /** unreadable: answered FORMERR, or dropped for being shorter than a header */
  malformed: number;
  /** local answers sent with TC set */
  truncated: number;
  /** opcodes other than QUERY, answered NOTIMP */
  notImplemented: number;
  /** unexpected errors in a handler (bugs or socket failures; also logged) */
  errors: number;
  /** TCP connections refused: over maxTcpConnections or from an unknown source */
  tcpRefused: number;
}

interface Listener {
  host: string;
  port: number;
  udp: dgram.Socket;
  tcp: Server;
  conns: Set<Socket>;
  closed: boolean;
}

/** respond()'s verdict for a query to relay upstream */
const FORWARD_QUERY = Symbol('forward');
/** A client that has not read this much of its TCP answers is cut off. */
const MAX_TCP_BACKLOG = 1 << 20;
const UDP_RECV_BUFFER = 4 << 20;
/** At most one warning a second for unexpected errors; the rest are only counted. */
const WARN_INTERVAL_MS = 1000;

/** Listeners are kept under the canonical text of their address. */
function keyOf(host: string): string {
  try {
    return canonicalIp(host);
  } catch {
    return host; // not an address: matches no listener
  }
}

function literalLookup(address: string, family: number, cb: (err: Error | null, address: string, family: number) => void): void {
  cb(null, address, family);
}

export class DnsServer {
  private readonly listeners = new Map<string, Listener>();
  /** addresses with a listen() under way */
  private readonly binding = new Set<string>();
  private readonly forwarder: Forwarder;
  private readonly counters: DnsStats = {
    queries: 0, answeredLocally: 0, forwarded: 0, forwardFailed: 0, dropped: 0,
    malformed: 0, truncated: 0, notImplemented: 0, errors: 0, tcpRefused: 0,
  };
  /** the query being handled (handling is synchronous, so one is enough) */
  private readonly q = new ParsedQuery();
  private readonly reply: ResponseOptions = { rcode: 0, aa: true, ra: true, limit: 512, prefix: 0 };
  private tcpOpen = 0;
  private lastWarn = 0;
  private readonly idleMs: number;
  private readonly frameMs: number;
  private readonly maxConns: number;

  constructor(private readonly opts: DnsServerOptions) {
    this.idleMs = opts.tcpIdleTimeoutMs ?? 10_000;
    this.frameMs = opts.tcpFrameTimeoutMs ?? 5_000;
    this.maxConns = opts.maxTcpConnections ?? 256;
    this.forwarder = new Forwarder({
      timeoutMs: opts.forwardTimeoutMs ?? 2_000,
      maxPending: Math.min(opts.maxPendingForwards ?? 1024, 30_000),
      onError: (err, what) => this.fail(err, what),
    });
  }

  /**
   * Serves UDP and TCP on host:port (port 0: a free port, the same for both). One call per
   * address; listening twice on one address is an error.
   */
  async listen(host: string, port: number): Promise<void> {
    const family = isIP(host);
    if (family === 0) throw new Error(`dns: cannot listen on "${host}": not an IP address`);
    const key = canonicalIp(host);
    if (this.listeners.has(key) || this.binding.has(key)) throw new Error(`dns: already listening on ${host}`);
    this.binding.add(key);
    try {
      await this.bind(key, family, port);
    } finally {
      this.binding.delete(key);
    }
  }

  private async bind(host: string, family: number, port: number): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const udp = dgram.createSocket({
        type: family === 6 ? 'udp6' : 'udp4',
        reuseAddr: true,
        ipv6Only: family === 6,
        lookup: literalLookup as unknown as dgram.SocketOptions['lookup'],
      });
      try {
        await new Promise<void>((resolve, reject) => {
          udp.once('error', reject);
          udp.bind({ address: host, port, exclusive: true }, () => {
            udp.off('error', reject);
            resolve();
          });
        });
      } catch (err) {
        udp.close();
        throw err;
      }
      try {
        udp.setRecvBufferSize(UDP_RECV_BUFFER); // the kernel caps it at net.core.rmem_max
      } catch {
        // not fatal: the default buffer only drops more under a burst
      }
      const bound = udp.address().port;
      const tcp = createServer({ noDelay: true });
      try {
        await new Promise<void>((resolve, reject) => {
          tcp.once('error', reject);
          tcp.listen({ host, port: bound, ipv6Only: family === 6 }, () => {
            tcp.off('error', reject);
            resolve();
          });
        });
      } catch (err) {
        udp.close();
        // port 0: the UDP port we got may be taken for TCP; pick again
        if (port === 0 && attempt < 10 && (err as NodeJS.ErrnoException).code === 'EADDRINUSE') continue;
        throw err;
      }
      const l: Listener = { host, port: bound, udp, tcp, conns: new Set(), closed: false };
      udp.on('error', (err) => this.fail(err, `udp socket ${host}`));
      udp.on('message', (msg, rinfo) => this.onUdp(l, msg, rinfo));
      tcp.on('connection', (sock) => this.onConnection(l, sock));
      tcp.on('error', (err) => this.fail(err, `tcp server ${host}`));
      this.listeners.set(host, l);
      return;
    }
  }

  /** Stops serving `host` (its UDP socket, TCP server and open connections). */
  async close(host: string): Promise<void> {
    const key = keyOf(host);
    const l = this.listeners.get(key);
    if (!l) return;
    this.listeners.delete(key);
    l.closed = true;
    for (const sock of l.conns) sock.destroy();
    await Promise.all([
      new Promise<void>((resolve) => l.udp.close(() => resolve())),
      new Promise<void>((resolve) => l.tcp.close(() => resolve())),
    ]);
  }

  /** Stops serving every address and abandons forwards in flight. */
  async closeAll(): Promise<void> {
    await Promise.all([...this.listeners.keys()].map((host) => this.close(host)));
    this.forwarder.close();
  }

  /** The addresses served (canonical text). */
  addresses(): string[] {
    return [...this.listeners.keys()];
  }

  /** The port bound on `host` (the one picked when listen() was given 0), if served. */
  port(host: string): number | undefined {
    return this.listeners.get(keyOf(host))?.port;
  }

  stats(): DnsStats & { pendingForwards: number; tcpConnections: number } {
    return { ...this.counters, pendingForwards: this.forwarder.size, tcpConnections: this.tcpOpen };
  }

  private onUdp(l: Listener, msg: Buffer, rinfo: dgram.RemoteInfo): void {
    this.counters.queries++;
    try {
      const out = this.respond(msg, rinfo.address, false);
      if (out === null) return;
      if (out === FORWARD_QUERY) {
        this.forward(msg, rinfo.address, false, (reply) => {
          if (!l.closed) l.udp.send(reply, rinfo.port, rinfo.address);
        });
        return;
      }
      l.udp.send(out, rinfo.port, rinfo.address);
    } catch (err) {
      this.fail(err, 'udp query');
    }
  }

  private onConnection(l: Listener, sock: Socket): void {
    try {
      sock.on('error', () => {}); // resets and the like: the connection just ends
      const src = sock.remoteAddress;
      if (l.closed || this.tcpOpen >= this.maxConns || !src || !this.opts.table().askerOf(src)) {
        this.counters.tcpRefused++;
        sock.destroy();
        return;
      }
      this.tcpOpen++;
      l.conns.add(sock);
      sock.on('close', () => {
        this.tcpOpen--;
        l.conns.delete(sock);
      });
      sock.setTimeout(this.idleMs, () => sock.destroy());
      const reader = new FrameReader();
      const onFrame = (frame: Buffer): void => this.onTcpFrame(sock, src, frame);
      sock.on('data', (chunk: Buffer) => {
        try {
          reader.push(chunk, onFrame);
          if (reader.partialSince !== 0 && Date.now() - reader.partialSince > this.frameMs) sock.destroy();
        } catch (err) {
          this.fail(err, 'tcp query');
          sock.destroy();
        }
      });
    } catch (err) {
      this.fail(err, 'tcp connection');
      sock.destroy();
    }
  }

  private onTcpFrame(sock: Socket, src: string, frame: Buffer): void {
    if (sock.destroyed) return;
    this.counters.queries++;
    const out = this.respond(frame, src, true);
    if (out === null) return;
    if (out === FORWARD_QUERY) {
      this.forward(frame, src, true, (reply) => this.writeTcp(sock, reply, true));
      return;
    }
    this.writeTcp(sock, out, false);
  }

  /** Writes one answer to a TCP client; `addPrefix` when `msg` lacks its length prefix. */
  private writeTcp(sock: Socket, msg: Buffer, addPrefix: boolean): void {
    if (sock.destroyed || !sock.writable) return;
    if (sock.writableLength > MAX_TCP_BACKLOG) {
      sock.destroy();
      return;
    }
    if (addPrefix) {
      const framed = Buffer.allocUnsafe(2 + msg.length);
      framed.writeUInt16BE(msg.length, 0);
      msg.copy(framed, 2);
      msg = framed;
    }
    sock.write(msg);
  }

  /**
   * The answer to one query from `src`: a message to send (with the 2-byte prefix over TCP),
   * null to send nothing, or FORWARD_QUERY (then this.q holds the parsed query).
   */
  private respond(msg: Buffer, src: string, tcp: boolean): Buffer | null | typeof FORWARD_QUERY {
    const c = this.counters;
    const table = this.opts.table();
    const asker = table.askerOf(src);
    if (!asker) {
      c.dropped++;
      return null;
    }
    const q = this.q;
    const prefix = tcp ? 2 : 0;
    switch (parseQuery(msg, q)) {
      case 'drop':
        c.dropped++;
        if (msg.length < HEADER_LEN) c.malformed++;
        return null;
      case 'formerr':
        c.malformed++;
        return writeHeaderOnly(msg, RCODE.FORMERR, prefix);
      case 'notimp':
        c.notImplemented++;
        return writeHeaderOnly(msg, RCODE.NOTIMP, prefix);
      case 'ok':
        break;
    }
    const r = this.reply;
    r.limit = tcp ? TCP_MAX_MESSAGE : q.udpLimit();
    r.prefix = prefix;
    r.ra = asker.canForward;
    if (q.edns && q.ednsVersion !== 0) {
      c.answeredLocally++;
      r.rcode = RCODE.BADVERS;
      r.aa = false;
      return writeResponse(msg, q, r);
    }
    const answer = table.answer(asker, q.name, q.qtype, q.qclass);
    if (answer.kind === 'forward') return FORWARD_QUERY;
    c.answeredLocally++;
    r.aa = true;
    r.rcode = answer.kind === 'nxdomain' ? RCODE.NXDOMAIN : RCODE.NOERROR;
    const out = answer.kind === 'records' ? writeResponse(msg, q, r, answer.records, answer.start) : writeResponse(msg, q, r);
    if (isTruncated(out, prefix)) c.truncated++;
    return out;
  }

  /**
   * Relays the query in `msg` (parsed into this.q) from `src`, a known asker's address; `send`
   * gets the reply without a prefix.
   */
  private forward(msg: Buffer, src: string, tcp: boolean, send: (reply: Buffer) => void): void {
    const q = this.q.clone();
    const asker = this.opts.table().askerOf(src);
    const to = asker ? this.opts.upstreams(asker) : [];
    const started = this.forwarder.forward(msg, q.qEnd, tcp, q.udpLimit(), to, (reply) => {
      if (!reply) {
        this.counters.forwardFailed++;
        const limit = tcp ? TCP_MAX_MESSAGE : q.udpLimit();
        reply = writeResponse(msg, q, { rcode: RCODE.SERVFAIL, aa: false, ra: true, limit, prefix: 0 });
      }
      send(reply);
    });
    if (started) this.counters.forwarded++;
    else this.counters.dropped++;
  }

  private fail(err: unknown, what: string): void {
    this.counters.errors++;
    const now = Date.now();
    if (now - this.lastWarn < WARN_INTERVAL_MS) return;
    this.lastWarn = now;
    this.opts.log?.warn({ err, errors: this.counters.errors }, `dns: ${what} failed`);
  }
}
