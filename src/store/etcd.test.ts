/**
 * Runs the store conformance suite against a real etcd started here: on 127.0.0.1, random free
 * ports, a temp data dir; killed by PID and removed at the end, even when the tests fail.
 * /usr/bin/etcd (Debian package etcd-server) must be installed: without it these tests fail.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { storeConformance } from './conformance.js';
import { openEtcdStore } from './etcd.js';
import { openStore } from './index.js';
import { StoreError } from './types.js';

const ETCD = '/usr/bin/etcd';

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Resolves when p does or after ms, whichever is first, leaving no timer behind. */
async function within(p: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([p, new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}

async function until(cond: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) assert.fail(`timed out after ${ms} ms`);
    await sleep(10);
  }
}

/** Retries fn while the store is unavailable, for up to ms. */
async function retry<T>(fn: () => Promise<T>, ms = 30_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (!(err instanceof StoreError && err.code === 'unavailable') || Date.now() > deadline) throw err;
      await sleep(50);
    }
  }
}

/** A temp dir on tmpfs when there is one: etcd fsyncs every commit. */
function tempBase(): string {
  return existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
}

async function healthy(endpoint: string): Promise<boolean> {
  try {
    const res = await fetch(`http://${endpoint}/health`, { signal: AbortSignal.timeout(500) });
    const body = (await res.json()) as { health?: string };
    return res.ok && body.health === 'true';
  } catch {
    return false;
  }
}

/** One etcd member on 127.0.0.1, with its own data dir; ended by its PID. */
class EtcdProcess {
  readonly endpoint: string;
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private running = false;
  private stderr = '';
  private readonly onExit = () => this.killNow();

  constructor(
    readonly clientPort: number,
    readonly peerPort: number,
    readonly dataDir: string,
  ) {
    this.endpoint = `127.0.0.1:${clientPort}`;
    // if this process ends abruptly, still kill etcd (by its PID) and remove its data dir
    process.on('exit', this.onExit);
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get log(): string {
    return this.stderr.slice(-2000);
  }

  /** Starts etcd and waits until it is healthy; false if it exited or did not get healthy. */
  async launch(): Promise<boolean> {
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) {
      if (!k.startsWith('ETCD') && k !== 'NODE_EXTRA_CA_CERTS') env[k] = v;
    }
    this.stderr = '';
    // prettier-ignore
    const child = spawn(
      ETCD,
      [
        '--name', 'weft-test',
        '--data-dir', this.dataDir,
        '--listen-client-urls', `http://${this.endpoint}`,
        '--advertise-client-urls', `http://${this.endpoint}`,
        '--listen-peer-urls', `http://127.0.0.1:${this.peerPort}`,
        '--initial-advertise-peer-urls', `http://127.0.0.1:${this.peerPort}`,
        '--initial-cluster', `weft-test=http://127.0.0.1:${this.peerPort}`,
        '--initial-cluster-state', 'new',
        '--heartbeat-interval', '10',
        '--election-timeout', '100',
        '--logger', 'zap',
        '--log-outputs', 'stderr',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'], env },
    );
    this.child = child;
    this.running = true;
    child.stderr?.on('data', (d: Buffer) => {
      this.stderr = (this.stderr + d.toString()).slice(-20_000);
    });
    child.once('error', (err) => {
      this.stderr += `\nspawn error: ${err.message}`;
    });
    this.exited = new Promise<void>((resolve) => {
      child.once('exit', () => {
        if (this.child === child) this.running = false;
        resolve();
      });
      child.once('error', () => {
        if (this.child === child) this.running = false;
        resolve();
      });
    });
    const deadline = Date.now() + 15_000;
    while (this.running && Date.now() < deadline) {
      if (await healthy(this.endpoint)) return true;
      await sleep(10);
    }
    return false;
  }

  addressInUse(): boolean {
    return /address already in use/.test(this.stderr);
  }

  /** SIGTERM, then SIGKILL if it does not end within 3 s; the data dir stays. */
  async kill(): Promise<void> {
    const pid = this.child?.pid;
    if (!this.running || pid === undefined) return;
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      // already gone
    }
    await within(this.exited, 3000);
    if (this.running) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
      await within(this.exited, 3000);
    }
  }

  /** Kills etcd and removes its data dir. */
  async stop(): Promise<void> {
    await this.kill();
    rmSync(this.dataDir, { recursive: true, force: true });
    process.off('exit', this.onExit);
  }

  private killNow(): void {
    const pid = this.child?.pid;
    if (this.running && pid !== undefined) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}

/** Starts one etcd member on 127.0.0.1 on random ports; tries other ports if one is taken. */
async function startEtcd(): Promise<EtcdProcess> {
  if (!existsSync(ETCD)) {
    throw new Error(`${ETCD} is missing: the store tests need a real etcd (apt-get install -y etcd-server)`);
  }
  let lastError = '';
  for (let attempt = 1; attempt <= 5; attempt++) {
    const clientPort = 20000 + Math.floor(Math.random() * 19999);
    const etcd = new EtcdProcess(clientPort, clientPort + 1, mkdtempSync(join(tempBase(), 'weft-test-etcd-')));
    if (await etcd.launch()) return etcd;
    lastError = etcd.log;
    await etcd.stop();
    if (!etcd.addressInUse()) break;
  }
  throw new Error(`could not start ${ETCD} for the store tests: ${lastError}`);
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => process.exit(130)); // runs the 'exit' handlers, which stop etcd
}

it(`finds a real etcd at ${ETCD}`, () => {
  // a failure here (not a skip): CI installs etcd-server, and these tests must not pass without it
  assert.ok(existsSync(ETCD), `${ETCD} is missing: the store tests need a real etcd (apt-get install -y etcd-server)`);
});

describe('etcd store', () => {
  let etcd: EtcdProcess | undefined;
  let stores = 0;
  const prefix = () => `/weft-test-${process.pid}-${++stores}/`;
  const endpoint = () => {
    if (!etcd) throw new Error('etcd did not start');
    return etcd.endpoint;
  };

  before(async () => {
    const t0 = Date.now();
    etcd = await startEtcd();
    process.stderr.write(`etcd ${etcd.endpoint} (pid ${etcd.pid}) healthy in ${Date.now() - t0} ms\n`);
  });
  after(async () => {
    const t0 = Date.now();
    await etcd?.stop();
    process.stderr.write(`etcd stopped in ${Date.now() - t0} ms\n`);
  });

  storeConformance('etcd', () => openEtcdStore([endpoint()], { prefix: prefix() }));

  describe('etcd specifics', () => {
    it('namespaces keys with the prefix and hides it from callers', async () => {
      const a = await openEtcdStore([endpoint()], { prefix: '/weft-test-ns-a/' });
      const b = await openEtcdStore([endpoint()], { prefix: '/weft-test-ns-b/' });
      const root = await openEtcdStore([endpoint()]);
      try {
        await a.put('k', 'from a');
        await b.put('k', 'from b');
        assert.equal((await a.get('k'))?.value, 'from a');
        assert.equal((await b.get('k'))?.value, 'from b');
        assert.deepEqual(
          (await a.range('')).kvs.map((kv) => kv.key),
          ['k'],
        );
        assert.equal((await root.get('/weft-test-ns-a/k'))?.value, 'from a');
        assert.equal((await a.deletePrefix('')).deleted, 1);
        assert.equal((await b.get('k'))?.value, 'from b', "a's deletePrefix('') stays inside a");
        await b.deletePrefix('');
      } finally {
        await Promise.all([a.close(), b.close(), root.close()]);
      }
    });

    it('openStore accepts etcd://HOST:PORT?prefix=', async () => {
      const s = await openStore(`etcd://${endpoint()}?prefix=/weft-test-spec/`, '/nonexistent');
      try {
        assert.equal(s.engine, 'etcd');
        const r = await s.put('x', 'y');
        assert.equal((await s.get('x'))?.modRevision, r);
        await s.deletePrefix('');
      } finally {
        await s.close();
      }
    });

    it('a watch outlives an etcd restart, losing and repeating nothing', { timeout: 60_000 }, async () => {
      const own = await startEtcd();
      const s = await openEtcdStore([own.endpoint], { prefix: '/weft-test-restart/' });
      try {
        const seen: string[] = [];
        const errors: Error[] = [];
        const from = await s.revision();
        await s.watch('', from, (b) => seen.push(...b.map((e) => `${e.type} ${e.kv.modRevision} ${e.kv.key}`)), (e) => errors.push(e));
        const r1 = await s.put('a', '1');
        await until(() => seen.length === 1);
        await own.kill();
        assert.ok(await own.launch(), `etcd restarts: ${own.log}`);
        // the client may take a few seconds to trust the host again
        const r2 = await retry(() => s.put('b', '2'));
        const r3 = (await s.delete('a')).revision;
        await until(() => seen.length >= 3, 30_000);
        await sleep(100);
        assert.deepEqual(seen, [`put ${r1} a`, `put ${r2} b`, `delete ${r3} a`]);
        assert.deepEqual(errors, []);
      } finally {
        await s.close();
        await own.stop();
      }
    });

    it('fails with StoreError "unavailable" when etcd cannot be reached', async () => {
      // a port on loopback where nothing listens (etcd's own peer port range is next to it)
      await assert.rejects(openEtcdStore(['127.0.0.1:1']), (err: unknown) => {
        assert.ok(err instanceof StoreError && err.code === 'unavailable', String(err));
        assert.match(err.message, /cannot reach etcd at 127\.0\.0\.1:1/);
        return true;
      });
    });
  });
});
