/**
 * Scale: N containers (default 1,000) on one network. Measures the total time to start them all
 * (sequential `run -d`, or --parallel P at once), every single `run -d`, the agent's resident
 * memory before and after, and the time to remove them all. References: the CNI bridge plugin
 * (network-only floor, no agent) and, opt-in because it is heavy (a shim process per container),
 * Docker.
 *
 *   env -u NODE_EXTRA_CA_CERTS npx tsx bench/scale.ts [--count 1000] [--parallel 1] [--runs 1] [--only weft,weft-api,cni,docker]
 */
import { performance } from 'node:perf_hooks';
import { main, parseBenchArgs, type Bench, type Config } from './harness.js';
import { CniRef, cniAvailable } from './refs/cni.js';
import { DockerRef, dockerAvailable } from './refs/docker.js';
import { WeftLab, weftAvailable, type WeftMode } from './refs/weft.js';

const { options, extra } = parseBenchArgs(
  { runs: 1, warmup: 0 },
  {
    count: { type: 'string', default: '1000', help: 'containers per round' },
    parallel: { type: 'string', default: '1', help: 'CLI calls in flight at once' },
  },
);
const count = Number(extra.count);
const parallel = Number(extra.parallel);
if (!Number.isInteger(count) || count < 1 || count > 16_000) {
  process.stderr.write('--count must be an integer from 1 to 16000\n');
  process.exit(2);
}
if (!Number.isInteger(parallel) || parallel < 1 || parallel > 64) {
  process.stderr.write('--parallel must be an integer from 1 to 64\n');
  process.exit(2);
}

const MiB = 2 ** 20;
/** The smallest subnet holding count containers plus network, gateway and broadcast, in 10.<64+k>.0.0. */
function subnetFor(k: number): string {
  const bits = Math.ceil(Math.log2(count + 3));
  return `10.${64 + (k % 32)}.0.0/${Math.min(24, 32 - bits)}`;
}

/** Runs op(0..n-1) with `parallel` in flight; returns total wall time (ms) and each op's result. */
async function pool(n: number, op: (i: number) => Promise<number>, what: string): Promise<{ totalMs: number; each: number[] }> {
  const each: number[] = new Array(n);
  let next = 0;
  let done = 0;
  const t0 = performance.now();
  const worker = async (): Promise<void> => {
    while (next < n) {
      const i = next++;
      each[i] = await op(i);
      if (++done % 100 === 0) process.stderr.write(`    ${what}: ${done}/${n} (${((performance.now() - t0) / 1000).toFixed(1)} s)\n`);
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallel, n) }, worker));
  return { totalMs: performance.now() - t0, each };
}

/** The starts made when the network was already 90 % full. */
const lastTenth = (xs: number[]): number[] => xs.slice(Math.floor(xs.length * 0.9));

interface Engine {
  networkCreate(name: string, subnet: string): Promise<number>;
  networkRm(name: string): Promise<number>;
  runDetached(name: string, network: string): Promise<number>;
  rmForce(name: string): Promise<number>;
}

function engineRound(engine: () => Engine, rss: () => Promise<number>): () => Promise<Record<string, number | number[]>> {
  let k = 0;
  return async () => {
    const e = engine();
    const r = k++;
    const net = `wb-s${r}`;
    await e.networkCreate(net, subnetFor(r));
    const idle = await rss();
    const up = await pool(count, (i) => e.runDetached(`wb-s${r}-${i}`, net), 'run -d');
    const full = await rss();
    const down = await pool(count, (i) => e.rmForce(`wb-s${r}-${i}`), 'rm -f');
    await e.networkRm(net).catch(() => 0);
    return {
      'total time': up.totalMs / 1000,
      'run -d (each)': up.each,
      'run -d (last 10 %)': lastTenth(up.each),
      'agent RSS': full / MiB,
      'agent RSS idle': idle / MiB,
      'remove all': down.totalMs / 1000,
    };
  };
}

/** weft through its CLI (default) or, opt-in, one HTTP request per operation to the agent's socket (no CLI start-up). */
function weftConfig(mode: WeftMode): Config {
  let lab: WeftLab | null = null;
  return {
    name: mode === 'cli' ? 'weft' : 'weft-api',
    optIn: mode === 'api',
    describe:
      mode === 'cli'
        ? 'weft CLI against an agent in a lab host; containers are `sleep 3600`; RSS is the agent process (`.agentPid` of `weft lab inspect`)'
        : 'the same agent driven by one HTTP request per operation from the bench process (POST /v1/containers, DELETE /v1/containers/N?force=1), no CLI; own lab host',
    available: weftAvailable,
    setup: async () => {
      lab = new WeftLab(mode === 'cli' ? 'l' : 'a', mode);
      await lab.up();
    },
    measure: engineRound(
      () => lab as WeftLab,
      async () => (lab as WeftLab).agentRss(),
    ),
    teardown: async () => {
      await lab?.down();
    },
    info: () => lab?.info() ?? [],
    leftovers: () => lab?.leftovers() ?? [],
  };
}

let docker: DockerRef | null = null;
let shimNote = '';
const dockerConfig: Config = {
  name: 'docker',
  optIn: true,
  describe: 'Docker 20.10, dockerd in its own netns; RSS is dockerd + containerd (the per-container shims are not counted: see info)',
  available: dockerAvailable,
  setup: async () => {
    docker = new DockerRef();
    await docker.start();
  },
  measure: engineRound(
    () => docker as DockerRef,
    async () => {
      const r = await (docker as DockerRef).daemonRss();
      if (r.shimCount > 0) shimNote = `at ${r.shimCount} containers the containerd-shim processes held ${(r.shims / MiB).toFixed(0)} MiB RSS in total`;
      return r.dockerd + r.containerd;
    },
  ),
  teardown: async () => {
    await docker?.stop();
  },
  info: () => [`dockerd ${docker?.serverVersion} in netns ${docker?.ns}`, ...(docker?.setupNotes ?? []), ...(shimNote ? [shimNote] : [])],
};

let cni: CniRef | null = null;
let cniK = 0;
const cniConfig: Config = {
  name: 'cni',
  describe: 'CNI reference bridge + host-local ADD into N fresh netns (`ip netns add` included in the total time, not in "run -d (each)"); no agent, so no RSS',
  available: cniAvailable,
  setup: async () => {
    cni = new CniRef();
    await cni.setup([subnetFor(31)]);
  },
  measure: async () => {
    const c = cni as CniRef;
    const r = cniK++;
    const ids = Array.from({ length: count }, (_, i) => `s${r}-${i}`);
    const up = await pool(
      count,
      async (i) => {
        await c.newContainer(ids[i]);
        return (await c.add(ids[i], 0, 'eth0')).ms;
      },
      'ADD',
    );
    const down = await pool(count, async (i) => c.remove(ids[i]), 'DEL');
    return { 'total time': up.totalMs / 1000, 'run -d (each)': up.each, 'run -d (last 10 %)': lastTenth(up.each), 'remove all': down.totalMs / 1000 };
  },
  teardown: async () => {
    await cni?.stop();
  },
  info: () => cni?.info() ?? [],
};

const bench: Bench = {
  name: 'scale',
  title: `${count} containers on one network: time and agent memory`,
  description: [
    `Each round creates one network (/${subnetFor(0).split('/')[1]}) and starts ${count} containers on it,`,
    `${parallel === 1 ? 'one `run -d` after the other' : `${parallel} \`run -d\` in flight at once`}, then removes them all (\`rm -f\`, same way).`,
    'The agent\'s resident memory (VmRSS) is read before the first and after the last container.',
  ].join(' '),
  metrics: [
    { name: 'total time', unit: 's', better: 'lower', note: `Wall time to start all ${count} containers.` },
    { name: 'run -d (each)', unit: 'ms', better: 'lower', note: 'Every single start.' },
    {
      name: 'run -d (last 10 %)',
      unit: 'ms',
      better: 'lower',
      note: 'The starts made with the network already 90 % full: a median above that of all starts means the cost per container grows with the network.',
    },
    { name: 'agent RSS', unit: 'MiB', better: 'lower', note: `With ${count} containers running.` },
    { name: 'agent RSS idle', unit: 'MiB', better: 'lower', note: 'Before the first container of the round.' },
    { name: 'remove all', unit: 's', better: 'lower' },
  ],
  configs: [weftConfig('cli'), weftConfig('api'), cniConfig, dockerConfig],
  baseline: 'cni',
  notes: [
    'Docker is opt-in (`--only weft,cni,docker`): each container costs it a containerd-shim process.',
    'The Linux bridge takes at most 1024 ports, so one bridge network cannot hold more than about 1,000 containers.',
  ],
};

await main(bench, options);
