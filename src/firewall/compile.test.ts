/**
 * Unit tests of the firewall compiler (no root): exact text for small models, determinism, deltas,
 * validation, and the semantics of the compiled text traced packet by packet (tracer.ts).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  compileFirewall,
  endpointElements,
  ip6Hex,
  modelElements,
  networkElements,
  portElements,
} from './compile.js';
import { FirewallModelError, type FirewallModel, type FwEndpoint, type FwNetwork, type FwPort } from './model.js';
import { Ruleset, TraceParseError, traceArriving, traceFrame, traceLocalOut, type HostEnv, type IpPacket } from './tracer.js';
import { replaceTableScript } from '../kernel/nft.js';

// ---- a small model and the exact text it compiles to ----

const SMALL: FirewallModel = {
  networks: [{ bridge: 'wbr1', subnets4: ['10.1.0.0/24'], subnets6: ['fd00:1::/64'], internal: false, icc: true, dns: ['10.1.0.1'] }],
  endpoints: [{ hostIfname: 'wv1', mac: '02:42:0A:01:00:02', ipv4: '10.1.0.2', ipv6: 'fd00:1::2', linkLocal6: 'fe80::42:aff:fe01:2' }],
  ports: [{ family: 4, protocol: 'tcp', hostPort: 8080, targetIp: '10.1.0.2', targetPort: 80 }],
};

const SMALL_BRIDGE = `  comment "weft: anti-spoofing on container ports (managed by weft, do not edit)"

  set ports {
    type ifname
    elements = {
      "wv1"
    }
  }

  set port-mac {
    type ifname . ether_addr
    elements = {
      "wv1" . 02:42:0a:01:00:02
    }
  }

  set port-ip4 {
    type ifname . ipv4_addr
    elements = {
      "wv1" . 10.1.0.2
    }
  }

  set port-ip6 {
    type ifname . ipv6_addr
    elements = {
      "wv1" . fd00:1::2,
      "wv1" . fe80::42:aff:fe01:2
    }
  }

  set port-nd {
    typeof iifname . @th,64,128
    elements = {
      "wv1" . 0xfd000001000000000000000000000002,
      "wv1" . 0xfe8000000000000000420afffe010002
    }
  }

  chain prerouting {
    type filter hook prerouting priority -300; policy accept;
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

const SMALL_INET = `  comment "weft: forwarding filter, masquerade, published ports (managed by weft, do not edit)"

  set bridges {
    type ifname
    elements = {
      "wbr1"
    }
  }

  set internal {
    type ifname
  }

  map intra-bridge {
    type ifname . ifname : verdict
    elements = {
      "wbr1" . "wbr1" : accept
    }
  }

  set subnets4 {
    type ipv4_addr
    flags interval
    elements = {
      10.1.0.0/24
    }
  }

  set subnets6 {
    type ipv6_addr
    flags interval
    elements = {
      fd00:1::/64
    }
  }

  set bridge-subnets4 {
    type ifname . ipv4_addr
    flags interval
    elements = {
      "wbr1" . 10.1.0.0/24
    }
  }

  set bridge-subnets6 {
    type ifname . ipv6_addr
    flags interval
    elements = {
      "wbr1" . fd00:1::/64
    }
  }

  set masq4 {
    type ipv4_addr
    flags interval
    elements = {
      10.1.0.0/24
    }
  }

  set masq6 {
    type ipv6_addr
    flags interval
    elements = {
      fd00:1::/64
    }
  }

  map publish4 {
    type inet_proto . inet_service : ipv4_addr . inet_service
    elements = {
      tcp . 8080 : 10.1.0.2 . 80
    }
  }

  map publish4-addr {
    type ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service
  }

  map publish6 {
    type inet_proto . inet_service : ipv6_addr . inet_service
  }

  map publish6-addr {
    type ipv6_addr . inet_proto . inet_service : ipv6_addr . inet_service
  }

  set dns4 {
    type ipv4_addr
    elements = {
      10.1.0.1
    }
  }

  set dns6 {
    type ipv6_addr
  }

  chain input {
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

describe('compileFirewall: exact text', () => {
  it('compiles a one-network, one-container, one-port model to exactly this', () => {
    const c = compileFirewall(SMALL);
    assert.equal(c.bridge, SMALL_BRIDGE);
    assert.equal(c.inet, SMALL_INET);
  });

  it('an empty model declares every set and the same static chains, with no elements', () => {
    const c = compileFirewall({ networks: [], endpoints: [], ports: [] });
    assert.doesNotMatch(c.bridge + c.inet, /elements/);
    const chains = (body: string) => body.slice(body.indexOf('  chain '));
    assert.equal(chains(c.bridge), chains(SMALL_BRIDGE), 'rules do not depend on the model');
    assert.equal(chains(c.inet), chains(SMALL_INET), 'rules do not depend on the model');
    for (const els of [...Object.values(c.elements.bridge), ...Object.values(c.elements.inet)]) assert.deepEqual(els, []);
  });

  it('writes values in nft canonical form (lower-case MAC, compressed IPv6, network address of subnets)', () => {
    const c = compileFirewall({
      networks: [{ bridge: 'b', subnets4: ['10.9.8.7/16'], subnets6: ['FD00:0:0:0:1::5/64'], internal: true, icc: false }],
      endpoints: [{ hostIfname: 'v', mac: '2:A:b:C:d:E', ipv6: 'FD00:0000::0001:0:0:7' }],
      ports: [{ family: 6, protocol: 'udp', hostIp: '2001:DB8::0:1', hostPort: 53, targetIp: 'fd00::1:0:0:7', targetPort: 5353 }],
    });
    assert.deepEqual(c.elements.inet.subnets4, ['10.9.0.0/16']);
    assert.deepEqual(c.elements.inet.subnets6, ['fd00::/64']);
    assert.deepEqual(c.elements.inet.masq4, [], 'internal networks are not masqueraded');
    assert.deepEqual(c.elements.inet.internal, ['"b"']);
    assert.deepEqual(c.elements.inet['intra-bridge'], ['"b" . "b" : drop']);
    assert.deepEqual(c.elements.bridge['port-mac'], ['"v" . 02:0a:0b:0c:0d:0e']);
    assert.deepEqual(c.elements.bridge['port-ip6'], ['"v" . fd00::1:0:0:7']);
    assert.deepEqual(c.elements.bridge['port-ip4'], []);
    assert.deepEqual(c.elements.inet['publish6-addr'], ['2001:db8::1 . udp . 53 : fd00::1:0:0:7 . 5353']);
  });

  it('treats 0.0.0.0 and :: host IPs as "every address"', () => {
    const c = compileFirewall({
      networks: [],
      endpoints: [],
      ports: [
        { family: 4, protocol: 'tcp', hostIp: '0.0.0.0', hostPort: 1, targetIp: '10.0.0.1', targetPort: 1 },
        { family: 6, protocol: 'tcp', hostIp: '::', hostPort: 1, targetIp: 'fd00::1', targetPort: 1 },
      ],
    });
    assert.deepEqual(c.elements.inet.publish4, ['tcp . 1 : 10.0.0.1 . 1']);
    assert.deepEqual(c.elements.inet.publish6, ['tcp . 1 : fd00::1 . 1']);
  });

  it('ip6Hex gives the 128-bit integer nft prints for @th,64,128', () => {
    assert.equal(ip6Hex('fd00:1::2'), '0xfd000001000000000000000000000002');
    assert.equal(ip6Hex('::1'), '0x1');
  });
});

// ---- determinism ----

function bigModel(): FirewallModel {
  const networks: FwNetwork[] = [];
  const endpoints: FwEndpoint[] = [];
  const ports: FwPort[] = [];
  for (let n = 1; n <= 5; n++) {
    networks.push({
      bridge: `wbr${n}`,
      subnets4: [`10.${n}.0.0/24`],
      subnets6: n % 2 ? [`fd00:${n}::/64`] : [],
      internal: n === 4,
      icc: n !== 2,
      dns: n % 2 ? [`10.${n}.0.1`, `fd00:${n}::1`] : [`10.${n}.0.1`],
    });
    for (let h = 2; h <= 8; h++) {
      const hex = h.toString(16).padStart(2, '0');
      endpoints.push({
        hostIfname: `wv${n}${h}`,
        mac: `02:00:00:00:0${n}:${hex}`,
        ipv4: `10.${n}.0.${h}`,
        ipv6: n % 2 ? `fd00:${n}::${h}` : undefined,
        linkLocal6: n % 2 ? `fe80::${n}:${h}` : undefined,
      });
      ports.push({ family: 4, protocol: h % 2 ? 'udp' : 'tcp', hostPort: 1000 * n + h, targetIp: `10.${n}.0.${h}`, targetPort: 80 });
      if (h === 3) ports.push({ family: 4, protocol: 'tcp', hostIp: '192.0.2.1', hostPort: 9000 + n, targetIp: `10.${n}.0.${h}`, targetPort: 443 });
      if (n % 2 && h === 5) ports.push({ family: 6, protocol: 'tcp', hostPort: 7000 + n, targetIp: `fd00:${n}::${h}`, targetPort: 80 });
      if (n % 2 && h === 6) ports.push({ family: 6, protocol: 'udp', hostIp: '2001:db8::1', hostPort: 7000 + n, targetIp: `fd00:${n}::${h}`, targetPort: 53 });
    }
  }
  return { networks, endpoints, ports };
}

/** A deterministic shuffle (xorshift) so the test itself is repeatable. */
function shuffled<T>(xs: T[], seed: number): T[] {
  const out = [...xs];
  let s = seed;
  for (let i = out.length - 1; i > 0; i--) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    const j = Math.abs(s) % (i + 1);
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

describe('compileFirewall: determinism', () => {
  it('gives byte-equal text for the same model in any order', () => {
    const m = bigModel();
    const ref = compileFirewall(m);
    for (const seed of [1, 7, 42, 1234, 99991]) {
      const c = compileFirewall({
        networks: shuffled(m.networks, seed),
        endpoints: shuffled(m.endpoints, seed + 1),
        ports: shuffled(m.ports, seed + 2),
      });
      assert.equal(c.bridge, ref.bridge);
      assert.equal(c.inet, ref.inet);
    }
  });

  it('does not modify its input', () => {
    const m = bigModel();
    const copy = structuredClone(m);
    compileFirewall(m);
    assert.deepEqual(m, copy);
  });
});

// ---- deltas ----

describe('delta functions', () => {
  const ep: FwEndpoint = { hostIfname: 'wv7', mac: '02:00:00:00:00:07', ipv4: '10.1.0.7', ipv6: 'fd00:1::7', linkLocal6: 'fe80::7' };

  it('endpointElements(add): one add element per non-empty set of table bridge weft', () => {
    assert.equal(
      endpointElements(ep, 'add'),
      'add element bridge weft ports { "wv7" }\n' +
        'add element bridge weft port-mac { "wv7" . 02:00:00:00:00:07 }\n' +
        'add element bridge weft port-ip4 { "wv7" . 10.1.0.7 }\n' +
        'add element bridge weft port-ip6 { "wv7" . fd00:1::7, "wv7" . fe80::7 }\n' +
        'add element bridge weft port-nd { "wv7" . 0xfd000001000000000000000000000007, "wv7" . 0xfe800000000000000000000000000007 }\n',
    );
  });

  it('endpointElements(delete): add-then-delete, so deleting an absent element is not an error', () => {
    assert.equal(
      endpointElements({ hostIfname: 'wv7', mac: '02:00:00:00:00:07', ipv4: '10.1.0.7' }, 'delete'),
      'add element bridge weft ports { "wv7" }\n' +
        'delete element bridge weft ports { "wv7" }\n' +
        'add element bridge weft port-mac { "wv7" . 02:00:00:00:00:07 }\n' +
        'delete element bridge weft port-mac { "wv7" . 02:00:00:00:00:07 }\n' +
        'add element bridge weft port-ip4 { "wv7" . 10.1.0.7 }\n' +
        'delete element bridge weft port-ip4 { "wv7" . 10.1.0.7 }\n',
    );
  });

  it('portElements: wildcard and host-specific, IPv4 and IPv6', () => {
    assert.equal(
      portElements({ family: 4, protocol: 'tcp', hostPort: 8080, targetIp: '10.1.0.2', targetPort: 80 }, 'add'),
      'add element inet weft publish4 { tcp . 8080 : 10.1.0.2 . 80 }\n',
    );
    assert.equal(
      portElements({ family: 4, protocol: 'udp', hostIp: '192.0.2.1', hostPort: 53, targetIp: '10.1.0.2', targetPort: 53 }, 'add'),
      'add element inet weft publish4-addr { 192.0.2.1 . udp . 53 : 10.1.0.2 . 53 }\n',
    );
    assert.equal(
      portElements({ family: 6, protocol: 'tcp', hostPort: 443, targetIp: 'fd00:1::2', targetPort: 8443 }, 'delete'),
      'add element inet weft publish6 { tcp . 443 : fd00:1::2 . 8443 }\n' +
        'delete element inet weft publish6 { tcp . 443 : fd00:1::2 . 8443 }\n',
    );
    assert.equal(
      portElements({ family: 6, protocol: 'tcp', hostIp: '2001:db8::1', hostPort: 443, targetIp: 'fd00:1::2', targetPort: 8443 }, 'add'),
      'add element inet weft publish6-addr { 2001:db8::1 . tcp . 443 : fd00:1::2 . 8443 }\n',
    );
  });

  it('networkElements: an internal network without icc', () => {
    assert.equal(
      networkElements({ bridge: 'wbr9', subnets4: ['10.9.0.0/24'], subnets6: ['fd00:9::/64'], internal: true, icc: false }, 'add'),
      'add element inet weft bridges { "wbr9" }\n' +
        'add element inet weft internal { "wbr9" }\n' +
        'add element inet weft intra-bridge { "wbr9" . "wbr9" : drop }\n' +
        'add element inet weft subnets4 { 10.9.0.0/24 }\n' +
        'add element inet weft subnets6 { fd00:9::/64 }\n' +
        'add element inet weft bridge-subnets4 { "wbr9" . 10.9.0.0/24 }\n' +
        'add element inet weft bridge-subnets6 { "wbr9" . fd00:9::/64 }\n',
    );
  });

  it('adding every object to an empty ruleset gives the full compile; deleting them gives the empty one', () => {
    const m = bigModel();
    const empty = compileFirewall({ networks: [], endpoints: [], ports: [] });
    const full = compileFirewall(m);
    const load = (c: { bridge: string; inet: string }) =>
      new Ruleset().apply(replaceTableScript('bridge', 'weft', c.bridge) + replaceTableScript('inet', 'weft', c.inet));
    const rs = load(empty);
    const adds = [
      ...m.networks.map((n) => networkElements(n, 'add')),
      ...m.endpoints.map((e) => endpointElements(e, 'add')),
      ...m.ports.map((p) => portElements(p, 'add')),
    ];
    for (const d of shuffled(adds, 5)) rs.apply(d);
    const ref = load(full);
    for (const family of ['bridge', 'inet'] as const) {
      for (const set of Object.keys(full.elements[family])) {
        assert.deepEqual(rs.elements(family, 'weft', set), ref.elements(family, 'weft', set), `${family} ${set} after adds`);
      }
    }
    rs.apply(adds.join('')); // adding again changes nothing and is no error
    const deletes = [
      ...m.networks.map((n) => networkElements(n, 'delete')),
      ...m.endpoints.map((e) => endpointElements(e, 'delete')),
      ...m.ports.map((p) => portElements(p, 'delete')),
    ];
    for (const d of shuffled(deletes, 9)) rs.apply(d);
    rs.apply(deletes.join('')); // deleting again is no error either
    for (const family of ['bridge', 'inet'] as const) {
      for (const set of Object.keys(full.elements[family])) assert.deepEqual(rs.elements(family, 'weft', set), [], `${family} ${set} after deletes`);
    }
  });

  it('the elements of the compiled bodies are exactly CompiledFirewall.elements', () => {
    const full = compileFirewall(bigModel());
    const rs = new Ruleset().apply(replaceTableScript('bridge', 'weft', full.bridge) + replaceTableScript('inet', 'weft', full.inet));
    // the tracer canonicalises (unquoted names, BigInt hex); compare through it
    const canon = (family: 'bridge' | 'inet', set: string, els: string[]) => {
      const r = new Ruleset().apply(replaceTableScript(family, 'weft', compileFirewall({ networks: [], endpoints: [], ports: [] })[family]));
      if (els.length) r.apply(`add element ${family} weft ${set} { ${els.join(', ')} }\n`);
      return r.elements(family, 'weft', set);
    };
    for (const family of ['bridge', 'inet'] as const) {
      for (const [set, els] of Object.entries(full.elements[family])) {
        assert.deepEqual(rs.elements(family, 'weft', set), canon(family, set, els), `${family} ${set}`);
        assert.ok(els.length > 0, `the big model fills ${family} ${set}`);
      }
    }
  });

  it('changing icc of a live network is delete(old) + add(new) in one transaction', () => {
    const net: FwNetwork = { bridge: 'wbr1', subnets4: ['10.1.0.0/24'], subnets6: [], internal: false, icc: true };
    const rs = new Ruleset().apply(replaceTableScript('inet', 'weft', compileFirewall({ networks: [net], endpoints: [], ports: [] }).inet));
    assert.throws(() => rs.apply(networkElements({ ...net, icc: false }, 'add')), /File exists/, 'a map key cannot change value by add');
    rs.apply(networkElements(net, 'delete') + networkElements({ ...net, icc: false }, 'add'));
    assert.deepEqual(rs.elements('inet', 'weft', 'intra-bridge'), ['wbr1 . wbr1 : drop']);
  });
});

// ---- validation ----

describe('validation: bad input is refused with the field named', () => {
  const base = (): FirewallModel => JSON.parse(JSON.stringify(SMALL)) as FirewallModel;
  const cases: [string, (m: FirewallModel) => void, RegExp][] = [
    ['bad MAC', (m) => (m.endpoints[0].mac = '02:42:zz:00:00:01'), /^endpoints\[0\]\.mac: /],
    ['multicast MAC', (m) => (m.endpoints[0].mac = '01:00:5e:00:00:01'), /^endpoints\[0\]\.mac: .*multicast/],
    ['ifname with a quote', (m) => (m.endpoints[0].hostIfname = 'a"b'), /^endpoints\[0\]\.hostIfname: /],
    ['ifname too long', (m) => (m.networks[0].bridge = 'abcdefghijklmnop'), /^networks\[0\]\.bridge: /],
    ['IPv6 in an IPv4 field', (m) => (m.endpoints[0].ipv4 = 'fd00::1'), /^endpoints\[0\]\.ipv4: /],
    ['short IPv4 form', (m) => (m.endpoints[0].ipv4 = '10.1'), /^endpoints\[0\]\.ipv4: /],
    ['link-local that is not fe80::/10', (m) => (m.endpoints[0].linkLocal6 = 'fd00::1'), /^endpoints\[0\]\.linkLocal6: .*link-local/],
    ['subnet of the wrong family', (m) => (m.networks[0].subnets4 = ['fd00::/64']), /^networks\[0\]\.subnets4\[0\]: /],
    ['prefix too long', (m) => (m.networks[0].subnets4 = ['10.0.0.0/33']), /^networks\[0\]\.subnets4\[0\]: /],
    ['port 0', (m) => (m.ports[0].hostPort = 0), /^ports\[0\]\.hostPort: /],
    ['port family mismatch', (m) => (m.ports[0].targetIp = 'fd00::2'), /^ports\[0\]\.targetIp: /],
    ['protocol', (m) => ((m.ports[0] as { protocol: string }).protocol = 'sctp'), /^ports\[0\]\.protocol: /],
    [
      'overlapping subnets',
      (m) => m.networks.push({ bridge: 'wbr2', subnets4: ['10.1.0.128/25'], subnets6: [], internal: false, icc: true }),
      /^networks\[1\]\.subnets4\[0\]: 10\.1\.0\.128\/25 overlaps 10\.1\.0\.0\/24 \(networks\[0\]\.subnets4\[0\]\)/,
    ],
    ['two networks on one bridge', (m) => m.networks.push({ ...m.networks[0], subnets4: [], subnets6: [] }), /^networks\[1\]\.bridge: /],
    ['duplicate endpoint port', (m) => m.endpoints.push({ ...m.endpoints[0] }), /^endpoints\[1\]\.hostIfname: /],
    ['a published port twice', (m) => m.ports.push({ ...m.ports[0], targetIp: '10.1.0.3' }), /^ports\[1\]: 0\.0\.0\.0:8080\/tcp is already published by ports\[0\]/],
  ];
  for (const [name, mutate, re] of cases) {
    it(name, () => {
      const m = base();
      mutate(m);
      assert.throws(() => compileFirewall(m), (e: unknown) => {
        assert.ok(e instanceof FirewallModelError, String(e));
        assert.match(e.message, re);
        return true;
      });
    });
  }

  it('a host-specific and a wildcard mapping of the same port may coexist (specific wins)', () => {
    const m = base();
    m.ports.push({ ...m.ports[0], hostIp: '192.0.2.1', targetIp: '10.1.0.3' });
    assert.doesNotThrow(() => compileFirewall(m));
  });

  it('the same port number for tcp and udp, or for IPv4 and IPv6, is not a conflict', () => {
    const m = base();
    m.ports.push({ ...m.ports[0], protocol: 'udp' }, { ...m.ports[0], family: 6, targetIp: 'fd00:1::2' });
    assert.equal(modelElements(m).inet.publish4.length, 2);
  });
});

// ---- semantics, traced through the compiled text ----

/**
 * The host of the traced scenarios: uplink eth0 192.0.2.1 / 2001:db8::1, four networks:
 *   wbr1 10.1.0.0/24 fd00:1::/64 icc          c1a .2 c1b .3
 *   wbr2 10.2.0.0/24             no icc       c2a .2 c2b .3
 *   wbr3 10.3.0.0/24             internal     c3a .2 c3b .3
 * published: 192.0.2.1:8080 -> c1a:80 (specific), *:8080 -> c1b:80, *:8082 -> c1b:80,
 *            [*]:8082 -> [c1b]:80, udp *:5353 -> c1b:53, *:9000 -> c3a:80 (internal: never reachable)
 */
const NETS: FwNetwork[] = [
  { bridge: 'wbr1', subnets4: ['10.1.0.0/24'], subnets6: ['fd00:1::/64'], internal: false, icc: true },
  { bridge: 'wbr2', subnets4: ['10.2.0.0/24'], subnets6: [], internal: false, icc: false },
  { bridge: 'wbr3', subnets4: ['10.3.0.0/24'], subnets6: [], internal: true, icc: true },
];
const EP = {
  c1a: { hostIfname: 'wv1a', mac: '02:00:00:00:01:02', ipv4: '10.1.0.2', ipv6: 'fd00:1::2', linkLocal6: 'fe80::1:2' },
  c1b: { hostIfname: 'wv1b', mac: '02:00:00:00:01:03', ipv4: '10.1.0.3', ipv6: 'fd00:1::3', linkLocal6: 'fe80::1:3' },
  c2a: { hostIfname: 'wv2a', mac: '02:00:00:00:02:02', ipv4: '10.2.0.2' },
  c2b: { hostIfname: 'wv2b', mac: '02:00:00:00:02:03', ipv4: '10.2.0.3' },
  c3a: { hostIfname: 'wv3a', mac: '02:00:00:00:03:02', ipv4: '10.3.0.2' },
  c6: { hostIfname: 'wv6', mac: '02:00:00:00:06:02', ipv6: 'fd00:1::6', linkLocal6: 'fe80::6:2' },
} satisfies Record<string, FwEndpoint>;
const PUB: FwPort[] = [
  { family: 4, protocol: 'tcp', hostIp: '192.0.2.1', hostPort: 8080, targetIp: '10.1.0.2', targetPort: 80 },
  { family: 4, protocol: 'tcp', hostPort: 8080, targetIp: '10.1.0.3', targetPort: 80 },
  { family: 4, protocol: 'tcp', hostPort: 8082, targetIp: '10.1.0.3', targetPort: 80 },
  { family: 6, protocol: 'tcp', hostPort: 8082, targetIp: 'fd00:1::3', targetPort: 80 },
  { family: 4, protocol: 'udp', hostPort: 5353, targetIp: '10.1.0.3', targetPort: 53 },
  { family: 4, protocol: 'tcp', hostPort: 9000, targetIp: '10.3.0.2', targetPort: 80 },
];
const MODEL: FirewallModel = { networks: NETS, endpoints: Object.values(EP), ports: PUB };

const ADDRS: Record<string, [string, string?]> = {
  eth0: ['192.0.2.1', '2001:db8::1'],
  wbr1: ['10.1.0.1', 'fd00:1::1'],
  wbr2: ['10.2.0.1'],
  wbr3: ['10.3.0.1'],
};
const ENV: HostEnv = {
  local: [...Object.values(ADDRS).flat().filter((a): a is string => !!a), '127.0.0.1', '::1'],
  route(daddr) {
    for (const n of NETS) {
      for (const s of [...n.subnets4, ...n.subnets6]) {
        const [net, len] = s.split('/');
        if (net.includes(':') === daddr.includes(':') && sameNet(daddr, net, Number(len))) return n.bridge;
      }
    }
    if (daddr.startsWith('127.')) return 'lo';
    return 'eth0';
  },
  addressOf: (ifname, family) => ADDRS[ifname]?.[family === 4 ? 0 : 1],
};

function sameNet(a: string, net: string, len: number): boolean {
  if (a.includes(':')) return a.startsWith(net.replace(/::$/, ':')); // enough for these /64s
  const n = (s: string) => s.split('.').reduce((x, o) => (x << 8) + Number(o), 0) >>> 0;
  const mask = len === 0 ? 0 : (~0 << (32 - len)) >>> 0;
  return ((n(a) ^ n(net)) & mask) === 0;
}

function loaded(model: FirewallModel = MODEL): Ruleset {
  const c = compileFirewall(model);
  return new Ruleset().apply(replaceTableScript('bridge', 'weft', c.bridge) + replaceTableScript('inet', 'weft', c.inet));
}

const tcp = (iif: string | undefined, saddr: string, daddr: string, dport: number, ct: IpPacket['ct'] = 'new'): IpPacket => ({
  family: saddr.includes(':') ? 6 : 4,
  iif,
  saddr,
  daddr,
  proto: 'tcp',
  dport,
  ct,
});
const icmp = (iif: string, saddr: string, daddr: string): IpPacket => ({
  family: saddr.includes(':') ? 6 : 4,
  iif,
  saddr,
  daddr,
  proto: saddr.includes(':') ? 'ipv6-icmp' : 'icmp',
});

describe('traced: forwarding', () => {
  const rs = loaded();
  const verdict = (p: IpPacket) => traceArriving(rs, ENV, p).verdict;

  it('same network, icc on: accepted both ways (bridged: iif = oif = the bridge)', () => {
    assert.equal(verdict(icmp('wbr1', '10.1.0.2', '10.1.0.3')), 'accept');
    assert.equal(verdict(icmp('wbr1', 'fd00:1::3', 'fd00:1::2')), 'accept');
    const r = traceArriving(rs, ENV, tcp('wbr1', '10.1.0.2', '10.1.0.3', 80));
    assert.equal(r.saddr, '10.1.0.2', 'no masquerade inside a network');
  });

  it('same network, icc off: dropped, even for an established flow', () => {
    assert.equal(verdict(icmp('wbr2', '10.2.0.2', '10.2.0.3')), 'drop');
    assert.equal(verdict(tcp('wbr2', '10.2.0.3', '10.2.0.2', 22, 'established')), 'drop');
  });

  it('between networks: new connections dropped both ways', () => {
    assert.equal(verdict(tcp('wbr1', '10.1.0.2', '10.2.0.2', 80)), 'drop');
    assert.equal(verdict(tcp('wbr2', '10.2.0.2', '10.1.0.2', 80)), 'drop');
  });

  it('internal network: nothing leaves or enters its bridge, not even established or DNAT\'ed traffic', () => {
    assert.equal(verdict(icmp('wbr3', '10.3.0.2', '10.3.0.3')), 'accept');
    assert.equal(verdict(icmp('wbr3', '10.3.0.2', '198.51.100.7')), 'drop');
    assert.equal(verdict(tcp('wbr3', '10.3.0.2', '198.51.100.7', 443, 'established')), 'drop');
    assert.equal(verdict(tcp('wbr1', '10.1.0.2', '10.3.0.2', 80)), 'drop');
    assert.equal(verdict(tcp('eth0', '198.51.100.7', '10.3.0.2', 80)), 'drop');
    const pub = traceArriving(rs, ENV, tcp('eth0', '198.51.100.7', '192.0.2.1', 9000));
    assert.equal(pub.dnat, true, 'DNAT happens');
    assert.equal(pub.verdict, 'drop', 'but forward drops it');
  });

  it('to the outside: accepted and masqueraded to the uplink address (IPv4 and IPv6)', () => {
    const r4 = traceArriving(rs, ENV, tcp('wbr1', '10.1.0.2', '198.51.100.7', 443));
    assert.deepEqual([r4.verdict, r4.saddr, r4.snat], ['accept', '192.0.2.1', true]);
    const r6 = traceArriving(rs, ENV, tcp('wbr1', 'fd00:1::2', '2001:db8:ffff::7', 443));
    assert.deepEqual([r6.verdict, r6.saddr], ['accept', '2001:db8::1']);
    const r2 = traceArriving(rs, ENV, tcp('wbr2', '10.2.0.2', '198.51.100.7', 443));
    assert.deepEqual([r2.verdict, r2.saddr], ['accept', '192.0.2.1'], 'icc off does not limit the outside');
  });

  it('from the outside: new connections to a container address dropped, replies accepted', () => {
    assert.equal(verdict(tcp('eth0', '198.51.100.7', '10.1.0.2', 80)), 'drop');
    assert.equal(verdict(tcp('eth0', '2001:db8:ffff::7', 'fd00:1::2', 80)), 'drop');
    assert.equal(verdict(tcp('eth0', '198.51.100.7', '10.1.0.2', 40000, 'established')), 'accept');
    assert.equal(verdict({ ...icmp('eth0', '198.51.100.7', '10.1.0.2'), ct: 'related' }), 'accept');
  });

  it('traffic weft does not own is left alone (policy accept)', () => {
    assert.equal(verdict(tcp('eth0', '198.51.100.7', '203.0.113.9', 80)), 'accept');
    const r = traceArriving(rs, ENV, tcp('docker0', '172.17.0.2', '198.51.100.7', 80));
    assert.deepEqual([r.verdict, r.saddr], ['accept', '172.17.0.2'], 'not masqueraded by weft');
  });
});

describe('traced: published ports', () => {
  const rs = loaded();

  it('from the outside: the host-specific mapping wins, the client address is kept', () => {
    const r = traceArriving(rs, ENV, tcp('eth0', '198.51.100.7', '192.0.2.1', 8080));
    assert.deepEqual([r.verdict, r.daddr, r.dport, r.saddr], ['accept', '10.1.0.2', 80, '198.51.100.7']);
    assert.deepEqual(r.to, { oif: 'wbr1' });
  });

  it('the wildcard mapping for any other host address, IPv4 and IPv6, TCP and UDP', () => {
    const a = traceArriving(rs, ENV, tcp('eth0', '198.51.100.7', '10.2.0.1', 8080));
    assert.deepEqual([a.verdict, a.daddr], ['accept', '10.1.0.3'], 'wildcard via another host address');
    const b = traceArriving(rs, ENV, tcp('eth0', '2001:db8:ffff::7', '2001:db8::1', 8082));
    assert.deepEqual([b.verdict, b.daddr, b.dport], ['accept', 'fd00:1::3', 80]);
    const u = traceArriving(rs, ENV, { family: 4, iif: 'eth0', saddr: '198.51.100.7', daddr: '192.0.2.1', proto: 'udp', dport: 5353 });
    assert.deepEqual([u.verdict, u.daddr, u.dport], ['accept', '10.1.0.3', 53]);
    const t = traceArriving(rs, ENV, tcp('eth0', '198.51.100.7', '192.0.2.1', 5353));
    assert.deepEqual(t.to, { local: true }, 'tcp 5353 is not published: delivered to the host');
  });

  it('an unpublished port or a non-local address is not DNAT\'ed', () => {
    const r = traceArriving(rs, ENV, tcp('eth0', '198.51.100.7', '192.0.2.1', 8081));
    assert.deepEqual([r.dnat, r.to], [false, { local: true }]);
    const s = traceArriving(rs, ENV, tcp('wbr1', '10.1.0.2', '198.51.100.7', 8080));
    assert.equal(s.dnat, false, 'a container connecting to port 8080 elsewhere');
  });

  it('from the host: uplink address (no masquerade needed), 127.0.0.1 (masqueraded to the bridge address)', () => {
    const a = traceLocalOut(rs, ENV, tcp(undefined, '192.0.2.1', '192.0.2.1', 8082));
    assert.deepEqual([a.verdict, a.daddr, a.saddr], ['accept', '10.1.0.3', '192.0.2.1']);
    const b = traceLocalOut(rs, ENV, tcp(undefined, '127.0.0.1', '127.0.0.1', 8082));
    assert.deepEqual([b.verdict, b.daddr, b.saddr, b.to], ['accept', '10.1.0.3', '10.1.0.1', { oif: 'wbr1' }]);
    const c = traceLocalOut(rs, ENV, tcp(undefined, '127.0.0.1', '127.0.0.1', 8080));
    assert.equal(c.daddr, '10.1.0.3', '127.0.0.1 is not the specific host IP: wildcard');
  });

  it('from the host to [::1]: left alone (IPv6 cannot route ::1 out of the host)', () => {
    const r = traceLocalOut(rs, ENV, tcp(undefined, '::1', '::1', 8082));
    assert.deepEqual([r.dnat, r.to], [false, { local: true }]);
    const s = traceLocalOut(rs, ENV, tcp(undefined, '2001:db8::1', '2001:db8::1', 8082));
    assert.equal(s.daddr, 'fd00:1::3', 'other local IPv6 addresses are published');
  });

  it('hairpin: a container through the host address reaches a container of its own network, masqueraded', () => {
    const r = traceArriving(rs, ENV, tcp('wbr1', '10.1.0.2', '192.0.2.1', 8082));
    assert.deepEqual([r.verdict, r.daddr, r.saddr, r.to], ['accept', '10.1.0.3', '10.1.0.1', { oif: 'wbr1' }]);
  });

  it('another network reaches a published port (it is public) with its own address: replies route back through the host', () => {
    const r = traceArriving(rs, ENV, tcp('wbr2', '10.2.0.2', '192.0.2.1', 8082));
    assert.deepEqual([r.verdict, r.daddr, r.saddr], ['accept', '10.1.0.3', '10.2.0.2']);
  });

  it('a port added by delta is published; deleted, it is gone', () => {
    const r = loaded();
    const port: FwPort = { family: 4, protocol: 'tcp', hostPort: 9090, targetIp: '10.1.0.2', targetPort: 8000 };
    const trace = () => traceArriving(r, ENV, tcp('eth0', '198.51.100.7', '192.0.2.1', 9090));
    assert.equal(trace().dnat, false);
    r.apply(portElements(port, 'add'));
    assert.deepEqual([trace().verdict, trace().daddr, trace().dport], ['accept', '10.1.0.2', 8000]);
    r.apply(portElements(port, 'delete'));
    assert.equal(trace().dnat, false);
  });
});

describe('traced: anti-spoofing on container ports', () => {
  const rs = loaded();
  const v = (fr: Parameters<typeof traceFrame>[1]) => traceFrame(rs, fr).verdict;
  const { c1a, c6 } = EP;

  it('IPv4: own source accepted; another source, another MAC dropped', () => {
    assert.equal(v({ iif: 'wv1a', srcMac: c1a.mac, etherType: 'ip', saddr: c1a.ipv4 }), 'accept');
    assert.equal(v({ iif: 'wv1a', srcMac: c1a.mac, etherType: 'ip', saddr: '10.1.0.3' }), 'drop');
    assert.equal(v({ iif: 'wv1a', srcMac: '02:00:00:00:01:99', etherType: 'ip', saddr: c1a.ipv4 }), 'drop');
    assert.equal(v({ iif: 'wv1a', srcMac: EP.c1b.mac, etherType: 'ip', saddr: EP.c1b.ipv4 }), 'drop', "a neighbour's identity");
  });

  it('ARP: own sender accepted, probe from 0.0.0.0 accepted, forged sender IP or MAC dropped, odd formats dropped', () => {
    const arp = (senderMac: string, senderIp: string, extra: object = {}) =>
      v({ iif: 'wv1a', srcMac: c1a.mac, etherType: 'arp', arp: { senderMac, senderIp, ...extra } });
    assert.equal(arp(c1a.mac, c1a.ipv4), 'accept');
    assert.equal(arp(c1a.mac, '0.0.0.0'), 'accept');
    assert.equal(arp(c1a.mac, '10.1.0.1'), 'drop', 'claiming the gateway');
    assert.equal(arp('02:00:00:00:01:99', c1a.ipv4), 'drop');
    assert.equal(arp(c1a.mac, c1a.ipv4, { hlen: 8 }), 'drop');
  });

  it('IPv6: own, link-local and DAD (::, NS/MLD only) accepted; others dropped', () => {
    const ip6 = (saddr: string, l4proto: 'tcp' | 'ipv6-icmp' = 'tcp', icmpv6Type?: string, ndTarget?: string) =>
      v({ iif: 'wv6', srcMac: c6.mac, etherType: 'ip6', saddr, l4proto, icmpv6Type, ndTarget });
    assert.equal(ip6(c6.ipv6), 'accept');
    assert.equal(ip6(c6.linkLocal6, 'ipv6-icmp', 'echo-request'), 'accept');
    assert.equal(ip6('::', 'ipv6-icmp', 'nd-neighbor-solicit'), 'accept');
    assert.equal(ip6('::', 'ipv6-icmp', 'mld2-listener-report'), 'accept');
    assert.equal(ip6('::', 'tcp'), 'drop');
    assert.equal(ip6('fd00:1::99'), 'drop');
    assert.equal(ip6('fe80::99', 'ipv6-icmp', 'echo-request'), 'drop');
    assert.equal(v({ iif: 'wv6', srcMac: c6.mac, etherType: 'ip', saddr: '10.1.0.6' }), 'drop', 'no IPv4 address: no IPv4');
  });

  it('Neighbor Advertisements only for its own addresses; Router Advertisements and redirects never', () => {
    const nd = (type: string, target?: string) =>
      v({ iif: 'wv1a', srcMac: c1a.mac, etherType: 'ip6', saddr: c1a.linkLocal6, l4proto: 'ipv6-icmp', icmpv6Type: type, ndTarget: target });
    assert.equal(nd('nd-neighbor-advert', c1a.ipv6), 'accept');
    assert.equal(nd('nd-neighbor-advert', c1a.linkLocal6), 'accept');
    assert.equal(nd('nd-neighbor-advert', EP.c1b.ipv6), 'drop');
    assert.equal(nd('nd-neighbor-advert', 'fd00:1::1'), 'drop', 'claiming the gateway');
    assert.equal(nd('nd-router-advert'), 'drop');
    assert.equal(nd('nd-redirect'), 'drop');
    assert.equal(nd('nd-neighbor-solicit'), 'accept');
  });

  it('VLAN-tagged frames from a container port are dropped; other ports are not policed', () => {
    assert.equal(v({ iif: 'wv1a', srcMac: c1a.mac, etherType: '8021q' }), 'drop');
    assert.equal(v({ iif: 'wv1a', srcMac: c1a.mac, etherType: '8021ad' }), 'drop');
    assert.equal(v({ iif: 'uplink0', srcMac: '02:99:99:99:99:99', etherType: 'ip', saddr: '8.8.8.8' }), 'accept');
  });

  it('an endpoint added by delta is policed, and not after its delete', () => {
    const r = loaded({ ...MODEL, endpoints: [] });
    const ep: FwEndpoint = { hostIfname: 'wv9', mac: '02:00:00:00:09:09', ipv4: '10.1.0.9' };
    const spoof = () => traceFrame(r, { iif: 'wv9', srcMac: ep.mac, etherType: 'ip', saddr: '10.1.0.3' }).verdict;
    assert.equal(spoof(), 'accept', 'unknown port');
    r.apply(endpointElements(ep, 'add'));
    assert.equal(spoof(), 'drop');
    assert.equal(traceFrame(r, { iif: 'wv9', srcMac: ep.mac, etherType: 'ip', saddr: ep.ipv4 }).verdict, 'accept');
    r.apply(endpointElements(ep, 'delete'));
    assert.equal(spoof(), 'accept');
  });
});

describe('tracer: it refuses what it does not understand and behaves like nft on errors', () => {
  it('an unknown expression is a parse error, never a silent match', () => {
    assert.throws(
      () => new Ruleset().apply('table inet t {\n  chain c {\n    type filter hook forward priority 0; policy accept;\n    tcp flags syn drop\n  }\n}\n'),
      TraceParseError,
    );
  });

  it('deleting an absent element fails and the whole script is rolled back', () => {
    const rs = loaded({ networks: [], endpoints: [], ports: [] });
    assert.throws(
      () => rs.apply('add element inet weft bridges { "a" }\ndelete element inet weft bridges { "b" }\n'),
      /No such file or directory/,
    );
    assert.deepEqual(rs.elements('inet', 'weft', 'bridges'), []);
  });

  it('replaceTableScript works whether or not the table existed, and replaces it', () => {
    const rs = new Ruleset();
    rs.apply(replaceTableScript('inet', 'weft', compileFirewall(MODEL).inet));
    rs.apply(replaceTableScript('inet', 'weft', compileFirewall({ networks: [], endpoints: [], ports: [] }).inet));
    assert.deepEqual(rs.elements('inet', 'weft', 'bridges'), []);
  });
});
