/** Loading what makes weft services of compose services: endpoint_mode, x-weft, healthcheck. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Value } from 'typebox/value';
import { ContainerCreate, ServiceCreate } from '../api/schemas.js';
import { ComposeError } from './errors.js';
import { loadProject } from './load.js';
import { BALANCER_LABEL, LABELS, type Project, type ProjectService, containerRequest } from './model.js';

const root = mkdtempSync(join(tmpdir(), 'weft-compose-lb-test-'));
after(() => rmSync(root, { recursive: true, force: true }));

/** Text without the first newline and the common indentation, so line 1 is the first line. */
function text(s: string): string {
  const lines = s.replace(/^\n/, '').replace(/\n\s*$/, '\n').split('\n');
  const indent = Math.min(...lines.filter((l) => l.trim()).map((l) => /^ */.exec(l)![0].length));
  return lines.map((l) => l.slice(indent)).join('\n');
}

function load(yaml: string): Project {
  writeFileSync(join(root, 'compose.yaml'), text(yaml));
  return loadProject({ files: ['compose.yaml'], env: {}, cwd: root, projectName: 'shop' });
}

function errors(yaml: string): string[] {
  try {
    load(yaml);
  } catch (e) {
    assert.ok(e instanceof ComposeError, String(e));
    return e.message.split('\n');
  }
  assert.fail('expected a ComposeError');
}

function svc(p: Project, name: string): ProjectService {
  const s = p.services.find((x) => x.name === name);
  assert.ok(s, `no service ${name}`);
  return s;
}

describe('balanced services', () => {
  it('endpoint_mode vip: a weft service publishes the ports, the containers publish none', () => {
    const p = load(`
      services:
        api:
          command: ["api"]
          deploy: {replicas: 3, endpoint_mode: vip}
          x-weft: {algorithm: maglev}
          ports: ["8080:80", {target: 53, published: 5353, protocol: udp}]
          expose: ["9000", "80"]
          networks: {back: {priority: 1}, front: {}}
          healthcheck: {test: ["HTTP", "80", "/healthz"], interval: 2s}
      networks:
        back:
        front:
    `);
    const api = svc(p, 'api');
    assert.deepEqual(api.balancer, {
      name: 'shop-api',
      request: {
        name: 'shop-api',
        dnsName: 'api',
        endpointMode: 'vip',
        network: 'shop_back',
        labels: { [LABELS.project]: 'shop', [LABELS.service]: 'api' },
        selector: { [LABELS.project]: 'shop', [BALANCER_LABEL]: 'api' },
        algorithm: 'maglev',
        affinityTimeout: 10_800,
        ports: [
          { port: 9000, targetPort: 9000, protocol: 'tcp' },
          { port: 80, targetPort: 80, protocol: 'tcp', publish: 8080 },
          { port: 53, targetPort: 53, protocol: 'udp', publish: 5353 },
        ],
      },
    });
    assert.ok(Value.Check(ServiceCreate, api.balancer?.request));
    assert.equal(api.replicas, 3);
    for (const n of [1, 2, 3]) {
      const req = containerRequest(p, api, n);
      assert.equal(req.ports, undefined, 'a fixed host port for 3 replicas is fine: the balancer publishes it once');
      assert.equal(req.labels?.[BALANCER_LABEL], 'api');
      assert.deepEqual(req.healthcheck, { test: ['HTTP', '80', '/healthz'], interval: 2000, timeout: 30_000, retries: 3, start_period: 0, start_interval: 5000 });
      assert.ok(Value.Check(ContainerCreate, req), JSON.stringify(req));
    }
    assert.deepEqual(api.networks[0].aliases, ['api'], 'the alias stays; the agent answers the service name with the VIP');
  });

  it('endpoint_mode dnsrr: the containers keep publishing; x-weft alone means vip', () => {
    const p = load(`
      services:
        db:
          command: ["db"]
          deploy: {endpoint_mode: dnsrr}
          ports: ["5432"]
        cache:
          command: ["c"]
          x-weft: {algorithm: source-affinity, affinity_timeout: 10m}
          expose: ["6379-6380"]
        plain:
          command: ["p"]
          ports: ["8080:80"]
    `);
    const db = svc(p, 'db');
    assert.equal(db.balancer?.request.endpointMode, 'dnsrr');
    assert.deepEqual(db.balancer?.request.ports, [{ port: 5432, targetPort: 5432, protocol: 'tcp' }]);
    assert.deepEqual(db.create.ports, [{ containerPort: 5432, protocol: 'tcp' }]);
    const cache = svc(p, 'cache').balancer?.request;
    assert.deepEqual([cache?.endpointMode, cache?.algorithm, cache?.affinityTimeout, cache?.ports.length], ['vip', 'source-affinity', 600, 2]);
    const plain = svc(p, 'plain');
    assert.equal(plain.balancer, undefined, 'no endpoint_mode, no x-weft: as before');
    assert.deepEqual(plain.create.labels, {});
    assert.deepEqual(plain.create.ports, [{ containerPort: 80, hostPort: 8080, protocol: 'tcp' }]);
  });

  it('a canary joins a balancer with backend_of, weighted by x-weft.weight', () => {
    const p = load(`
      services:
        web:
          command: ["web", "v1"]
          deploy: {replicas: 3}
          x-weft: {algorithm: weighted-round-robin, weight: 9}
          ports: ["80:8080"]
          networks: [front]
        web-canary:
          command: ["web", "v2"]
          x-weft: {backend_of: web, weight: 1}
          networks: [front, back]
      networks:
        front:
        back:
    `);
    assert.deepEqual(p.warnings, []);
    assert.deepEqual(svc(p, 'web').create.labels, { 'weft.weight': '9', [BALANCER_LABEL]: 'web' });
    assert.deepEqual(svc(p, 'web-canary').create.labels, { 'weft.weight': '1', [BALANCER_LABEL]: 'web' });
    assert.equal(svc(p, 'web-canary').balancer, undefined);
    assert.deepEqual(svc(p, 'web').balancer?.request.selector, { [LABELS.project]: 'shop', [BALANCER_LABEL]: 'web' });
  });

  it('warns about settings that change nothing', () => {
    const p = load(`
      services:
        web:
          command: ["web"]
          x-weft: {weight: 2, affinity_timeout: 60}
          expose: [80]
        lone:
          command: ["x"]
          x-weft: {weight: 2}
    `);
    assert.deepEqual(p.warnings, [
      'compose.yaml:4: services.web.x-weft.affinity_timeout: only the source-affinity algorithm uses affinity_timeout',
      'compose.yaml:4: services.web.x-weft.weight: the balancer of "web" uses round-robin, which ignores weights; give it x-weft.algorithm: weighted-round-robin (or maglev, random, least-connections, source-affinity)',
      'compose.yaml:8: services.lone.x-weft.weight: no balancer of this project selects "lone" (deploy.endpoint_mode, x-weft.backend_of); the weft.weight label only counts in weft services you create',
    ]);
  });

  it('healthcheck: weft probes and Docker forms, in the config hash; the balancer is not', () => {
    const yaml = (hc: string, alg = 'maglev') => `
      services:
        web:
          command: ["web"]
          deploy: {endpoint_mode: vip}
          x-weft: {algorithm: ${alg}}
          expose: [80]
          healthcheck: ${hc}
    `;
    const tcp = svc(load(yaml('{test: ["TCP", 80], retries: 1}')), 'web');
    assert.deepEqual(tcp.create.healthcheck?.test, ['TCP', '80']);
    assert.equal(tcp.create.healthcheck?.retries, 1);
    assert.deepEqual(svc(load(yaml('{test: "pg_isready"}')), 'web').create.healthcheck?.test, ['CMD-SHELL', 'pg_isready']);
    assert.equal(svc(load(yaml('{test: ["NONE"]}')), 'web').create.healthcheck, undefined);
    const hash = (hc: string, alg?: string) => svc(load(yaml(hc, alg)), 'web').configHash;
    assert.notEqual(hash('{test: ["TCP", "80"]}'), hash('{test: ["TCP", "80"], interval: 1s}'));
    assert.notEqual(hash('{test: ["TCP", "80"]}'), hash('{test: ["HTTP", "80"]}'));
    assert.equal(hash('{test: ["TCP", "80"]}', 'maglev'), hash('{test: ["TCP", "80"]}', 'random'));
  });

  it('reports every mistake at its file:line and key', () => {
    assert.deepEqual(
      errors(`
        services:
          a:
            command: ["a"]
            deploy: {endpoint_mode: round}
          b:
            command: ["b"]
            x-weft: {algoritm: maglev, weight: 0, affinity_timeout: 1.5s}
            expose: [80]
          c:
            command: ["c"]
            x-weft: {algorithm: magleb}
            ports: ["8080"]
          d:
            command: ["d"]
            deploy: {replicas: 2, endpoint_mode: vip}
            ports: ["127.0.0.1:80:80", "8000-8001:90", "81:81", "82:81"]
          e:
            command: ["e"]
            deploy: {endpoint_mode: dnsrr}
            x-weft: {algorithm: random}
          f:
            command: ["f"]
            deploy: {endpoint_mode: vip}
          g:
            command: ["g"]
            network_mode: host
            x-weft: {algorithm: random}
            expose: [80]
          h:
            command: ["h"]
            labels: {weft.weight: "3", weft.compose.balancer: x}
            x-weft: {backend_of: nobody, weight: 3}
          i:
            command: ["i"]
            x-weft: {backend_of: a}
          j:
            command: ["j"]
            x-weft: {backend_of: k}
            networks: [other]
          k:
            command: ["k"]
            deploy: {endpoint_mode: dnsrr}
            x-weft: {backend_of: f}
          l:
            command: ["l"]
            healthcheck: {test: ["tcp", "80"], interval: soon}
          m:
            command: ["m"]
            healthcheck: {test: ["HTTP", "x"]}
          n:
            command: ["n"]
            healthcheck: {test: ["CMD"], retries: -1}
        networks:
          other:
      `),
      [
        'compose.yaml:4: services.a.deploy.endpoint_mode: "round" is not an endpoint mode; use vip (a virtual IP balanced in the kernel) or dnsrr (DNS answers with the healthy containers)',
        'compose.yaml:7: services.b.x-weft: unknown key "algoritm"; did you mean "algorithm"?',
        'compose.yaml:7: services.b.x-weft.affinity_timeout: expected seconds (1-86400) or a duration such as 10m in whole seconds, got "1.5s"',
        'compose.yaml:7: services.b.x-weft.weight: 0 is out of range (1-1000)',
        'compose.yaml:11: services.c.x-weft.algorithm: "magleb" is not an algorithm; use round-robin, weighted-round-robin, random, source-affinity, maglev, least-connections',
        'compose.yaml:12: services.c.ports[0]: a vip service\'s balancer publishes one host port for all replicas: give it ("8080:8080"), or list 8080 under expose to balance it without publishing',
        'compose.yaml:16: services.d.ports[0]: a vip service\'s balancer publishes on every host address; remove the host address 127.0.0.1',
        'compose.yaml:16: services.d.ports[1]: a vip service\'s balancer publishes one host port for all replicas: give one host port per container port, e.g. "8000:90"',
        'compose.yaml:16: services.d.ports[3]: container port 81/tcp is published twice; the balancer publishes each port once',
        'compose.yaml:20: services.e.x-weft.algorithm: needs endpoint_mode: vip; a dnsrr service is balanced by DNS answers, not in the kernel',
        'compose.yaml:23: services.f.deploy.endpoint_mode: a vip service balances ports: list them under expose (or under ports to publish them on the host)',
        'compose.yaml:27: services.g.x-weft.algorithm: a balanced service needs networks: its weft service reaches the containers on the first one; remove network_mode',
        'compose.yaml:31: services.h.labels["weft.compose.balancer"]: label "weft.compose.balancer" is reserved: weft sets the weft.compose.* labels itself',
        'compose.yaml:32: services.h.x-weft.backend_of: service "nobody" is not defined',
        'compose.yaml:32: services.h.x-weft.weight: the label weft.weight is set too; give the weight once',
        'compose.yaml:35: services.i.x-weft.backend_of: service "a" has no balancer: give it deploy.endpoint_mode (vip or dnsrr) or x-weft.algorithm',
        'compose.yaml:38: services.j.x-weft.backend_of: the backends of "k" are reached on its network "default": add it to this service\'s networks',
        'compose.yaml:43: services.k.x-weft.backend_of: a service with its own balancer (endpoint_mode, x-weft.algorithm) cannot also be the backend of another',
        'compose.yaml:46: services.l.healthcheck.test: a test list starts with "CMD", "CMD-SHELL", "TCP", "HTTP" or "NONE", not "tcp"; write it in capitals: "TCP"',
        'compose.yaml:46: services.l.healthcheck.interval: "soon" is not a duration; use a number with a unit, e.g. 10s, 1m30s, 500ms',
        'compose.yaml:49: services.m.healthcheck.test: "x" is not a port; use 1-65535',
        'compose.yaml:52: services.n.healthcheck.test: CMD needs a program to run, e.g. ["CMD", "pg_isready"]',
        'compose.yaml:52: services.n.healthcheck.retries: -1 is out of range (0-9007199254740991)',
      ],
    );
  });
});
