/**
 * Load-balancing tables, pure: the slot -> backend arrays that the data plane indexes with a hash
 * (Maglev) or a counter (weighted round robin). The nftables compiler turns a table into a map
 * `{ 0 : backend, 1 : backend, ... }` looked up with `jhash ... mod SIZE` or `numgen inc mod SIZE`,
 * so a packet costs one map lookup whatever the number of backends or services.
 */
import { createHash } from 'node:crypto';

export interface WeightedBackend {
  /** stable identity (the container id): the hash of a backend depends on it alone */
  id: string;
  /** relative share; 0 takes no slots */
  weight: number;
}

/** Table sizes must be prime for Maglev's permutations to cover every slot. */
export const DEFAULT_MAGLEV_SIZE = 4093;

export function isPrime(n: number): boolean {
  if (!Number.isInteger(n) || n < 2) return false;
  for (let d = 2; d * d <= n; d++) if (n % d === 0) return false;
  return true;
}

function hash32(text: string, seed: string): number {
  return createHash('sha256').update(seed).update(text).digest().readUInt32BE(0);
}

function checkBackends(backends: readonly WeightedBackend[]): WeightedBackend[] {
  const seen = new Set<string>();
  for (const b of backends) {
    if (seen.has(b.id)) throw new Error(`backend ${b.id} is listed twice`);
    seen.add(b.id);
    if (!Number.isInteger(b.weight) || b.weight < 0) throw new Error(`backend ${b.id}: weight ${b.weight} is not a whole number >= 0`);
  }
  return backends.filter((b) => b.weight > 0);
}

/**
 * Maglev consistent hashing (Eisenbud et al., NSDI 2016), weighted: each backend walks its own
 * permutation of the slots (offset and skip from two hashes of its id) and, turn by turn, takes
 * the next free slot it prefers; a backend of weight w takes w turns per round. The result gives
 * each backend a share of slots proportional to its weight, and removing one of N equal backends
 * moves about 1/N of the slots: the removed backend's, plus a small disturbance.
 * Returns the backend index (into the given array) of every slot; [] when no backend has weight.
 */
export function maglevTable(backends: readonly WeightedBackend[], size = DEFAULT_MAGLEV_SIZE): number[] {
  if (!isPrime(size)) throw new Error(`Maglev table size ${size} is not prime`);
  const live = checkBackends(backends);
  if (!live.length) return [];
  const index = new Map(backends.map((b, i) => [b.id, i]));
  // a stable order (by id) so the table does not depend on the caller's order
  const order = [...live].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const offset = order.map((b) => hash32(b.id, 'maglev-offset') % size);
  const skip = order.map((b) => (hash32(b.id, 'maglev-skip') % (size - 1)) + 1);
  const next = order.map(() => 0);
  const table = new Array<number>(size).fill(-1);
  let filled = 0;
  while (filled < size) {
    for (let i = 0; i < order.length && filled < size; i++) {
      for (let turn = 0; turn < order[i].weight && filled < size; turn++) {
        let slot = (offset[i] + next[i] * skip[i]) % size;
        while (table[slot] >= 0) {
          next[i]++;
          slot = (offset[i] + next[i] * skip[i]) % size;
        }
        table[slot] = index.get(order[i].id)!;
        next[i]++;
        filled++;
      }
    }
  }
  return table;
}

/**
 * Smooth weighted round robin (as nginx does it): a sequence of backend indexes, one cycle long
 * (the sum of the weights), in which each backend appears `weight` times, spread out rather than
 * in runs. Equal weights give plain round robin. A counter modulo the length walks it.
 */
export function weightedRoundRobin(backends: readonly WeightedBackend[]): number[] {
  const live = checkBackends(backends);
  const total = live.reduce((s, b) => s + b.weight, 0);
  const index = live.map((b) => backends.indexOf(b));
  const current = live.map(() => 0);
  const out: number[] = [];
  for (let n = 0; n < total; n++) {
    let best = 0;
    for (let i = 0; i < live.length; i++) {
      current[i] += live[i].weight;
      if (current[i] > current[best]) best = i;
    }
    current[best] -= total;
    out.push(index[best]);
  }
  return out;
}
