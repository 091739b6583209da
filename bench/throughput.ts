/**
 * Container-to-container TCP throughput on one bridge network (iperf3, one stream): weft vs a bare
 * veth pair (the ceiling) vs Docker's bridge network. Target: weft ≥ 0.95 × Docker.
 *
 *   env -u NODE_EXTRA_CA_CERTS npx tsx bench/throughput.ts [--runs 5] [--seconds 3] [--only weft,veth,docker]
 */
import { main, parseBenchArgs, type Bench, type Config } from './harness.js';
import { DockerRef, dockerAvailable } from './refs/docker.js';
import { iperfVersion, runIperf, type NetnsRef } from './refs/iperf.js';
import { setupVethPair, type VethPair } from './refs/veth.js';
import { WeftLab, weftAvailable } from './refs/weft.js';

const { options, extra } = parseBenchArgs(
  { runs: 5, warmup: 0 },
  { seconds: { type: 'string', default: '3', help: 'iperf3 -t per measurement' } },
);
const seconds = Number(extra.seconds);
if (!Number.isInteger(seconds) || seconds < 1 || seconds > 60) {
  process.stderr.write('--seconds must be an integer from 1 to 60\n');
  process.exit(2);
}

interface Path {
  server: NetnsRef;
  client: NetnsRef;
  serverIp: string;
}

function iperfMeasure(path: () => Path): () => Promise<number> {
  return async () => {
    const p = path();
    return (await runIperf({ ...p, seconds })).gbps;
  };
}

let weft: WeftLab | null = null;
let weftPath: Path | null = null;
const weftConfig: Config = {
  name: 'weft',
  describe: 'two weft containers (`sleep 3600`) on one weft bridge network in a lab host; iperf3 entered into their netns',
  available: weftAvailable,
  setup: async () => {
    weft = new WeftLab();
    await weft.up();
    await weft.networkCreate('wb-tp', '10.76.0.0/24');
    await weft.runDetached('wb-tp-a', 'wb-tp');
    await weft.runDetached('wb-tp-b', 'wb-tp');
    const a = await weft.inspect('wb-tp-a');
    const b = await weft.inspect('wb-tp-b');
    if (!a.ipv4[0]) throw new Error('weft container wb-tp-a has no IPv4');
    weftPath = { server: { netns: a.netns }, client: { netns: b.netns }, serverIp: a.ipv4[0] };
  },
  measure: iperfMeasure(() => weftPath as Path),
  teardown: async () => {
    await weft?.down();
  },
  info: () => [...(weft?.info() ?? []), `server ${weftPath?.serverIp}`],
  leftovers: () => weft?.leftovers() ?? [],
};

let veth: VethPair | null = null;
const vethConfig: Config = {
  name: 'veth',
  describe: 'a bare veth pair between two netns (10.230.0.1 ⇄ .2): the ceiling, no bridge, no netfilter',
  setup: async () => {
    veth = await setupVethPair('10.230.0');
  },
  measure: iperfMeasure(() => {
    const v = veth as VethPair;
    return { server: v.a, client: v.b, serverIp: v.ipA };
  }),
  teardown: async () => {
    await veth?.teardown();
  },
};

let docker: DockerRef | null = null;
let dockerPath: Path | null = null;
const dockerConfig: Config = {
  name: 'docker',
  describe: 'two busybox containers on a Docker user-defined bridge network (dockerd 20.10 in its own netns); host iperf3 via `nsenter -t PID -n`',
  available: dockerAvailable,
  setup: async () => {
    docker = new DockerRef();
    await docker.start();
    const pair = await docker.bridgePair('wb-tp', '10.75.0.0/24');
    dockerPath = { server: { pid: pair.a.pid }, client: { pid: pair.b.pid }, serverIp: pair.a.ip };
  },
  measure: iperfMeasure(() => dockerPath as Path),
  teardown: async () => {
    await docker?.stop();
  },
  info: () => [`dockerd ${docker?.serverVersion} in netns ${docker?.ns}; server ${dockerPath?.serverIp}`, ...(docker?.setupNotes ?? [])],
};

const bench: Bench = {
  name: 'throughput',
  title: 'Container-to-container TCP throughput: weft vs bare veth vs Docker bridge',
  description: [
    `Each round runs one iperf3 measurement per configuration in turn (\`iperf3 -s -1\` in one container netns, \`iperf3 -c IP -t ${seconds} -J\` in the other,`,
    'the host\'s iperf3 in both, one TCP stream). The sample is the receiver-side rate. The veth pair is the upper bound of any bridged path;',
    'Docker\'s bridge network is the reference.',
  ].join(' '),
  metrics: [{ name: 'throughput', unit: 'Gbit/s', better: 'higher' }],
  configs: [weftConfig, vethConfig, dockerConfig],
  baseline: 'docker',
  targets: [{ metric: 'throughput', config: 'weft', versus: 'docker', op: '>=', ratio: 0.95 }],
  notes: ['Single-stream iperf3 on 2 vCPUs varies by ±30 % between runs (REFERENCE-SYSTEMS.md §6): read medians over many rounds.'],
};

bench.notes?.push(`iperf: ${await iperfVersion().catch(() => 'unknown version')}`);
await main(bench, options);
