import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Container, Network, Service } from '../model/types.js';
import { serviceBackends } from './lb.js';
import { serviceNames } from './dns.js';
import { NameTable } from '../dns/records.js';

const net = (id: string, name: string): Network => ({
  id, name, driver: 'bridge', created: '', internal: false, enableIPv6: false, icc: true, mtu: 1500, options: {}, labels: {},
  subnets: [{ subnet: '172.18.0.0/16', gateway: '172.18.0.1', family: 4, auto: true }], bridge: `br-${id}`, builtin: false,
});
const APP = net('app0', 'app');

function ctr(name: string, ip: string, labels: Record<string, string>, extra: Partial<Container['state']> = {}, health?: boolean): Container {
  return {
    id: `${name}-id`, name, created: '',
    config: { cmd: ['x'], env: [], hostname: name, labels, restart: { name: 'no', maxRetries: 0 }, ports: [], networkMode: 'app', extraHosts: [], dns: [],
      healthcheck: health ? { test: ['TCP', '80'], intervalMs: 1000, timeoutMs: 1000, retries: 1, startPeriodMs: 0 } : undefined },
    state: { phase: 'running', restartCount: 0, stoppedByUser: false, ...extra },
    endpoints: { app0: { networkId: 'app0', ifname: 'eth0', hostIfname: `v-${name}`, mac: '02:00:00:00:00:01', ipv4: ip, aliases: [] } },
    ports: [],
  };
}

const svc = (over: Partial<Service> = {}): Service => ({
  id: 'svc1', name: 'api', created: '', key: 1, endpointMode: 'vip', vip: '10.96.0.5', ports: [{ name: 'http', protocol: 'tcp', port: 80, targetPort: 8080 }],
  selector: { role: 'api' }, network: 'app0', algorithm: 'round-robin', affinityTimeout: 10800, weights: {}, labels: {}, ...over,
});

test('backends: selected by every label, weighted by the service or the weft.weight label, serving only when running and healthy', () => {
  const cs = [
    ctr('a', '172.18.0.2', { role: 'api', 'weft.weight': '3' }),
    ctr('b', '172.18.0.3', { role: 'api' }, {}, true),
    ctr('c', '172.18.0.4', { role: 'api' }, { health: { status: 'healthy', failingStreak: 0, log: [] } }, true),
    ctr('d', '172.18.0.5', { role: 'api' }, { phase: 'exited' }),
    ctr('e', '172.18.0.6', { role: 'web' }),
  ];
  const bs = serviceBackends(svc({ weights: { c: 7 } }), cs, [APP]);
  assert.deepEqual(bs.map((b) => [b.c.name, b.weight, b.active]), [['a', 3, true], ['b', 1, false], ['c', 7, true], ['d', 1, false]]);
  const probed = serviceBackends(svc({ healthcheck: { test: ['TCP', '8080'], intervalMs: 1, timeoutMs: 1, retries: 1, startPeriodMs: 0 } }), cs, [APP], (_s, c) => (c.name === 'a' ? 'healthy' : undefined));
  assert.deepEqual(probed.filter((b) => b.active).map((b) => b.c.name), ['a'], 'a service probe gates too; no verdict yet = starting');
});

test('names: the VIP hides containers\' aliases of the same name; tasks.NAME and SRV list what serves', () => {
  const cs = [ctr('a', '172.18.0.2', { role: 'api' }), ctr('b', '172.18.0.3', { role: 'api' }), ctr('asker', '172.18.0.9', {})];
  cs[0].endpoints.app0.aliases = ['api'];
  const snapOf = (s: Service) => {
    const n = serviceNames(s, serviceBackends(s, cs, [APP]), [APP]);
    return new NameTable({
      networks: [{ id: 'app0', name: 'app', internal: false, userDefined: true }],
      containers: cs.map((c) => ({ id: c.id.padEnd(12, '0'), name: c.name, running: true, endpoints: Object.values(c.endpoints) })),
      extra: n.extra,
      srv: n.srv,
    });
  };
  const A = 1, SRV = 33;
  const t = snapOf(svc());
  const asker = t.askerOf('172.18.0.9')!;
  const data = (name: string, type: number) => {
    const a = t.answer(asker, name, type);
    return a.kind === 'records' ? a.records.map((r) => (typeof r.data === 'string' ? r.data : `${r.data.port} ${r.data.target}`)).sort() : a.kind;
  };
  assert.deepEqual(data('api', A), ['10.96.0.5']);
  assert.deepEqual(data('tasks.api', A), ['172.18.0.2', '172.18.0.3']);
  assert.deepEqual(data('_http._tcp.api', SRV), ['80 api']);
  const rr = snapOf(svc({ endpointMode: 'dnsrr', vip: undefined }));
  const a2 = rr.askerOf('172.18.0.9')!;
  const got = rr.answer(a2, 'api', A);
  assert.deepEqual(got.kind === 'records' ? got.records.map((r) => r.data).sort() : got.kind, ['172.18.0.2', '172.18.0.3']);
});
