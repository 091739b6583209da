/**
 * Explaining reachability: `policy check` (one connection, with the policy and rule that decided)
 * and `policy matrix` (every pair of containers, from the model; with probe, verified by real
 * connections, flagging each cell where the kernel disagrees with the model).
 */
import type { Container, Network } from '../model/types.js';
import type { MatrixCell, PartyView, PolicyCheck, PolicyCheckResult, PolicyMatrix, PolicyMatrixRequest } from '../api/schemas.js';
import { evaluate, explain, type Party } from '../policy/evaluate.js';
import type { Pod, PolicyWorld } from '../policy/types.js';
import { familyOf, canonicalIp } from '../ipam/cidr.js';
import { probeConnect, probeListen, type ProbeTarget } from '../kernel/probe.js';
import { badRequest } from './errors.js';
import { podOf, policyWorld, projectOf } from './policy.js';
import type { Daemon } from './daemon.js';

interface End {
  party: Party;
  container?: Container;
}

async function endOf(d: Daemon, world: PolicyWorld, containers: Container[], ref: string, what: string): Promise<End> {
  if (familyOf(ref)) {
    const ip = canonicalIp(ref);
    const pod = world.pods.find((p) => p.ips.includes(ip));
    return { party: { ip, pod }, container: pod && containers.find((c) => c.id === pod.id) };
  }
  const c = await d.resolveContainer(ref);
  const pod = world.pods.find((p) => p.id === c.id);
  if (!pod) {
    const why = c.config.networkMode === 'host' ? "uses the host's network" : c.config.networkMode.startsWith('container:') ? "shares another container's network namespace: check that container" : 'has no address';
    throw badRequest(`${what}: container ${c.name} ${why}; network policy applies to containers with addresses of their own`);
  }
  return { party: { ip: pod.ips[0]!, pod }, container: c };
}

function sharedNetworks(a: Container, b: Container, networks: Network[]): Network[] {
  return networks.filter((n) => a.endpoints[n.id] && b.endpoints[n.id]);
}

/** The addresses the two ends use: on a network they share (IPv4 first), else each one's first. */
function pickAddresses(a: End, b: End, networks: Network[]): { noPath?: string } {
  if (!a.container || !b.container) return {};
  const shared = sharedNetworks(a.container, b.container, networks);
  if (!shared.length)
    return { noPath: `${a.container.name} and ${b.container.name} share no network: weft isolates networks, so no packet gets there whatever the policies say` };
  const n = shared[0]!;
  const ea = a.container.endpoints[n.id]!, eb = b.container.endpoints[n.id]!;
  const v4 = ea.ipv4 && eb.ipv4;
  a.party = { ...a.party, ip: (v4 ? ea.ipv4 : ea.ipv6)! };
  b.party = { ...b.party, ip: (v4 ? eb.ipv4 : eb.ipv6)! };
  return {};
}

const view = (e: End): PartyView => ({ container: e.container?.name, project: e.party.pod?.project, ip: e.party.ip });

export async function policyCheck(d: Daemon, req: PolicyCheck): Promise<PolicyCheckResult> {
  const [containers, networks] = await Promise.all([d.containers(), d.networks()]);
  const world = await policyWorld(d, containers);
  const from = await endOf(d, world, containers, req.from, 'from');
  const to = await endOf(d, world, containers, req.to, 'to');
  const { noPath } = pickAddresses(from, to, networks);
  const protocol = req.protocol ?? 'tcp';
  if (protocol === 'icmp' && req.port !== undefined) throw badRequest('icmp has no ports: drop the port');
  const verdict = evaluate(world, { from: from.party, to: to.party, protocol, port: req.port });
  return { allowed: verdict.allowed, from: view(from), to: view(to), protocol, port: req.port, reasons: explain(verdict), verdict, noPath };
}

function parsePort(text: string): Omit<ProbeTarget, 'ip'> {
  const [port, proto] = text.split('/');
  const n = Number(port);
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw badRequest(`invalid port "${text}": give PORT[/tcp|udp] with PORT 1-65535`);
  return { port: n, protocol: (proto ?? 'tcp') as 'tcp' | 'udp' };
}

export async function policyMatrix(d: Daemon, req: PolicyMatrixRequest): Promise<PolicyMatrix> {
  const [containers, networks] = await Promise.all([d.containers(), d.networks()]);
  const world = await policyWorld(d, containers);
  const running = containers
    .filter((c) => c.state.phase === 'running' && podOf(c) && (!req.projects?.length || req.projects.includes(projectOf(c))))
    .sort((a, b) => `${projectOf(a)}/${a.name}`.localeCompare(`${projectOf(b)}/${b.name}`));
  const podById = new Map(world.pods.map((p) => [p.id, p]));
  let ports = (req.ports ?? []).map(parsePort);
  if (!ports.length) {
    const seen = new Map<string, Omit<ProbeTarget, 'ip'>>();
    for (const c of running)
      for (const e of c.config.expose ?? []) if (e.protocol !== 'sctp') seen.set(`${e.port}/${e.protocol}`, { port: e.port, protocol: e.protocol });
    ports = [...seen.values()].sort((a, b) => a.port - b.port || a.protocol.localeCompare(b.protocol));
  }
  if (!ports.length) throw badRequest('no ports to check: give some (--port 80/tcp), or run containers with --expose');
  const ends: End[] = running.map((c) => {
    const pod = podById.get(c.id) as Pod;
    return { party: { ip: pod.ips[0]!, pod }, container: c };
  });

  const pairs = ends.map((a) =>
    ends.map((b) => {
      if (a === b) return undefined;
      const from = { ...a }, to = { ...b };
      return { from, to, noPath: pickAddresses(from, to, networks).noPath };
    }),
  );
  const cells: PolicyMatrix['cells'] = pairs.map((row) =>
    row.map((p) =>
      ports.map((port): MatrixCell | '' => {
        if (!p) return '';
        if (p.noPath) return 'no-path';
        return evaluate(world, { from: p.from.party, to: p.to.party, protocol: port.protocol, port: port.port }).allowed ? 'allow' : 'deny';
      }),
    ),
  );
  const out: PolicyMatrix = { containers: ends.map(view), ports: ports.map((p) => `${p.port}/${p.protocol}`), cells };
  if (!req.probe) return out;

  const responders = await Promise.all(ends.map((e) => probeListen(e.container!.netns!, ports)));
  try {
    const results = await Promise.all(
      pairs.map(async (row, i) => {
        const targets: Array<{ j: number; k: number; t: ProbeTarget }> = [];
        row.forEach((p, j) => {
          if (p && !p.noPath) ports.forEach((port, k) => targets.push({ j, k, t: { ...port, ip: p.to.party.ip } }));
        });
        const got = targets.length ? await probeConnect(ends[i]!.container!.netns!, targets.map((x) => x.t), req.timeoutMs ?? 1000) : [];
        return targets.map((x, n) => ({ ...x, result: got[n]! }));
      }),
    );
    out.probed = cells.map((row) => row.map((ps) => ps.map(() => '' as const)));
    out.disagreements = [];
    results.forEach((list, i) => {
      for (const { j, k, result } of list) {
        const kernel = result === 'open' || result === 'refused' ? 'allow' : result === 'timeout' ? 'deny' : result;
        if (kernel === 'allow' || kernel === 'deny') out.probed![i]![j]![k] = kernel;
        const model = cells[i]![j]![k] as MatrixCell;
        if (kernel !== model)
          out.disagreements!.push({ from: ends[i]!.container!.name, to: ends[j]!.container!.name, port: out.ports[k]!, model, kernel });
      }
    });
  } finally {
    await Promise.all(responders.map((r) => r.close()));
  }
  return out;
}
