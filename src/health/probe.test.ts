import assert from 'node:assert/strict';
import { once } from 'node:events';
import { type Server, createServer as createHttpServer } from 'node:http';
import { type AddressInfo, type Socket, createServer } from 'node:net';
import { after, describe, it } from 'node:test';
import { type ProbeTarget, runProbe } from './probe.js';
import type { HealthSpec } from './spec.js';

const LOCAL = '127.0.0.1';

function spec(test: string[], timeoutMs = 2000): HealthSpec {
  return { test, intervalMs: 1000, timeoutMs, retries: 3, startPeriodMs: 0 };
}

const noExec: ProbeTarget['exec'] = () => Promise.reject(new Error('exec not expected'));

async function listen(server: Server | ReturnType<typeof createServer>): Promise<number> {
  server.listen(0, LOCAL);
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

describe('runProbe TCP', () => {
  it('passes when the port accepts a connection', async () => {
    const server = createServer((s) => s.end());
    const port = await listen(server);
    after(() => server.close());
    const r = await runProbe(spec(['TCP', String(port)]), { ip: LOCAL, exec: noExec });
    assert.equal(r.exitCode, 0);
    assert.equal(r.output, `connected to 127.0.0.1:${port}`);
    assert.ok(Date.parse(r.start) <= Date.parse(r.end));
  });

  it('fails with the error code on a closed port', async () => {
    const server = createServer();
    const port = await listen(server);
    server.close();
    await once(server, 'close');
    const r = await runProbe(spec(['TCP', String(port)]), { ip: LOCAL, exec: noExec });
    assert.deepEqual([r.exitCode, r.output], [1, `connect 127.0.0.1:${port}: ECONNREFUSED`]);
  });

  it('fails without an address', async () => {
    const r = await runProbe(spec(['TCP', '80']), { exec: noExec });
    assert.deepEqual([r.exitCode, r.output], [-1, 'no address']);
  });
});

describe('runProbe HTTP', () => {
  const seen: string[] = [];
  const open = new Set<Socket>();
  const server = createHttpServer((req, res) => {
    seen.push(req.url ?? '');
    if (req.url === '/ok') res.writeHead(200).end('fine');
    else if (req.url === '/moved') res.writeHead(302, { location: '/ok' }).end();
    else if (req.url === '/down') res.writeHead(503).end('busy');
    // '/hang' never answers
  });
  server.on('connection', (s) => {
    open.add(s);
    s.on('close', () => open.delete(s));
  });
  let port = 0;
  const target = { ip: LOCAL, exec: noExec };
  after(() => {
    server.closeAllConnections();
    server.close();
  });

  it('passes on 200 and 3xx, GETting the path', async () => {
    port = await listen(server);
    const ok = await runProbe(spec(['HTTP', String(port), '/ok']), target);
    assert.deepEqual([ok.exitCode, ok.output], [0, 'HTTP 200']);
    const moved = await runProbe(spec(['HTTP', String(port), '/moved']), target);
    assert.deepEqual([moved.exitCode, moved.output], [0, 'HTTP 302']);
    assert.deepEqual(seen.slice(-2), ['/ok', '/moved']);
  });

  it('fails on 503', async () => {
    const r = await runProbe(spec(['HTTP', String(port), '/down']), target);
    assert.deepEqual([r.exitCode, r.output], [1, 'HTTP 503']);
  });

  it('times out on a server that never answers, and closes its connection', async () => {
    const r = await runProbe(spec(['HTTP', String(port), '/hang'], 100), target);
    assert.deepEqual([r.exitCode, r.output], [-1, 'health check timed out after 100ms']);
    // The probe destroyed its request: the server sees every connection close.
    while (open.size > 0) await once([...open][0], 'close');
  });

  it('fails with the error code when nothing listens', async () => {
    const closed = createServer();
    const closedPort = await listen(closed);
    closed.close();
    await once(closed, 'close');
    const r = await runProbe(spec(['HTTP', String(closedPort), '/ok']), target);
    assert.deepEqual([r.exitCode, r.output], [1, `GET http://127.0.0.1:${closedPort}/ok: ECONNREFUSED`]);
  });
});

describe('runProbe CMD', () => {
  it('runs CMD argv and CMD-SHELL through sh -c, passing the timeout and the exit code', async () => {
    const calls: [string[], number][] = [];
    const exec: ProbeTarget['exec'] = async (argv, timeoutMs) => {
      calls.push([argv, timeoutMs]);
      return { exitCode: argv[0] === 'pg_isready' ? 0 : 7, output: 'out' };
    };
    const pass = await runProbe(spec(['CMD', 'pg_isready', '-U', 'app'], 1500), { exec });
    const fail = await runProbe(spec(['CMD-SHELL', 'curl -f localhost || exit 7'], 1500), { exec });
    assert.deepEqual(calls, [
      [['pg_isready', '-U', 'app'], 1500],
      [['/bin/sh', '-c', 'curl -f localhost || exit 7'], 1500],
    ]);
    assert.deepEqual([pass.exitCode, pass.output, fail.exitCode], [0, 'out', 7]);
  });

  it('times out when exec does not answer in time', async () => {
    const r = await runProbe(spec(['CMD', 'sleep', '60'], 50), { exec: () => new Promise(() => {}) });
    assert.deepEqual([r.exitCode, r.output], [-1, 'health check timed out after 50ms']);
  });

  it("gives a zero timeout Docker's default, 30s", async () => {
    let given = -1;
    await runProbe(spec(['CMD', 'x'], 0), { exec: async (_argv, ms) => ((given = ms), { exitCode: 0, output: '' }) });
    assert.equal(given, 30_000);
  });

  it('turns exec errors, thrown or rejected, into failed results', async () => {
    const rejected = await runProbe(spec(['CMD', 'x']), { exec: () => Promise.reject(new Error('container is not running')) });
    assert.deepEqual([rejected.exitCode, rejected.output], [-1, 'container is not running']);
    const thrown = await runProbe(spec(['CMD', 'x']), {
      exec: () => {
        throw new Error('no such container');
      },
    });
    assert.deepEqual([thrown.exitCode, thrown.output], [-1, 'no such container']);
  });

  it('truncates output to 4096 bytes and stamps start and end with the clock given', async () => {
    const times = [new Date('2025-01-01T00:00:00.000Z'), new Date('2025-01-01T00:00:01.250Z')];
    const r = await runProbe(spec(['CMD', 'x']), { exec: async () => ({ exitCode: 1, output: 'y'.repeat(5000) }) }, () => times.shift()!);
    assert.equal(r.output, 'y'.repeat(4096));
    assert.deepEqual([r.start, r.end], ['2025-01-01T00:00:00.000Z', '2025-01-01T00:00:01.250Z']);
  });
});
