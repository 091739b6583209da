/**
 * conntrack: clearing the flows of a backend that went away, and following connection events
 * (for least-connections). Both go through the `conntrack` tool (Debian package conntrack).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { childEnv, run } from './exec.js';

const CONNTRACK = '/usr/sbin/conntrack';

/**
 * Deletes every tracked flow answered by ip:port: its clients' next packet finds no state and is
 * refused (or balanced anew) instead of going to an address that no longer answers.
 * Returns how many flows went.
 */
export async function conntrackDeleteBackend(protocol: 'tcp' | 'udp', ip: string, port: number): Promise<number> {
  const res = await run(CONNTRACK, ['-D', '-p', protocol, '--reply-src', ip, '--reply-port-src', String(port)], { okCodes: [0, 1] });
  return Number(/(\d+) flow entries/.exec(res.stderr + res.stdout)?.[1] ?? 0);
}

export interface ConntrackEvent {
  type: 'NEW' | 'UPDATE' | 'DESTROY';
  protocol: string;
  /** TCP state, when the line has one */
  state?: string;
  orig: { src: string; dst: string; sport: number; dport: number };
  reply: { src: string; dst: string; sport: number; dport: number };
}

/** One line of `conntrack -E` (its default format), or undefined if it is not an event. */
export function parseConntrackEvent(line: string): ConntrackEvent | undefined {
  const m = /^\s*\[(NEW|UPDATE|DESTROY)\]\s+(\w+)\s+\d+\s+(?:\d+\s+)?(?:([A-Z_]+)\s+)?(.*)$/.exec(line);
  if (!m) return undefined;
  const pairs = [...m[4].matchAll(/(src|dst|sport|dport)=(\S+)/g)].map((p) => [p[1], p[2]] as const);
  if (pairs.length < 8) return undefined;
  const tuple = (list: (readonly [string, string])[]) => {
    const o = Object.fromEntries(list);
    return { src: o.src, dst: o.dst, sport: Number(o.sport), dport: Number(o.dport) };
  };
  return { type: m[1] as ConntrackEvent['type'], protocol: m[2], state: m[3], orig: tuple(pairs.slice(0, 4)), reply: tuple(pairs.slice(4, 8)) };
}

const CLOSING = new Set(['FIN_WAIT', 'CLOSE_WAIT', 'LAST_ACK', 'TIME_WAIT', 'CLOSE']);

/**
 * Open connections per backend (the reply source ip:port of DNATed flows), kept from events: a
 * flow counts from NEW until TCP starts closing it (FIN) or it is destroyed.
 */
export class ConnCounter {
  private flows = new Map<string, string>();
  private counts = new Map<string, number>();

  /** Applies one event; returns the backend key whose count changed, if any. */
  feed(ev: ConntrackEvent): string | undefined {
    if (ev.orig.dst === ev.reply.src && ev.orig.dport === ev.reply.sport) return undefined; // not DNATed
    const flow = `${ev.protocol} ${ev.orig.src}:${ev.orig.sport}>${ev.orig.dst}:${ev.orig.dport}`;
    const backend = `${ev.reply.src}:${ev.reply.sport}`;
    const open = ev.type !== 'DESTROY' && !(ev.state && CLOSING.has(ev.state));
    const had = this.flows.get(flow);
    if (open && had === undefined) {
      this.flows.set(flow, backend);
      this.counts.set(backend, (this.counts.get(backend) ?? 0) + 1);
      return backend;
    }
    if (!open && had !== undefined) {
      this.flows.delete(flow);
      const n = (this.counts.get(had) ?? 1) - 1;
      if (n > 0) this.counts.set(had, n);
      else this.counts.delete(had);
      return had;
    }
    return undefined;
  }

  count(ip: string, port: number): number {
    return this.counts.get(`${ip}:${port}`) ?? 0;
  }
}

/** Follows `conntrack -E` and calls back per event; stop() ends the process (by its PID). */
export function followConntrack(onEvent: (ev: ConntrackEvent) => void, onExit: (why: string) => void): { stop: () => void } {
  const child: ChildProcess = spawn(CONNTRACK, ['-E', '-e', 'NEW,UPDATE,DESTROY'], { stdio: ['ignore', 'pipe', 'pipe'], env: childEnv() });
  let stopped = false;
  const err: string[] = [];
  child.stderr!.on('data', (d: Buffer) => err.push(d.toString()));
  createInterface({ input: child.stdout! }).on('line', (line) => {
    const ev = parseConntrackEvent(line);
    if (ev) onEvent(ev);
  });
  child.on('error', (e) => onExit(e.message));
  child.on('close', (code) => {
    if (!stopped) onExit(`conntrack -E exited (${code}): ${err.join('').trim()}`);
  });
  return {
    stop: () => {
      stopped = true;
      child.kill('SIGTERM');
    },
  };
}
