/**
 * Service rulesets for bench/services.ts, all made from the same list of service ports (weft's own
 * `LbPort` model), so every system is given exactly the same services:
 *
 * - weft: `compilePort` + `fullScript` / `deltaScript` from src/services/compile.ts, unchanged:
 *   `table inet weft-svc`, one verdict-map lookup per new connection whatever the number of services.
 * - linear (nft): the shape of kube-proxy's iptables mode written in nft syntax, `table ip weft-b-lin`:
 *     chain KUBE-SERVICES { ip daddr VIP tcp dport PORT jump svc-KEY   ... one rule per service port }
 *     chain svc-KEY       { numgen random mod N == 0 meta l4proto tcp dnat to B1:P
 *                           numgen random mod N-1 == 0 meta l4proto tcp dnat to B2:P ... last: dnat to BN:P }
 *   i.e. kube-proxy's `-m statistic --mode random --probability 1/N, 1/(N-1), ...` cascade, without
 *   the per-endpoint KUBE-SEP chains (their masquerade mark is not on the measured path). A new
 *   connection walks KUBE-SERVICES rule by rule: cost grows with the services before its own.
 * - iptables: the same ruleset as kube-proxy writes it, an `iptables-restore` input for the nat table
 *   (iptables-nft here), with the real statistic match. Every sync restores the whole table, as
 *   kube-proxy's iptables mode does on a full sync.
 *
 * Addresses (none of them is ever in the root netns):
 *   service VIPs       10.96.x.y (filler services, by index), 10.97.0.x (the bench's own services);
 *                      weft's service range (refused when no service answers): 10.96.0.0/15
 *   filler backends    10.100.0.0 - 10.103.255.255 (never answered: only the measured service is connected to)
 *   real backends      10.88.0.101 - 10.88.0.110 (addresses of the backend netns, see svcnet.ts)
 */
import { compilePort, fullScript, type CompiledPort, type LbBackend, type LbPort } from '../../src/services/compile.js';
import type { LbAlgorithm } from '../../src/model/types.js';

/** the agent numbers a service's ports key * 16 + i (src/agent/services.ts PORTS_PER_SERVICE) */
export const PORTS_PER_SERVICE = 16;
export const LINEAR_TABLE = 'weft-b-lin';
export const BACKEND_PORT = 8080;
export const IPERF_PORT = 5201;

export const fillerVip = (i: number): string => `10.96.${(i >> 8) & 255}.${i & 255}`;
function fillerBackend(n: number): string {
  return `10.${100 + ((n >> 16) & 3)}.${(n >> 8) & 255}.${n & 255}`;
}
export const realBackend = (j: number): string => `10.88.0.${101 + j}`;

/** Filler service i (0-based): VIP fillerVip(i):80 to `backends` addresses that never answer. */
export function fillerPort(i: number, backends: number): LbPort {
  return {
    key: (i + 1) * PORTS_PER_SERVICE,
    service: `filler-${i}`,
    vip: fillerVip(i),
    protocol: 'tcp',
    port: 80,
    algorithm: 'round-robin',
    affinityTimeout: 10800,
    backends: Array.from({ length: backends }, (_, j) => ({ id: `f${i}-${j}`, ip: fillerBackend(i * backends + j), port: BACKEND_PORT, weight: 1 })),
  };
}

/** `services` ports: services - 1 fillers, then `last` (the measured one, last in every ruleset's order). */
export function servicesWithLast(services: number, backends: number, last: (key: number) => LbPort[]): LbPort[] {
  const out: LbPort[] = [];
  for (let i = 0; i < services - 1; i++) out.push(fillerPort(i, backends));
  out.push(...last((services + 1) * PORTS_PER_SERVICE));
  return out;
}

/** A service of the bench whose backends are real: realBackend(0..n-1):targetPort. */
export function realPort(
  key: number,
  vip: string,
  port: number,
  targetPort: number,
  algorithm: LbAlgorithm,
  n: number,
  weights?: number[],
): LbPort {
  const backends: LbBackend[] = Array.from({ length: n }, (_, j) => ({ id: `real-${j}`, ip: realBackend(j), port: targetPort, weight: weights?.[j] ?? 1 }));
  return { key, service: `real-${vip}`, vip, protocol: 'tcp', port, algorithm, affinityTimeout: 10800, backends };
}

/** The measured service: VIP 10.97.0.1, port 80 -> 8080 and 5201 -> 5201 (iperf3), `n` real backends, round robin. */
export function measuredService(key: number, n: number): LbPort[] {
  return [
    { ...realPort(key, '10.97.0.1', 80, BACKEND_PORT, 'round-robin', n), service: 'measured' },
    { ...realPort(key + 1, '10.97.0.1', IPERF_PORT, IPERF_PORT, 'round-robin', n), service: 'measured' },
  ];
}
export const MEASURED_VIP = '10.97.0.1';

/** The service range(s) weft's table refuses when no service answers (the agent passes its --service-range). */
export const SERVICE_RANGES = ['10.96.0.0/15'];

/** weft's whole table for compiled ports. */
export function weftScript(compiled: CompiledPort[]): string {
  return fullScript(compiled, SERVICE_RANGES);
}

/** weft's whole table for these ports, and the compiled ports (for later deltas). */
export function weftFull(ports: LbPort[]): { compiled: CompiledPort[]; script: string } {
  const compiled = ports.map(compilePort);
  return { compiled, script: weftScript(compiled) };
}

/** The script that removes weft's table (no error when it is absent). */
export const weftDrop = 'table inet weft-svc {}\ndelete table inet weft-svc\n';

/** The kube-proxy-iptables-shaped ruleset in nft syntax, as one replace-the-table transaction. */
export function linearScript(ports: LbPort[]): string {
  const L: string[] = [`table ip ${LINEAR_TABLE} {}`, `delete table ip ${LINEAR_TABLE}`, `table ip ${LINEAR_TABLE} {`];
  L.push('  chain prerouting {', '    type nat hook prerouting priority dstnat; policy accept;', '    jump KUBE-SERVICES', '  }');
  L.push('  chain output {', '    type nat hook output priority -100; policy accept;', '    jump KUBE-SERVICES', '  }');
  L.push('  chain KUBE-SERVICES {');
  for (const p of ports) if (p.vip && p.backends.length) L.push(`    ip daddr ${p.vip} ${p.protocol} dport ${p.port} jump svc-${p.key}`);
  L.push('  }');
  for (const p of ports) {
    if (!p.vip || !p.backends.length) continue;
    L.push(`  chain svc-${p.key} {`);
    const n = p.backends.length;
    p.backends.forEach((b, j) => {
      const dnat = `meta l4proto ${p.protocol} dnat to ${b.ip}:${b.port}`;
      L.push(j < n - 1 ? `    numgen random mod ${n - j} == 0 ${dnat}` : `    ${dnat}`);
    });
    L.push('  }');
  }
  L.push('}', '');
  return L.join('\n');
}

export const linearDrop = `table ip ${LINEAR_TABLE} {}\ndelete table ip ${LINEAR_TABLE}\n`;

/** The same ruleset as kube-proxy's iptables mode writes it: an iptables-restore input for the nat table. */
export function iptablesRestoreInput(ports: LbPort[]): string {
  const live = ports.filter((p) => p.vip && p.backends.length);
  const L: string[] = ['*nat', ':PREROUTING ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]', ':KUBE-SERVICES - [0:0]'];
  for (const p of live) L.push(`:KUBE-SVC-${p.key} - [0:0]`);
  L.push('-A PREROUTING -j KUBE-SERVICES', '-A OUTPUT -j KUBE-SERVICES');
  for (const p of live) L.push(`-A KUBE-SERVICES -d ${p.vip}/32 -p ${p.protocol} -m ${p.protocol} --dport ${p.port} -j KUBE-SVC-${p.key}`);
  for (const p of live) {
    const n = p.backends.length;
    p.backends.forEach((b, j) => {
      const dnat = `-p ${p.protocol} -j DNAT --to-destination ${b.ip}:${b.port}`;
      L.push(
        j < n - 1
          ? `-A KUBE-SVC-${p.key} -m statistic --mode random --probability ${(1 / (n - j)).toFixed(11)} ${dnat}`
          : `-A KUBE-SVC-${p.key} ${dnat}`,
      );
    });
  }
  L.push('COMMIT', '');
  return L.join('\n');
}
