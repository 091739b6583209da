/**
 * The firewall compiler: a pure function from FirewallModel to the bodies of weft's two nftables
 * tables, `table bridge weft` (anti-spoofing on container ports) and `table inet weft` (forwarding
 * filter, masquerade, published ports). See README.md beside this file for the packet's path.
 *
 * The rules are static: they never mention a bridge, a port or an address. Everything that varies
 * lives in set and map elements, so attaching a container is a handful of `add element` commands
 * (endpointElements, portElements, networkElements) rather than a rewrite of the tables.
 *
 * Output is deterministic: elements are sorted, so equal models give byte-equal text.
 */
import ipaddr from 'ipaddr.js';
import {
  byText,
  normalizeEndpoint,
  normalizeModel,
  normalizeNetwork,
  normalizePort,
  type FirewallModel,
  type FwEndpoint,
  type FwNetwork,
  type FwPort,
} from './model.js';

export const TABLE_NAME = 'weft';
export type TableFamily = 'bridge' | 'inet';

interface SetDecl {
  name: string;
  /** `type ...` or `typeof ...` line, without the trailing newline */
  type: string;
  interval?: boolean;
}

/** Sets of `table bridge weft`, in the order they are declared. */
export const BRIDGE_SETS: readonly SetDecl[] = [
  { name: 'ports', type: 'type ifname' },
  { name: 'port-mac', type: 'type ifname . ether_addr' },
  { name: 'port-ip4', type: 'type ifname . ipv4_addr' },
  { name: 'port-ip6', type: 'type ifname . ipv6_addr' },
  // the target address of a Neighbor Advertisement (ICMPv6 bytes 8-23); nft 1.0.6 has no
  // `icmpv6 taddr`, so the key is the raw payload and elements are 128-bit integers
  { name: 'port-nd', type: 'typeof iifname . @th,64,128' },
];

/** Sets and maps of `table inet weft`, in the order they are declared. */
export const INET_SETS: readonly SetDecl[] = [
  { name: 'bridges', type: 'type ifname' },
  { name: 'internal', type: 'type ifname' },
  { name: 'intra-bridge', type: 'type ifname . ifname : verdict' },
  { name: 'subnets4', type: 'type ipv4_addr', interval: true },
  { name: 'subnets6', type: 'type ipv6_addr', interval: true },
  { name: 'bridge-subnets4', type: 'type ifname . ipv4_addr', interval: true },
  { name: 'bridge-subnets6', type: 'type ifname . ipv6_addr', interval: true },
  { name: 'masq4', type: 'type ipv4_addr', interval: true },
  { name: 'masq6', type: 'type ipv6_addr', interval: true },
  { name: 'publish4', type: 'type inet_proto . inet_service : ipv4_addr . inet_service' },
  { name: 'publish4-addr', type: 'type ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service' },
  { name: 'publish6', type: 'type inet_proto . inet_service : ipv6_addr . inet_service' },
  { name: 'publish6-addr', type: 'type ipv6_addr . inet_proto . inet_service : ipv6_addr . inet_service' },
  { name: 'dns4', type: 'type ipv4_addr' },
  { name: 'dns6', type: 'type ipv6_addr' },
];

/** Priority of the bridge prerouting chain: before br_netfilter (0) and anything at filter (-200). */
export const BRIDGE_PREROUTING_PRIORITY = -300;

const BRIDGE_CHAINS = `  chain prerouting {
    type filter hook prerouting priority ${BRIDGE_PREROUTING_PRIORITY}; policy accept;
    iifname @ports jump from-port
  }

  chain from-port {
    iifname . ether saddr != @port-mac counter drop
    ether type vmap { arp : jump check-arp, ip : jump check-ip4, ip6 : jump check-ip6, 8021q : drop, 8021ad : drop }
  }

  chain check-arp {
    arp htype 1 arp ptype ip arp hlen 6 arp plen 4 iifname . arp saddr ether @port-mac iifname . arp saddr ip @port-ip4 return
    arp htype 1 arp ptype ip arp hlen 6 arp plen 4 arp saddr ip 0.0.0.0 iifname . arp saddr ether @port-mac return
    counter drop
  }

  chain check-ip4 {
    iifname . ip saddr @port-ip4 return
    counter drop
  }

  chain check-ip6 {
    icmpv6 type { nd-router-advert, nd-redirect } counter drop
    icmpv6 type nd-neighbor-advert iifname . @th,64,128 != @port-nd counter drop
    iifname . ip6 saddr @port-ip6 return
    ip6 saddr :: icmpv6 type { nd-neighbor-solicit, mld-listener-report, mld2-listener-report } return
    counter drop
  }
`;

const INET_CHAINS = `  chain input {
    type filter hook input priority filter; policy accept;
    meta l4proto { tcp, udp } th dport 53 ip daddr @dns4 iifname != @bridges counter drop
    meta l4proto { tcp, udp } th dport 53 ip6 daddr @dns6 iifname != @bridges counter drop
  }

  chain forward {
    type filter hook forward priority filter; policy accept;
    iifname . oifname vmap @intra-bridge
    iifname @internal counter drop
    oifname @internal counter drop
    ct state established,related accept
    oifname @bridges ct status dnat accept
    oifname @bridges counter drop
    iifname @bridges accept
  }

  chain prerouting {
    type nat hook prerouting priority dstnat; policy accept;
    fib daddr type local jump publish
  }

  chain output {
    type nat hook output priority -100; policy accept;
    ip6 daddr ::1 return
    fib daddr type local jump publish
  }

  chain publish {
    dnat ip addr . port to ip daddr . meta l4proto . th dport map @publish4-addr
    meta nfproto ipv4 dnat ip addr . port to meta l4proto . th dport map @publish4
    dnat ip6 addr . port to ip6 daddr . meta l4proto . th dport map @publish6-addr
    meta nfproto ipv6 dnat ip6 addr . port to meta l4proto . th dport map @publish6
  }

  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    ct status dnat oifname @bridges ip saddr 127.0.0.0/8 masquerade
    ct status dnat oifname . ip saddr @bridge-subnets4 masquerade
    ct status dnat oifname . ip6 saddr @bridge-subnets6 masquerade
    oifname != @bridges ip saddr @masq4 masquerade
    oifname != @bridges ip6 saddr @masq6 masquerade
  }
`;

const COMMENTS: Record<TableFamily, string> = {
  bridge: 'weft: anti-spoofing on container ports (managed by weft, do not edit)',
  inet: 'weft: forwarding filter, masquerade, published ports (managed by weft, do not edit)',
};

/** Set name -> element texts, in nft syntax, each list sorted. */
export type SetElements = Record<string, string[]>;

export interface CompiledFirewall {
  /** body of `table bridge weft` */
  bridge: string;
  /** body of `table inet weft` */
  inet: string;
  /** the elements of every set and map, the same as in the bodies (for drift checks) */
  elements: Record<TableFamily, SetElements>;
}

/** Compiles the whole model. Throws FirewallModelError (naming the field) on bad input. */
export function compileFirewall(model: FirewallModel): CompiledFirewall {
  const elements = modelElements(model);
  return {
    bridge: renderBody('bridge', BRIDGE_SETS, elements.bridge, BRIDGE_CHAINS),
    inet: renderBody('inet', INET_SETS, elements.inet, INET_CHAINS),
    elements,
  };
}

/** Every set's elements for a model; sets without elements map to []. */
export function modelElements(model: FirewallModel): Record<TableFamily, SetElements> {
  const m = normalizeModel(model);
  const bridge = emptySets(BRIDGE_SETS);
  const inet = emptySets(INET_SETS);
  for (const n of m.networks) merge(inet, networkSets(n));
  for (const e of m.endpoints) merge(bridge, endpointSets(e));
  for (const p of m.ports) merge(inet, portSets(p));
  for (const s of [bridge, inet]) for (const k of Object.keys(s)) s[k] = [...new Set(s[k])].sort(byText);
  return { bridge, inet };
}

/** `add element` (or an idempotent delete) for one container endpoint: `table bridge weft` only. */
export function endpointElements(ep: FwEndpoint, op: 'add' | 'delete'): string {
  return elementCommands('bridge', endpointSets(normalizeEndpoint(ep)), op);
}

/** `add element` (or an idempotent delete) for one published port: `table inet weft` only. */
export function portElements(port: FwPort, op: 'add' | 'delete'): string {
  return elementCommands('inet', portSets(normalizePort(port)), op);
}

/**
 * `add element` (or an idempotent delete) for one network: `table inet weft` only. Changing icc of
 * a live network is delete(old) + add(new) in one transaction.
 */
export function networkElements(net: FwNetwork, op: 'add' | 'delete'): string {
  return elementCommands('inet', networkSets(normalizeNetwork(net)), op);
}

// ---- elements of one model object (inputs already normalized) ----

/** nft string literal for an interface name (checkIfname guarantees no quotes inside). */
export function q(ifname: string): string {
  return `"${ifname}"`;
}

/** An IPv6 address as the 128-bit integer that `@th,64,128` compares, in nft's hex form. */
export function ip6Hex(addr: string): string {
  const bytes = ipaddr.IPv6.parse(addr).toByteArray();
  const n = bytes.reduce((acc, b) => (acc << 8n) | BigInt(b), 0n);
  return `0x${n.toString(16)}`;
}

function endpointSets(ep: FwEndpoint): SetElements {
  const i = q(ep.hostIfname);
  const v6 = [ep.ipv6, ep.linkLocal6].filter((a): a is string => a !== undefined);
  return {
    ports: [i],
    'port-mac': [`${i} . ${ep.mac}`],
    'port-ip4': ep.ipv4 ? [`${i} . ${ep.ipv4}`] : [],
    'port-ip6': v6.map((a) => `${i} . ${a}`),
    'port-nd': v6.map((a) => `${i} . ${ip6Hex(a)}`),
  };
}

function networkSets(n: FwNetwork): SetElements {
  const b = q(n.bridge);
  return {
    bridges: [b],
    internal: n.internal ? [b] : [],
    'intra-bridge': [`${b} . ${b} : ${n.icc ? 'accept' : 'drop'}`],
    subnets4: n.subnets4,
    subnets6: n.subnets6,
    'bridge-subnets4': n.subnets4.map((x) => `${b} . ${x}`),
    'bridge-subnets6': n.subnets6.map((x) => `${b} . ${x}`),
    masq4: n.internal ? [] : n.subnets4,
    masq6: n.internal ? [] : n.subnets6,
    dns4: (n.dns ?? []).filter((a) => !a.includes(':')),
    dns6: (n.dns ?? []).filter((a) => a.includes(':')),
  };
}

function portSets(p: FwPort): SetElements {
  const v = `${p.targetIp} . ${p.targetPort}`;
  const key = `${p.protocol} . ${p.hostPort}`;
  const map = `publish${p.family}${p.hostIp ? '-addr' : ''}`;
  return { [map]: [p.hostIp ? `${p.hostIp} . ${key} : ${v}` : `${key} : ${v}`] };
}

// ---- rendering ----

function emptySets(decls: readonly SetDecl[]): SetElements {
  return Object.fromEntries(decls.map((d) => [d.name, [] as string[]]));
}

function merge(into: SetElements, from: SetElements): void {
  for (const [k, v] of Object.entries(from)) into[k].push(...v);
}

function renderBody(family: TableFamily, decls: readonly SetDecl[], elements: SetElements, chains: string): string {
  const parts = [`  comment "${COMMENTS[family]}"\n`];
  for (const d of decls) {
    const kind = d.type.includes(' : ') ? 'map' : 'set';
    let s = `  ${kind} ${d.name} {\n    ${d.type}\n`;
    if (d.interval) s += '    flags interval\n';
    const els = elements[d.name];
    if (els.length) s += `    elements = {\n${els.map((e) => `      ${e}`).join(',\n')}\n    }\n`;
    parts.push(`${s}  }\n`);
  }
  parts.push(chains);
  return parts.join('\n');
}

/**
 * One `add element` line per set, sets in declaration order. A delete is written as add-then-delete
 * of the same elements in the same transaction, so it succeeds whether or not they are present
 * (nft refuses to delete an absent element) and converging twice is a no-op.
 */
function elementCommands(family: TableFamily, sets: SetElements, op: 'add' | 'delete'): string {
  const decls = family === 'bridge' ? BRIDGE_SETS : INET_SETS;
  const lines: string[] = [];
  for (const d of decls) {
    const els = [...new Set(sets[d.name] ?? [])].sort(byText);
    if (!els.length) continue;
    const target = `${family} ${TABLE_NAME} ${d.name} { ${els.join(', ')} }`;
    lines.push(`add element ${target}`);
    if (op === 'delete') lines.push(`delete element ${target}`);
  }
  return lines.length ? `${lines.join('\n')}\n` : '';
}
