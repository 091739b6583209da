/**
 * Baseline: one bare veth pair between two network namespaces, nothing else on the path.
 *
 *   weft-b-<id>-va [weft-b-<id>-a 10.230.0.1/24] <==veth==> [weft-b-<id>-b 10.230.0.2/24] weft-b-<id>-vb
 *
 * The pair is created inside the first netns (`ip -n A link add ... peer ... netns B`), so the
 * root namespace never sees it.
 */
import { benchName, netnsAdd, netnsDelete } from '../lib/ns.js';
import { run } from '../lib/proc.js';
import type { NetnsRef } from './iperf.js';

export interface VethPair {
  a: NetnsRef;
  b: NetnsRef;
  ipA: string;
  ipB: string;
  teardown(): Promise<void>;
}

export async function setupVethPair(subnetPrefix = '10.230.0'): Promise<VethPair> {
  const nsA = benchName('va', 'netns');
  const nsB = benchName('vb', 'netns');
  const linkA = benchName('a', 'link');
  const linkB = benchName('b', 'link');
  const ipA = `${subnetPrefix}.1`;
  const ipB = `${subnetPrefix}.2`;
  const teardown = async (): Promise<void> => {
    // deleting a netns destroys the veth end inside it, and with it the peer
    await netnsDelete(nsA);
    await netnsDelete(nsB);
  };
  try {
    await netnsAdd(nsA);
    await netnsAdd(nsB);
    await run('ip', ['-n', nsA, 'link', 'add', linkA, 'type', 'veth', 'peer', 'name', linkB, 'netns', nsB]);
    await run('ip', ['-n', nsA, 'addr', 'add', `${ipA}/24`, 'dev', linkA]);
    await run('ip', ['-n', nsB, 'addr', 'add', `${ipB}/24`, 'dev', linkB]);
    await run('ip', ['-n', nsA, 'link', 'set', linkA, 'up']);
    await run('ip', ['-n', nsB, 'link', 'set', linkB, 'up']);
  } catch (e) {
    await teardown();
    throw e;
  }
  return { a: { netns: nsA }, b: { netns: nsB }, ipA, ipB, teardown };
}
