/**
 * Store-backed address allocation. Every claim is a compare-and-swap "create if absent" on the
 * address's own key, so concurrent allocators (one agent's requests, or several agents sharing
 * etcd) never hand out one address twice; a loser picks again.
 *
 * Key layout (all under IPAM_PREFIX; <ip> is the canonical address text):
 *
 *   /weft/ipam/<networkId>/addr/<ip>            -> Allocation (JSON)
 *   /weft/ipam/<networkId>/cursor/<net>_<len>   -> {"next": "<ip>"}  one per subnet
 *
 * The cursor is a hint: where the next dynamic allocation starts looking. Allocation goes on
 * from the last address handed out and wraps at the end of the range, like the CNI host-local
 * plugin, so a released address is not reused at once (stale ARP, conntrack or DNS entries that
 * still name it have time to expire). Docker instead reuses the lowest free address.
 */
import type { Family, IpamSubnet } from '../model/types.js';
import type { Compare, KeyValue, Store, TxnOp } from '../store/types.js';
import {
  type Cidr,
  type Ip,
  broadcastAddress,
  compareIp,
  containsIp,
  formatCidr,
  formatIp,
  hostBits,
  lastAddress,
  networkAddress,
  parseCidr,
  parseIp,
  reservedAddresses,
  size,
} from './cidr.js';
import { IpamError } from './errors.js';

export const IPAM_PREFIX = '/weft/ipam/';

/** What the store holds for one allocated address. */
export interface Allocation {
  ip: string;
  /** the subnet it was allocated from */
  subnet: string;
  /** who holds it, e.g. a container id; release checks it */
  owner: string;
  /** how errors name the owner, e.g. "container web-1" */
  label?: string;
  /** asked for explicitly (--ip) rather than picked */
  static: boolean;
  /** ISO 8601 */
  allocated: string;
}

export interface AllocateOptions {
  /** a static address (--ip / --ip6); otherwise one is picked from the ip-range or subnet */
  requested?: string;
  /** the network's name, for errors (default: the first 12 characters of its id) */
  networkName?: string;
  /** how errors name the owner, e.g. "container web-1" (default "container <owner>") */
  ownerLabel?: string;
}

export interface ClaimOptions extends AllocateOptions {
  /**
   * 0 on the first try, +1 on each retry after a lost txn. The first try trusts the cursor; later
   * ones read every allocation of the network and spread concurrent retries over free addresses.
   */
  attempt?: number;
}

/**
 * Everything needed to claim one address inside a caller's own transaction: add `compares` to
 * the txn's compares and `ops` to its success ops. If the txn fails, call prepareClaim again with
 * attempt + 1 (the address may have been taken meanwhile).
 */
export interface Claim {
  ip: string;
  key: string;
  /** the owner already holds this (static) address: compares check it still does, ops are empty */
  held: boolean;
  compares: Compare[];
  ops: TxnOp[];
}

/** How many lost races allocate() tolerates before giving up. */
export const MAX_ATTEMPTS = 32;

function checkNetworkId(networkId: string): void {
  if (typeof networkId !== 'string' || networkId === '' || networkId.includes('/')) {
    throw new IpamError(`invalid network id ${JSON.stringify(networkId)}: must be non-empty without "/"`, 'invalid');
  }
}

/** `/weft/ipam/<networkId>/`: everything IPAM keeps for a network (delete it with the network). */
export function networkPrefix(networkId: string): string {
  checkNetworkId(networkId);
  return `${IPAM_PREFIX}${networkId}/`;
}

function addrPrefix(networkId: string): string {
  return `${networkPrefix(networkId)}addr/`;
}

/** The key of one address's allocation. `ip` may be in any valid notation. */
export function allocationKey(networkId: string, ip: string): string {
  return `${addrPrefix(networkId)}${formatIp(parseIp(ip))}`;
}

/** The key of a subnet's cursor. */
export function cursorKey(networkId: string, subnet: string): string {
  const c = parseCidr(subnet, { strict: false });
  return `${networkPrefix(networkId)}cursor/${formatIp(networkAddress(c))}_${c.prefix}`;
}

/** The txn op that drops a network's allocations and cursors (put it in the network's delete txn). */
export function releaseNetworkOps(networkId: string): TxnOp[] {
  return [{ type: 'deletePrefix', prefix: networkPrefix(networkId) }];
}

/** Drops every allocation and cursor of a network; returns how many keys went. */
export async function releaseNetwork(store: Store, networkId: string): Promise<number> {
  return (await store.deletePrefix(networkPrefix(networkId))).deleted;
}

// ---------------------------------------------------------------------------------------------

interface Plan {
  networkId: string;
  networkName: string;
  family: Family;
  subnet: Cidr;
  /** where dynamic addresses come from: the ip-range, else the subnet */
  range: Cidr;
  gateway: Ip;
  /** network, broadcast and gateway: never handed out */
  reserved: Set<bigint>;
}

function makePlan(networkId: string, s: IpamSubnet, networkName?: string): Plan {
  checkNetworkId(networkId);
  const subnet = parseCidr(s.subnet, { what: 'subnet' });
  const range = s.ipRange ? parseCidr(s.ipRange, { what: 'ip-range' }) : subnet;
  const gateway = parseIp(s.gateway, 'gateway');
  const reserved = new Set<bigint>(reservedAddresses(subnet).map((ip) => ip.value));
  reserved.add(gateway.value);
  return {
    networkId,
    networkName: networkName ?? networkId.slice(0, 12),
    family: subnet.family,
    subnet,
    range,
    gateway,
    reserved,
  };
}

function record(p: Plan, ip: bigint, owner: string, opts: AllocateOptions, isStatic: boolean): string {
  const a: Allocation = {
    ip: formatIp({ family: p.family, value: ip }),
    subnet: formatCidr(p.subnet),
    owner,
    static: isStatic,
    allocated: new Date().toISOString(),
  };
  if (opts.ownerLabel !== undefined) a.label = opts.ownerLabel;
  return JSON.stringify(a);
}

function exhausted(p: Plan): IpamError {
  const where =
    p.range === p.subnet
      ? formatCidr(p.subnet)
      : `ip-range ${formatCidr(p.range)} of ${formatCidr(p.subnet)}`;
  return new IpamError(`no free address in ${where} (network ${p.networkName})`, 'exhausted');
}

function parseCursor(p: Plan, value: string | undefined): bigint {
  if (value !== undefined) {
    try {
      const next = (JSON.parse(value) as { next?: unknown }).next;
      if (typeof next === 'string') {
        const ip = parseIp(next);
        if (containsIp(p.range, ip)) return ip.value;
      }
    } catch {
      // a damaged hint: start from the beginning of the range
    }
  }
  return p.range.network;
}

/**
 * Picks a dynamic candidate (not yet claimed). On the first attempt: the first unreserved
 * address from the cursor on, without reading allocations. On later attempts: reads every
 * allocation of the network, fails with "no free address" if the range is full, else returns
 * the first free address from the cursor on (from attempt 2, one at a random small offset past
 * it, so that concurrent retries spread out).
 */
async function pickDynamic(store: Store, p: Plan, attempt: number): Promise<bigint> {
  const ck = cursorKey(p.networkId, formatCidr(p.subnet));
  const unavailable = new Set<bigint>();
  for (const r of p.reserved) if (containsIp(p.range, { family: p.family, value: r })) unavailable.add(r);

  let cursorValue: string | undefined;
  if (attempt === 0) {
    cursorValue = (await store.get(ck))?.value;
  } else {
    const prefix = addrPrefix(p.networkId);
    const { kvs } = await store.range(networkPrefix(p.networkId));
    for (const kv of kvs) {
      if (kv.key === ck) {
        cursorValue = kv.value;
      } else if (kv.key.startsWith(prefix)) {
        let ip: Ip;
        try {
          ip = parseIp(kv.key.slice(prefix.length));
        } catch {
          continue;
        }
        if (containsIp(p.range, ip)) unavailable.add(ip.value);
      }
    }
  }

  const total = size(p.range);
  const free = total - BigInt(unavailable.size);
  if (free <= 0n) throw exhausted(p);

  // attempts 0 and 1 take the first free address (deterministic for a lone caller); from 2 on
  // the losers of a race are spread over the next 2, 4 ... 64 free addresses
  const spread = attempt <= 1 ? 1 : Math.min(2 ** (attempt - 1), 64);
  let skip = BigInt(Math.floor(Math.random() * spread));
  if (skip >= free) skip = free - 1n;

  const first = p.range.network;
  const last = lastAddress(p.range).value;
  let v = parseCursor(p, cursorValue);
  // terminates: at least one address of the range is available and we wrap around
  for (;;) {
    if (!unavailable.has(v)) {
      if (skip === 0n) return v;
      skip--;
    }
    v = v === last ? first : v + 1n;
  }
}

/** Checks a static request; returns its value or throws a message naming the problem. */
function checkRequested(p: Plan, requested: string): bigint {
  const ip = parseIp(requested, 'address');
  const a = formatIp(ip);
  const s = formatCidr(p.subnet);
  const net = `network ${p.networkName}`;
  if (!containsIp(p.subnet, ip)) {
    throw new IpamError(`address ${a} is outside subnet ${s} (${net})`, 'invalid');
  }
  if (ip.value === p.gateway.value) {
    throw new IpamError(`address ${a} is the gateway of ${net}; give another address in ${s}`, 'invalid');
  }
  if (hostBits(p.subnet) >= 2 && ip.value === p.subnet.network) {
    throw new IpamError(`address ${a} is the network address of ${s} (${net})`, 'invalid');
  }
  if (ip.value === broadcastAddress(p.subnet)?.value) {
    throw new IpamError(`address ${a} is the broadcast address of ${s} (${net})`, 'invalid');
  }
  return ip.value;
}

function holderOf(kv: KeyValue): Allocation | undefined {
  try {
    return JSON.parse(kv.value) as Allocation;
  } catch {
    return undefined;
  }
}

/**
 * Prepares the claim of one address without writing anything: a static address is checked
 * (inside the subnet, not network/broadcast/gateway, not held by someone else — held by the same
 * owner is fine and idempotent); a dynamic one is picked from the cursor. Use it to claim addresses
 * and write a container record in one txn:
 *
 *   for (let attempt = 0; ; attempt++) {
 *     const c4 = await prepareClaim(store, net.id, v4, ctr.id, { attempt });
 *     const res = await store.txn([...c4.compares, ...mine], [...c4.ops, ...myOps]);
 *     if (res.succeeded) break;  // else: mine or the address changed; look and go round
 *   }
 *
 * Throws IpamError: 'invalid' (bad static address), 'in-use', 'exhausted'.
 */
export async function prepareClaim(
  store: Store,
  networkId: string,
  subnet: IpamSubnet,
  owner: string,
  opts: ClaimOptions = {},
): Promise<Claim> {
  const p = makePlan(networkId, subnet, opts.networkName);
  if (opts.requested !== undefined) {
    const value = checkRequested(p, opts.requested);
    const ip = formatIp({ family: p.family, value });
    const key = allocationKey(networkId, ip);
    const kv = await store.get(key);
    if (kv) {
      const holder = holderOf(kv);
      if (holder?.owner === owner) {
        return { ip, key, held: true, compares: [{ key, target: 'mod', op: '=', value: kv.modRevision }], ops: [] };
      }
      const by = holder ? (holder.label ?? `container ${holder.owner}`) : 'an unreadable allocation record';
      throw new IpamError(`address ${ip} is already in use by ${by} (network ${p.networkName})`, 'in-use');
    }
    return {
      ip,
      key,
      held: false,
      compares: [{ key, target: 'create', op: '=', value: 0 }],
      ops: [{ type: 'put', key, value: record(p, value, owner, opts, true) }],
    };
  }

  const value = await pickDynamic(store, p, opts.attempt ?? 0);
  const ip = formatIp({ family: p.family, value });
  const key = allocationKey(networkId, ip);
  const next = value === lastAddress(p.range).value ? p.range.network : value + 1n;
  return {
    ip,
    key,
    held: false,
    compares: [{ key, target: 'create', op: '=', value: 0 }],
    ops: [
      { type: 'put', key, value: record(p, value, owner, opts, false) },
      {
        type: 'put',
        key: cursorKey(networkId, formatCidr(p.subnet)),
        value: JSON.stringify({ next: formatIp({ family: p.family, value: next }) }),
      },
    ],
  };
}

/**
 * Allocates one address of `subnet` to `owner` and returns it (canonical text). Dynamic: the
 * next free address from the cursor in the ip-range (or subnet), skipping the network address,
 * the IPv4 broadcast address and the gateway. Static (opts.requested): exactly that address, if
 * it is inside the subnet and free (or already the owner's). Safe under concurrency.
 *
 * Throws IpamError: 'invalid', 'in-use' ("address 172.18.0.5 is already in use by container X"),
 * 'exhausted' ("no free address in 172.18.0.0/30 (network NAME)"), 'contention'.
 */
export async function allocate(
  store: Store,
  networkId: string,
  subnet: IpamSubnet,
  owner: string,
  opts: AllocateOptions = {},
): Promise<string> {
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    const claim = await prepareClaim(store, networkId, subnet, owner, { ...opts, attempt });
    if (claim.held) return claim.ip;
    const res = await store.txn(claim.compares, claim.ops);
    if (res.succeeded) return claim.ip;
    // lost a race: a static request re-reads the holder (and names it), a dynamic one picks again
  }
  throw new IpamError(
    `could not allocate an address in ${subnet.subnet} (network ${opts.networkName ?? networkId.slice(0, 12)}) ` +
      `after ${MAX_ATTEMPTS} attempts: too many concurrent allocations; try again`,
    'contention',
  );
}

/**
 * The compares and ops that release `ip` inside a caller's txn, or undefined if `owner` does not
 * hold it (free, or someone else's).
 */
export async function prepareRelease(
  store: Store,
  networkId: string,
  ip: string,
  owner: string,
): Promise<{ compares: Compare[]; ops: TxnOp[] } | undefined> {
  const key = allocationKey(networkId, ip);
  const kv = await store.get(key);
  if (!kv || holderOf(kv)?.owner !== owner) return undefined;
  return {
    compares: [{ key, target: 'mod', op: '=', value: kv.modRevision }],
    ops: [{ type: 'delete', key }],
  };
}

/**
 * Frees `ip` if `owner` holds it. Returns true if it was released, false if it was free or held by
 * someone else (left untouched). Idempotent.
 */
export async function release(store: Store, networkId: string, ip: string, owner: string): Promise<boolean> {
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    const r = await prepareRelease(store, networkId, ip, owner);
    if (!r) return false;
    if ((await store.txn(r.compares, r.ops)).succeeded) return true;
  }
  throw new IpamError(`could not release ${ip}: it kept changing; try again`, 'contention');
}

/** Frees every address `owner` holds in the network; returns them, sorted. */
export async function releaseOwner(store: Store, networkId: string, owner: string): Promise<string[]> {
  const released: string[] = [];
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    const { kvs } = await store.range(addrPrefix(networkId));
    const mine = kvs.filter((kv) => holderOf(kv)?.owner === owner);
    if (mine.length === 0) return released.sort(compareIp);
    // a txn holds at most 128 compares (etcd's limit): go in chunks, re-reading after each
    const chunk = mine.slice(0, 64);
    const res = await store.txn(
      chunk.map((kv) => ({ key: kv.key, target: 'mod', op: '=', value: kv.modRevision })),
      chunk.map((kv) => ({ type: 'delete', key: kv.key })),
    );
    if (res.succeeded) {
      released.push(...chunk.map((kv) => kv.key.slice(addrPrefix(networkId).length)));
      attempt = -1; // progress: the retry budget is for lost races only
    }
  }
  throw new IpamError(`could not release the addresses of ${owner}: they kept changing; try again`, 'contention');
}

/** Every allocation of the network, IPv4 first, in address order. */
export async function listAllocations(store: Store, networkId: string): Promise<Allocation[]> {
  const { kvs } = await store.range(addrPrefix(networkId));
  const out: Allocation[] = [];
  for (const kv of kvs) {
    const a = holderOf(kv);
    if (a) out.push(a);
  }
  return out.sort((a, b) => compareIp(a.ip, b.ip));
}
