/**
 * Output in Docker's habits: padded tables, 12-character ids, "5 seconds ago", port lists like
 * "0.0.0.0:8080->80/tcp", and JSON for programs. Pure functions.
 */
import { humanDuration } from '../model/duration.js';
import type { PortBinding } from '../model/types.js';

/** Docker's table layout (tabwriter: min width 10, padding 3), trailing spaces trimmed. */
export function table(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const all = [headers, ...rows];
  const widths = headers.map((_, col) => {
    const longest = Math.max(...all.map((row) => textWidth(row[col] ?? '')));
    return Math.max(longest + 3, 10);
  });
  const lines = all.map((row) => {
    const cells = headers.map((_, col) => {
      const cell = row[col] ?? '';
      return col === headers.length - 1 ? cell : cell + ' '.repeat(widths[col] - textWidth(cell));
    });
    return cells.join('').trimEnd();
  });
  return `${lines.join('\n')}\n`;
}

/** Width in terminal columns, counting code points (good enough for ids, names and "…"). */
export function textWidth(text: string): number {
  let n = 0;
  for (const _ of text) n++;
  return n;
}

/** Docker's short id: the first 12 hex characters. */
export function shortId(id: string): string {
  return id.slice(0, 12);
}

/** Cut to max columns, the last one an ellipsis. */
export function ellipsis(text: string, max: number): string {
  const chars = [...text];
  if (chars.length <= max) return text;
  if (max <= 1) return chars.slice(0, max).join('');
  return `${chars.slice(0, max - 1).join('')}…`;
}

/** The COMMAND column: the command line, truncated to 20 columns unless noTrunc, quoted. */
export function commandColumn(cmd: readonly string[], noTrunc = false): string {
  const line = cmd.join(' ');
  return JSON.stringify(noTrunc ? line : ellipsis(line, 20));
}

export { humanDuration };

/** "5 seconds ago" for an ISO time; times in the future (clock skew) count as now. */
export function timeAgo(iso: string, now: number): string {
  const then = Date.parse(iso);
  if (Number.isNaN(then)) return '';
  return `${humanDuration(now - then)} ago`;
}

/** An address for host:port text: IPv6 in brackets, none meaning every IPv4 address. */
export function hostAddress(ip: string | undefined): string {
  const addr = ip ? ip : '0.0.0.0';
  return addr.includes(':') ? `[${addr}]` : addr;
}

/**
 * The PORTS column: "0.0.0.0:8080->80/tcp, [::]:8080->80/tcp", with consecutive ports merged
 * into ranges like Docker ("0.0.0.0:8000-8002->80-82/tcp").
 */
export function portsColumn(ports: readonly PortBinding[]): string {
  const sorted = [...ports].sort(
    (a, b) =>
      (a.protocol < b.protocol ? -1 : a.protocol > b.protocol ? 1 : 0) ||
      familyOrder(a.hostIp) - familyOrder(b.hostIp) ||
      (a.hostIp < b.hostIp ? -1 : a.hostIp > b.hostIp ? 1 : 0) ||
      a.containerPort - b.containerPort ||
      a.hostPort - b.hostPort,
  );
  const groups: { first: PortBinding; last: PortBinding }[] = [];
  for (const p of sorted) {
    const g = groups[groups.length - 1];
    if (
      g &&
      g.last.protocol === p.protocol &&
      g.last.hostIp === p.hostIp &&
      g.last.containerPort + 1 === p.containerPort &&
      g.last.hostPort + 1 === p.hostPort
    ) {
      g.last = p;
    } else {
      groups.push({ first: p, last: p });
    }
  }
  return groups
    .map(({ first, last }) => {
      const range = (a: number, b: number): string => (a === b ? `${a}` : `${a}-${b}`);
      return `${hostAddress(first.hostIp)}:${range(first.hostPort, last.hostPort)}->${range(
        first.containerPort,
        last.containerPort,
      )}/${first.protocol}`;
    })
    .join(', ');
}

function familyOrder(ip: string): number {
  return ip.includes(':') ? 1 : 0;
}

/** `weft port` lines: "80/tcp -> 0.0.0.0:32768", in container-port order. */
export function portLines(ports: readonly PortBinding[]): string[] {
  return [...ports]
    .sort((a, b) => a.containerPort - b.containerPort || (a.protocol < b.protocol ? -1 : a.protocol > b.protocol ? 1 : 0) || familyOrder(a.hostIp) - familyOrder(b.hostIp))
    .map((p) => `${p.containerPort}/${p.protocol} -> ${hostAddress(p.hostIp)}:${p.hostPort}`);
}

/** JSON for programs, indented like docker inspect. */
export function json(value: unknown): string {
  return `${JSON.stringify(value, null, 4)}\n`;
}

/** Labels as Docker lists them: k=v,k2=v2 (sorted). */
export function labelList(labels: Record<string, string> | undefined): string {
  return Object.keys(labels ?? {})
    .sort()
    .map((k) => `${k}=${labels?.[k] ?? ''}`)
    .join(',');
}

/** `key: value` lines for people, keys padded to one column. */
export function keyValues(pairs: readonly (readonly [string, string])[], indent = ''): string {
  const width = Math.max(0, ...pairs.map(([k]) => textWidth(k))) + 2;
  return `${pairs.map(([k, v]) => `${indent}${`${k}:`.padEnd(width)}${v}`).join('\n')}\n`;
}
