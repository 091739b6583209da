/**
 * The whole CLI (argument parsing, requests, output, exit codes) against a real HTTP server on
 * a temporary unix socket that answers like the agent with canned replies per test.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { encodeFrame, Frame, type ContainerView, type NetworkView } from '../api/schemas.js';
import { cliVersion, type Io } from './context.js';
import { main } from './main.js';

// ------------------------------------------------------------------ the answering server

interface Seen {
  method: string;
  path: string;
  query: URLSearchParams;
  body: unknown;
}
type Handler = (seen: Seen, res: http.ServerResponse) => void;
type Reply = { status?: number; json?: unknown } | Handler;

let dir: string;
let socket: string;
let server: http.Server;
let routes: Record<string, Reply> = {};
let requests: Seen[] = [];

function reply(res: http.ServerResponse, status: number, body?: unknown): void {
  if (body === undefined) {
    res.writeHead(status);
    res.end();
    return;
  }
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'weft-cli-main-'));
  socket = join(dir, 'agent.sock');
  server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://agent');
      const text = Buffer.concat(chunks).toString('utf8');
      const seen: Seen = { method: req.method ?? '', path: url.pathname, query: url.searchParams, body: text ? JSON.parse(text) : undefined };
      requests.push(seen);
      const route = routes[`${seen.method} ${seen.path}`];
      if (!route) return reply(res, 404, { message: `no such API route: ${seen.method} ${seen.path}` });
      if (typeof route === 'function') return route(seen, res);
      reply(res, route.status ?? 200, route.json);
    });
  });
  await new Promise<void>((resolve) => server.listen(socket, resolve));
});

after(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await rm(dir, { recursive: true, force: true });
});

beforeEach(() => {
  routes = {};
  requests = [];
});

// ------------------------------------------------------------------ running the CLI

const NOW = Date.parse('2025-06-01T12:00:00Z');

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

async function weft(args: string[], opts: { env?: NodeJS.ProcessEnv; input?: string[]; host?: string | null } = {}): Promise<Result> {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const input = [...(opts.input ?? [])];
  const io: Io = {
    stdout: { write: (c) => out.push(Buffer.from(c)) },
    stderr: { write: (c) => err.push(Buffer.from(c)) },
    env: opts.env ?? {},
    readLine: async () => input.shift() ?? null,
    now: () => NOW,
    onSignal: () => () => undefined,
  };
  const host = opts.host === undefined ? ['-H', `unix://${socket}`] : opts.host === null ? [] : ['-H', opts.host];
  const code = await main([...host, ...args], io);
  return { code, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() };
}

const ID1 = '1'.repeat(8) + 'a'.repeat(56);
const ID2 = '2'.repeat(8) + 'b'.repeat(56);

function containerView(over: Partial<ContainerView> & { cmd?: string[] } = {}): ContainerView {
  const { cmd, ...rest } = over;
  return {
    id: ID1,
    name: 'web',
    created: '2025-06-01T11:59:55Z',
    config: {
      cmd: cmd ?? ['sleep', '300'],
      env: [],
      hostname: 'web',
      labels: {},
      restart: { name: 'no', maxRetries: 0 },
      ports: [],
      networkMode: 'bridge',
      extraHosts: [],
      dns: [],
    },
    state: { phase: 'running', restartCount: 0, stoppedByUser: false },
    endpoints: {},
    ports: [],
    status: 'Up 5 seconds',
    networks: {},
    ...rest,
  };
}

function networkView(over: Partial<NetworkView> = {}): NetworkView {
  return {
    id: ID2,
    name: 'blue',
    driver: 'bridge',
    created: '2025-06-01T11:00:00Z',
    internal: false,
    enableIPv6: false,
    icc: true,
    mtu: 1500,
    options: {},
    labels: {},
    subnets: [],
    builtin: false,
    containers: {},
    ...over,
  };
}

function last(method: string, path: string): Seen {
  const found = requests.filter((r) => r.method === method && r.path === path);
  assert.ok(found.length, `expected a ${method} ${path}; saw ${requests.map((r) => `${r.method} ${r.path}`).join(', ')}`);
  return found[found.length - 1];
}

function frames(...parts: [number, string][]): Handler {
  return (_seen, res) => {
    res.writeHead(200, { 'content-type': 'application/vnd.weft.stream' });
    for (const [stream, text] of parts) res.write(encodeFrame(stream, text));
    res.end();
  };
}

// ------------------------------------------------------------------ run / create

describe('run: arguments', () => {
  beforeEach(() => {
    routes['POST /v1/containers'] = { status: 201, json: containerView() };
  });

  it("everything after the command is the command's, options included", async () => {
    const r = await weft(['run', '-d', '--name', 'x', 'sh', '-c', 'echo hi', '-e']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `${ID1}\n`);
    assert.deepEqual(last('POST', '/v1/containers').body, { name: 'x', cmd: ['sh', '-c', 'echo hi', '-e'], start: true });
  });

  it('flags that look like run flags after the command stay in the command', async () => {
    await weft(['run', '-d', 'env', '--name', 'notmine', '-p', '80', '-d', '--', '-x']);
    assert.deepEqual(last('POST', '/v1/containers').body, {
      cmd: ['env', '--name', 'notmine', '-p', '80', '-d', '--', '-x'],
      start: true,
    });
  });

  it('-- before the command ends the options', async () => {
    await weft(['run', '-d', '--', '-weird-binary', 'arg']);
    assert.deepEqual(last('POST', '/v1/containers').body, { cmd: ['-weird-binary', 'arg'], start: true });
  });

  it('every option becomes its request field', async () => {
    const envFile = join(dir, 'app.env');
    await writeFile(envFile, '# settings\nFROM_FILE=1\nA=from-file\n');
    const r = await weft(
      [
        'run', '-d',
        '--name', 'api',
        '--network', 'blue', '--ip', '10.1.0.9', '--ip6', 'fd00:1::9',
        '--network-alias', 'web', '--network-alias', 'www',
        '-p', '8080:80', '-p', '127.0.0.1::53/udp',
        '--env-file', envFile, '-e', 'A=1', '-e', 'HOME', '-e', 'UNSET',
        '-w', '/srv', '-h', 'box', '-l', 'tier=front', '--label', 'flag',
        '--restart', 'on-failure:2',
        '--add-host', 'db:10.0.0.5', '--dns', '1.1.1.1', '--dns', '2606:4700::1111',
        'server', '--port', '80',
      ],
      { env: { HOME: '/home/me' } },
    );
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(last('POST', '/v1/containers').body, {
      name: 'api',
      cmd: ['server', '--port', '80'],
      env: ['FROM_FILE=1', 'A=from-file', 'A=1', 'HOME=/home/me'],
      workdir: '/srv',
      hostname: 'box',
      labels: { tier: 'front', flag: '' },
      restart: { name: 'on-failure', maxRetries: 2 },
      ports: [
        { containerPort: 80, hostPort: 8080, protocol: 'tcp' },
        { containerPort: 53, hostIp: '127.0.0.1', protocol: 'udp' },
      ],
      network: 'blue',
      ipv4: '10.1.0.9',
      ipv6: 'fd00:1::9',
      aliases: ['web', 'www'],
      extraHosts: ['db:10.0.0.5'],
      dns: ['1.1.1.1', '2606:4700::1111'],
      start: true,
    });
  });

  it('create: same options, not started', async () => {
    const r = await weft(['create', '--name', 'c', '-p', '80', 'sleep', '9']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `${ID1}\n`);
    assert.deepEqual(last('POST', '/v1/containers').body, {
      name: 'c',
      cmd: ['sleep', '9'],
      ports: [{ containerPort: 80, protocol: 'tcp' }],
      start: false,
    });
  });
});

describe('run: failures exit 125 with one line', () => {
  it('an unknown option before the command', async () => {
    const r = await weft(['run', '--bogus', 'sh']);
    assert.equal(r.code, 125);
    assert.equal(r.stderr, "Error: unknown option '--bogus'\n");
    assert.equal(requests.length, 0);
  });

  it('no command', async () => {
    const r = await weft(['run', '-d']);
    assert.equal(r.code, 125);
    assert.match(r.stderr, /^Error: missing required argument 'command'\n$/);
  });

  it('a bad -p', async () => {
    const r = await weft(['run', '-d', '-p', '8080:80-81', 'sh']);
    assert.equal(r.code, 125);
    assert.match(r.stderr, /^Error: invalid port spec '8080:80-81': .*same length\n$/);
    assert.equal(requests.length, 0);
  });

  it("the agent's refusal", async () => {
    routes['POST /v1/containers'] = { status: 409, json: { message: 'container name x is in use: pick another --name' } };
    const r = await weft(['run', '-d', '--name', 'x', 'sh']);
    assert.equal(r.code, 125);
    assert.equal(r.stderr, 'Error: container name x is in use: pick another --name\n');
  });

  it('a missing env file', async () => {
    const r = await weft(['create', '--env-file', join(dir, 'nope.env'), 'sh']);
    assert.equal(r.code, 125);
    assert.match(r.stderr, /^Error: cannot read --env-file .*nope\.env: no such file\n$/);
  });

  it('--rm with -d asks the agent to remove it once it exits', async () => {
    routes['POST /v1/containers'] = { status: 201, json: containerView() };
    const r = await weft(['run', '-d', '--rm', 'sh']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal((requests.at(-1)?.body as { autoRemove?: boolean }).autoRemove, true);
  });

  it('no agent', async () => {
    const r = await weft(['run', '-d', 'sh'], { host: join(dir, 'absent.sock') });
    assert.equal(r.code, 125);
    assert.match(r.stderr, /^Error: cannot reach the weft agent at .*absent\.sock: is it running\?/);
  });

  it('-h is --hostname for run; --help is help', async () => {
    routes['POST /v1/containers'] = { status: 201, json: containerView() };
    await weft(['run', '-d', '-h', 'box', 'sh']);
    assert.equal((last('POST', '/v1/containers').body as { hostname: string }).hostname, 'box');
    const help = await weft(['run', '--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /Usage: weft run \[options\] <command\.\.\.>/);
  });
});

describe('run: foreground', () => {
  it('streams the output, exits with the container code, removes it with --rm', async () => {
    routes['POST /v1/containers'] = { status: 201, json: containerView() };
    routes[`GET /v1/containers/${ID1}/logs`] = frames([Frame.stdout, 'hi\n'], [Frame.stderr, 'warn\n']);
    routes[`POST /v1/containers/${ID1}/wait`] = { json: { exitCode: 3 } };
    routes[`DELETE /v1/containers/${ID1}`] = { status: 204 };
    const r = await weft(['run', '--rm', 'sh', '-c', 'echo hi; echo warn >&2; exit 3']);
    assert.equal(r.code, 3);
    assert.equal(r.stdout, 'hi\n');
    assert.equal(r.stderr, 'warn\n');
    assert.equal(last('GET', `/v1/containers/${ID1}/logs`).query.toString(), 'follow=1&stdout=1&stderr=1');
    assert.equal(last('POST', '/v1/containers').body && (last('POST', '/v1/containers').body as { start: boolean }).start, true);
    assert.equal(last('DELETE', `/v1/containers/${ID1}`).query.get('force'), '1');
  });

  it('exit 0 and no removal without --rm', async () => {
    routes['POST /v1/containers'] = { status: 201, json: containerView() };
    routes[`GET /v1/containers/${ID1}/logs`] = frames();
    routes[`POST /v1/containers/${ID1}/wait`] = { json: { exitCode: 0 } };
    const r = await weft(['run', 'true']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(requests.filter((q) => q.method === 'DELETE').length, 0);
  });
});

// ------------------------------------------------------------------ exec, logs, lifecycle

describe('exec', () => {
  it("exits with the command's code; options before the container only", async () => {
    routes['POST /v1/containers/web/exec'] = frames([Frame.stdout, 'out'], [Frame.stderr, 'err'], [Frame.exit, '7']);
    const r = await weft(['exec', '-e', 'A=1', '-w', '/tmp', 'web', 'sh', '-c', 'exit 7', '-e', 'B=2']);
    assert.equal(r.code, 7);
    assert.equal(r.stdout, 'out');
    assert.equal(r.stderr, 'err');
    assert.deepEqual(last('POST', '/v1/containers/web/exec').body, { cmd: ['sh', '-c', 'exit 7', '-e', 'B=2'], env: ['A=1'], workdir: '/tmp' });
  });

  it('a -- after the container is a separator', async () => {
    routes['POST /v1/containers/web/exec'] = frames([Frame.exit, '0']);
    const r = await weft(['exec', 'web', '--', 'ls', '-l']);
    assert.equal(r.code, 0);
    assert.deepEqual(last('POST', '/v1/containers/web/exec').body, { cmd: ['ls', '-l'] });
  });

  it('a stopped container: the agent says so', async () => {
    routes['POST /v1/containers/web/exec'] = { status: 409, json: { message: 'container web is not running' } };
    const r = await weft(['exec', 'web', 'ls']);
    assert.equal(r.code, 1);
    assert.equal(r.stderr, 'Error: container web is not running\n');
  });
});

describe('logs, stop, start, restart, rm', () => {
  it('logs -f --tail', async () => {
    routes['GET /v1/containers/web/logs'] = frames([Frame.stdout, 'a\n'], [Frame.stderr, 'b\n']);
    const r = await weft(['logs', '-f', '--tail', '5', 'web']);
    assert.equal(r.code, 0);
    assert.equal(r.stdout, 'a\n');
    assert.equal(r.stderr, 'b\n');
    assert.equal(last('GET', '/v1/containers/web/logs').query.toString(), 'follow=1&stdout=1&stderr=1&tail=5');
  });

  it('stop -t and each name printed; one failure makes exit 1', async () => {
    routes['POST /v1/containers/a/stop'] = { json: containerView() };
    routes['POST /v1/containers/b/stop'] = { status: 404, json: { message: 'no such container: b' } };
    const r = await weft(['stop', '-t', '3', 'a', 'b']);
    assert.equal(r.code, 1);
    assert.equal(r.stdout, 'a\n');
    assert.equal(r.stderr, 'Error: no such container: b\n');
    assert.equal(last('POST', '/v1/containers/a/stop').query.get('t'), '3');
  });

  it('start, restart, rm -f', async () => {
    routes['POST /v1/containers/a/start'] = { json: containerView() };
    routes['POST /v1/containers/a/restart'] = { json: containerView() };
    routes['DELETE /v1/containers/a'] = { status: 204 };
    assert.deepEqual(await weft(['start', 'a']), { code: 0, stdout: 'a\n', stderr: '' });
    assert.deepEqual(await weft(['restart', 'a']), { code: 0, stdout: 'a\n', stderr: '' });
    assert.equal(last('POST', '/v1/containers/a/restart').query.toString(), '');
    assert.deepEqual(await weft(['rm', '-f', 'a']), { code: 0, stdout: 'a\n', stderr: '' });
    assert.equal(last('DELETE', '/v1/containers/a').query.get('force'), '1');
    assert.deepEqual(await weft(['container', 'remove', 'a']), { code: 0, stdout: 'a\n', stderr: '' });
  });
});

// ------------------------------------------------------------------ ps, inspect, port

describe('ps', () => {
  const list = [
    containerView(),
    containerView({
      id: ID2,
      name: 'db',
      created: '2025-06-01T10:00:00Z',
      cmd: ['sh', '-c', 'while true; do echo hi; done'],
      status: 'Exited (0) 2 minutes ago',
      ports: [
        { hostIp: '0.0.0.0', hostPort: 8080, containerPort: 80, protocol: 'tcp' },
        { hostIp: '::', hostPort: 8080, containerPort: 80, protocol: 'tcp' },
      ],
    }),
  ];

  it('the table', async () => {
    routes['GET /v1/containers'] = { json: list };
    const r = await weft(['ps']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(
      r.stdout,
      [
        'CONTAINER ID   COMMAND                  CREATED         STATUS                     PORTS                                     NAMES',
        '11111111aaaa   "sleep 300"              5 seconds ago   Up 5 seconds                                                         web',
        '22222222bbbb   "sh -c while true; d…"   2 hours ago     Exited (0) 2 minutes ago   0.0.0.0:8080->80/tcp, [::]:8080->80/tcp   db',
        '',
      ].join('\n'),
    );
    assert.equal(last('GET', '/v1/containers').query.toString(), '');
  });

  it('filters and -a go to the query; a status filter implies -a', async () => {
    routes['GET /v1/containers'] = { json: [] };
    await weft(['ps', '-a', '-f', 'name=web', '-f', 'label=a=b', '-f', 'name=db']);
    assert.equal(last('GET', '/v1/containers').query.toString(), 'all=1&name=web&name=db&label=a%3Db');
    await weft(['ps', '-f', 'status=exited']);
    assert.equal(last('GET', '/v1/containers').query.toString(), 'all=1&status=exited');
  });

  it('an unknown filter is an error before any request', async () => {
    const r = await weft(['ps', '-f', 'ancestor=alpine']);
    assert.equal(r.code, 1);
    assert.equal(r.stderr, "Error: invalid filter 'ancestor': ps accepts name, label, id, status\n");
    assert.equal(requests.length, 0);
  });

  it('-q, --no-trunc -q, --format json', async () => {
    routes['GET /v1/containers'] = { json: list };
    assert.equal((await weft(['ps', '-q'])).stdout, '11111111aaaa\n22222222bbbb\n');
    assert.equal((await weft(['ps', '-q', '--no-trunc'])).stdout, `${ID1}\n${ID2}\n`);
    const j = await weft(['container', 'ls', '--format', 'json']);
    assert.deepEqual(JSON.parse(j.stdout), list);
    const bad = await weft(['ps', '--format', '{{.ID}}']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /unsupported --format/);
  });
});

describe('inspect and port', () => {
  it('containers first, then networks; a missing one is an error, the rest still printed', async () => {
    routes['GET /v1/containers/web'] = { json: containerView() };
    routes['GET /v1/containers/blue'] = { status: 404, json: { message: 'no such container: blue' } };
    routes['GET /v1/networks/blue'] = { json: networkView() };
    routes['GET /v1/containers/nope'] = { status: 404, json: { message: 'no such container: nope' } };
    routes['GET /v1/networks/nope'] = { status: 404, json: { message: 'no such network: nope' } };
    const r = await weft(['inspect', 'web', 'blue', 'nope']);
    assert.equal(r.code, 1);
    assert.deepEqual(JSON.parse(r.stdout), [containerView(), networkView()]);
    assert.equal(r.stderr, 'Error: no such object: nope\n');
    assert.match(r.stdout, /^\[\n {4}\{/);
  });

  it('--type narrows the lookup', async () => {
    routes['GET /v1/networks/blue'] = { json: networkView() };
    const r = await weft(['inspect', '--type', 'network', 'blue']);
    assert.equal(r.code, 0);
    assert.equal(requests.length, 1);
    const c = await weft(['inspect', '--type', 'container', 'blue']);
    assert.equal(c.code, 1);
    assert.equal(c.stderr, 'Error: no such container: blue\n');
    assert.equal(c.stdout, '[]\n');
    const bad = await weft(['inspect', '--type', 'volume', 'x']);
    assert.match(bad.stderr, /invalid --type 'volume'/);
  });

  it('port', async () => {
    routes['GET /v1/containers/web'] = {
      json: containerView({
        ports: [
          { hostIp: '0.0.0.0', hostPort: 32768, containerPort: 80, protocol: 'tcp' },
          { hostIp: '::', hostPort: 32768, containerPort: 80, protocol: 'tcp' },
          { hostIp: '127.0.0.1', hostPort: 5353, containerPort: 53, protocol: 'udp' },
        ],
      }),
    };
    assert.equal(
      (await weft(['port', 'web'])).stdout,
      '53/udp -> 127.0.0.1:5353\n80/tcp -> 0.0.0.0:32768\n80/tcp -> [::]:32768\n',
    );
    assert.equal((await weft(['port', 'web', '80'])).stdout, '0.0.0.0:32768\n[::]:32768\n');
    assert.equal((await weft(['port', 'web', '53/udp'])).stdout, '127.0.0.1:5353\n');
    const none = await weft(['port', 'web', '53']);
    assert.equal(none.code, 1);
    assert.equal(none.stderr, "Error: no public port '53/tcp' published for web\n");
  });
});

// ------------------------------------------------------------------ networks

describe('network', () => {
  it('create: subnets with the ip-range and gateway of the same position and family', async () => {
    routes['POST /v1/networks'] = { status: 201, json: networkView() };
    const r = await weft([
      'network', 'create',
      '--subnet', '10.1.0.0/16', '--subnet', 'fd00:1::/64', '--subnet', '10.2.0.0/16',
      '--gateway', 'fd00:1::1', '--gateway', '10.1.0.1', '--gateway', '10.2.0.254',
      '--ip-range', '10.1.1.0/24',
      '--ipv6', '--internal', '-o', 'com.docker.network.bridge.name=br-blue', '--label', 'team=net',
      '-d', 'bridge',
      'blue',
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `${ID2}\n`);
    assert.deepEqual(last('POST', '/v1/networks').body, {
      name: 'blue',
      driver: 'bridge',
      subnets: [
        { subnet: '10.1.0.0/16', ipRange: '10.1.1.0/24', gateway: '10.1.0.1' },
        { subnet: 'fd00:1::/64', gateway: 'fd00:1::1' },
        { subnet: '10.2.0.0/16', gateway: '10.2.0.254' },
      ],
      ipv6: true,
      internal: true,
      options: { 'com.docker.network.bridge.name': 'br-blue' },
      labels: { team: 'net' },
    });
  });

  it('create: the smallest request', async () => {
    routes['POST /v1/networks'] = { status: 201, json: networkView() };
    await weft(['network', 'create', 'blue']);
    assert.deepEqual(last('POST', '/v1/networks').body, { name: 'blue' });
  });

  it('create: errors name the flag', async () => {
    const cases: [string[], RegExp][] = [
      [['--gateway', '10.0.0.1', 'x'], /^Error: --gateway 10\.0\.0\.1 has no IPv4 --subnet to go with/],
      [['--subnet', '10.0.0.0/24', '--ip-range', 'fd00::/64', 'x'], /--ip-range fd00::\/64 has no IPv6 --subnet/],
      [['--subnet', '10.0.0.0', 'x'], /invalid --subnet '10\.0\.0\.0': expected a CIDR/],
      [['--subnet', '10.0.0.0/33', 'x'], /invalid --subnet/],
      [['--driver', 'overlay', 'x'], /unsupported --driver 'overlay'/],
      [['-o', 'mtu', 'x'], /invalid --opt 'mtu'/],
      [[], /missing required argument 'name'/],
    ];
    for (const [args, pattern] of cases) {
      const r = await weft(['network', 'create', ...args]);
      assert.equal(r.code, 1, args.join(' '));
      assert.match(r.stderr, pattern);
      assert.equal(r.stderr.split('\n').length, 2, `one line: ${r.stderr}`);
    }
    assert.equal(requests.length, 0);
  });

  it('ls: the table, sorted by name; filters; -q; json', async () => {
    const nets = [networkView(), networkView({ id: ID1, name: 'bridge', builtin: true })];
    routes['GET /v1/networks'] = { json: nets };
    const r = await weft(['network', 'ls', '-f', 'driver=bridge', '--filter', 'name=b']);
    assert.equal(
      r.stdout,
      ['NETWORK ID     NAME      DRIVER    SCOPE', '22222222bbbb   blue      bridge    local', '11111111aaaa   bridge    bridge    local', ''].join('\n'),
    );
    assert.equal(last('GET', '/v1/networks').query.toString(), 'driver=bridge&name=b');
    assert.equal((await weft(['network', 'list', '-q'])).stdout, '22222222bbbb\n11111111aaaa\n');
    assert.deepEqual(JSON.parse((await weft(['network', 'ls', '--format', 'json'])).stdout), nets);
    const bad = await weft(['network', 'ls', '-f', 'scope=local']);
    assert.equal(bad.stderr, "Error: invalid filter 'scope': network ls accepts name, driver, label, id\n");
  });

  it('inspect: found ones printed, missing ones an error each, exit 1', async () => {
    routes['GET /v1/networks/blue'] = { json: networkView() };
    routes['GET /v1/networks/nope'] = { status: 404, json: { message: 'network nope not found' } };
    const r = await weft(['network', 'inspect', 'blue', 'nope']);
    assert.equal(r.code, 1);
    assert.deepEqual(JSON.parse(r.stdout), [networkView()]);
    assert.equal(r.stderr, 'Error: no such network: nope\n');
  });

  it('rm: each removed name printed, each failure one line, exit 1', async () => {
    routes['DELETE /v1/networks/a'] = { status: 204 };
    routes['DELETE /v1/networks/b'] = { status: 409, json: { message: 'network b is in use by container web: disconnect it first' } };
    routes['DELETE /v1/networks/c'] = { status: 204 };
    const r = await weft(['network', 'rm', 'a', 'b', 'c']);
    assert.equal(r.code, 1);
    assert.equal(r.stdout, 'a\nc\n');
    assert.equal(r.stderr, 'Error: network b is in use by container web: disconnect it first\n');
  });

  it('connect and disconnect', async () => {
    routes['POST /v1/networks/blue/connect'] = { json: containerView() };
    routes['POST /v1/networks/blue/disconnect'] = { json: containerView() };
    const c = await weft(['network', 'connect', '--ip', '10.1.0.7', '--ip6', 'fd00::7', '--alias', 'a', '--alias', 'b', 'blue', 'web']);
    assert.equal(c.code, 0, c.stderr);
    assert.deepEqual(last('POST', '/v1/networks/blue/connect').body, { container: 'web', ipv4: '10.1.0.7', ipv6: 'fd00::7', aliases: ['a', 'b'] });
    await weft(['network', 'disconnect', '-f', 'blue', 'web']);
    assert.deepEqual(last('POST', '/v1/networks/blue/disconnect').body, { container: 'web', force: true });
    const bad = await weft(['network', 'connect', '--ip', 'fd00::7', 'blue', 'web']);
    assert.equal(bad.stderr, "Error: invalid --ip 'fd00::7': expected an IPv4 address\n");
  });

  it('prune asks first; -f does not', async () => {
    routes['POST /v1/networks/prune'] = { json: { deleted: ['blue', 'red'] } };
    const no = await weft(['network', 'prune'], { input: ['n'] });
    assert.equal(no.code, 0);
    assert.match(no.stdout, /Are you sure you want to continue\? \[y\/N\] $/);
    assert.equal(requests.length, 0);
    const eof = await weft(['network', 'prune']);
    assert.equal(eof.code, 0);
    assert.equal(requests.length, 0);
    const yes = await weft(['network', 'prune'], { input: ['y'] });
    assert.match(yes.stdout, /Deleted Networks:\nblue\nred\n$/);
    const forced = await weft(['network', 'prune', '-f']);
    assert.equal(forced.stdout, 'Deleted Networks:\nblue\nred\n');
  });
});

// ------------------------------------------------------------------ system

describe('system, version, info, events', () => {
  it('system check: leaks one per line and exit 1; none: "no leaks"', async () => {
    routes['GET /v1/system/check'] = {
      json: { leaks: [{ kind: 'link', name: 'wv1234', detail: 'veth with no container' }, { kind: 'netns', name: 'weft-abc', detail: 'no container' }] },
    };
    const r = await weft(['system', 'check']);
    assert.equal(r.code, 1);
    assert.equal(r.stdout, 'link wv1234: veth with no container\nnetns weft-abc: no container\n');
    routes['GET /v1/system/check'] = { json: { leaks: [] } };
    assert.deepEqual(await weft(['system', 'check']), { code: 0, stdout: 'no leaks\n', stderr: '' });
  });

  it('system prune -a -f', async () => {
    routes['POST /v1/system/prune'] = { json: { containers: ['web'], networks: ['blue'] } };
    const r = await weft(['system', 'prune', '-a', '-f']);
    assert.equal(r.stdout, 'Deleted Containers:\nweb\n\nDeleted Networks:\nblue\n');
    assert.deepEqual(last('POST', '/v1/system/prune').body, { all: true });
    await weft(['system', 'prune', '-f']);
    assert.deepEqual(last('POST', '/v1/system/prune').body, {});
  });

  it('version: client and agent; the client part stays when the agent is away', async () => {
    routes['GET /v1/version'] = { json: { version: '0.1.0', apiVersion: '1', node: 'v20.20.2', os: 'linux/x64', kernel: '6.18.0' } };
    const r = await weft(['version']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^Client:\\n Version: +${cliVersion().replace(/\./g, '\\.')}\\n`));
    assert.match(r.stdout, /\n\nAgent:\n Version: +0\.1\.0\n API version: +1\n/);
    const away = await weft(['version'], { host: join(dir, 'absent.sock') });
    assert.equal(away.code, 1);
    assert.match(away.stdout, /^Client:/);
    assert.match(away.stderr, /^Error: cannot reach the weft agent/);
    const j = await weft(['version', '--format', 'json']);
    assert.equal(JSON.parse(j.stdout).server.apiVersion, '1');
  });

  it('info', async () => {
    routes['GET /v1/info'] = {
      json: { containers: 3, running: 1, stopped: 2, networks: 4, store: 'sqlite', stateDir: '/var/lib/weft', socket: socket, nodeId: 'n1', kernel: '6.18', nftables: true },
    };
    const r = await weft(['info']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Containers: +3\n {3}Running: +1\n {3}Stopped: +2\n Networks: +4\n/);
    assert.match(r.stdout, /nftables: +yes/);
  });

  it('events: one line per event like docker', async () => {
    routes['GET /v1/events'] = (_seen, res) => {
      res.writeHead(200, { 'content-type': 'application/x-ndjson' });
      res.end(
        `${JSON.stringify({ revision: 7, time: '2025-06-01T12:00:00.000Z', type: 'container', action: 'start', id: ID1, name: 'web', attributes: { network: 'blue' } })}\n`,
      );
    };
    const r = await weft(['events', '--since', '5']);
    assert.equal(r.stdout, `2025-06-01T12:00:00.000Z container start ${ID1} (name=web, network=blue)\n`);
    assert.equal(last('GET', '/v1/events').query.get('since'), '5');
  });
});

// ------------------------------------------------------------------ hosts, usage, global flags

describe('hosts and usage', () => {
  it('no agent: one line with the fix, exit 1', async () => {
    const path = join(dir, 'none.sock');
    const r = await weft(['ps'], { host: `unix://${path}` });
    assert.equal(r.code, 1);
    assert.equal(
      r.stderr,
      `Error: cannot reach the weft agent at ${path}: is it running? (start it with 'weft agent', or set WEFT_HOST / -H)\n`,
    );
    assert.equal(r.stdout, '');
  });

  it('WEFT_HOST when there is no -H; -H wins over it', async () => {
    routes['GET /v1/containers'] = { json: [] };
    const viaEnv = await weft(['ps', '-q'], { host: null, env: { WEFT_HOST: `unix://${socket}` } });
    assert.equal(viaEnv.code, 0, viaEnv.stderr);
    const path = join(dir, 'other.sock');
    const viaFlag = await weft(['ps'], { host: path, env: { WEFT_HOST: `unix://${socket}` } });
    assert.match(viaFlag.stderr, new RegExp(`at ${path.replace(/[.]/g, '\\.')}:`));
  });

  it('the default socket when neither is set', async () => {
    const r = await weft(['ps'], { host: null, env: {} });
    // On a test machine nothing listens there (or we may not reach it): either way the message names it.
    if (r.code !== 0) assert.match(r.stderr, /\/run\/weft\/weft\.sock/);
  });

  it('a tcp:// host is refused with the reason', async () => {
    const r = await weft(['ps'], { host: 'tcp://127.0.0.1:2375' });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^Error: unsupported host 'tcp:\/\/127\.0\.0\.1:2375'/);
  });

  it('unknown commands and options: one line, exit 1', async () => {
    const r = await weft(['nework', 'ls']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^Error: unknown command 'nework'.*network/);
    assert.equal(r.stderr.split('\n').length, 2);
    const o = await weft(['ps', '--bogus']);
    assert.equal(o.code, 1);
    assert.equal(o.stderr, "Error: unknown option '--bogus'\n");
  });

  it('--version and --help exit 0', async () => {
    const v = await weft(['--version'], { host: null });
    assert.deepEqual(v, { code: 0, stdout: `${cliVersion()}\n`, stderr: '' });
    const h = await weft(['--help'], { host: null });
    assert.equal(h.code, 0);
    assert.match(h.stdout, /Usage: weft/);
    assert.match(h.stdout, /network/);
  });
});
