/**
 * Embedded DNS throughput: queries per second that dnsperf gets from weft's DNS, and in the same
 * run from dnsmasq, aardvark-dns (podman's) and Docker's embedded DNS, all asked the same ~20
 * container names (A records, answered locally) with the same dnsperf settings, from a client
 * inside a container's network namespace. Target: weft ahead of aardvark-dns and of Docker;
 * the ratio to dnsmasq is reported.
 *
 *   env -u NODE_EXTRA_CA_CERTS npx tsx bench/dns.ts [--runs 10] [--warmup 1] [--seconds 5] [--names 20]
 *       [--clients 1] [--threads 1] [--outstanding 100] [--only weft,dnsmasq,aardvark,docker]
 */
import { main, parseBenchArgs, type Bench, type Config } from './harness.js';
import { AardvarkRef, aardvarkAvailable } from './refs/aardvark.js';
import { setupBridgeHost, type BridgeHost } from './refs/bridgehost.js';
import { DnsmasqRef, dnsmasqAvailable } from './refs/dnsmasq.js';
import { clockTicks, cpuSeconds, dnsperfArgs, dnsperfAvailable, dnsperfVersion, expectA, runDnsperf, writeQueryFile, type DnsperfSettings } from './refs/dnsperf.js';
import { DockerRef, dockerAvailable } from './refs/docker.js';
import type { NetnsRef } from './refs/iperf.js';
import { rssBytes } from './lib/proc.js';
import { WeftLab, weftAvailable } from './refs/weft.js';

const { options, extra } = parseBenchArgs(
  { runs: 10, warmup: 1 },
  {
    seconds: { type: 'string', default: '5', help: 'dnsperf -l: seconds per measurement' },
    names: { type: 'string', default: '20', help: 'containers (names d1..dN) on the network, all in the query file' },
    clients: { type: 'string', default: '1', help: 'dnsperf -c: client sockets' },
    threads: { type: 'string', default: '1', help: 'dnsperf -T: threads' },
    outstanding: { type: 'string', default: '100', help: 'dnsperf -q: queries in flight at most' },
    timeout: { type: 'string', default: '5', help: 'dnsperf -t: seconds before a query counts as lost' },
  },
);

function intOpt(name: string, min: number, max: number): number {
  const n = Number(extra[name]);
  if (!Number.isInteger(n) || n < min || n > max) {
    process.stderr.write(`--${name} must be an integer from ${min} to ${max}\n`);
    process.exit(2);
  }
  return n;
}
const settings: DnsperfSettings = {
  seconds: intOpt('seconds', 1, 120),
  clients: intOpt('clients', 1, 64),
  threads: intOpt('threads', 1, 16),
  outstanding: intOpt('outstanding', 1, 10_000),
  timeout: intOpt('timeout', 1, 30),
};
const nNames = intOpt('names', 1, 200);

const NET = 'wb-dns';
const NAMES = Array.from({ length: nNames }, (_, i) => `d${i + 1}`);
const CLIENT = 'dcl';
const PORT = 53;
const MiB = 2 ** 20;
/** Below this share of NOERROR answers a round is a failure: the server is not answering the names. */
const MIN_NOERROR = 0.99;

/** Where dnsperf runs and what it loads. */
interface DnsTarget {
  client: NetnsRef;
  server: string;
  /** the process(es) that answer: their CPU time is measured around each run */
  serverPids: () => number[];
  /** what those processes are, for the report */
  serverWhat: string;
}

interface Tally {
  runs: number;
  sent: number;
  completed: number;
  lost: number;
  rcodes: Record<string, number>;
  maxLatencyMs: number;
  responseBytes: number[];
  requestBytes: number[];
}

let dataFile = '';

/**
 * A configuration around a DnsTarget: setup() builds it, each round runs dnsperf once and
 * returns queries/s, dnsperf's average latency and the server's CPU time per answered query.
 */
function dnsConfig(c: {
  name: string;
  describe: string;
  available: () => Promise<string | null>;
  setup: () => Promise<DnsTarget>;
  teardown: () => Promise<void>;
  info?: () => string[];
  leftovers?: () => string[];
}): Config {
  let target: DnsTarget | null = null;
  const tally: Tally = { runs: 0, sent: 0, completed: 0, lost: 0, rcodes: {}, maxLatencyMs: 0, responseBytes: [], requestBytes: [] };
  let rss: string[] = [];
  return {
    name: c.name,
    describe: c.describe,
    available: async () => (await dnsperfAvailable()) ?? (await c.available()),
    setup: async () => {
      await clockTicks();
      if (!dataFile) dataFile = writeQueryFile(NAMES);
      target = await c.setup();
    },
    measure: async (round) => {
      const t = target as DnsTarget;
      const pids = t.serverPids();
      const cpu0 = pids.reduce((a, p) => a + cpuSeconds(p), 0);
      const r = await runDnsperf(t.client, t.server, PORT, dataFile, settings);
      const cpu1 = pids.reduce((a, p) => a + cpuSeconds(p), 0);
      const noerror = r.rcodes.NOERROR ?? 0;
      const rcodes = Object.entries(r.rcodes).map(([k, v]) => `${k} ${v}`).join(', ');
      if (round >= 0) {
        tally.runs++;
        tally.sent += r.sent;
        tally.completed += r.completed;
        tally.lost += r.lost;
        for (const [k, v] of Object.entries(r.rcodes)) tally.rcodes[k] = (tally.rcodes[k] ?? 0) + v;
        tally.maxLatencyMs = Math.max(tally.maxLatencyMs, r.maxLatencyMs);
        tally.requestBytes.push(r.requestBytes);
        tally.responseBytes.push(r.responseBytes);
        rss = pids.map((p) => `${((rssBytes(p) ?? 0) / MiB).toFixed(1)} MiB`);
      }
      if (noerror < MIN_NOERROR * r.completed) {
        throw new Error(`only ${noerror} of ${r.completed} answers were NOERROR (${rcodes}); ${r.lost} lost`);
      }
      return {
        'queries/s': r.qps,
        latency: r.avgLatencyMs,
        'server CPU per query': ((cpu1 - cpu0) / r.completed) * 1e6,
      };
    },
    teardown: c.teardown,
    info: () => {
      const lines = [...(c.info?.() ?? [])];
      if (target) lines.push(`dnsperf in ${describeRef(target.client)} → ${target.server}:${PORT}; server CPU and RSS: ${target.serverWhat}`);
      if (tally.runs) {
        const avg = (xs: number[]): string => (xs.reduce((a, b) => a + b, 0) / xs.length).toFixed(1);
        lines.push(
          `measured rounds: ${tally.sent} queries sent, ${tally.completed} completed, **${tally.lost} lost** (${((100 * tally.lost) / Math.max(1, tally.sent)).toFixed(3)} %); ` +
            `response codes ${Object.entries(tally.rcodes).map(([k, v]) => `${k} ${v}`).join(', ') || 'none'}; max latency ${tally.maxLatencyMs.toFixed(1)} ms; ` +
            `average sizes: request ${avg(tally.requestBytes)} B, response ${avg(tally.responseBytes)} B; server RSS after the last round ${rss.join(' + ')}`,
        );
      }
      return lines;
    },
    leftovers: c.leftovers,
  };
}

function describeRef(ns: NetnsRef): string {
  if ('netns' in ns) return `netns ${ns.netns}`;
  if ('pid' in ns) return `the netns of pid ${ns.pid}`;
  return ns.path;
}

// ---- weft: the agent's embedded DNS on the network's gateway, asked from a weft container ----

let lab: WeftLab | null = null;
const weftConfig = dnsConfig({
  name: 'weft',
  describe: `weft's embedded DNS: a lab host (\`bin/weft lab up\`), network \`${NET}\` 10.71.0.0/24, ${nNames} containers d1..d${nNames} and a client \`${CLIENT}\` (\`sleep 3600\`); dnsperf in the client's netns → the gateway :53 (veth → bridge → the agent in the lab host netns)`,
  available: weftAvailable,
  setup: async () => {
    lab = new WeftLab('l');
    await lab.up();
    await lab.networkCreate(NET, '10.71.0.0/24');
    for (const n of [...NAMES, CLIENT]) await lab.runDetached(n, NET);
    const client = await lab.inspect(CLIENT);
    const net = JSON.parse((await lab.api('GET', `/v1/networks/${NET}`)).body) as { subnets?: { gateway?: string }[] };
    const gateway = net.subnets?.find((s) => s.gateway && !s.gateway.includes(':'))?.gateway;
    if (!gateway) throw new Error(`network ${NET} has no IPv4 gateway`);
    const ref: NetnsRef = { netns: client.netns };
    for (const n of [NAMES[0], NAMES[NAMES.length - 1]]) await expectA(ref, n, (await lab.inspect(n)).ipv4[0], gateway);
    const l = lab;
    return { client: ref, server: gateway, serverPids: () => [l.agentPid()], serverWhat: `the weft agent (pid ${l.agentPid()}; the DNS server runs in it)` };
  },
  teardown: async () => {
    await lab?.down();
  },
  info: () => lab?.info() ?? [],
  leftovers: () => lab?.leftovers() ?? [],
});

// ---- dnsmasq: the same names in an addn-hosts file, on a bridge gateway ----

let dmHost: BridgeHost | null = null;
let dnsmasq: DnsmasqRef | null = null;
const dnsmasqConfig = dnsConfig({
  name: 'dnsmasq',
  describe: `dnsmasq (Debian dnsmasq-base) with the ${nNames} names in an addn-hosts file (\`--no-resolv --no-hosts --bind-interfaces --cache-size=1000\`), listening on a bridge's gateway 10.72.0.1:53 in a host netns; dnsperf in a client netns on a veth port of the bridge (the podman topology)`,
  available: dnsmasqAvailable,
  setup: async () => {
    dmHost = await setupBridgeHost('dm', '10.72.0');
    const h = dmHost;
    const records = Object.fromEntries(NAMES.map((n, i) => [n, h.addr(10 + i)]));
    dnsmasq = new DnsmasqRef();
    await dnsmasq.start(h.hostNs, h.gateway, records, PORT);
    const ref: NetnsRef = { netns: h.clientNs };
    await expectA(ref, NAMES[0], records[NAMES[0]], h.gateway);
    const d = dnsmasq;
    return { client: ref, server: h.gateway, serverPids: () => [d.pid()], serverWhat: `dnsmasq (pid ${d.pid()})` };
  },
  teardown: async () => {
    await dnsmasq?.stop();
    await dmHost?.teardown();
  },
  info: () => (dnsmasq ? [`${dnsmasq.version}; netns ${dmHost?.hostNs} (server), ${dmHost?.clientNs} (client)`] : []),
});

// ---- aardvark-dns: podman's DNS, its config written as netavark writes it ----

let aaHost: BridgeHost | null = null;
let aardvark: AardvarkRef | null = null;
const aardvarkConfig = dnsConfig({
  name: 'aardvark',
  describe: `aardvark-dns (Debian aardvark-dns, podman/netavark's DNS) with a network config of ${nNames} containers d1..d${nNames} plus the client, listening on a bridge's gateway 10.73.0.1:53 in a host netns; dnsperf from the client's address in a netns on a veth port of the bridge`,
  available: aardvarkAvailable,
  setup: async () => {
    aaHost = await setupBridgeHost('aa', '10.73.0');
    const h = aaHost;
    const records: Record<string, string> = Object.fromEntries(NAMES.map((n, i) => [n, h.addr(10 + i)]));
    records[CLIENT] = h.clientIp;
    aardvark = new AardvarkRef();
    await aardvark.start(h.hostNs, NET, h.gateway, records, PORT);
    const ref: NetnsRef = { netns: h.clientNs };
    await expectA(ref, NAMES[0], records[NAMES[0]], h.gateway);
    const a = aardvark;
    return { client: ref, server: h.gateway, serverPids: () => [a.pid()], serverWhat: `aardvark-dns (pid ${a.pid()})` };
  },
  teardown: async () => {
    await aardvark?.stop();
    await aaHost?.teardown();
  },
  info: () => (aardvark ? [`${aardvark.version}; netns ${aaHost?.hostNs} (server), ${aaHost?.clientNs} (client); config ${aardvark.configDir}`] : []),
});

// ---- Docker: the embedded DNS at 127.0.0.11 inside a container's netns ----

let docker: DockerRef | null = null;
const dockerConfig = dnsConfig({
  name: 'docker',
  describe: `Docker's embedded DNS (dockerd 20.10 in its own netns): user-defined network \`${NET}\` 10.74.0.0/24, ${nNames} busybox containers d1..d${nNames} and a client (\`sleep 3600\`); dnsperf entered into the client's netns (\`nsenter -t PID -n\`) → 127.0.0.11:53 (iptables DNAT to dockerd's resolver socket in that netns)`,
  available: dockerAvailable,
  setup: async () => {
    docker = new DockerRef('dk');
    await docker.start();
    await docker.networkCreate(NET, '10.74.0.0/24');
    for (const n of [...NAMES, CLIENT]) await docker.runDetached(n, NET);
    const d = docker;
    const ref: NetnsRef = { pid: await d.containerPid(CLIENT) };
    for (const n of [NAMES[0], NAMES[NAMES.length - 1]]) await expectA(ref, n, await d.containerIp(n, NET), '127.0.0.11');
    return { client: ref, server: '127.0.0.11', serverPids: () => [d.dockerdPid], serverWhat: `dockerd (pid ${d.dockerdPid}; the embedded DNS runs in it)` };
  },
  teardown: async () => {
    await docker?.stop();
  },
  info: () => (docker ? [`dockerd ${docker.serverVersion} in netns ${docker.ns}`, ...docker.setupNotes] : []),
});

const bench: Bench = {
  name: 'dns',
  title: 'Embedded DNS throughput (dnsperf): weft vs dnsmasq vs aardvark-dns vs Docker',
  description: [
    `Each round runs dnsperf once per configuration in turn, for ${settings.seconds} s, from inside a container's network namespace against that`,
    `system's container DNS: \`dnsperf ${dnsperfArgs(settings, 'SERVER', PORT, 'queries.txt').join(' ')}\`, where queries.txt is`,
    `\`d1 A\` … \`d${nNames} A\` (dnsperf cycles through it): names of containers on the client's network, answered locally with one A record each,`,
    'never forwarded. Every system gets the same names, the same file and the same dnsperf settings; setup checks that the first and last',
    'name resolve to the right address before any load. dnsperf and the server share the 2 vCPUs.',
  ].join(' '),
  metrics: [
    { name: 'queries/s', unit: 'queries/s', better: 'higher', note: "dnsperf's \"Queries per second\" (completed queries / run time)." },
    {
      name: 'latency',
      unit: 'ms',
      better: 'lower',
      note: `dnsperf's average latency. With up to ${settings.outstanding} queries in flight this is mostly queueing (≈ in-flight / queries/s), not a single query's cost.`,
    },
    {
      name: 'server CPU per query',
      unit: 'µs',
      better: 'lower',
      note: 'User + system CPU time of the answering process over the run (from /proc/PID/stat, all threads; resolution 10 ms per run) divided by the queries completed: the weft agent, dnsmasq, aardvark-dns, dockerd. Softirq work (veth, bridge, DNAT) is not attributed to any of them.',
    },
  ],
  configs: [weftConfig, dnsmasqConfig, aardvarkConfig, dockerConfig],
  baseline: 'dnsmasq',
  targets: [
    { metric: 'queries/s', config: 'weft', versus: 'aardvark', op: '>=', ratio: 1 },
    { metric: 'queries/s', config: 'weft', versus: 'docker', op: '>=', ratio: 1 },
  ],
  notes: [
    'Paths differ where the systems differ: weft, dnsmasq and aardvark-dns answer on a bridge gateway reached over veth → bridge (weft\'s lab host also has weft\'s nftables rules on that path); Docker answers on 127.0.0.11 inside the container\'s own netns, through an iptables DNAT to a socket dockerd holds there.',
    'weft\'s DNS counters (DnsServer.stats(): queries, answeredLocally, dropped, …) are not exposed by the agent\'s API or CLI yet, so the report gives what the outside sees: dnsperf\'s sent/completed/lost and response codes, and the agent\'s CPU time and RSS.',
    'aardvark-dns answers only sources listed as containers of the network, so the client\'s address is in its config, as netavark writes it for a real container.',
  ],
};

bench.notes?.push(`${await dnsperfVersion().catch(() => 'dnsperf (version unknown)')}`);
await main(bench, options);
