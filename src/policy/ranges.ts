/**
 * Address sets as sorted, disjoint ranges per family: what an ipBlock with `except` and a list of
 * pod addresses become before they are written as elements of an nftables interval set (whose
 * elements must not overlap).
 */
import { containsIp, formatIp, parseIp, toCidr, lastAddress, type Family } from '../ipam/cidr.js';

export type Range = [bigint, bigint];

export class AddrRanges {
  private readonly parts: Record<Family, Range[]> = { 4: [], 6: [] };

  addIp(ip: string): this {
    const a = parseIp(ip);
    this.parts[a.family].push([a.value, a.value]);
    return this;
  }

  /** ranges already known (e.g. another set's, or parsed addresses) */
  addRanges(f: Family, rs: Range[]): this {
    this.parts[f].push(...rs);
    return this;
  }

  /** cidr minus every `except` */
  addBlock(cidr: string, except: string[] = []): this {
    const c = toCidr(cidr);
    const own: Range[] = [[c.network, lastAddress(c).value]];
    const cut = except.map((e): Range => {
      const x = toCidr(e);
      return [x.network, lastAddress(x).value];
    });
    this.parts[c.family].push(...subtract(own, cut));
    return this;
  }

  /** Disjoint, sorted, adjacent ranges merged. */
  ranges(f: Family): Range[] {
    return merge(this.parts[f]);
  }

  /** nft interval-set elements: `10.0.0.2`, `10.1.0.0-10.1.255.255`, sorted. */
  elements(f: Family): string[] {
    return this.ranges(f).map(([lo, hi]) => {
      const a = formatIp({ family: f, value: lo });
      return lo === hi ? a : `${a}-${formatIp({ family: f, value: hi })}`;
    });
  }
}

export function merge(rs: Range[]): Range[] {
  const sorted = [...rs].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const out: Range[] = [];
  for (const [lo, hi] of sorted) {
    const last = out[out.length - 1];
    if (last && lo <= last[1] + 1n) {
      if (hi > last[1]) last[1] = hi;
    } else out.push([lo, hi]);
  }
  return out;
}

/** `rs` without any address of `cut`. */
export function subtract(rs: Range[], cut: Range[]): Range[] {
  let cur = merge(rs);
  for (const [clo, chi] of merge(cut)) {
    const next: Range[] = [];
    for (const [lo, hi] of cur) {
      if (chi < lo || clo > hi) next.push([lo, hi]);
      else {
        if (clo > lo) next.push([lo, clo - 1n]);
        if (chi < hi) next.push([chi + 1n, hi]);
      }
    }
    cur = next;
  }
  return cur;
}

/** Is the address inside the CIDR (false across families)? */
export function cidrContains(cidr: string, ip: string): boolean {
  return containsIp(cidr, ip);
}
