export interface AgentOptions {
  stateDir: string;
  socket: string;
  /** run inside this network namespace (the agent re-executes itself there) */
  netns?: string;
  /** 'sqlite' or etcd://HOST:PORT */
  store: string;
  logLevel?: string;
  /** resolvers the embedded DNS forwards to; default: the host's resolv.conf */
  dnsUpstreams?: { host: string; port: number }[];
  /** where services' virtual IPs come from (default 10.96.0.0/16) */
  serviceRange?: string;
}

export const DEFAULT_STATE_DIR = '/var/lib/weft';
export const DEFAULT_SOCKET = '/run/weft/weft.sock';
