/** The weft agent: one per host. */
import { mkdir, readFile, writeFile, chmod, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import path from 'node:path';
import { pino } from 'pino';
import type { AgentOptions } from './options.js';
import { openStore } from '../store/index.js';
import { generateUlaPrefix } from '../ipam/pools.js';
import { inNetns, reexecInNetns } from '../kernel/reexec.js';
import { Daemon, type NodeIdentity } from './daemon.js';
import { reconcile } from './reconcile.js';
import { Monitor } from './monitor.js';
import { LbController } from './lb.js';
import { PolicyController } from './policy.js';
import { HealthController } from './health.js';
import { DnsController } from './dns.js';
import { buildServer } from './server.js';
import { closeAllHolds } from './ports.js';

async function nodeIdentity(stateDir: string): Promise<NodeIdentity> {
  const file = path.join(stateDir, 'node.json');
  try {
    return JSON.parse(await readFile(file, 'utf8')) as NodeIdentity;
  } catch {
    const id: NodeIdentity = { nodeId: randomBytes(3).toString('hex'), ula48: generateUlaPrefix() };
    await writeFile(file, JSON.stringify(id, null, 2) + '\n');
    return id;
  }
}

/** Refuses to start beside a live agent on the same socket; removes a stale socket file. */
async function claimSocket(socket: string): Promise<void> {
  if (!existsSync(socket)) return;
  const alive = await new Promise<boolean>((resolve) => {
    const s = net.connect(socket, () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
  if (alive) throw new Error(`another weft agent is already listening on ${socket}`);
  await rm(socket, { force: true });
}

export async function runAgent(opts: AgentOptions): Promise<void> {
  if (opts.netns && !inNetns(opts.netns)) {
    if (!existsSync(`/run/netns/${opts.netns}`)) throw new Error(`no such network namespace: ${opts.netns} (create it with 'ip netns add ${opts.netns}')`);
    process.exitCode = await reexecInNetns(opts.netns);
    return;
  }
  const log = pino({ level: opts.logLevel ?? 'info', base: { pid: process.pid } }, pino.destination(2));
  await mkdir(opts.stateDir, { recursive: true, mode: 0o700 });
  await mkdir(path.dirname(opts.socket), { recursive: true });
  await claimSocket(opts.socket);
  const identity = await nodeIdentity(opts.stateDir);
  const store = await openStore(opts.store, opts.stateDir);
  const d = new Daemon(
    store,
    { ...identity, stateDir: opts.stateDir, socket: opts.socket, storeSpec: opts.store, dnsUpstreams: opts.dnsUpstreams, serviceRange: opts.serviceRange },
    log,
  );

  const t0 = Date.now();
  const repaired = await reconcile(d, { repair: true });
  log.info({ repaired: repaired.length, ms: Date.now() - t0 }, 'reconciled the kernel with the store');

  d.policy = new PolicyController(d);
  await d.policy.start();
  d.lb = new LbController(d);
  d.health = new HealthController(d);
  d.dns = new DnsController(d);
  await d.lb.start();
  await d.health.start();
  await d.dns.start();

  const monitor = new Monitor(d);
  monitor.start();
  await monitor.resume();

  const app = await buildServer(d);
  await app.listen({ path: opts.socket });
  await chmod(opts.socket, 0o600);
  log.info({ socket: opts.socket, store: store.engine, nodeId: identity.nodeId }, 'weft agent ready');

  await new Promise<void>((resolve) => {
    const stop = (sig: string) => {
      log.info({ signal: sig }, 'stopping (the data plane stays up)');
      resolve();
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  monitor.stop();
  await app.close();
  await d.dns.stop();
  d.health.stop();
  await d.lb.stop();
  await d.policy.stop();
  closeAllHolds();
  await store.close();
  await rm(opts.socket, { force: true });
}
