import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Value } from 'typebox/value';
import { ContainerCreate, type ContainerView, NetworkConnect, NetworkCreate, type NetworkView, ServiceCreate, ServiceUpdate, type ServiceView } from '../api/schemas.js';
import { PlanError } from './errors.js';
import { loadProject } from './load.js';
import { LABELS, type Project } from './model.js';
import { type Action, type CurrentContainer, type CurrentNetwork, type CurrentService, type CurrentState, describeAction, planDown, planUp } from './plan.js';

// the agent's views must fit the planner's minimal types
const _views: [CurrentContainer, CurrentNetwork, CurrentService] = [{} as ContainerView, {} as NetworkView, {} as ServiceView];
void _views;

const root = mkdtempSync(join(tmpdir(), 'weft-compose-plan-test-'));
after(() => rmSync(root, { recursive: true, force: true }));

/** Loads a project named demo from the given compose text (same directory every time). */
function projectOf(yaml: string): Project {
  writeFileSync(join(root, 'compose.yaml'), yaml);
  return loadProject({ files: ['compose.yaml'], env: {}, cwd: root, projectName: 'demo' });
}

const BASE = `
services:
  db:
    command: ["db"]
    networks: [back]
    healthcheck: {test: ["CMD", "true"]}
  web:
    command: ["web"]
    networks: [front, back]
    depends_on:
      db: {condition: service_healthy}
networks:
  front:
  back:
`;

/** A tiny agent: applies actions to plain objects the way the API would. */
class FakeAgent implements CurrentState {
  networks: (CurrentNetwork & { containers: Record<string, { name: string }> })[] = [];
  containers: CurrentContainer[] = [];
  services: CurrentService[] = [];
  private seq = 0;

  private id(): string {
    return (++this.seq).toString(16).padStart(64, '0');
  }

  private container(ref: string): CurrentContainer {
    const c = this.containers.find((x) => x.name === ref || x.id === ref);
    assert.ok(c, `no container ${ref}`);
    return c;
  }

  apply(actions: Action[]): void {
    for (const a of actions) {
      switch (a.kind) {
        case 'create-network':
          assert.ok(!this.networks.some((n) => n.name === a.network), `network ${a.network} exists`);
          this.networks.push({ id: this.id(), name: a.network, labels: { ...a.request.labels }, containers: {} });
          break;
        case 'remove-network': {
          const n = this.networks.find((x) => x.id === a.id);
          assert.ok(n && Object.keys(n.containers).length === 0, `network ${a.network} in use`);
          this.networks = this.networks.filter((x) => x !== n);
          break;
        }
        case 'create-container': {
          assert.ok(!this.containers.some((c) => c.name === a.container), `name ${a.container} taken`);
          const c = { id: this.id(), name: a.container, config: { labels: { ...a.request.labels } }, state: { phase: 'created' as const } };
          this.containers.push(c);
          const net = this.networks.find((n) => n.name === a.request.network);
          if (net) net.containers[c.id] = { name: c.name };
          break;
        }
        case 'connect': {
          const c = this.container(a.request.container);
          const net = this.networks.find((n) => n.name === a.network);
          assert.ok(net);
          net.containers[c.id] = { name: c.name };
          break;
        }
        case 'start-container':
        case 'restart-container':
          this.container(a.container).state = { phase: 'running' };
          break;
        case 'stop-container':
          this.container(a.id).state = { phase: 'exited' };
          break;
        case 'remove-container':
          this.containers = this.containers.filter((c) => c.id !== a.id);
          for (const n of this.networks) delete n.containers[a.id];
          break;
        case 'create-service': {
          const r = a.request;
          assert.ok(!this.services.some((x) => x.name === r.name), `service ${r.name} exists`);
          assert.ok(Value.Check(ServiceCreate, r), JSON.stringify(r));
          this.services.push({
            id: this.id(),
            name: r.name,
            endpointMode: r.endpointMode ?? 'vip',
            networkName: r.network,
            labels: { ...r.labels },
            selector: { ...r.selector },
            algorithm: r.algorithm ?? 'round-robin',
            affinityTimeout: r.affinityTimeout ?? 10800,
            ports: (r.ports ?? []).map((p) => ({ protocol: p.protocol ?? 'tcp', port: p.port, targetPort: p.targetPort ?? p.port, ...(p.publish ? { publish: p.publish } : {}) })),
          });
          break;
        }
        case 'update-service': {
          assert.ok(Value.Check(ServiceUpdate, a.request), JSON.stringify(a.request));
          const svc = this.services.find((x) => x.id === a.id);
          assert.ok(svc, `no service ${a.name}`);
          Object.assign(svc, a.request);
          break;
        }
        case 'remove-service':
          assert.ok(this.services.some((x) => x.id === a.id), `no service ${a.name}`);
          this.services = this.services.filter((x) => x.id !== a.id);
          break;
      }
    }
  }

  up(p: Project): Action[] {
    const plan = planUp(p, this);
    this.apply(plan.actions);
    return plan.actions;
  }
}

const brief = (actions: Action[]): string[] => actions.map(describeAction);

describe('planUp', () => {
  it('creates networks, then each service in start order, connected before it starts', () => {
    const p = projectOf(BASE);
    const actions = planUp(p, { networks: [], containers: [] }).actions;
    assert.deepEqual(brief(actions), [
      'Network demo_back  Create',
      'Network demo_front  Create',
      'Container demo-db-1  Create',
      'Container demo-db-1  Start',
      'Container demo-web-1  Create',
      'Container demo-web-1  Connect demo_front',
      'Container demo-web-1  Start',
    ]);
    const create = actions.find((a) => a.kind === 'create-container' && a.service === 'web');
    assert.ok(create?.kind === 'create-container');
    assert.equal(create.request.network, 'demo_back'); // equal priority: by name
    assert.equal(create.request.start, false);
    assert.equal(create.request.labels?.[LABELS.configHash], p.services[1].configHash);
    const start = actions.at(-1);
    assert.deepEqual(start, { kind: 'start-container', service: 'web', container: 'demo-web-1', waitFor: [{ service: 'db', condition: 'service_healthy' }] });
  });

  it('builds requests that the agent schemas accept', () => {
    const p = projectOf(BASE.replace('  back:\n', '  back:\n    enable_ipv6: true\n    driver_opts: {mtu: 1400}\n    ipam: {config: [{subnet: 10.7.0.0/24, gateway: 10.7.0.254}]}\n').replace(
      'command: ["web"]',
      'command: ["web"]\n    environment: {A: 1}\n    hostname: w\n    restart: on-failure:2\n    extra_hosts: ["h:10.0.0.1"]\n    dns: 1.1.1.1\n    ports: ["8080:80", "127.0.0.1::81/udp"]\n    labels: {x: y}',
    ));
    const actions = planUp(p, { networks: [], containers: [] }).actions;
    let checked = 0;
    for (const a of actions) {
      if (a.kind === 'create-network') assert.ok(Value.Check(NetworkCreate, a.request), JSON.stringify(a.request));
      else if (a.kind === 'create-container') assert.ok(Value.Check(ContainerCreate, a.request), JSON.stringify(a.request));
      else if (a.kind === 'connect') assert.ok(Value.Check(NetworkConnect, a.request), JSON.stringify(a.request));
      else continue;
      checked++;
    }
    assert.equal(checked, 5);
  });

  it('plans nothing the second time', () => {
    const agent = new FakeAgent();
    agent.up(projectOf(BASE));
    const again = planUp(projectOf(BASE), agent);
    assert.deepEqual(again, { actions: [], warnings: [] });
  });

  it('recreates only the service whose config changed', () => {
    const agent = new FakeAgent();
    agent.up(projectOf(BASE));
    const changed = BASE.replace('command: ["web"]', 'command: ["web", "--v2"]');
    assert.deepEqual(brief(agent.up(projectOf(changed))), [
      'Container demo-web-1  Stop',
      'Container demo-web-1  Remove',
      'Container demo-web-1  Recreate',
      'Container demo-web-1  Connect demo_front',
      'Container demo-web-1  Start',
    ]);
    assert.deepEqual(planUp(projectOf(changed), agent).actions, []);
  });

  it('starts containers that exist but are stopped', () => {
    const agent = new FakeAgent();
    agent.up(projectOf(BASE));
    const db = agent.containers.find((c) => c.name === 'demo-db-1');
    assert.ok(db);
    db.state = { phase: 'exited' };
    assert.deepEqual(planUp(projectOf(BASE), agent).actions, [{ kind: 'start-container', service: 'db', container: 'demo-db-1', id: db.id, waitFor: [] }]);
  });

  it('removes the containers of a service removed from the file (orphans)', () => {
    const agent = new FakeAgent();
    agent.up(projectOf(BASE.replace('networks:\n  front:', '  cache:\n    command: ["c"]\n    networks: [back]\nnetworks:\n  front:')));
    assert.ok(agent.containers.some((c) => c.name === 'demo-cache-1'));
    const p = projectOf(BASE);
    assert.deepEqual(planUp(p, agent, { removeOrphans: false }), {
      actions: [],
      warnings: ['found orphan containers (demo-cache-1) of services no longer in the file; remove them with --remove-orphans'],
    });
    assert.deepEqual(brief(agent.up(p)), ['Container demo-cache-1  Stop', 'Container demo-cache-1  Remove (orphan)']);
  });

  it('scales up and down by container number', () => {
    const agent = new FakeAgent();
    const scaled = (n: number): Project => projectOf(`services:\n  w:\n    command: ["w"]\n    scale: ${n}\n`);
    assert.deepEqual(
      brief(agent.up(scaled(3))).filter((l) => l.startsWith('Container')),
      ['Container demo-w-1  Create', 'Container demo-w-1  Start', 'Container demo-w-2  Create', 'Container demo-w-2  Start', 'Container demo-w-3  Create', 'Container demo-w-3  Start'],
    );
    assert.deepEqual(brief(agent.up(scaled(1))), [
      'Container demo-w-3  Stop',
      'Container demo-w-3  Remove',
      'Container demo-w-2  Stop',
      'Container demo-w-2  Remove',
    ]);
    assert.deepEqual(brief(agent.up(scaled(2))), ['Container demo-w-2  Create', 'Container demo-w-2  Start']);
    assert.deepEqual(agent.containers.map((c) => c.name), ['demo-w-1', 'demo-w-2']);
  });

  it('recreates a project network whose config changed, with the containers on it', () => {
    const agent = new FakeAgent();
    agent.up(projectOf(BASE));
    const changed = BASE.replace('  back:\n', '  back:\n    internal: true\n');
    assert.deepEqual(brief(agent.up(projectOf(changed))), [
      'Container demo-db-1  Stop',
      'Container demo-db-1  Remove',
      'Container demo-web-1  Stop',
      'Container demo-web-1  Remove',
      'Network demo_back  Remove',
      'Network demo_back  Recreate',
      'Container demo-db-1  Create',
      'Container demo-db-1  Start',
      'Container demo-web-1  Create',
      'Container demo-web-1  Connect demo_front',
      'Container demo-web-1  Start',
    ]);
    assert.deepEqual(planUp(projectOf(changed), agent).actions, []);
  });

  it('refuses to recreate a network that others use, and other conflicts', () => {
    const agent = new FakeAgent();
    agent.up(projectOf(BASE));
    const back = agent.networks.find((n) => n.name === 'demo_back');
    assert.ok(back);
    back.containers['f'.repeat(64)] = { name: 'stranger' };
    const changed = BASE.replace('  back:\n', '  back:\n    internal: true\n');
    assert.throws(
      () => planUp(projectOf(changed), agent),
      (e: unknown) =>
        e instanceof PlanError &&
        e.message ===
          'network "demo_back" needs to be recreated (its configuration changed), but containers outside project "demo" are attached: stranger; disconnect them, or undo the change',
    );

    const ext = projectOf('services:\n  a:\n    command: ["a"]\n    networks: [shared]\nnetworks:\n  shared:\n    external: true\n');
    assert.throws(() => planUp(ext, { networks: [], containers: [] }), /network "shared" is declared as external but does not exist; create it first/);
    const taken: CurrentState = { networks: [{ id: 'n1', name: 'shared', labels: {} }], containers: [{ id: 'c'.repeat(64), name: 'demo-a-1', config: { labels: {} }, state: { phase: 'running' } }] };
    assert.throws(() => planUp(ext, taken), /container name "demo-a-1" is already in use by container cccccccccccc \(something outside project "demo"\); remove or rename it/);
    const other: CurrentState = { networks: [{ id: 'n1', name: 'demo_default', labels: { [LABELS.project]: 'other' } }], containers: [] };
    assert.throws(() => planUp(projectOf('services:\n  a:\n    command: ["a"]\n'), other), /network "demo_default" belongs to project "other"/);
  });

  it('uses an existing network compose did not create, with a warning', () => {
    const p = projectOf('services:\n  a:\n    command: ["a"]\n');
    const plan = planUp(p, { networks: [{ id: 'n1', name: 'demo_default', labels: {} }], containers: [] });
    assert.deepEqual(brief(plan.actions), ['Container demo-a-1  Create', 'Container demo-a-1  Start']);
    assert.deepEqual(plan.warnings, ['network "demo_default" exists but was not created by compose; using it as it is (say external: true to make that explicit)']);
  });

  it('restarts dependents with restart: true and recreates namespace sharers when their dependency is recreated', () => {
    const yaml = (v: string): string => `
services:
  db:
    command: ["db", "${v}"]
  app:
    command: ["app"]
    depends_on:
      db: {condition: service_started, restart: true}
  side:
    command: ["side"]
    network_mode: service:db
`;
    const agent = new FakeAgent();
    const first = agent.up(projectOf(yaml('1')));
    const side = first.find((a) => a.kind === 'create-container' && a.service === 'side');
    assert.ok(side?.kind === 'create-container');
    assert.equal(side.shareNetworkWith, 'demo-db-1');
    assert.equal(side.request.network, undefined);
    assert.deepEqual(brief(agent.up(projectOf(yaml('2')))), [
      'Container demo-db-1  Stop',
      'Container demo-db-1  Remove',
      'Container demo-db-1  Recreate',
      'Container demo-db-1  Start',
      'Container demo-app-1  Restart',
      'Container demo-side-1  Stop',
      'Container demo-side-1  Remove',
      'Container demo-side-1  Recreate',
      'Container demo-side-1  Start',
    ]);
  });
});

describe('planDown', () => {
  it('stops dependents first, removes containers, then the project networks (not external ones)', () => {
    const yaml = BASE.replace('networks: [front, back]', 'networks: [front, back, shared]') + '  shared:\n    external: true\n';
    const agent = new FakeAgent();
    agent.networks.push({ id: 'e'.repeat(64), name: 'shared', labels: {}, containers: {} });
    agent.up(projectOf(yaml));
    const plan = planDown(projectOf(yaml), agent, { volumes: true });
    assert.deepEqual(brief(plan.actions), [
      'Container demo-web-1  Stop',
      'Container demo-db-1  Stop',
      'Container demo-web-1  Remove',
      'Container demo-db-1  Remove',
      'Network demo_back  Remove',
      'Network demo_front  Remove',
    ]);
    const stop = plan.actions[0];
    assert.ok(stop.kind === 'stop-container');
    assert.equal(stop.timeoutSeconds, 10);
    agent.apply(plan.actions);
    assert.deepEqual(agent.networks.map((n) => n.name), ['shared']);
    assert.deepEqual(planDown(projectOf(yaml), agent), { actions: [], warnings: [] });
  });

  it('removes orphans too, and leaves networks others still use', () => {
    const agent = new FakeAgent();
    agent.up(projectOf(BASE.replace('networks:\n  front:', '  cache:\n    command: ["c"]\n    networks: [back]\nnetworks:\n  front:')));
    agent.networks.find((n) => n.name === 'demo_front')!.containers['f'.repeat(64)] = { name: 'stranger' };
    const plan = planDown(projectOf(BASE), agent);
    assert.deepEqual(brief(plan.actions), [
      'Container demo-cache-1  Stop',
      'Container demo-web-1  Stop',
      'Container demo-db-1  Stop',
      'Container demo-cache-1  Remove',
      'Container demo-web-1  Remove',
      'Container demo-db-1  Remove',
      'Network demo_back  Remove',
    ]);
    assert.deepEqual(plan.warnings, ['network "demo_front" is still in use by stranger; left in place']);
    const kept = planDown(projectOf(BASE), agent, { removeOrphans: false });
    assert.deepEqual(kept.warnings[0], 'found orphan containers (demo-cache-1); remove them with --remove-orphans');
  });
});

describe('weft services (endpoint_mode, x-weft)', () => {
  const LB = (extra = '', mode = 'vip') => `
services:
  api:
    command: ["api"]
    deploy: {replicas: 2, endpoint_mode: ${mode}}
    ports: ["8080:80"]
    healthcheck: {test: ["HTTP", "80"]}
    ${extra}
  web:
    command: ["web"]
    depends_on:
      api: {condition: service_healthy}
`;

  it('creates the service after its containers; a second up does nothing', () => {
    const agent = new FakeAgent();
    assert.deepEqual(brief(agent.up(projectOf(LB()))), [
      'Network demo_default  Create',
      'Container demo-api-1  Create',
      'Container demo-api-1  Start',
      'Container demo-api-2  Create',
      'Container demo-api-2  Start',
      'Service demo-api  Create',
      'Container demo-web-1  Create',
      'Container demo-web-1  Start',
    ]);
    assert.deepEqual(agent.services.map((s) => [s.name, s.networkName, s.labels[LABELS.project], s.labels[LABELS.service]]), [['demo-api', 'demo_default', 'demo', 'api']]);
    assert.deepEqual(planUp(projectOf(LB()), agent), { actions: [], warnings: [] });
  });

  it('updates the service when x-weft changes, without touching the containers', () => {
    const agent = new FakeAgent();
    agent.up(projectOf(LB()));
    const changed = LB('x-weft: {algorithm: source-affinity, affinity_timeout: 60}');
    const actions = agent.up(projectOf(changed));
    assert.deepEqual(brief(actions), ['Service demo-api  Update algorithm, affinity_timeout']);
    assert.deepEqual(actions[0].kind === 'update-service' && actions[0].request, {
      ports: [{ port: 80, targetPort: 80, protocol: 'tcp', publish: 8080 }],
      selector: { [LABELS.project]: 'demo', 'weft.compose.balancer': 'api' },
      algorithm: 'source-affinity',
      affinityTimeout: 60,
    });
    assert.deepEqual(planUp(projectOf(changed), agent).actions, []);
    assert.deepEqual(brief(agent.up(projectOf(LB().replace('"8080:80"', '"9090:80"')))), ['Service demo-api  Update ports, algorithm, affinity_timeout']);
  });

  it('recreates it when the endpoint mode changes, and removes it first when balancing stops', () => {
    const agent = new FakeAgent();
    agent.up(projectOf(LB()));
    // dnsrr: the containers publish the ports themselves again, one host port each
    assert.deepEqual(brief(agent.up(projectOf(LB('', 'dnsrr').replace('"8080:80"', '"8080-8081:80"')))), [
      'Service demo-api  Remove',
      'Container demo-api-1  Stop',
      'Container demo-api-1  Remove',
      'Container demo-api-1  Recreate',
      'Container demo-api-1  Start',
      'Container demo-api-2  Stop',
      'Container demo-api-2  Remove',
      'Container demo-api-2  Recreate',
      'Container demo-api-2  Start',
      'Service demo-api  Recreate',
    ]);
    assert.equal(agent.services[0].endpointMode, 'dnsrr');
    const plain = LB().replace(', endpoint_mode: vip', '').replace('replicas: 2', 'replicas: 1');
    assert.deepEqual(brief(agent.up(projectOf(plain))), [
      'Service demo-api  Remove',
      'Container demo-api-2  Stop',
      'Container demo-api-2  Remove',
      'Container demo-api-1  Stop',
      'Container demo-api-1  Remove',
      'Container demo-api-1  Recreate',
      'Container demo-api-1  Start',
    ]);
    assert.deepEqual(agent.services, []);
  });

  it('recreates it with its network, removes orphans, and refuses a name held by another project', () => {
    const agent = new FakeAgent();
    agent.up(projectOf(LB()));
    const internal = `${LB()}networks:\n  default:\n    internal: true\n`;
    const lines = brief(agent.up(projectOf(internal)));
    assert.equal(lines[0], 'Service demo-api  Remove', 'before its network goes');
    assert.ok(lines.indexOf('Network demo_default  Remove') > 0);
    assert.equal(lines.at(-3), 'Service demo-api  Recreate');

    const gone = 'services:\n  web:\n    command: ["web"]\n';
    assert.deepEqual(planUp(projectOf(gone), agent, { removeOrphans: false }).warnings, [
      'found orphan containers (demo-api-1, demo-api-2) of services no longer in the file; remove them with --remove-orphans',
      'found orphan services (demo-api) of services no longer in the file; remove them with --remove-orphans',
    ]);
    assert.deepEqual(brief(planUp(projectOf(gone), agent).actions).slice(0, 2), ['Service demo-api  Remove (orphan)', 'Container demo-api-1  Stop']);

    const taken: CurrentState = {
      networks: [],
      containers: [],
      services: [{ ...agent.services[0], id: 'a'.repeat(64), labels: { [LABELS.project]: 'other', [LABELS.service]: 'api' } }],
    };
    assert.throws(
      () => planUp(projectOf(LB()), taken),
      (e: unknown) =>
        e instanceof PlanError &&
        e.message ===
          'service name "demo-api" is already in use by weft service aaaaaaaaaaaa (project "other"); weft service names are unique per host: remove that service, or rename the compose service',
    );
  });

  it('down removes the service before stopping its containers', () => {
    const agent = new FakeAgent();
    agent.up(projectOf(LB()));
    const plan = planDown(projectOf(LB()), agent);
    assert.deepEqual(brief(plan.actions).slice(0, 2), ['Service demo-api  Remove', 'Container demo-web-1  Stop']);
    agent.apply(plan.actions);
    assert.deepEqual([agent.services, agent.containers, agent.networks], [[], [], []]);
  });
});
