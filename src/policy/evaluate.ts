/**
 * The reachability model: Kubernetes NetworkPolicy semantics evaluated directly on the model, one
 * connection at a time, with the reason. `weft policy check` and `matrix` answer from here, and the
 * truth-table suite holds the kernel to it.
 *
 * A connection from A to B is allowed when A's egress allows it and B's ingress allows it. A pod is
 * isolated in a direction when some policy of its project selects it with that policy type; an
 * isolated pod admits only what some rule of those policies allows (rules add up, order does not
 * matter). A pod always reaches itself. Traffic to or from the host (node) never reaches these
 * checks: weft enforces policy on forwarded traffic only, as Kubernetes exempts the node.
 */
import { isolates, peerMatches, portsMatch, type Party } from './select.js';
import type { EgressRule, IngressRule, Policy, PolicyType, PolicyWorld } from './types.js';

export type { Party };

/** `project/name` */
export const policyRef = (p: Pick<Policy, 'project' | 'name'>): string => `${p.project}/${p.name}`;

export interface RuleRef {
  policy: string;
  /** `ingress[0]`, `egress[2]` */
  rule: string;
}

export interface SideVerdict {
  direction: PolicyType;
  /** the pod this side is about */
  pod: string;
  /** policies that select the pod for this direction (empty: not isolated) */
  isolatedBy: string[];
  allowed: boolean;
  /** the first rule (by policy project/name, then index) that admits the connection */
  allowedBy?: RuleRef;
}

export interface Verdict {
  allowed: boolean;
  /** a pod connecting to its own address: always allowed */
  self?: boolean;
  /** absent when the source is not a pod */
  egress?: SideVerdict;
  /** absent when the destination is not a pod */
  ingress?: SideVerdict;
}

export interface Connection {
  from: Party;
  to: Party;
  /** tcp, udp, sctp, or another protocol name (icmp...): only rules without ports admit those */
  protocol: string;
  port?: number;
}

/** Byte order, not the locale's: the same order (and the same allowedBy) on every host. */
export const byRef = (a: Policy, b: Policy): number => (policyRef(a) < policyRef(b) ? -1 : policyRef(a) > policyRef(b) ? 1 : 0);
const sorted = (ps: Policy[]) => [...ps].sort(byRef);

function side(world: PolicyWorld, dir: PolicyType, c: Connection): SideVerdict | undefined {
  const self = dir === 'Egress' ? c.from : c.to;
  const peer = dir === 'Egress' ? c.to : c.from;
  if (!self.pod) return undefined;
  const pod = self.pod;
  const selecting = sorted(world.policies).filter((p) => isolates(p, pod, dir));
  const out: SideVerdict = { direction: dir, pod: pod.name, isolatedBy: selecting.map(policyRef), allowed: !selecting.length };
  for (const p of selecting) {
    const rules: Array<IngressRule | EgressRule> = dir === 'Ingress' ? p.spec.ingress : p.spec.egress;
    const i = rules.findIndex((r) => {
      const peers = 'from' in r ? r.from : r.to;
      return (
        (!peers.length || peers.some((x) => peerMatches(world, p.project, x, peer))) &&
        portsMatch(r.ports, c.protocol, c.port, c.to.pod)
      );
    });
    if (i >= 0) {
      out.allowed = true;
      out.allowedBy = { policy: policyRef(p), rule: `${dir === 'Ingress' ? 'ingress' : 'egress'}[${i}]` };
      break;
    }
  }
  return out;
}

export function evaluate(world: PolicyWorld, c: Connection): Verdict {
  if (c.from.pod && c.to.pod && c.from.pod.id === c.to.pod.id) return { allowed: true, self: true };
  const egress = side(world, 'Egress', c);
  const ingress = side(world, 'Ingress', c);
  return { allowed: (egress?.allowed ?? true) && (ingress?.allowed ?? true), egress, ingress };
}

function describeSide(s: SideVerdict): string {
  const dir = s.direction.toLowerCase();
  if (!s.isolatedBy.length) return `${s.pod} is not isolated for ${dir}`;
  if (s.allowedBy) return `${dir} of ${s.pod} allowed by policy ${s.allowedBy.policy} rule ${s.allowedBy.rule}`;
  const by = s.isolatedBy.length === 1 ? `policy ${s.isolatedBy[0]}` : `policies ${s.isolatedBy.join(', ')}`;
  return `${s.pod} is isolated for ${dir} by ${by}, and no rule of ${s.isolatedBy.length === 1 ? 'it' : 'them'} admits this connection`;
}

/** One line per deciding side: why the connection is allowed or denied. */
export function explain(v: Verdict): string[] {
  if (v.self) return ['a container always reaches itself'];
  const sides = [v.egress, v.ingress].filter((s): s is SideVerdict => s !== undefined);
  if (!sides.length) return ['neither end is a container: network policy does not apply'];
  // a denial is explained by the side(s) that deny; an allowance by both sides
  const deciding = v.allowed ? sides : sides.filter((s) => !s.allowed);
  return deciding.map(describeSide);
}
