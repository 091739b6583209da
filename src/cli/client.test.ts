/**
 * The client against a real HTTP server on a temporary unix socket: status codes and bodies
 * as the agent sends them, framed and NDJSON streams cut at awkward places.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { encodeFrame, Frame } from '../api/schemas.js';
import { ApiError, Client, ConnectError, withQuery } from './client.js';

interface Seen {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

let dir: string;
let socket: string;
let server: http.Server;
const seen: Seen[] = [];

function handle(req: http.IncomingMessage, body: string, res: http.ServerResponse): void {
  const url = req.url ?? '';
  seen.push({ method: req.method ?? '', url, headers: req.headers, body });
  const send = (status: number, text: string, type = 'application/json'): void => {
    res.writeHead(status, { 'content-type': type });
    res.end(text);
  };
  if (url.startsWith('/echo')) return send(200, JSON.stringify({ method: req.method, url, body: body ? JSON.parse(body) : null }));
  if (url === '/e404') return send(404, JSON.stringify({ message: 'no such network: blue' }));
  if (url === '/e409') return send(409, JSON.stringify({ message: 'network name blue is in use:\n  pick another name' }));
  if (url === '/e500-text') return send(500, 'upstream exploded\n', 'text/plain');
  if (url === '/e500-empty') return send(500, '');
  if (url === '/e400-other-json') return send(400, JSON.stringify({ error: 'x' }));
  if (url === '/nocontent') {
    res.writeHead(204);
    return void res.end();
  }
  if (url === '/notjson') return send(200, '<html>');
  if (url === '/cut') {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': '100' });
    res.write('{"a":');
    setTimeout(() => res.socket?.destroy(), 10);
    return;
  }
  if (url === '/frames') {
    res.writeHead(200, { 'content-type': 'application/vnd.weft.stream' });
    const all = Buffer.concat([
      encodeFrame(Frame.stdout, 'hello '),
      encodeFrame(Frame.stderr, 'oops\n'),
      encodeFrame(Frame.stdout, 'world\n'),
      encodeFrame(Frame.stdout, ''),
      encodeFrame(Frame.exit, '42'),
    ]);
    // cut everywhere: inside headers, inside payloads
    const cuts = [3, 9, 15, 16, 30, all.length];
    let from = 0;
    let i = 0;
    const next = (): void => {
      if (from >= all.length) return void res.end();
      const to = cuts[i++];
      res.write(all.subarray(from, to));
      from = to;
      setTimeout(next, 2);
    };
    return next();
  }
  if (url === '/frames-noexit') {
    res.writeHead(200);
    return void res.end(encodeFrame(Frame.stdout, 'only output'));
  }
  if (url.startsWith('/events')) {
    res.writeHead(200, { 'content-type': 'application/x-ndjson' });
    res.write('{"revision":1,"action":"cre');
    setTimeout(() => res.write('ate"}\n\n{"revision":2,"action":"st'), 5);
    setTimeout(() => res.end('art"}\n{"revision":3,"action":"die"}'), 10);
    return;
  }
  if (url === '/bad-events') {
    res.writeHead(200);
    return void res.end('{"revision":1}\nnot json\n');
  }
  if (url === '/forever') {
    res.writeHead(200);
    res.write('{"revision":1}\n');
    return;
  }
  send(404, JSON.stringify({ message: `no such API route: ${req.method} ${url}` }));
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'weft-cli-client-'));
  socket = join(dir, 'agent.sock');
  server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => handle(req, Buffer.concat(chunks).toString('utf8'), res));
  });
  await new Promise<void>((resolve) => server.listen(socket, resolve));
});

after(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await rm(dir, { recursive: true, force: true });
});

async function rejectsWith(p: Promise<unknown>, cls: typeof ApiError | typeof ConnectError, message: string | RegExp, status?: number): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof cls, `expected ${cls.name}, got ${String(err)}`);
    if (typeof message === 'string') assert.equal(err.message, message);
    else assert.match(err.message, message);
    if (status !== undefined) assert.equal((err as ApiError).status, status);
    return true;
  });
}

describe('client: requests', () => {
  it('JSON body in, JSON out, with query parameters', async () => {
    const client = new Client(socket);
    const res = await client.post<{ method: string; url: string; body: unknown }>('/echo', { name: 'blue' }, { force: true, t: 3 });
    assert.deepEqual(res, { method: 'POST', url: '/echo?force=1&t=3', body: { name: 'blue' } });
    const last = seen[seen.length - 1];
    assert.equal(last.headers['content-type'], 'application/json');
    assert.equal(last.headers['content-length'], String(Buffer.byteLength('{"name":"blue"}')));
  });

  it('a POST without a body sends no content type and an empty body', async () => {
    await new Client(socket).post('/echo');
    const last = seen[seen.length - 1];
    assert.equal(last.headers['content-type'], undefined);
    assert.equal(last.headers['content-length'], '0');
    assert.equal(last.body, '');
  });

  it('204 is undefined', async () => {
    assert.equal(await new Client(socket).delete('/nocontent'), undefined);
  });

  it('repeated filters repeat the key; false and undefined are left out; values are encoded', () => {
    assert.equal(
      withQuery('/v1/networks', { name: ['a b', 'c&d'], label: ['k=v'], all: false, id: undefined }),
      '/v1/networks?name=a%20b&name=c%26d&label=k%3Dv',
    );
    assert.equal(withQuery('/v1/x'), '/v1/x');
  });
});

describe('client: error mapping', () => {
  it("404 and 409 carry the agent's message, on one line", async () => {
    const client = new Client(socket);
    await rejectsWith(client.get('/e404'), ApiError, 'no such network: blue', 404);
    await rejectsWith(client.get('/e409'), ApiError, 'network name blue is in use: pick another name', 409);
  });

  it('a body that is not { message } still gives a message', async () => {
    const client = new Client(socket);
    await rejectsWith(client.get('/e500-text'), ApiError, 'upstream exploded', 500);
    await rejectsWith(client.get('/e500-empty'), ApiError, 'the agent answered 500 Internal Server Error', 500);
    await rejectsWith(client.get('/e400-other-json'), ApiError, '{"error":"x"}', 400);
  });

  it('a 200 that is not JSON', async () => {
    await rejectsWith(new Client(socket).get('/notjson'), ApiError, /not JSON for GET \/notjson/);
  });

  it('errors on stream endpoints are ApiErrors too', async () => {
    const handlers = { stdout: () => undefined, stderr: () => undefined };
    await rejectsWith(new Client(socket).framed('GET', '/e404', {}, handlers), ApiError, 'no such network: blue', 404);
    await rejectsWith(new Client(socket).ndjson('/e409', {}, () => undefined), ApiError, /in use/, 409);
  });

  it('no socket: cannot reach the agent, with the fix', async () => {
    const path = join(dir, 'absent.sock');
    await rejectsWith(
      new Client(path).get('/v1/version'),
      ConnectError,
      `cannot reach the weft agent at ${path}: is it running? (start it with 'weft agent', or set WEFT_HOST / -H)`,
    );
  });

  it('a stale socket file (nobody listening) reads the same', async () => {
    const path = join(dir, 'stale.sock');
    const stale = http.createServer();
    await new Promise<void>((resolve) => stale.listen(path, resolve));
    // closing unlinks the socket file; a plain file where the socket should be is refused the same way
    await new Promise<void>((resolve) => stale.close(() => resolve()));
    await writeFile(path, '');
    await rejectsWith(new Client(path).get('/v1/version'), ConnectError, /^cannot reach the weft agent at .*stale\.sock: is it running\?/);
  });

  it('a directory in the path that is a file', async () => {
    const file = join(dir, 'plain');
    await writeFile(file, '');
    await rejectsWith(new Client(join(file, 'x.sock')).get('/'), ConnectError, /cannot reach the weft agent/);
  });

  it('a connection cut mid-answer', async () => {
    await rejectsWith(new Client(socket).get('/cut'), ConnectError, /lost the connection to the weft agent/);
  });
});

describe('client: streams', () => {
  it('framed: stdout and stderr split, the exit code returned, frames cut anywhere', async () => {
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const code = await new Client(socket).framed('GET', '/frames', {}, {
      stdout: (b) => out.push(Buffer.from(b)),
      stderr: (b) => err.push(Buffer.from(b)),
    });
    assert.equal(code, 42);
    assert.equal(Buffer.concat(out).toString(), 'hello world\n');
    assert.equal(Buffer.concat(err).toString(), 'oops\n');
  });

  it('framed without an exit frame resolves undefined', async () => {
    const out: Buffer[] = [];
    const code = await new Client(socket).framed('GET', '/frames-noexit', {}, { stdout: (b) => out.push(b), stderr: () => undefined });
    assert.equal(code, undefined);
    assert.equal(Buffer.concat(out).toString(), 'only output');
  });

  it('ndjson: lines split across chunks, blank lines skipped, last line without newline', async () => {
    const items: { revision: number; action: string }[] = [];
    await new Client(socket).ndjson<{ revision: number; action: string }>('/events', { query: { since: 0 } }, (e) => items.push(e));
    assert.deepEqual(items, [
      { revision: 1, action: 'create' },
      { revision: 2, action: 'start' },
      { revision: 3, action: 'die' },
    ]);
    assert.ok(seen.some((s) => s.url === '/events?since=0'));
  });

  it('ndjson: a line that is not JSON is an error', async () => {
    await rejectsWith(new Client(socket).ndjson('/bad-events', {}, () => undefined), ApiError, /not JSON on \/bad-events: not json/);
  });

  it('an aborted stream resolves quietly', async () => {
    const ac = new AbortController();
    const items: unknown[] = [];
    const done = new Client(socket).ndjson('/forever', { signal: ac.signal }, (e) => {
      items.push(e);
      ac.abort();
    });
    await done;
    assert.deepEqual(items, [{ revision: 1 }]);
  });
});
