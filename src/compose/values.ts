/**
 * Small pure parsers for compose values: shell-like splitting of a string command, Go durations,
 * restart policies, "name:ip" host entries. Each throws an Error whose message is the reason.
 */
import { isIP } from 'node:net';
import type { ContainerCreate } from '../api/schemas.js';

/**
 * Splits a command string as Compose does (go-shellwords, no expansion): whitespace separates
 * words; '...' is literal; "..." keeps spaces, and \" \\ \$ \` are escapes inside it; a
 * backslash outside quotes escapes the next character.
 */
export function shellSplit(text: string): string[] {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  let quote: '"' | "'" | undefined;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quote === "'") {
      if (c === "'") quote = undefined;
      else word += c;
      continue;
    }
    if (quote === '"') {
      if (c === '"') quote = undefined;
      else if (c === '\\' && i + 1 < text.length && '"\\$`'.includes(text[i + 1])) word += text[++i];
      else word += c;
      continue;
    }
    if (c === '\\') {
      if (i + 1 >= text.length) throw new Error('a command may not end with a lone backslash');
      word += text[++i];
      inWord = true;
    } else if (c === '"' || c === "'") {
      quote = c;
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
    } else {
      word += c;
      inWord = true;
    }
  }
  if (quote) throw new Error(`unterminated ${quote === '"' ? 'double' : 'single'} quote`);
  if (inWord) words.push(word);
  return words;
}

const UNIT_MS: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, μs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** A Go duration ("1m30s", "500ms", "1.5h", "0") in milliseconds (rounded). */
export function parseDuration(text: string): number {
  const t = text.trim();
  if (t === '0') return 0;
  const re = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/y;
  let i = 0;
  let ms = 0;
  while (i < t.length) {
    re.lastIndex = i;
    const m = re.exec(t);
    if (!m) break;
    ms += Number(m[1]) * UNIT_MS[m[2]];
    i = re.lastIndex;
  }
  if (i === 0 || i !== t.length) throw new Error(`"${text}" is not a duration; use a number with a unit, e.g. 10s, 1m30s, 500ms`);
  return Math.round(ms);
}

export type RestartPolicy = NonNullable<ContainerCreate['restart']>;

/** no | always | on-failure[:N] | unless-stopped */
export function parseRestart(text: string): RestartPolicy {
  const m = /^(no|always|on-failure|unless-stopped)(?::(\d+))?$/.exec(text.trim());
  if (!m) throw new Error(`"${text}" is not a restart policy; use no, always, on-failure[:N] or unless-stopped`);
  const name = m[1] as RestartPolicy['name'];
  if (m[2] !== undefined && name !== 'on-failure') throw new Error(`"${text}": only on-failure takes a retry count (on-failure:3)`);
  return m[2] === undefined ? { name } : { name, maxRetries: Number(m[2]) };
}

/** An extra_hosts list entry "name:ip" or "name=ip" (IPv6 may be bracketed) -> [name, ip]. */
export function parseHostEntry(text: string): [string, string] {
  let sep = text.indexOf('=');
  if (sep < 0) sep = text.indexOf(':');
  if (sep <= 0) throw new Error(`"${text}" is not name:ip or name=ip, e.g. db:10.0.0.5`);
  return [text.slice(0, sep).trim(), hostIp(text.slice(sep + 1).trim(), text)];
}

/** The address of an extra host entry: an IP (brackets removed). */
export function hostIp(ip: string, entry: string): string {
  const bare = ip.startsWith('[') && ip.endsWith(']') ? ip.slice(1, -1) : ip;
  if (bare === 'host-gateway') throw new Error(`"${entry}": host-gateway is not supported by weft yet; give the address`);
  if (!isIP(bare)) throw new Error(`"${entry}": "${ip}" is not an IP address`);
  return bare;
}

/** Docker's container name rule (the agent checks the same). */
export const CONTAINER_NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
/** Compose service and network keys. */
export const RESOURCE_KEY_RE = /^[a-zA-Z0-9._-]+$/;
/** Hostnames (the agent checks the same). */
export const HOSTNAME_RE = /^[a-zA-Z0-9]([a-zA-Z0-9.-]{0,62})$/;
