/**
 * Compose services on weft services: endpoint_mode vip with x-weft gives a compose service a
 * virtual IP balanced in the kernel over its replicas, reached by the service name inside the
 * project and on a host port published once; depends_on service_healthy waits for health checks;
 * a changed x-weft updates the weft service in place; `down` removes it.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { makeLab, eventually, httpGet, ECHO, type TestLab } from './helpers.js';

const compose = (algorithm: string) => `
name: tsv
services:
  api:
    # slow to start, so that service_healthy has something to wait for
    command: ["sh", "-c", "sleep 2; exec node ${ECHO} 80"]
    deploy:
      replicas: 3
      endpoint_mode: vip
    x-weft:
      algorithm: ${algorithm}
    ports: ["18090:80"]
    healthcheck:
      test: ["HTTP", "80", "/"]
      interval: 500ms
      timeout: 1s
      retries: 2
      start_period: 20s
      start_interval: 300ms
  client:
    command: ["sleep", "600"]
    depends_on:
      api: { condition: service_healthy }
`;

/** a canary joining api's balancer, weighted 3 to each stable replica's 1 */
const CANARY = `
  api-canary:
    command: ["node", "${ECHO}", "80"]
    x-weft: { backend_of: api, weight: 3 }
`;

const BROKEN = `
name: tsvbad
services:
  flaky:
    command: ["sleep", "600"]
    healthcheck: { test: ["TCP", "9"], interval: 300ms, timeout: 300ms, retries: 1 }
  after:
    command: ["sleep", "600"]
    depends_on:
      flaky: { condition: service_healthy }
`;

interface Echo {
  hostname: string;
}

describe('compose services', () => {
  let lab: TestLab;
  let dir: string;
  const file = () => path.join(dir, 'compose.yaml');
  const service = async (name: string) => JSON.parse(await lab.ok('service', 'inspect', name))[0];
  /** hostnames answering `url` from the client, over `n` requests (each a new connection) */
  const answers = async (url: string, n: number) => {
    const seen: string[] = [];
    for (let i = 0; i < n; i++) {
      const r = await lab.weft('exec', 'tsv-client-1', 'busybox', 'wget', '-q', '-O', '-', url);
      if (r.code === 0) seen.push((JSON.parse(r.stdout) as Echo).hostname);
    }
    return seen;
  };

  before(async () => {
    lab = await makeLab('tcsv');
    dir = mkdtempSync(path.join(tmpdir(), 'weft-compose-svc-kt-'));
    writeFileSync(file(), compose('round-robin'));
  });
  after(async () => {
    await lab?.down();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('waits for service_healthy, then balances http://api/ over the 3 replicas', async () => {
    const started = Date.now();
    const r = await lab.weft('up', '-d', '-f', file());
    assert.equal(r.code, 0, r.stderr);
    assert.ok(Date.now() - started >= 2000, 'up waited for api to become healthy');
    const healthy = r.stderr.indexOf('tsv-api-3  Healthy');
    assert.ok(healthy > 0 && healthy < r.stderr.indexOf('tsv-client-1  Start'), r.stderr);
    assert.ok(r.stderr.indexOf('Service tsv-api  Create') < healthy, r.stderr);
    for (const n of [1, 2, 3]) {
      const c = JSON.parse(await lab.ok('inspect', `tsv-api-${n}`))[0];
      assert.equal(c.state.health.status, 'healthy');
      assert.deepEqual(c.ports, [], 'the containers publish nothing: the service does');
    }

    const svc = await service('tsv-api');
    assert.equal(svc.endpointMode, 'vip');
    assert.equal(svc.algorithm, 'round-robin');
    assert.equal(svc.networkName, 'tsv_default');
    assert.equal(svc.labels['com.docker.compose.project'], 'tsv');
    assert.equal(svc.backends.filter((b: { active: boolean }) => b.active).length, 3);
    const dig = await lab.weft('exec', 'tsv-client-1', 'dig', '+short', '+time=2', '+tries=1', 'api');
    assert.equal(dig.stdout.trim(), svc.vip, 'the compose service name resolves to the VIP');

    const hosts = await answers('http://api/', 6);
    assert.equal(hosts.length, 6, 'every request answered');
    assert.equal(new Set(hosts).size, 3, `all three replicas answer: ${hosts.join(' ')}`);

    // the host port is published once, by the service, balanced the same way
    const outside = new Set<string>();
    for (let i = 0; i < 6; i++) {
      const body = await eventually(() => httpGet(lab.outsideNetns, `http://${lab.hostAddress}:18090/`), 10_000, 'published port');
      outside.add((JSON.parse(body) as Echo).hostname);
    }
    assert.equal(outside.size, 3, [...outside].join(' '));
  });

  it('a second up does nothing; a new algorithm updates the service in place', async () => {
    const again = await lab.weft('up', '-d', '-f', file());
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, /up to date/);

    const ids = await Promise.all([1, 2, 3].map(async (n) => (await lab.inspect(`tsv-api-${n}`)).id));
    const vip = (await service('tsv-api')).vip;
    writeFileSync(file(), compose('maglev'));
    const r = await lab.weft('up', '-d', '-f', file());
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /Service tsv-api {2}Update algorithm/);
    assert.doesNotMatch(r.stderr, /Recreate/);
    const svc = await service('tsv-api');
    assert.deepEqual([svc.algorithm, svc.vip], ['maglev', vip]);
    assert.deepEqual(await Promise.all([1, 2, 3].map(async (n) => (await lab.inspect(`tsv-api-${n}`)).id)), ids, 'containers left alone');
    assert.equal((await answers('http://api/', 2)).length, 2, 'still answering');
  });

  it('a canary service joins the balancer with its weight', async () => {
    writeFileSync(file(), compose('weighted-round-robin') + CANARY);
    const r = await lab.weft('up', '-d', '-f', file());
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /Service tsv-api {2}Update algorithm/);
    const canary = await eventually(async () => {
      const b = (await service('tsv-api')).backends.find((x: { name: string; active: boolean }) => x.name === 'tsv-api-canary-1' && x.active);
      return b;
    }, 10_000, 'the canary among the backends');
    assert.equal(canary.weight, 3);
    const hosts = await answers('http://api/', 6);
    const canaryHost = (await lab.inspect('tsv-api-canary-1')).id.slice(0, 12);
    assert.equal(hosts.filter((h) => h === canaryHost).length, 3, `half of 6 requests go to the canary: ${hosts.join(' ')}`);
  });

  it('fails clearly when a dependency turns unhealthy', async () => {
    const bad = path.join(dir, 'bad.yaml');
    writeFileSync(bad, BROKEN);
    const r = await lab.weft('up', '-d', '-f', bad);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /service after depends on flaky being healthy, but tsvbad-flaky-1 is unhealthy/);
    assert.equal((await lab.inspect('tsvbad-after-1')).state.phase, 'created', 'the dependent was not started');
    const down = await lab.weft('down', '-f', bad);
    assert.equal(down.code, 0, down.stderr);
  });

  it('down removes the weft service with the containers', async () => {
    const r = await lab.weft('down', '-f', file());
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /Service tsv-api {2}Remove/);
    assert.deepEqual(JSON.parse(await lab.ok('service', 'ls', '--format', 'json')), []);
    assert.equal((await lab.ok('ps', '-a', '-q')).trim(), '');
    assert.equal(await httpGet(lab.outsideNetns, `http://${lab.hostAddress}:18090/`), undefined, 'the published port is gone');
  });
});
