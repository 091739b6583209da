/**
 * Pure parsers for command-line values: repeatable flags, k=v lists, filters, restart policies,
 * env files, hosts. Each throws a CliError that names the flag, the bad value and the fix.
 */
import { isIP, isIPv4, isIPv6 } from 'node:net';
import { CliError } from './errors.js';

/** Commander argParser for repeatable flags: -e A -e B -> ['A', 'B']. */
export function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** -H / WEFT_HOST: unix:///path or /path -> the socket path. */
export function parseHost(host: string): string {
  const value = host.trim();
  if (value.startsWith('unix://')) {
    const path = value.slice('unix://'.length);
    if (!path) throw new CliError(`invalid host '${host}': give the socket path, e.g. unix:///run/weft/weft.sock`);
    return path;
  }
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(value);
  if (scheme) {
    throw new CliError(
      `unsupported host '${host}': the weft agent listens on a unix socket (unix:///path or /path)`,
    );
  }
  if (!value) throw new CliError('empty host: give unix:///path or /path');
  return value;
}

/**
 * k=v pairs (--label, --opt). Without '=': the value is '' when allowBare (labels, like Docker),
 * else an error.
 */
export function parseKeyValues(list: string[] | undefined, flag: string, allowBare = false): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of list ?? []) {
    const eq = item.indexOf('=');
    if (eq === 0 || (eq < 0 && !allowBare) || item === '') {
      throw new CliError(`invalid ${flag} '${item}': expected key=value`);
    }
    if (eq < 0) out[item] = '';
    else out[item.slice(0, eq)] = item.slice(eq + 1);
  }
  return out;
}

/** -f key=value (repeatable) -> { key: [values] }, only for the keys the command knows. */
export function parseFilters(
  list: string[] | undefined,
  allowed: readonly string[],
  command: string,
): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const item of list ?? []) {
    const eq = item.indexOf('=');
    if (eq <= 0) {
      throw new CliError(`invalid filter '${item}': expected key=value, e.g. name=web`);
    }
    const key = item.slice(0, eq).trim().toLowerCase();
    const value = item.slice(eq + 1);
    if (!allowed.includes(key)) {
      throw new CliError(`invalid filter '${key}': ${command} accepts ${allowed.join(', ')}`);
    }
    (out[key] ??= []).push(value);
  }
  return out;
}

export type RestartPolicy = {
  name: 'no' | 'on-failure' | 'always' | 'unless-stopped';
  maxRetries?: number;
};

/** --restart no | on-failure[:N] | always | unless-stopped */
export function parseRestart(spec: string): RestartPolicy {
  const colon = spec.indexOf(':');
  const name = colon < 0 ? spec : spec.slice(0, colon);
  const retries = colon < 0 ? undefined : spec.slice(colon + 1);
  const names = ['no', 'on-failure', 'always', 'unless-stopped'] as const;
  const known = names.find((n) => n === name);
  if (!known) {
    throw new CliError(`invalid --restart '${spec}': use no, on-failure[:N], always or unless-stopped`);
  }
  if (retries === undefined) return { name: known };
  if (known !== 'on-failure') {
    throw new CliError(`invalid --restart '${spec}': only on-failure takes a retry count (on-failure:N)`);
  }
  if (!/^\d+$/.test(retries)) {
    throw new CliError(`invalid --restart '${spec}': the retry count must be a whole number (on-failure:3)`);
  }
  return { name: known, maxRetries: Number(retries) };
}

/**
 * -e entries: K=V as is; a bare K takes its value from the CLI's environment and is dropped
 * when unset (Docker's behaviour).
 */
export function parseEnvList(list: string[] | undefined, env: NodeJS.ProcessEnv, flag = '-e'): string[] {
  const out: string[] = [];
  for (const item of list ?? []) {
    const eq = item.indexOf('=');
    if (eq === 0 || item === '') throw new CliError(`invalid ${flag} '${item}': expected KEY=VALUE or KEY`);
    if (eq > 0) {
      out.push(item);
      continue;
    }
    if (/\s/.test(item)) throw new CliError(`invalid ${flag} '${item}': a variable name has no spaces`);
    const value = env[item];
    if (value !== undefined) out.push(`${item}=${value}`);
  }
  return out;
}

/** An --env-file's text: KEY=VALUE or KEY lines; blank lines and # comments are skipped. */
export function parseEnvFile(text: string, file: string, env: NodeJS.ProcessEnv): string[] {
  const entries: string[] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].replace(/^\s+/, '');
    if (line === '' || line.startsWith('#')) continue;
    const eq = line.indexOf('=');
    const name = eq < 0 ? line.trimEnd() : line.slice(0, eq);
    if (name === '' || /\s/.test(name)) {
      throw new CliError(`invalid --env-file ${file} line ${i + 1}: '${lines[i]}' is not KEY=VALUE`);
    }
    entries.push(eq < 0 ? name : `${name}=${line.slice(eq + 1)}`);
  }
  return parseEnvList(entries, env, `--env-file ${file} entry`);
}

/** --add-host name:ip (or name=ip) -> "name:ip" */
export function parseAddHost(spec: string): string {
  let sep = spec.indexOf('=');
  if (sep < 0) sep = spec.indexOf(':');
  const name = sep < 0 ? '' : spec.slice(0, sep);
  let ip = sep < 0 ? '' : spec.slice(sep + 1);
  if (ip.startsWith('[') && ip.endsWith(']')) ip = ip.slice(1, -1);
  if (!name || !ip) throw new CliError(`invalid --add-host '${spec}': expected name:ip, e.g. db:10.0.0.5`);
  if (!isIP(ip)) throw new CliError(`invalid --add-host '${spec}': '${ip}' is not an IP address`);
  return `${name}:${ip}`;
}

/** An address flag: checks the family and gives a clear message. */
export function parseIp(value: string, flag: string, family?: 4 | 6): string {
  const ok = family === 4 ? isIPv4(value) : family === 6 ? isIPv6(value) : isIP(value) !== 0;
  if (!ok) {
    const what = family ? `an IPv${family} address` : 'an IP address';
    throw new CliError(`invalid ${flag} '${value}': expected ${what}`);
  }
  return value;
}

/** A whole number >= 0 (timeouts, counts). */
export function parseCount(value: string, flag: string): number {
  if (!/^\d+$/.test(value.trim())) throw new CliError(`invalid ${flag} '${value}': expected a whole number`);
  return Number(value.trim());
}

/** --tail N | all */
export function parseTail(value: string): number | undefined {
  if (value === 'all') return undefined;
  return parseCount(value, '--tail');
}

export type OutputFormat = 'table' | 'json';

/** --format table|json (Go templates are not supported). */
export function parseFormat(value: string | undefined, allowed: readonly OutputFormat[] = ['table', 'json']): OutputFormat {
  const format = (value ?? allowed[0]).trim();
  const known = allowed.find((f) => f === format);
  if (!known) throw new CliError(`unsupported --format '${format}': use ${allowed.join(' or ')}`);
  return known;
}

/** --store sqlite | etcd://HOST:PORT */
export function parseStoreSpec(value: string): string {
  if (value === 'sqlite') return value;
  const m = /^etcd:\/\/([^/:]+|\[[0-9a-fA-F:.]+\]):(\d{1,5})$/.exec(value);
  if (m && Number(m[2]) >= 1 && Number(m[2]) <= 65535) return value;
  throw new CliError(`invalid --store '${value}': use sqlite or etcd://HOST:PORT`);
}

/** --dns-upstream: IP, IP:PORT or [IPv6]:PORT (port 53 by default). */
export function parseDnsUpstream(value: string): { host: string; port: number } {
  if (isIPv6(value)) return { host: value, port: 53 };
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([0-9.]+))(?::(\d{1,5}))?$/.exec(value);
  const host = m?.[1] ?? m?.[2];
  const port = m?.[3] === undefined ? 53 : Number(m[3]);
  if (!host || isIP(host) === 0 || port < 1 || port > 65535) {
    throw new CliError(`invalid --dns-upstream '${value}': use IP, IP:PORT or [IPv6]:PORT`);
  }
  return { host, port };
}

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;

export function parseLogLevel(value: string): string {
  if (!(LOG_LEVELS as readonly string[]).includes(value)) {
    throw new CliError(`invalid --log-level '${value}': use ${LOG_LEVELS.join(', ')}`);
  }
  return value;
}
