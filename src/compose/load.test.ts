import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ComposeError } from './errors.js';
import { type LoadOptions, loadProject, normalizeProjectName } from './load.js';
import { type Project, type ProjectService, LABELS, connectRequests, containerRequest } from './model.js';

const roots: string[] = [];
after(() => {
  for (const r of roots) rmSync(r, { recursive: true, force: true });
});

/** Text without the first newline and the common indentation, so line 1 is the first line. */
function text(s: string): string {
  const lines = s.replace(/^\n/, '').replace(/\n\s*$/, '\n').split('\n');
  const indent = Math.min(...lines.filter((l) => l.trim()).map((l) => /^ */.exec(l)![0].length));
  return lines.map((l) => l.slice(indent)).join('\n');
}

/** A fresh temp dir holding `files` (paths relative to <tmp>/<dir>); returns <tmp>/<dir>. */
function project(files: Record<string, string>, dir = 'app'): string {
  const root = mkdtempSync(join(tmpdir(), 'weft-compose-test-'));
  roots.push(root);
  const base = join(root, dir);
  mkdirSync(base, { recursive: true });
  for (const [name, content] of Object.entries(files)) {
    mkdirSync(dirname(join(base, name)), { recursive: true });
    writeFileSync(join(base, name), text(content));
  }
  return base;
}

function load(cwd: string, over: Partial<LoadOptions> = {}): Project {
  return loadProject({ files: [], env: {}, cwd, ...over });
}

/** The error lines of a load that must fail. */
function errors(cwd: string, over: Partial<LoadOptions> = {}): string[] {
  try {
    load(cwd, over);
  } catch (e) {
    assert.ok(e instanceof ComposeError, String(e));
    assert.equal(e.message.split('\n').length, e.issues.length);
    return e.message.split('\n');
  }
  assert.fail('expected a ComposeError');
}

function svc(p: Project, name: string): ProjectService {
  const s = p.services.find((x) => x.name === name);
  assert.ok(s, `no service ${name}`);
  return s;
}

const ONE = { 'compose.yaml': 'services:\n  web:\n    command: ["true"]\n' };

describe('project name', () => {
  it('is the directory name made valid by default', () => {
    assert.equal(load(project(ONE, 'My.App_1')).name, 'myapp_1');
    assert.equal(load(project(ONE, '_Under-Score')).name, 'under-score');
    assert.equal(normalizeProjectName('-_Ab C.d'), 'abcd');
  });

  it('-p, then COMPOSE_PROJECT_NAME (process env or .env), then name:', () => {
    const dir = project({ 'compose.yaml': 'name: fromfile\nservices:\n  web:\n    command: ["true"]\n' });
    assert.equal(load(dir).name, 'fromfile');
    assert.equal(load(dir, { env: { COMPOSE_PROJECT_NAME: 'fromenv' } }).name, 'fromenv');
    assert.equal(load(dir, { env: { COMPOSE_PROJECT_NAME: 'fromenv' }, projectName: 'flag' }).name, 'flag');
    writeFileSync(join(dir, '.env'), 'COMPOSE_PROJECT_NAME=dotenv\n');
    assert.equal(load(dir).name, 'dotenv');
  });

  it('an explicit name must already be valid', () => {
    const dir = project({ 'compose.yaml': 'name: My App\nservices:\n  web:\n    command: ["true"]\n' });
    assert.deepEqual(errors(dir), [
      `compose.yaml:1: name: invalid project name "My App" (the top-level name): use lower-case letters, digits, '_' and '-', starting with a letter or digit`,
    ]);
    assert.deepEqual(errors(dir, { projectName: '-x' }), [
      `invalid project name "-x" (-p): use lower-case letters, digits, '_' and '-', starting with a letter or digit`,
    ]);
  });

  it('the name may be interpolated', () => {
    const dir = project({ 'compose.yaml': 'name: ${STAGE:-dev}-shop\nservices:\n  web:\n    command: ["true"]\n' });
    assert.equal(load(dir).name, 'dev-shop');
    assert.equal(load(dir, { env: { STAGE: 'prod' } }).name, 'prod-shop');
  });
});

describe('files', () => {
  it('finds compose.yaml in a parent directory and merges compose.override.yaml', () => {
    const dir = project({
      'compose.yaml': 'services:\n  web:\n    command: ["a"]\n    environment: [A=1, B=1]\n',
      'compose.override.yaml': 'services:\n  web:\n    environment: {B: 2}\n',
      'sub/deeper/x.txt': 'x',
    });
    const p = load(join(dir, 'sub', 'deeper'));
    assert.equal(p.workingDir, dir);
    assert.deepEqual(p.files, [join(dir, 'compose.yaml'), join(dir, 'compose.override.yaml')]);
    assert.deepEqual(svc(p, 'web').create.env, ['A=1', 'B=2']);
  });

  it('uses COMPOSE_FILE when no -f is given', () => {
    const dir = project({ 'one.yml': 'services:\n  a:\n    command: ["x"]\n', 'two.yml': 'services:\n  b:\n    command: ["y"]\n' });
    const p = load(dir, { env: { COMPOSE_FILE: 'one.yml:two.yml' } });
    assert.deepEqual(p.services.map((s) => s.name), ['a', 'b']);
  });

  it('says when there is no compose file', () => {
    const dir = project({ 'other.txt': 'x' });
    assert.throws(() => load(dir, { files: ['nope.yml'] }), /^ComposeError: compose file nope.yml not found$/);
  });

  it('merges -f files as Compose does', () => {
    const dir = project({
      'base.yml': `
        services:
          web:
            command: node a.js --x
            environment: [A=1, B=1]
            labels: {one: "1"}
            ports: ["8080:80"]
            dns: 1.1.1.1
            networks: [front]
          old:
            command: ["x"]
        networks:
          front: {}
      `,
      'over.yml': `
        services:
          web:
            command: ["node", "b.js"]
            environment: {B: 2, C: 3}
            labels: [two=2]
            ports: ["8080:80", "9090:90"]
            networks:
              front: {aliases: [www]}
          old: !reset
      `,
    });
    const p = load(dir, { files: ['base.yml', 'over.yml'] });
    const web = svc(p, 'web');
    assert.deepEqual(web.create.cmd, ['node', 'b.js']);
    assert.deepEqual(web.create.env, ['A=1', 'B=2', 'C=3']);
    assert.deepEqual(web.create.labels, { one: '1', two: '2' });
    assert.deepEqual(web.create.ports, [
      { containerPort: 80, hostPort: 8080, protocol: 'tcp' },
      { containerPort: 90, hostPort: 9090, protocol: 'tcp' },
    ]);
    assert.deepEqual(web.networks[0].aliases, ['web', 'www']);
    assert.deepEqual(p.services.map((s) => s.name), ['web']);
  });

  it('points errors at the file that wrote the value', () => {
    const dir = project({
      'base.yml': 'services:\n  web:\n    command: ["x"]\n    ports: ["80"]\n',
      'over.yml': 'services:\n  web:\n    ports:\n      - "90:ninety"\n',
    });
    assert.deepEqual(errors(dir, { files: ['base.yml', 'over.yml'] }), [
      'over.yml:4: services.web.ports[1]: "90:ninety" is not a valid port mapping: container port "ninety" is not a number 1-65535 or a range like 8000-8010',
    ]);
  });
});

describe('interpolation and .env', () => {
  const compose = {
    'compose.yaml': `
      services:
        web:
          command: node server.js --port \${PORT} --tag \${TAG:-none} --cost $$5
          environment:
            - ONLY_DOTENV=\${ONLY_DOTENV}
            - MISSING=\${MISSING}
    `,
    '.env': 'PORT=1000\nTAG=dotenv\nONLY_DOTENV=yes\n',
  };

  it('takes values from the process environment over .env', () => {
    const p = load(project(compose), { env: { PORT: '2000' } });
    assert.deepEqual(svc(p, 'web').create.cmd, ['node', 'server.js', '--port', '2000', '--tag', 'dotenv', '--cost', '$5']);
    assert.deepEqual(svc(p, 'web').create.env, ['ONLY_DOTENV=yes', 'MISSING=']);
    assert.deepEqual(p.warnings, ['compose.yaml:6: services.web.environment[1]: the "MISSING" variable is not set; defaulting to a blank string']);
  });

  it('--env-file replaces .env', () => {
    const dir = project({ ...compose, 'other.env': 'PORT=3000\n' });
    const p = load(dir, { envFiles: ['other.env'] });
    assert.deepEqual(svc(p, 'web').create.cmd.slice(3, 6), ['3000', '--tag', 'none']);
  });

  it('reports bad .env lines and bad templates with their lines', () => {
    const dir = project({
      'compose.yaml': `
        services:
          web:
            command: echo \${NAME:?set NAME first}
            hostname: \${HOST
      `,
      '.env': 'OK=1\nnot a line\n',
    });
    assert.deepEqual(errors(dir), [
      'compose.yaml:3: services.web.command: required variable NAME is missing a value: set NAME first',
      'compose.yaml:4: services.web.hostname: invalid interpolation in "${HOST": missing "}" to close "${HOST"',
      '.env:2: "not a line" is not NAME=VALUE (a name is letters, digits, _ . -, not starting with a digit)',
    ]);
  });
});

describe('services', () => {
  it('reads every supported key', () => {
    const dir = project({
      'compose.yaml': `
        x-top: {any: thing}
        services:
          web:
            image: nginx
            entrypoint: /usr/bin/env
            command: ["node", "server.js", 8080]
            working_dir: srv
            hostname: web1
            container_name: the-web
            environment:
              A: 1
              B: true
              FROM_ENV:
              UNSET:
            env_file:
              - base.env
              - path: optional.env
                required: false
            extra_hosts: ["db:10.0.0.5", "v6=[::1]"]
            dns: 9.9.9.9
            labels: [tier=front, bare]
            restart: on-failure:3
            stop_grace_period: 1m30s
            healthcheck:
              test: ["CMD", "curl", "-f", "http://localhost/"]
              interval: 5s
              timeout: 2s
              retries: 5
              start_period: 10s
            expose: ["3000", 3001]
            x-weft: {weight: 2}
          api:
            command: serve
            extra_hosts: {db: 10.0.0.6, many: [10.0.0.7, "::2"]}
            dns: [1.1.1.1, "2606:4700::1111"]
            labels: {a: b, n: 1}
            restart: "no"
            healthcheck:
              test: curl -f localhost
            environment: [FROM_ENV, "EQ=a=b", LATER]
            env_file: base.env
          off:
            command: x
            healthcheck: {disable: true, test: ["CMD", "x"]}
      `,
      'base.env': 'FROM_FILE=file\nA=overridden\nLATER=file\n',
    });
    const p = load(dir, { env: { FROM_ENV: 'env' } });
    const web = svc(p, 'web');
    assert.equal(web.image, 'nginx');
    assert.equal(web.containerName, 'the-web');
    assert.deepEqual(web.create, {
      cmd: ['/usr/bin/env', 'node', 'server.js', '8080'],
      env: ['FROM_FILE=file', 'A=1', 'LATER=file', 'B=true', 'FROM_ENV=env'],
      workdir: join(dir, 'srv'),
      hostname: 'web1',
      labels: { tier: 'front', bare: '', 'weft.weight': '2' },
      restart: { name: 'on-failure', maxRetries: 3 },
      extraHosts: ['db:10.0.0.5', 'v6:::1'],
      dns: ['9.9.9.9'],
      healthcheck: { test: ['CMD', 'curl', '-f', 'http://localhost/'], interval: 5000, timeout: 2000, retries: 5, start_period: 10_000, start_interval: 5000 },
      // the ports it serves (expose; named when a long-syntax port names one): policies' named ports
      expose: [{ port: 3000, protocol: 'tcp' }, { port: 3001, protocol: 'tcp' }],
    });
    assert.equal(web.stopGracePeriodMs, 90_000);
    assert.deepEqual(web.healthcheck, {
      test: ['CMD', 'curl', '-f', 'http://localhost/'],
      intervalMs: 5000,
      timeoutMs: 2000,
      retries: 5,
      startPeriodMs: 10_000,
      startIntervalMs: 5000,
    });
    assert.deepEqual(web.extensions, { 'x-weft': { weight: 2 } });
    assert.equal(web.balancer, undefined, 'x-weft.weight alone makes no balancer');
    assert.deepEqual(p.extensions, { 'x-top': { any: 'thing' } });

    const api = svc(p, 'api');
    assert.deepEqual(api.create.cmd, ['serve']);
    assert.equal(api.create.workdir, dir);
    assert.deepEqual(api.create.extraHosts, ['db:10.0.0.6', 'many:10.0.0.7', 'many:::2']);
    assert.deepEqual(api.create.dns, ['1.1.1.1', '2606:4700::1111']);
    assert.deepEqual(api.create.labels, { a: 'b', n: '1' });
    assert.deepEqual(api.create.restart, { name: 'no' });
    assert.deepEqual(api.create.env, ['FROM_FILE=file', 'A=overridden', 'LATER=file', 'FROM_ENV=env', 'EQ=a=b']);
    assert.deepEqual(api.healthcheck, { test: ['CMD-SHELL', 'curl -f localhost'], intervalMs: 30_000, timeoutMs: 30_000, retries: 3, startPeriodMs: 0, startIntervalMs: 5000 });
    assert.equal(api.stopGracePeriodMs, 10_000);
    assert.equal(svc(p, 'off').healthcheck, undefined);
  });

  it('accepts YAML anchors and merge keys', () => {
    const dir = project({
      'compose.yaml': `
        x-base: &base
          command: ["run"]
          restart: always
        services:
          a:
            <<: *base
          b:
            <<: *base
            restart: "no"
      `,
    });
    const p = load(dir);
    assert.deepEqual(svc(p, 'a').create.restart, { name: 'always' });
    assert.deepEqual(svc(p, 'b').create.restart, { name: 'no' });
    assert.deepEqual(svc(p, 'b').create.cmd, ['run']);
  });

  it('replicas from deploy.replicas or scale; names <project>-<service>-<n>', () => {
    const dir = project({
      'compose.yaml': `
        name: shop
        services:
          web:
            command: ["x"]
            deploy: {replicas: 3}
            ports: ["8000-8002:80", "9000"]
          worker:
            command: ["y"]
            scale: 0
      `,
    });
    const p = load(dir);
    const web = svc(p, 'web');
    assert.equal(web.replicas, 3);
    assert.equal(svc(p, 'worker').replicas, 0);
    const req = containerRequest(p, web, 3);
    assert.equal(req.name, 'shop-web-3');
    assert.deepEqual(req.ports, [
      { containerPort: 9000, protocol: 'tcp' },
      { containerPort: 80, hostPort: 8000, hostPortEnd: 8002, protocol: 'tcp' },
    ]);
    assert.deepEqual(
      Object.fromEntries(Object.entries(req.labels ?? {}).filter(([k]) => k !== LABELS.configHash)),
      {
        [LABELS.project]: 'shop',
        [LABELS.service]: 'web',
        [LABELS.number]: '3',
        [LABELS.oneoff]: 'False',
        [LABELS.workingDir]: dir,
        [LABELS.configFiles]: join(dir, 'compose.yaml'),
      },
    );
    assert.equal(req.labels?.[LABELS.configHash], web.configHash);
    assert.equal(req.start, false);
  });

  it('long port syntax', () => {
    const dir = project({
      'compose.yaml': `
        services:
          web:
            command: ["x"]
            ports:
              - target: 80
                published: "8080"
                host_ip: 127.0.0.1
                protocol: udp
                mode: host
                name: http
                app_protocol: http
              - target: 443
                published: 8443
              - target: 22
      `,
    });
    assert.deepEqual(svc(load(dir), 'web').create.ports, [
      { containerPort: 80, hostPort: 8080, hostIp: '127.0.0.1', protocol: 'udp' },
      { containerPort: 443, hostPort: 8443, protocol: 'tcp' },
      { containerPort: 22, protocol: 'tcp' },
    ]);
  });

  it('depends_on: short and long forms; start order is dependencies first, ties by name', () => {
    const dir = project({
      'compose.yaml': `
        services:
          web:
            command: ["x"]
            depends_on:
              api: {condition: service_started}
              db: {condition: service_healthy, restart: true}
              cache: {condition: service_completed_successfully, required: false}
          api:
            command: ["x"]
            depends_on: [db]
          db:
            command: ["x"]
            healthcheck: {test: ["CMD", "true"]}
          cache:
            command: ["x"]
          alone:
            command: ["x"]
      `,
    });
    const p = load(dir);
    assert.deepEqual(p.services.map((s) => s.name), ['alone', 'cache', 'db', 'api', 'web']);
    assert.deepEqual(svc(p, 'web').dependsOn, [
      { service: 'api', condition: 'service_started', required: true, restart: false },
      { service: 'db', condition: 'service_healthy', required: true, restart: true },
      { service: 'cache', condition: 'service_completed_successfully', required: false, restart: false },
    ]);
    assert.deepEqual(svc(p, 'api').dependsOn, [{ service: 'db', condition: 'service_started', required: true, restart: false }]);
  });

  it('profiles leave services out unless active', () => {
    const dir = project({
      'compose.yaml': `
        services:
          web:
            command: ["x"]
          debug:
            command: ["x"]
            profiles: [debug]
      `,
    });
    assert.deepEqual(load(dir).services.map((s) => s.name), ['web']);
    assert.deepEqual(load(dir).disabledServices, ['debug']);
    assert.deepEqual(load(dir, { profiles: ['debug'] }).services.map((s) => s.name), ['debug', 'web']);
    assert.deepEqual(load(dir, { env: { COMPOSE_PROFILES: 'debug' } }).services.map((s) => s.name), ['debug', 'web']);
  });

  it('the config hash changes with the service and only with it', () => {
    const a = project({ 'compose.yaml': 'services:\n  web:\n    command: ["x"]\n  db:\n    command: ["y"]\n' }, 'p');
    const b = project({ 'compose.yaml': 'services:\n  web:\n    command: ["x", "2"]\n  db:\n    command: ["y"]\n    scale: 2\n' }, 'p');
    const pa = load(a, { projectName: 'p' });
    const pb = load(b, { projectName: 'p' });
    // the project dirs differ (working_dir), so compare within one dir
    assert.notEqual(svc(pa, 'web').configHash, svc(pb, 'web').configHash);
    const again = load(a, { projectName: 'p' });
    assert.equal(svc(again, 'web').configHash, svc(pa, 'web').configHash);
    writeFileSync(join(a, 'compose.yaml'), 'services:\n  web:\n    command: ["x"]\n  db:\n    command: ["y"]\n    scale: 3\n');
    const scaled = load(a, { projectName: 'p' });
    assert.equal(svc(scaled, 'db').configHash, svc(pa, 'db').configHash);
    assert.equal(svc(scaled, 'web').configHash, svc(pa, 'web').configHash);
  });
});

describe('networks', () => {
  it('a service with no networks joins <project>_default, created only when used', () => {
    const p = load(project({ 'compose.yaml': 'services:\n  web:\n    command: ["x"]\n' }), { projectName: 'demo' });
    assert.deepEqual(p.networks.map((n) => [n.key, n.name, n.external]), [['default', 'demo_default', false]]);
    assert.deepEqual(svc(p, 'web').networks, [{ key: 'default', network: 'demo_default', aliases: ['web'], priority: 0 }]);
    const req = containerRequest(p, svc(p, 'web'), 1);
    assert.equal(req.network, 'demo_default');
    assert.deepEqual(req.aliases, ['web']);

    const q = load(project({ 'compose.yaml': 'services:\n  web:\n    command: ["x"]\n    networks: [a]\nnetworks:\n  a:\n  unused:\n' }), { projectName: 'demo' });
    assert.deepEqual(q.networks.map((n) => n.name), ['demo_a']);
  });

  it('list and map forms; the highest priority is primary, ties by name', () => {
    const dir = project({
      'compose.yaml': `
        services:
          web:
            command: ["x"]
            networks:
              zeta:
              back:
                aliases: [db-client, web-internal]
                ipv4_address: 10.9.0.10
                ipv6_address: fd00:9::10
              front:
                priority: 100
          job:
            command: ["x"]
            networks: [zeta, back]
        networks:
          front:
          back:
            enable_ipv6: true
            ipam:
              config:
                - subnet: 10.9.0.0/24
                - subnet: fd00:9::/64
          zeta:
      `,
    });
    const p = load(dir, { projectName: 'demo' });
    const web = svc(p, 'web');
    assert.deepEqual(web.networks, [
      { key: 'front', network: 'demo_front', aliases: ['web'], priority: 100 },
      { key: 'back', network: 'demo_back', aliases: ['web', 'db-client', 'web-internal'], ipv4: '10.9.0.10', ipv6: 'fd00:9::10', priority: 0 },
      { key: 'zeta', network: 'demo_zeta', aliases: ['web'], priority: 0 },
    ]);
    assert.deepEqual(svc(p, 'job').networks.map((n) => n.key), ['back', 'zeta']);
    assert.equal(containerRequest(p, web, 1).network, 'demo_front');
    assert.deepEqual(connectRequests(p, web, 1), [
      { network: 'demo_back', request: { container: 'demo-web-1', ipv4: '10.9.0.10', ipv6: 'fd00:9::10', aliases: ['web', 'db-client', 'web-internal'] } },
      { network: 'demo_zeta', request: { container: 'demo-web-1', aliases: ['web'] } },
    ]);
  });

  it('top-level keys become the NetworkCreate', () => {
    const dir = project({
      'compose.yaml': `
        services:
          web:
            command: ["x"]
            networks: [front, ext, old, default]
        networks:
          default:
            name: shared-default
          front:
            name: real-front
            driver: bridge
            driver_opts: {com.docker.network.driver.mtu: 1400, icc: "false"}
            internal: true
            attachable: true
            enable_ipv6: true
            labels: [team=net]
            ipam:
              driver: default
              config:
                - subnet: 10.1.0.0/24
                  ip_range: 10.1.0.128/25
                  gateway: 10.1.0.254
                - subnet: fd00:1::/64
            x-weft: {later: true}
          ext:
            external: true
          old:
            external:
              name: legacy-net
      `,
    });
    const p = load(dir, { projectName: 'demo' });
    const front = p.networks.find((n) => n.key === 'front');
    assert.ok(front?.create && front.configHash);
    assert.equal(front.name, 'real-front');
    assert.deepEqual(front.create, {
      name: 'real-front',
      driver: 'bridge',
      subnets: [{ subnet: '10.1.0.0/24', ipRange: '10.1.0.128/25', gateway: '10.1.0.254' }, { subnet: 'fd00:1::/64' }],
      ipv6: true,
      internal: true,
      options: { 'com.docker.network.driver.mtu': '1400', icc: 'false' },
      labels: { team: 'net', [LABELS.project]: 'demo', [LABELS.network]: 'front', [LABELS.configHash]: front.configHash },
    });
    assert.deepEqual(front.extensions, { 'x-weft': { later: true } });
    assert.deepEqual(
      p.networks.map((n) => [n.key, n.name, n.external, n.create === undefined]),
      [
        ['default', 'shared-default', false, false],
        ['ext', 'ext', true, true],
        ['front', 'real-front', false, false],
        ['old', 'legacy-net', true, true],
      ],
    );
    assert.deepEqual(p.warnings, ['compose.yaml:28: networks.old.external.name: external.name is deprecated; use "external: true" and "name: legacy-net"']);
  });

  it('network_mode host, none, bridge and service:NAME', () => {
    const dir = project({
      'compose.yaml': `
        services:
          h: {command: ["x"], network_mode: host}
          n: {command: ["x"], network_mode: none}
          b: {command: ["x"], network_mode: bridge, ports: ["80"]}
          side: {command: ["x"], network_mode: "service:main"}
          main: {command: ["x"]}
      `,
    });
    const p = load(dir, { projectName: 'demo' });
    assert.equal(containerRequest(p, svc(p, 'h'), 1).network, 'host');
    assert.equal(containerRequest(p, svc(p, 'n'), 1).network, 'none');
    assert.equal(containerRequest(p, svc(p, 'b'), 1).network, 'bridge');
    const side = svc(p, 'side');
    assert.deepEqual(side.networkMode, { service: 'main' });
    assert.deepEqual(side.networks, []);
    assert.equal(containerRequest(p, side, 1).network, undefined);
    assert.deepEqual(side.dependsOn, [{ service: 'main', condition: 'service_started', required: true, restart: false }]);
    assert.deepEqual(p.services.map((s) => s.name), ['b', 'h', 'main', 'n', 'side']);
    assert.deepEqual(p.networks.map((n) => n.name), ['demo_default']);
  });
});

describe('validation', () => {
  it('collects every problem with file:line and key path', () => {
    const dir = project({
      'compose.yaml': `
        version: "3.9"
        services:
          web:
            image: nginx
            netwrks: [front]
            ports:
              - "80:eighty"
              - target: 80
                published: abc
            volumes: [./data:/data]
            privileged: false
            cap_add: [NET_ADMIN]
            hostname: [a, b]
            depends_on: [api, dbb]
            networks: [frnt]
            restart: sometimes
          api:
            command: ["x"]
            depends_on:
              web: {condition: service_started}
            network_mode: service:nothere
          worker:
            build: .
            command: ["x"]
            deploy:
              replicas: 2
              resources: {limits: {cpus: "1"}}
            container_name: the-worker
            ports: ["8080:80"]
            depends_on:
              api: {condition: service_healthy}
          host:
            command: ["x"]
            network_mode: host
            networks: [front]
            ports: ["80:80"]
          fixed:
            command: ["x"]
            networks:
              front: {ipv4_address: 10.0.0.5}
              back: {ipv4_address: 10.2.0.5}
        netwroks: {}
        networks:
          front:
            driver: overlay
            ipam:
              config:
                - {subnet: 10.0.0.1/24}
          back:
            ipam: {config: [{subnet: 10.1.0.0/24}]}
          ext:
            external: true
            driver: bridge
      `,
    });
    assert.deepEqual(errors(dir), [
      'compose.yaml:3: services.web: weft runs host processes: give a command (or an entrypoint), e.g. command: ["node", "server.js"]; "image: nginx" alone cannot be run',
      'compose.yaml:5: services.web: unknown key "netwrks"; did you mean "networks"?',
      'compose.yaml:7: services.web.ports[0]: "80:eighty" is not a valid port mapping: container port "eighty" is not a number 1-65535 or a range like 8000-8010',
      'compose.yaml:9: services.web.ports[1].published: host port "abc" is not a number 0-65535 or a range like 8000-8010',
      "compose.yaml:10: services.web.volumes: not supported by weft (weft runs host processes, which see the host's filesystem: there are no images, volumes or mounts)",
      "compose.yaml:12: services.web.cap_add: not supported by weft (weft gives a container its own network namespace only: processes run with the agent's user, privileges, devices and namespaces)",
      'compose.yaml:13: services.web.hostname: expected a string, got a list',
      'compose.yaml:14: services.web.depends_on[1]: service "dbb" is not defined',
      'compose.yaml:15: services.web.networks[0]: network "frnt" is not defined under the top-level networks; did you mean "front"?',
      'compose.yaml:16: services.web.restart: "sometimes" is not a restart policy; use no, always, on-failure[:N] or unless-stopped',
      'compose.yaml:20: services.api.depends_on.web: dependency cycle: api -> web -> api',
      'compose.yaml:21: services.api.network_mode: service "nothere" is not defined',
      'compose.yaml:23: services.worker.build: not supported by weft (weft runs host processes, not images: there is nothing to build)',
      'compose.yaml:27: services.worker.deploy.resources: not supported by weft (weft sets no resource limits yet)',
      'compose.yaml:28: services.worker.container_name: container_name "the-worker" cannot name 2 replicas; remove it (replicas are named <project>-worker-<n>)',
      'compose.yaml:29: services.worker.ports[0]: host port 8080 cannot be published by each of 2 replicas; give a host range with one port per replica (e.g. "8000-8002:80") or leave the host port out',
      'compose.yaml:31: services.worker.depends_on.api: waits for "api" to be healthy, but "api" has no healthcheck (or it is disabled); add one or use condition: service_started',
      'compose.yaml:34: services.host.network_mode: network_mode and networks cannot both be set: network_mode replaces the networks',
      'compose.yaml:36: services.host.ports[0]: ports cannot be published with network_mode: host (the process binds host ports directly)',
      'compose.yaml:40: services.fixed.networks.front.ipv4_address: a fixed address needs a subnet: give networks.front.ipam.config with an IPv4 subnet',
      'compose.yaml:41: services.fixed.networks.back.ipv4_address: 10.2.0.5 is not inside the IPv4 subnets of network "back"',
      'compose.yaml:42: unknown key "netwroks"; did you mean "networks"?',
      'compose.yaml:45: networks.front.driver: driver "overlay" is not supported by weft yet; weft networks use the bridge driver (the default)',
      'compose.yaml:48: networks.front.ipam.config[0]: subnet 10.0.0.1/24 is not a network address; did you mean 10.0.0.0/24?',
      'compose.yaml:53: networks.ext.driver: an external network is created outside this project: "driver" cannot be set here (remove it, or drop "external")',
    ]);
  });

  it('reports YAML syntax errors and duplicate keys with their lines', () => {
    assert.deepEqual(errors(project({ 'compose.yaml': 'services:\n  web:\n    command: ["x"\n' })).length, 1);
    assert.match(errors(project({ 'compose.yaml': 'services:\n  web:\n    command: [x]\n    command: [y]\n' }))[0], /^compose.yaml:4: invalid YAML: Map keys must be unique/);
    assert.deepEqual(errors(project({ 'compose.yaml': '- a\n- b\n' })), ['compose.yaml:1: a compose file is a mapping (services:, networks: ...)']);
    assert.deepEqual(errors(project({ 'compose.yaml': '# nothing\n' })), ['compose.yaml: the file is empty; a compose file has at least services']);
  });

  it('unknown keys everywhere get a suggestion; x-* keys are allowed', () => {
    const dir = project({
      'compose.yaml': `
        x-anything: 1
        services:
          web:
            command: ["x"]
            x-weft: {}
            enviroment: {A: 1}
            networks:
              front: {alises: [a]}
            healthcheck: {test: ["CMD", "x"], intervl: 5s}
        networks:
          front:
            intenal: true
            x-note: fine
      `,
    });
    assert.deepEqual(errors(dir), [
      'compose.yaml:6: services.web: unknown key "enviroment"; did you mean "environment"?',
      'compose.yaml:8: services.web.networks.front: unknown key "alises"; did you mean "aliases"?',
      'compose.yaml:9: services.web.healthcheck: unknown key "intervl"; did you mean "interval"?',
      'compose.yaml:12: networks.front: unknown key "intenal"; did you mean "internal"?',
    ]);
  });

  it('an unsupported key that asks for nothing is accepted', () => {
    const p = load(project({ 'compose.yaml': 'services:\n  web:\n    command: ["x"]\n    privileged: false\n    volumes: []\n    tty: false\nvolumes: {}\n' }));
    assert.equal(p.services.length, 1);
  });

  it('checks env files, disabled dependencies and undefined services in depends_on', () => {
    const dir = project({
      'compose.yaml': `
        services:
          web:
            command: ["x"]
            env_file: [missing.env, {path: also-missing.env, required: false}, bad.env]
            depends_on:
              debug: {condition: service_started}
              ghost: {condition: service_started, required: false}
          debug:
            command: ["x"]
            profiles: [dbg]
      `,
      'bad.env': 'A=1\n=2\n',
    });
    assert.deepEqual(errors(dir), [
      `compose.yaml:4: services.web.env_file[0]: env file missing.env not found (paths are relative to the project directory ${dir})`,
      'compose.yaml:6: services.web.depends_on.debug: service "debug" is disabled: none of its profiles (dbg) is active; activate one with --profile',
      'bad.env:2: "=2" is not NAME=VALUE (a name is letters, digits, _ . -, not starting with a digit)',
    ]);
  });

  it('warns about the obsolete version key', () => {
    const p = load(project({ 'compose.yaml': 'version: "3"\nservices:\n  web:\n    command: ["x"]\n' }));
    assert.deepEqual(p.warnings, ['compose.yaml:1: version: the "version" key is obsolete and ignored']);
  });
});
