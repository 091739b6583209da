/**
 * Who a policy is about and who its rules name: label selectors, the pods a policy selects, and
 * whether a peer names a party. The evaluator and the compiler both judge through these, so the
 * model's answer and the kernel's rules cannot disagree on selection.
 */
import { cidrContains } from './ranges.js';
import type { LabelSelector, NamedPort, Pod, Policy, PolicyPeer, PolicyPort, PolicyType, PolicyWorld, PortProtocol } from './types.js';

/** metav1.LabelSelector semantics: every matchLabels pair and every expression; empty = all. */
export function matchSelector(sel: LabelSelector, labels: Record<string, string>): boolean {
  for (const [k, v] of Object.entries(sel.matchLabels)) if (labels[k] !== v) return false;
  for (const e of sel.matchExpressions) {
    const has = Object.prototype.hasOwnProperty.call(labels, e.key);
    switch (e.operator) {
      case 'In':
        if (!has || !e.values.includes(labels[e.key]!)) return false;
        break;
      case 'NotIn':
        // Kubernetes: a pod without the key matches NotIn
        if (has && e.values.includes(labels[e.key]!)) return false;
        break;
      case 'Exists':
        if (!has) return false;
        break;
      case 'DoesNotExist':
        if (has) return false;
        break;
    }
  }
  return true;
}

/** Does the policy select the pod, and is the pod isolated by it in this direction? */
export function isolates(p: Policy, pod: Pod, dir: PolicyType): boolean {
  return p.project === pod.project && p.spec.policyTypes.includes(dir) && matchSelector(p.spec.podSelector, pod.labels);
}

/** The party at one end of a connection: a pod (with the address it uses) or any other address. */
export interface Party {
  ip: string;
  pod?: Pod;
}

/** The labels of a project; a project nobody labelled still has its name label. */
export function projectLabels(world: PolicyWorld, name: string): Record<string, string> {
  return world.projects.get(name) ?? { 'kubernetes.io/metadata.name': name };
}

/** Does the peer (of a rule of a policy in `project`) name this pod? ipBlock peers are judged on addresses. */
export function peerSelectsPod(world: PolicyWorld, project: string, peer: PolicyPeer, pod: Pod): boolean {
  if (peer.ipBlock) return false;
  if (peer.namespaceSelector) {
    if (!matchSelector(peer.namespaceSelector, projectLabels(world, pod.project))) return false;
  } else if (pod.project !== project) return false;
  return !peer.podSelector || matchSelector(peer.podSelector, pod.labels);
}

export function ipBlockContains(peer: PolicyPeer, ip: string): boolean {
  const b = peer.ipBlock;
  if (!b) return false;
  return cidrContains(b.cidr, ip) && !b.except.some((e) => cidrContains(e, ip));
}

export function peerMatches(world: PolicyWorld, project: string, peer: PolicyPeer, party: Party): boolean {
  if (peer.ipBlock) return ipBlockContains(peer, party.ip);
  return party.pod !== undefined && peerSelectsPod(world, project, peer, party.pod);
}

const PROTO: Record<PolicyPort['protocol'], PortProtocol> = { TCP: 'tcp', UDP: 'udp', SCTP: 'sctp' };
export const portProtocol = (p: PolicyPort): PortProtocol => PROTO[p.protocol];

/** A named port of a pod for this protocol, if it declares one. */
export function resolveNamedPort(ports: NamedPort[] | undefined, name: string, proto: PortProtocol): number | undefined {
  return ports?.find((x) => x.name === name && x.protocol === proto)?.port;
}

/**
 * The numeric range a policy port stands for at this destination: [lo, hi], 'all' for every port
 * of the protocol, or undefined when a named port does not resolve on the destination.
 */
export function portRange(p: PolicyPort, dest?: Pod): [number, number] | 'all' | undefined {
  if (p.port === undefined) return 'all';
  if (typeof p.port === 'number') return [p.port, p.endPort ?? p.port];
  const n = resolveNamedPort(dest?.namedPorts, p.port, portProtocol(p));
  return n === undefined ? undefined : [n, n];
}

/** Does a rule's port list admit this connection to `dest`? An empty list admits everything. */
export function portsMatch(ports: PolicyPort[], proto: string, port: number | undefined, dest?: Pod): boolean {
  if (!ports.length) return true;
  return ports.some((p) => {
    if (portProtocol(p) !== proto) return false;
    const r = portRange(p, dest);
    if (r === 'all') return true;
    return r !== undefined && port !== undefined && port >= r[0] && port <= r[1];
  });
}
