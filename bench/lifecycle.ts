/**
 * Lifecycle latency: how long the user waits for `network create`, `run -d`, `network connect` and
 * `rm -f`, with weft (its CLI, and its API alone: `weft-api`), Docker and the CNI reference bridge
 * plugin. Target: weft's `run -d` and `network connect` take at most half of Docker's.
 *
 *   env -u NODE_EXTRA_CA_CERTS npx tsx bench/lifecycle.ts [--runs 10] [--only weft,weft-api,docker,cni]
 */
import { main, parseBenchArgs, type Bench, type Config } from './harness.js';
import { CniRef, cniAvailable } from './refs/cni.js';
import { DockerRef, dockerAvailable } from './refs/docker.js';
import { WeftLab, weftAvailable, type WeftMode } from './refs/weft.js';

const RUN_NET = 'wb-run';
const RUN_SUBNET = '10.77.0.0/24';
const CONN_NET = 'wb-conn';
const CONN_SUBNET = '10.78.0.0/24';
/** a network per round for `network create`: 10.79.<k>.0/24, removed again in the same round */
const createdSubnet = (k: number): string => `10.79.${k % 250}.0/24`;

/** What Docker and weft share: the same four CLI operations. */
interface Engine {
  networkCreate(name: string, subnet: string): Promise<number>;
  networkRm(name: string): Promise<number>;
  runDetached(name: string, network: string): Promise<number>;
  networkConnect(network: string, name: string): Promise<number>;
  rmForce(name: string): Promise<number>;
}

/** One round: create a network, start a container, connect it to a second network, remove it. */
function engineRound(engine: () => Engine): (round: number) => Promise<Record<string, number>> {
  let k = 0;
  return async () => {
    const e = engine();
    const n = k++;
    const net = `wb-n${n}`;
    const name = `wb-c${n}`;
    const create = await e.networkCreate(net, createdSubnet(n));
    const runD = await e.runDetached(name, RUN_NET);
    const connect = await e.networkConnect(CONN_NET, name);
    const rm = await e.rmForce(name);
    await e.networkRm(net).catch(() => 0); // untimed; a leftover network only costs a name
    return { 'network create': create, 'run -d': runD, 'network connect': connect, 'rm -f': rm };
  };
}

/** weft through its CLI (what a user sees) or through one HTTP request per operation (the agent's work alone). */
function weftConfig(mode: WeftMode): Config {
  let lab: WeftLab | null = null;
  return {
    name: mode === 'cli' ? 'weft' : 'weft-api',
    describe:
      mode === 'cli'
        ? 'weft CLI (`bin/weft`, a node process per call) against an agent in a lab host (`bin/weft lab up`); container = `sleep 3600` in its own netns'
        : 'the same agent work without the CLI: one HTTP request from the bench process to the agent\'s unix socket per operation (POST /v1/networks, POST /v1/containers {start: true}, POST /v1/networks/NET/connect, DELETE /v1/containers/N?force=1); own lab host',
    available: weftAvailable,
    setup: async () => {
      lab = new WeftLab(mode === 'cli' ? 'l' : 'a', mode);
      await lab.up();
      await lab.networkCreate(RUN_NET, RUN_SUBNET);
      await lab.networkCreate(CONN_NET, CONN_SUBNET);
    },
    measure: engineRound(() => lab as WeftLab),
    teardown: async () => {
      await lab?.down();
    },
    info: () => lab?.info() ?? [],
    leftovers: () => lab?.leftovers() ?? [],
  };
}

let docker: DockerRef | null = null;
let cni: CniRef | null = null;

const dockerConfig: Config = {
  name: 'docker',
  describe: 'Docker 20.10 (docker.io) with its 20.10 CLI, dockerd in its own netns; container = busybox-static `sleep 3600`',
  available: dockerAvailable,
  setup: async () => {
    docker = new DockerRef();
    await docker.start();
    await docker.networkCreate(RUN_NET, RUN_SUBNET);
    await docker.networkCreate(CONN_NET, CONN_SUBNET);
  },
  measure: engineRound(() => docker as DockerRef),
  teardown: async () => {
    await docker?.stop();
  },
  info: () => [`dockerd ${docker?.serverVersion} in netns ${docker?.ns}`, ...(docker?.setupNotes ?? [])],
};

let cniK = 0;
const cniConfig: Config = {
  name: 'cni',
  describe:
    'CNI reference `bridge` + `host-local` 1.1.1, spec 1.0.0, run with `ip netns exec <lab host>`: "run -d" = ADD eth0 to network 1, "network connect" = ADD eth1 to network 2, "rm -f" = both DELs (the container netns is made and deleted untimed)',
  available: cniAvailable,
  setup: async () => {
    cni = new CniRef();
    await cni.setup(['10.84.0.0/24', '10.85.0.0/24']);
  },
  measure: async () => {
    const c = cni as CniRef;
    const id = `c${cniK++}`;
    await c.newContainer(id);
    const add0 = (await c.add(id, 0, 'eth0')).ms;
    const add1 = (await c.add(id, 1, 'eth1')).ms;
    const del = await c.remove(id);
    return { 'run -d': add0, 'network connect': add1, 'rm -f': del };
  },
  teardown: async () => {
    await cni?.stop();
  },
  info: () => cni?.info() ?? [],
};

const bench: Bench = {
  name: 'lifecycle',
  title: 'Container lifecycle latency: weft vs Docker vs CNI bridge',
  description: [
    'Each round, for each configuration in turn: `network create --subnet` of a new network, `run -d` of a `sleep 3600` container on a',
    'pre-made network, `network connect` of it to a second pre-made network, `rm -f`, then (untimed) `network rm`. For weft, docker and cni',
    'every figure is the wall time of one CLI invocation as a user sees it, process start included; weft-api is the same weft operations as',
    'one HTTP request each to the agent\'s unix socket, timed in the bench process, so weft − weft-api is the CLI\'s own cost (node start-up,',
    'argument parsing, output). The CNI rows are the network-only floor: one plugin exec, no',
    'daemon, no process to start; CNI has no `network create` (a network is a config file).',
  ].join(' '),
  metrics: [
    { name: 'run -d', unit: 'ms', better: 'lower' },
    { name: 'network connect', unit: 'ms', better: 'lower' },
    { name: 'network create', unit: 'ms', better: 'lower' },
    { name: 'rm -f', unit: 'ms', better: 'lower', note: 'For cni: the two DELs only.' },
  ],
  configs: [weftConfig('cli'), weftConfig('api'), dockerConfig, cniConfig],
  baseline: 'docker',
  targets: [
    { metric: 'run -d', config: 'weft', versus: 'docker', op: '<=', ratio: 0.5 },
    { metric: 'network connect', config: 'weft', versus: 'docker', op: '<=', ratio: 0.5 },
    { metric: 'run -d', config: 'weft-api', versus: 'docker', op: '<=', ratio: 0.5 },
    { metric: 'network connect', config: 'weft-api', versus: 'docker', op: '<=', ratio: 0.5 },
  ],
  notes: [
    'The weft CLI runs with NODE_EXTRA_CA_CERTS unset (bin/weft does it); the Docker CLI is a Go binary.',
    'The CNI plugin is started through `ip netns exec`, which adds about 4 ms per call (REFERENCE-SYSTEMS.md §7).',
  ],
};

const { options } = parseBenchArgs({ runs: 10, warmup: 1 });
await main(bench, options);
