/**
 * Network policy as weft stores it: Kubernetes `networking.k8s.io/v1` NetworkPolicy, normalized
 * (defaults filled in, so the evaluator and the compiler never guess), plus the "world" a policy
 * is judged against: projects (Kubernetes namespaces) and pods (running containers).
 */

/** Every project carries this label with its own name, as every Kubernetes namespace does. */
export const NAMESPACE_NAME_LABEL = 'kubernetes.io/metadata.name';
/** The project of containers that name none (Kubernetes' `default` namespace). */
export const DEFAULT_PROJECT = 'default';

export type SelectorOperator = 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';

export interface LabelSelectorRequirement {
  key: string;
  operator: SelectorOperator;
  /** In/NotIn: at least one value; Exists/DoesNotExist: none */
  values: string[];
}

/** metav1.LabelSelector: every matchLabels pair AND every expression; empty selects everything. */
export interface LabelSelector {
  matchLabels: Record<string, string>;
  matchExpressions: LabelSelectorRequirement[];
}

export type PolicyProtocol = 'TCP' | 'UDP' | 'SCTP';
export const POLICY_PROTOCOLS: readonly PolicyProtocol[] = ['TCP', 'UDP', 'SCTP'];

export interface PolicyPort {
  /** default TCP */
  protocol: PolicyProtocol;
  /** absent: every port of the protocol; a number; or a named port of the destination pod */
  port?: number | string;
  /** with a numeric port: the range port..endPort */
  endPort?: number;
}

export interface IpBlock {
  /** canonical CIDR */
  cidr: string;
  /** canonical CIDRs inside cidr */
  except: string[];
}

/**
 * One peer. podSelector alone: pods of the policy's project; namespaceSelector alone: every pod of
 * the matching projects; both: the matching pods of the matching projects (AND); ipBlock alone.
 */
export interface PolicyPeer {
  podSelector?: LabelSelector;
  namespaceSelector?: LabelSelector;
  ipBlock?: IpBlock;
}

/** A rule: `from`/`to` empty = every peer (anywhere); `ports` empty = every port and protocol. */
export interface IngressRule {
  from: PolicyPeer[];
  ports: PolicyPort[];
}
export interface EgressRule {
  to: PolicyPeer[];
  ports: PolicyPort[];
}

export type PolicyType = 'Ingress' | 'Egress';

export interface NetworkPolicySpec {
  podSelector: LabelSelector;
  /** default: Ingress, plus Egress when the spec has an egress section */
  policyTypes: PolicyType[];
  ingress: IngressRule[];
  egress: EgressRule[];
}

/** A stored policy: /weft/policies/PROJECT/NAME. */
export interface Policy {
  /** 64 hex characters */
  id: string;
  name: string;
  /** metadata.namespace */
  project: string;
  created: string;
  /** bumped by every apply that changes the spec or the labels */
  generation: number;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  spec: NetworkPolicySpec;
}

/** A project (Kubernetes namespace): its labels always include NAMESPACE_NAME_LABEL=name. */
export interface Project {
  name: string;
  labels: Record<string, string>;
  created: string;
}

export type PortProtocol = 'tcp' | 'udp' | 'sctp';

/** A port a container declares by name (run --expose NAME=PORT/PROTO, compose ports[].name). */
export interface NamedPort {
  name: string;
  port: number;
  protocol: PortProtocol;
}

/** A running container as policy sees it. */
export interface Pod {
  id: string;
  name: string;
  project: string;
  labels: Record<string, string>;
  /** every address of its endpoints (IPv4 and IPv6) */
  ips: string[];
  namedPorts: NamedPort[];
}

/** What the evaluator and the compiler judge: projects by name, pods, policies. */
export interface PolicyWorld {
  projects: Map<string, Record<string, string>>;
  pods: Pod[];
  policies: Policy[];
}
