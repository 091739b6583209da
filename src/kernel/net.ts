/**
 * Network namespaces, links, addresses, routes and sysctls. Reads parse `ip -j`; writes go in
 * batches (`ip -batch -`), so one change is one process.
 *
 * netns: undefined means the caller's own network namespace (the agent runs inside its host's).
 */
import { readdir, writeFile, readFile } from 'node:fs/promises';
import { run, runJSON, KernelError } from './exec.js';

const NETNS_DIR = '/run/netns';

function ipArgs(netns: string | undefined, args: string[]): string[] {
  return netns ? ['-n', netns, ...args] : args;
}

/** Runs ip commands (one per line, without the leading `ip`) as one batch process. */
export async function ipBatch(lines: string[], netns?: string): Promise<void> {
  if (lines.length === 0) return;
  await run('ip', ipArgs(netns, ['-batch', '-']), { input: lines.join('\n') + '\n' });
}

// ---------------------------------------------------------------- namespaces

export async function netnsList(): Promise<string[]> {
  try {
    return (await readdir(NETNS_DIR)).sort();
  } catch {
    return [];
  }
}

export async function netnsExists(name: string): Promise<boolean> {
  return (await netnsList()).includes(name);
}

/** Creates a named netns with loopback up. */
export async function netnsAdd(name: string): Promise<void> {
  await run('ip', ['netns', 'add', name]);
  try {
    await run('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
  } catch (e) {
    await netnsDelete(name);
    throw e;
  }
}

/** Deletes a named netns; no error if it is absent. */
export async function netnsDelete(name: string): Promise<void> {
  try {
    await run('ip', ['netns', 'delete', name]);
  } catch (e) {
    if (!(await netnsExists(name))) return;
    throw e;
  }
}

/** PIDs of processes whose network namespace is the named one. */
export async function netnsPids(name: string): Promise<number[]> {
  const { stdout } = await run('ip', ['netns', 'pids', name], { okCodes: [0, 1] });
  return stdout
    .split(/\s+/)
    .filter(Boolean)
    .map(Number);
}

// ---------------------------------------------------------------- links

export interface LinkInfo {
  ifname: string;
  ifindex: number;
  mtu: number;
  address?: string;
  operstate?: string;
  flags: string[];
  /** the bridge this link is enslaved to */
  master?: string;
  /** veth, bridge, vxlan... (from -details) */
  kind?: string;
}

interface RawLink {
  ifname: string;
  ifindex: number;
  mtu: number;
  address?: string;
  operstate?: string;
  flags?: string[];
  master?: string;
  linkinfo?: { info_kind?: string };
}

export async function linkList(netns?: string): Promise<LinkInfo[]> {
  const raw = await runJSON<RawLink[]>('ip', ipArgs(netns, ['-d', '-j', 'link', 'show']));
  return raw.map((l) => ({
    ifname: l.ifname,
    ifindex: l.ifindex,
    mtu: l.mtu,
    address: l.address,
    operstate: l.operstate,
    flags: l.flags ?? [],
    master: l.master,
    kind: l.linkinfo?.info_kind,
  }));
}

/** Deletes a link in one process, without listing all links first; an absent link is no error. */
export async function deleteLinkIfPresent(ifname: string, netns?: string): Promise<void> {
  try {
    await run('ip', ipArgs(netns, ['link', 'del', ifname]));
  } catch (e) {
    if (e instanceof KernelError && /Cannot find device|does not exist/.test(e.stderr)) return;
    throw e;
  }
}

// ---------------------------------------------------------------- addresses and routes

export interface AddrInfo {
  ifname: string;
  family: 4 | 6;
  local: string;
  prefixlen: number;
}

export async function addrList(netns?: string): Promise<AddrInfo[]> {
  const raw = await runJSON<{ ifname: string; addr_info?: { family: string; local: string; prefixlen: number }[] }[]>(
    'ip',
    ipArgs(netns, ['-j', 'addr', 'show']),
  );
  const out: AddrInfo[] = [];
  for (const l of raw)
    for (const a of l.addr_info ?? [])
      out.push({ ifname: l.ifname, family: a.family === 'inet6' ? 6 : 4, local: a.local, prefixlen: a.prefixlen });
  return out;
}

export interface RouteInfo {
  dst: string;
  dev?: string;
  gateway?: string;
  family: 4 | 6;
}

/** Routes of the main table. */
export async function routeList(netns?: string): Promise<RouteInfo[]> {
  const out: RouteInfo[] = [];
  for (const family of [4, 6] as const) {
    const raw = await runJSON<{ dst: string; dev?: string; gateway?: string }[]>(
      'ip',
      ipArgs(netns, [`-${family}`, '-j', 'route', 'show']),
    );
    for (const r of raw) out.push({ dst: r.dst, dev: r.dev, gateway: r.gateway, family });
  }
  return out;
}

// ---------------------------------------------------------------- sysctl

function sysctlPath(key: string): string {
  return '/proc/sys/' + key.replace(/\./g, '/');
}

/**
 * Sets a sysctl. In the caller's own netns it writes /proc/sys (which shows the caller's netns);
 * in another netns it runs sysctl there. Keys use dots; interface names with dots are not supported.
 */
export async function sysctlSet(key: string, value: string | number, netns?: string): Promise<void> {
  if (!netns) {
    try {
      await writeFile(sysctlPath(key), String(value));
    } catch (e) {
      throw new KernelError(`sysctl ${key}=${value}: ${(e as Error).message}`, `sysctl -w ${key}=${value}`, null, '');
    }
    return;
  }
  await run('nsenter', [`--net=${NETNS_DIR}/${netns}`, 'sysctl', '-q', '-w', `${key}=${value}`]);
}

export async function sysctlGet(key: string): Promise<string> {
  return (await readFile(sysctlPath(key), 'utf8')).trim();
}
