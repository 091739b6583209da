/**
 * The topology podman (netavark) gives a DNS server and its client, rebuilt with two netns:
 *
 *   [weft-b-<id>-<x>h: bridge weft-b-<id>-<x>b GW/24, port weft-b-<id>-<x>v] <==veth==> [weft-b-<id>-<x>c: eth0 CLIENT/24]
 *
 * The server listens on the bridge's gateway address in the "host" netns; the client sends from
 * a "container" netns whose eth0 is a veth port of that bridge: the same path a weft container's
 * query to its gateway takes (veth -> bridge -> local delivery). Everything is made inside the two
 * namespaces (`ip -n H link add ... peer name eth0 netns C`); the root namespace never sees a link.
 */
import { benchName, netnsAdd, netnsDelete } from '../lib/ns.js';
import { run } from '../lib/proc.js';

export interface BridgeHost {
  /** the "host" netns, where the server runs */
  hostNs: string;
  /** the "container" netns, where the client runs */
  clientNs: string;
  bridge: string;
  gateway: string;
  clientIp: string;
  /** `${prefix}.N` */
  addr(n: number): string;
  teardown(): Promise<void>;
}

/** Makes the two netns, the bridge with `${prefix}.1/24` and the client at `${prefix}.2/24`. */
export async function setupBridgeHost(tag: string, prefix: string): Promise<BridgeHost> {
  const hostNs = benchName(`${tag}h`, 'netns');
  const clientNs = benchName(`${tag}c`, 'netns');
  const bridge = benchName(`${tag}b`, 'link');
  const port = benchName(`${tag}v`, 'link');
  const gateway = `${prefix}.1`;
  const clientIp = `${prefix}.2`;
  const teardown = async (): Promise<void> => {
    // ends every process in each netns by PID, then deletes it (the veth and bridge go with it)
    await netnsDelete(clientNs);
    await netnsDelete(hostNs);
  };
  try {
    await netnsAdd(hostNs);
    await netnsAdd(clientNs);
    await run('ip', ['-n', hostNs, 'link', 'add', bridge, 'type', 'bridge']);
    await run('ip', ['-n', hostNs, 'addr', 'add', `${gateway}/24`, 'dev', bridge]);
    await run('ip', ['-n', hostNs, 'link', 'set', bridge, 'up']);
    await run('ip', ['-n', hostNs, 'link', 'add', port, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', clientNs]);
    await run('ip', ['-n', hostNs, 'link', 'set', port, 'master', bridge, 'up']);
    await run('ip', ['-n', clientNs, 'addr', 'add', `${clientIp}/24`, 'dev', 'eth0']);
    await run('ip', ['-n', clientNs, 'link', 'set', 'eth0', 'up']);
  } catch (e) {
    await teardown();
    throw e;
  }
  return { hostNs, clientNs, bridge, gateway, clientIp, addr: (n) => `${prefix}.${n}`, teardown };
}
