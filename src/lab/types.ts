export interface LabInfo {
  name: string;
  /** the lab's folder: state dir, socket, logs, pid file */
  dir: string;
  socket: string;
  /** the lab host's network namespace: the agent runs in it */
  hostNetns: string;
  /** "the rest of the world": joined to the host by the uplink veth */
  outsideNetns: string;
  /** the host's uplink address, as the outside sees it (no prefix) */
  hostAddress: string;
  /** the outside's address on the uplink (the host's default gateway) */
  outsideAddress: string;
  agentPid?: number;
  agentRunning: boolean;
  store: string;
}

export interface LabUpOptions {
  /** store spec for the agent: 'sqlite' (default) or etcd://HOST:PORT */
  store?: string;
}
