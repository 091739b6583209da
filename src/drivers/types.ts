import type { Endpoint, Network } from '../model/types.js';

/**
 * A network driver makes the links and addresses of a network and of each endpoint on it.
 * Filtering and NAT are not its business: the firewall compiler owns those (src/firewall/).
 * Every method is idempotent: calling it on what already exists repairs drift and is otherwise
 * a no-op.
 */
export interface Driver {
  readonly name: string;
  /** make (or repair) the network's host side */
  ensureNetwork(net: Network): Promise<void>;
  deleteNetwork(net: Network): Promise<void>;
  /** attach a container (its netns) to the network; defaultRoute: this network carries its default route */
  attach(net: Network, netns: string, ep: Endpoint, opts: { defaultRoute: boolean }): Promise<void>;
  detach(net: Network, netns: string | undefined, ep: Endpoint): Promise<void>;
  /** whether the endpoint's links exist as they should (for drift detection) */
  endpointHealthy(net: Network, netns: string, ep: Endpoint): Promise<boolean>;
}
