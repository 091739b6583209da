/**
 * Compose in a lab: every networking key of a compose file taking effect in the kernel and the
 * agent, validation that stops everything before it starts, convergence of a second `up`, and
 * `down`.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { makeLab, eventually, httpGet, ECHO, type TestLab } from './helpers.js';

const COMPOSE = `
name: \${PROJECT_NAME:-tc}
services:
  web:
    command: ["node", "${ECHO}", "80"]
    hostname: front-door
    environment:
      GREETING: \${GREETING:-hello}
      FROM_DOTENV:
    env_file: [web.env]
    working_dir: /tmp
    labels: { tier: front }
    restart: on-failure:3
    ports:
      - "\${WEB_PORT}:80"
      - target: 80
        published: "18081"
        host_ip: 127.0.0.1
        protocol: tcp
    extra_hosts: ["gateway.test:192.0.2.10", "other.test=192.0.2.11"]
    networks:
      front:
        aliases: [www]
        ipv4_address: 10.91.1.50
      dual:
    depends_on:
      api: { condition: service_started }
  api:
    entrypoint: sh -c
    command: ["exec sleep 600"]
    networks: [back, front]
    dns: 198.18.250.1
  helper:
    command: sleep 600
  solo:
    command: sleep 600
    network_mode: none
  hosty:
    command: sleep 600
    network_mode: host
  sidecar:
    command: sleep 600
    network_mode: service:api
  legacy:
    command: sleep 600
    networks: [outer]
networks:
  front:
    driver: bridge
    driver_opts:
      com.docker.network.driver.mtu: "1400"
    ipam:
      config:
        - subnet: 10.91.1.0/24
          ip_range: 10.91.1.128/25
          gateway: 10.91.1.254
    labels: [purpose=tests]
  back:
    internal: true
    name: tc-backplane
  dual:
    enable_ipv6: true
  outer:
    external: true
    name: shared-outer
`;

describe('compose', () => {
  let lab: TestLab;
  let dir: string;
  const file = () => path.join(dir, 'compose.yaml');
  const up = (...args: string[]) => lab.weft('up', '-d', '-f', file(), ...args);
  const network = async (name: string) => JSON.parse(await lab.ok('network', 'inspect', name))[0];

  before(async () => {
    lab = await makeLab('tcmp');
    dir = mkdtempSync(path.join(tmpdir(), 'weft-compose-kt-'));
    writeFileSync(file(), COMPOSE);
    writeFileSync(path.join(dir, '.env'), 'WEB_PORT=18080\nFROM_DOTENV=dotenv-value\n');
    writeFileSync(path.join(dir, 'web.env'), 'FROM_ENV_FILE=file-value\n');
    await lab.ok('network', 'create', 'shared-outer');
  });
  after(async () => {
    await lab?.down();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('refuses an invalid file with file:line:key and starts nothing', async () => {
    const bad = path.join(dir, 'bad.yaml');
    writeFileSync(bad, 'services:\n  a:\n    command: sleep 1\n    netwrks: [x]\n  b:\n    command: sleep 1\n    networks: [nowhere]\n');
    const r = await lab.weft('up', '-d', '-f', bad);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /bad\.yaml:4: services\.a: unknown key "netwrks"; did you mean "networks"\?/);
    assert.match(r.stderr, /bad\.yaml:7: .*nowhere/);
    const image = path.join(dir, 'image.yaml');
    writeFileSync(image, 'services:\n  web:\n    image: nginx\n');
    const r2 = await lab.weft('up', '-d', '-f', image);
    assert.equal(r2.code, 1);
    assert.match(r2.stderr, /image\.yaml:2: services\.web: .*command/);
    assert.equal((await lab.ok('ps', '-a', '-q')).trim(), '', 'no container was made');
    assert.doesNotMatch(await lab.ok('network', 'ls'), /bad_default|image_default/);
  });

  it('brings the project up with every networking key in effect', async () => {
    const r = await up();
    assert.equal(r.code, 0, r.stderr);
    // start order: api before web (depends_on)
    assert.ok(r.stderr.indexOf('tc-api-1  Start') < r.stderr.indexOf('tc-web-1  Start'), r.stderr);

    const front = await network('tc_front');
    assert.equal(front.mtu, 1400);
    assert.deepEqual([front.subnets[0].subnet, front.subnets[0].ipRange, front.subnets[0].gateway], ['10.91.1.0/24', '10.91.1.128/25', '10.91.1.254']);
    assert.equal(front.labels.purpose, 'tests');
    assert.equal(front.labels['com.docker.compose.project'], 'tc');
    assert.equal((await network('tc-backplane')).internal, true, 'name: and internal');
    assert.ok((await network('tc_dual')).subnets.some((s: { family: number }) => s.family === 6), 'enable_ipv6');
    assert.ok(await network('tc_default'), 'the default network for services that name none');

    const web = await lab.inspect('tc-web-1');
    assert.equal(web.networks.tc_front.ipv4, '10.91.1.50', 'ipv4_address');
    assert.ok(web.networks.tc_dual.ipv6, 'a dual-stack address');
    const env = await lab.weft('exec', 'tc-web-1', 'sh', '-c', 'hostname; pwd; echo $GREETING $FROM_DOTENV $FROM_ENV_FILE; grep test /etc/hosts');
    assert.deepEqual(env.stdout.trim().split('\n'), ['front-door', '/tmp', 'hello dotenv-value file-value', '192.0.2.10\tgateway.test', '192.0.2.11\tother.test']);
    const full = JSON.parse(await lab.ok('inspect', 'tc-web-1'))[0];
    assert.equal(full.config.labels.tier, 'front');
    assert.deepEqual(full.config.restart, { name: 'on-failure', maxRetries: 3 });

    // ports, short and long syntax
    await eventually(() => httpGet(lab.outsideNetns, `http://${lab.hostAddress}:18080/`), 10_000, 'published port');
    assert.ok(await httpGet(lab.hostNetns, 'http://127.0.0.1:18081/'), 'the long syntax, bound to 127.0.0.1');
    assert.equal(await httpGet(lab.outsideNetns, `http://${lab.hostAddress}:18081/`), undefined, 'not on other addresses');

    // names: service names and aliases, only on shared networks
    const dig = async (c: string, name: string) => (await lab.weft('exec', c, 'dig', '+short', '+time=2', '+tries=1', name)).stdout.trim();
    assert.equal(await dig('tc-api-1', 'www'), '10.91.1.50');
    assert.equal(await dig('tc-api-1', 'web'), '10.91.1.50');
    assert.equal(await dig('tc-helper-1', 'web'), '', 'helper is on the default network only');
    const api = await lab.inspect('tc-api-1');
    assert.ok(api.networks['tc-backplane'] && api.networks.tc_front, 'list form: both networks');

    // network modes and external networks
    assert.deepEqual(Object.keys((await lab.inspect('tc-solo-1')).networks), ['none']);
    assert.deepEqual(Object.keys((await lab.inspect('tc-hosty-1')).networks), ['host']);
    assert.ok((await lab.inspect('tc-legacy-1')).networks['shared-outer'], 'external network used');
    const side = await lab.weft('exec', 'tc-sidecar-1', 'ip', '-br', '-4', 'addr');
    assert.match(side.stdout, new RegExp(api.networks.tc_front.ipv4!.replace(/\./g, '\\.')), 'service:api shares api\'s namespace');
  });

  it('does nothing on a second up, and converges a changed file', async () => {
    const again = await up();
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, /up to date/);

    const helperId = (await lab.inspect('tc-helper-1')).id;
    const apiId = (await lab.inspect('tc-api-1')).id;
    const changed = COMPOSE.replace('GREETING: ${GREETING:-hello}', 'GREETING: changed')
      .replace('  helper:\n    command: sleep 600\n', '  helper:\n    command: sleep 600\n    deploy:\n      replicas: 2\n')
      .replace(/ {2}solo:\n {4}command: sleep 600\n {4}network_mode: none\n/, '');
    writeFileSync(file(), changed);
    const r = await up();
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /tc-web-1 {2}Recreate/);
    assert.match(r.stderr, /tc-helper-2 {2}Create/);
    assert.match(r.stderr, /tc-solo-1 {2}Remove \(orphan\)/);
    assert.equal((await lab.inspect('tc-helper-1')).id, helperId, 'unchanged services are left alone');
    assert.equal((await lab.inspect('tc-api-1')).id, apiId);
    assert.equal((await lab.weft('exec', 'tc-web-1', 'sh', '-c', 'echo $GREETING')).stdout.trim(), 'changed');
    const ps = await lab.ok('compose', '-f', file(), 'ps', '--format', 'json');
    assert.deepEqual(JSON.parse(ps).map((c: { name: string }) => c.name).sort(), ['tc-api-1', 'tc-helper-1', 'tc-helper-2', 'tc-hosty-1', 'tc-legacy-1', 'tc-sidecar-1', 'tc-web-1']);
  });

  it('shows logs by service and takes everything down but external networks', async () => {
    const logs = await lab.ok('compose', '-f', file(), 'logs', 'web');
    assert.match(logs, /^tc-web-1 +\| .*listening on :80/m);
    const r = await lab.weft('down', '-f', file());
    assert.equal(r.code, 0, r.stderr);
    assert.equal((await lab.ok('ps', '-a', '-q')).trim(), '');
    const nets = await lab.ok('network', 'ls', '--format', 'json');
    const names = JSON.parse(nets).map((n: { name: string }) => n.name);
    assert.ok(names.includes('shared-outer'), 'the external network stays');
    assert.ok(!names.some((n: string) => n.startsWith('tc_') || n === 'tc-backplane'), names.join(','));
  });
});
