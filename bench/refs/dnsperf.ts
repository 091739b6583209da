/**
 * DNS load and checks from inside a network namespace, for bench/dns.ts.
 *
 * - `runDnsperf`: the host's dnsperf (Debian dnsperf 2.10) entered into the client's netns with
 *   nsenter (which execs, so no extra process stays around), bounded in time; its text report is
 *   parsed (queries sent/completed/lost, response codes, queries per second, latency).
 * - `lookupA`: one A query for a name, sent from inside a netns by a tiny node script (no dig or
 *   nslookup needed): used in setup to check that a server answers a name with the right address
 *   before it is loaded.
 * - `cpuSeconds`: user + system CPU time of a process (all its threads), to compute the server's
 *   CPU time per answered query.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runSubdir } from '../lib/ns.js';
import { run } from '../lib/proc.js';
import { describeNs, nsenterArgs, type NetnsRef } from './iperf.js';

export const DNSPERF = '/usr/bin/dnsperf';

export async function dnsperfAvailable(): Promise<string | null> {
  if (!existsSync(DNSPERF)) return `${DNSPERF} missing (apt-get install dnsperf)`;
  return null;
}

/** dnsperf has no --version: its Debian package's version. */
export async function dnsperfVersion(): Promise<string> {
  const r = await run('dpkg-query', ['-W', '-f', '${Version}', 'dnsperf'], { okCodes: [0, 1] });
  return `dnsperf ${r.stdout.trim() || '(version unknown)'}`;
}

/** Writes a dnsperf data file (`NAME A` per line) into the run dir and returns its path. */
export function writeQueryFile(names: string[], file = 'queries.txt'): string {
  const p = join(runSubdir('dns'), file);
  writeFileSync(p, names.map((n) => `${n} A\n`).join(''));
  return p;
}

export interface DnsperfSettings {
  seconds: number;
  /** -c: client sockets */
  clients: number;
  /** -T: threads */
  threads: number;
  /** -q: queries in flight at most */
  outstanding: number;
  /** -t: seconds before a query counts as lost */
  timeout: number;
}

export function dnsperfArgs(s: DnsperfSettings, server: string, port: number, dataFile: string): string[] {
  return [
    '-s', server, '-p', String(port), '-d', dataFile,
    '-l', String(s.seconds), '-c', String(s.clients), '-T', String(s.threads), '-q', String(s.outstanding), '-t', String(s.timeout),
  ];
}

export interface DnsperfResult {
  sent: number;
  completed: number;
  lost: number;
  /** response code -> count, e.g. {NOERROR: 1234} */
  rcodes: Record<string, number>;
  qps: number;
  /** average latency, milliseconds */
  avgLatencyMs: number;
  maxLatencyMs: number;
  runSeconds: number;
  /** average request and response sizes in bytes */
  requestBytes: number;
  responseBytes: number;
}

const num = (text: string, re: RegExp, what: string): number => {
  const m = re.exec(text);
  if (!m) throw new Error(`dnsperf output has no ${what}: ${text.trim().split('\n').slice(-4).join(' / ').slice(0, 300)}`);
  return Number(m[1]);
};

/** Parses dnsperf 2.x's "Statistics:" block. */
export function parseDnsperf(text: string): DnsperfResult {
  const rcodes: Record<string, number> = {};
  const rc = /Response codes:\s+(.*)/.exec(text)?.[1] ?? '';
  for (const m of rc.matchAll(/([A-Z]+)\s+(\d+)/g)) rcodes[m[1]] = Number(m[2]);
  const lat = /Average Latency \(s\):\s+([\d.]+)(?:\s+\(min\s+([\d.]+),\s+max\s+([\d.]+)\))?/.exec(text);
  const size = /Average packet size:\s+request\s+(\d+),\s+response\s+(\d+)/.exec(text);
  return {
    sent: num(text, /Queries sent:\s+(\d+)/, '"Queries sent"'),
    completed: num(text, /Queries completed:\s+(\d+)/, '"Queries completed"'),
    lost: num(text, /Queries lost:\s+(\d+)/, '"Queries lost"'),
    rcodes,
    qps: num(text, /Queries per second:\s+([\d.]+)/, '"Queries per second"'),
    avgLatencyMs: lat ? Number(lat[1]) * 1000 : NaN,
    maxLatencyMs: lat?.[3] ? Number(lat[3]) * 1000 : NaN,
    runSeconds: num(text, /Run time \(s\):\s+([\d.]+)/, '"Run time"'),
    requestBytes: size ? Number(size[1]) : NaN,
    responseBytes: size ? Number(size[2]) : NaN,
  };
}

/** Runs dnsperf in the client's netns against server:port and returns its parsed report. */
export async function runDnsperf(client: NetnsRef, server: string, port: number, dataFile: string, s: DnsperfSettings): Promise<DnsperfResult> {
  const [cmd, ...pre] = nsenterArgs(client);
  const r = await run(cmd, [...pre, DNSPERF, ...dnsperfArgs(s, server, port, dataFile)], { timeoutMs: (s.seconds + s.timeout) * 1000 + 30_000 });
  const out = parseDnsperf(r.stdout);
  if (out.completed === 0) throw new Error(`dnsperf from ${describeNs(client)} to ${server}:${port}: no query answered (${out.sent} sent)`);
  return out;
}

/**
 * One A query for `name` to server:port from inside the netns, by a tiny node script (UDP, 2 s
 * timeout): resolves with the rcode and the IPv4 addresses of the answer section.
 */
const LOOKUP_SCRIPT = `
import dgram from 'node:dgram';
const [name, server, port] = process.argv.slice(-3);
const labels = name.split('.').filter(Boolean);
const q = Buffer.alloc(12 + labels.reduce((a, l) => a + l.length + 1, 0) + 1 + 4);
q.writeUInt16BE(0x5eed, 0); q.writeUInt16BE(0x0100, 2); q.writeUInt16BE(1, 4);
let o = 12;
for (const l of labels) { q[o++] = l.length; o += q.write(l, o, 'ascii'); }
q[o++] = 0; q.writeUInt16BE(1, o); q.writeUInt16BE(1, o + 2);
const s = dgram.createSocket(server.includes(':') ? 'udp6' : 'udp4');
const timer = setTimeout(() => { console.log(JSON.stringify({ error: 'timeout' })); process.exit(0); }, 2000);
s.on('message', (m) => {
  const rcode = m[3] & 15, an = m.readUInt16BE(6);
  let p = 12;
  const skipName = () => { while (p < m.length) { const b = m[p]; if (b === 0) { p++; return; } if ((b & 0xc0) === 0xc0) { p += 2; return; } p += b + 1; } };
  skipName(); p += 4;
  const a = [];
  for (let i = 0; i < an && p < m.length; i++) {
    skipName(); const type = m.readUInt16BE(p), len = m.readUInt16BE(p + 8); p += 10;
    if (type === 1 && len === 4) a.push([...m.subarray(p, p + 4)].join('.'));
    p += len;
  }
  clearTimeout(timer); console.log(JSON.stringify({ rcode, a })); s.close();
});
s.send(q, Number(port), server);
`;

export async function lookupA(client: NetnsRef, name: string, server: string, port = 53): Promise<{ rcode: number; a: string[] }> {
  const script = join(runSubdir('dns'), 'lookup.mjs');
  if (!existsSync(script)) writeFileSync(script, LOOKUP_SCRIPT);
  const [cmd, ...pre] = nsenterArgs(client);
  const r = await run(cmd, [...pre, process.execPath, script, name, server, String(port)], { timeoutMs: 15_000 });
  const j = JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as { error?: string; rcode?: number; a?: string[] };
  if (j.error) throw new Error(`A ${name} to ${server}:${port} from ${describeNs(client)}: ${j.error}`);
  return { rcode: j.rcode ?? -1, a: j.a ?? [] };
}

/** Checks that `name` resolves to `ip` through server:port from the client's netns; throws otherwise. */
export async function expectA(client: NetnsRef, name: string, ip: string, server: string, port = 53): Promise<void> {
  const r = await lookupA(client, name, server, port);
  if (r.rcode !== 0 || !r.a.includes(ip)) {
    throw new Error(`A ${name} via ${server}:${port} from ${describeNs(client)}: rcode ${r.rcode}, answers [${r.a.join(', ')}], expected ${ip}`);
  }
}

let clkTck = 0;
/** USER_HZ, the unit of /proc/PID/stat's CPU times. */
export async function clockTicks(): Promise<number> {
  if (!clkTck) clkTck = Number((await run('getconf', ['CLK_TCK'])).stdout.trim()) || 100;
  return clkTck;
}

/** utime + stime of a process and all its threads, in seconds (needs clockTicks() once before). */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // after ")": state(3) ppid(4) ... utime(14) stime(15) -> indexes 11 and 12
  return (Number(f[11]) + Number(f[12])) / (clkTck || 100);
}
