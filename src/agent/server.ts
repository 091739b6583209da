/** The agent's HTTP API on a unix socket (contract: src/api/schemas.ts). */
import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify';
import swagger from '@fastify/swagger';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import {
  ContainerCreate,
  ExecCreate,
  Frame,
  NetworkConnect,
  NetworkCreate,
  NetworkDisconnect,
  LabelChange,
  PolicyApply,
  PolicyCheck,
  PolicyMatrixRequest,
  ServiceCreate,
  ServiceUpdate,
  type PolicyView,
  type ProjectView,
  SystemPrune,
  encodeFrame,
  type SystemInfo,
  type VersionInfo,
} from '../api/schemas.js';
import type { Container, Network } from '../model/types.js';
import { processAlive, spawnExec } from '../kernel/process.js';
import { readLogs } from '../runtime/logs.js';
import { nftListTable } from '../kernel/nft.js';
import { ApiError, conflict } from './errors.js';
import { createNetwork, pruneNetworks, removeNetwork } from './networks.js';
import {
  connectContainer,
  createContainer,
  disconnectContainer,
  removeContainer,
  restartContainer,
  startContainer,
  stopContainer,
} from './containers.js';
import { reconcile } from './reconcile.js';
import { createService, removeService, resolveService, serviceView, updateService } from './services.js';
import type { Daemon } from './daemon.js';
import { PolicyController, applyPolicy, deletePolicy, getPolicy, labelContainer, labelProject, policies, policyWorld, storedProjects, checkProjectName } from './policy.js';
import { policyCheck, policyMatrix } from './reach.js';
import { isolates } from '../policy/select.js';
import type { Policy } from '../policy/types.js';

export const VERSION: string = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).version;
export const API_VERSION = '1';

const Ref = Type.Object({ ref: Type.String() });
const asList = (v: unknown): string[] => (v === undefined ? [] : Array.isArray(v) ? v.map(String) : [String(v)]);
const truthy = (v: unknown) => v === '1' || v === 'true' || v === true;

function matchLabels(labels: Record<string, string>, filters: string[]): boolean {
  return filters.every((f) => {
    const i = f.indexOf('=');
    return i < 0 ? f in labels : labels[f.slice(0, i)] === f.slice(i + 1);
  });
}

function filterNetworks(nets: Network[], q: Record<string, unknown>): Network[] {
  const names = asList(q.name), drivers = asList(q.driver), labels = asList(q.label), ids = asList(q.id);
  return nets.filter(
    (n) =>
      (!names.length || names.some((x) => n.name.includes(x))) &&
      (!drivers.length || drivers.includes(n.driver)) &&
      (!ids.length || ids.some((x) => n.id.startsWith(x))) &&
      matchLabels(n.labels, labels),
  );
}

function filterContainers(cs: Container[], q: Record<string, unknown>): Container[] {
  const names = asList(q.name), labels = asList(q.label), ids = asList(q.id), status = asList(q.status);
  const all = truthy(q.all);
  return cs.filter(
    (c) =>
      c.state.phase !== 'creating' &&
      (all || status.length || c.state.phase === 'running') &&
      (!names.length || names.some((x) => c.name.includes(x))) &&
      (!ids.length || ids.some((x) => c.id.startsWith(x))) &&
      (!status.length || status.includes(c.state.phase)) &&
      matchLabels(c.config.labels, labels),
  );
}

/** Turns ajv's complaint into one line that names the field. */
function validationMessage(err: { validation?: { instancePath: string; message?: string; params: Record<string, unknown> }[]; validationContext?: string }): string {
  const v = err.validation?.[0];
  if (!v) return 'invalid request';
  const where = err.validationContext ?? 'body';
  const field = v.instancePath ? v.instancePath.slice(1).replace(/\//g, '.') : '';
  if (v.params.additionalProperty) return `unknown field "${field ? field + '.' : ''}${v.params.additionalProperty}" in the request ${where}`;
  if (v.params.missingProperty) return `missing field "${field ? field + '.' : ''}${v.params.missingProperty}" in the request ${where}`;
  return `invalid field "${field || where}" in the request ${where}: ${v.message}`;
}

export async function buildServer(d: Daemon): Promise<FastifyInstance> {
  const app = Fastify({
    logger: false,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: false } },
  }).withTypeProvider<TypeBoxTypeProvider>();

  await app.register(swagger, {
    openapi: { info: { title: 'weft agent API', version: VERSION }, servers: [{ url: 'http://localhost/' }] },
  });

  app.setErrorHandler((err: Error & { statusCode?: number; validation?: never; validationContext?: string }, _req, reply) => {
    if (err instanceof ApiError) return reply.status(err.status).send({ message: err.message });
    if (err.validation) return reply.status(400).send({ message: validationMessage(err) });
    if (err.statusCode && err.statusCode < 500) return reply.status(err.statusCode).send({ message: err.message });
    d.log.error({ err: err.stack ?? String(err) }, 'request failed');
    return reply.status(500).send({ message: err.message });
  });
  // a change answers once the embedded DNS has seen it: `run -d` returns with the name resolvable
  app.addHook('onSend', async (req) => {
    // a change is in effect when its answer arrives: names, and the balancer's tables
    if (req.method !== 'GET') await Promise.all([d.dns?.settled(), d.lb?.settled(), d.policy?.settled()]);
  });
  app.setNotFoundHandler((req, reply) => reply.status(404).send({ message: `no such API route: ${req.method} ${req.url}` }));

  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());

  app.get('/v1/version', async (): Promise<VersionInfo> => ({
    version: VERSION,
    apiVersion: API_VERSION,
    node: process.version,
    os: `${os.type()} ${os.arch()}`,
    kernel: os.release(),
  }));

  app.get('/v1/info', async (): Promise<SystemInfo> => {
    const cs = (await d.containers()).filter((c) => c.state.phase !== 'creating');
    const running = cs.filter((c) => c.state.phase === 'running').length;
    return {
      containers: cs.length,
      running,
      stopped: cs.length - running,
      networks: (await d.networks()).length,
      store: d.opts.storeSpec,
      stateDir: d.opts.stateDir,
      socket: d.opts.socket,
      nodeId: d.nodeId,
      kernel: os.release(),
      nftables: (await nftListTable('inet', 'weft')) !== undefined,
    };
  });

  // ---------------------------------------------------------------- networks
  app.get('/v1/networks', async (req) => {
    const [nets, cs] = await Promise.all([d.networks(), d.containers()]);
    const list = filterNetworks(nets, req.query as Record<string, unknown>);
    return Promise.all(list.map((n) => d.networkView(n, cs)));
  });
  app.post('/v1/networks', { schema: { body: NetworkCreate } }, async (req, reply) => {
    reply.status(201);
    return createNetwork(d, req.body);
  });
  app.post('/v1/networks/prune', async () => ({ deleted: await pruneNetworks(d) }));
  app.get('/v1/networks/:ref', { schema: { params: Ref } }, async (req) => d.networkView(await d.resolveNetwork(req.params.ref)));
  app.delete('/v1/networks/:ref', { schema: { params: Ref } }, async (req, reply) => {
    await removeNetwork(d, req.params.ref);
    return reply.status(204).send();
  });
  app.post('/v1/networks/:ref/connect', { schema: { params: Ref, body: NetworkConnect } }, async (req) =>
    connectContainer(d, req.params.ref, req.body),
  );
  app.post('/v1/networks/:ref/disconnect', { schema: { params: Ref, body: NetworkDisconnect } }, async (req) =>
    disconnectContainer(d, req.params.ref, req.body.container),
  );

  // ---------------------------------------------------------------- network policy
  const policyViews = async (list: Policy[]): Promise<PolicyView[]> => {
    const [world, drops] = await Promise.all([policyWorld(d), d.policy ? d.policy.drops() : new Map()]);
    return list.map((p) => ({
      ...p,
      selected: world.pods.filter((pod) => isolates(p, pod, 'Ingress') || isolates(p, pod, 'Egress')).map((pod) => pod.name).sort(),
      drops: PolicyController.dropsOf(drops, p),
    }));
  };
  const PolicyRef = Type.Object({ project: Type.String(), name: Type.String() });
  app.get('/v1/policies', async (req) => {
    const project = (req.query as Record<string, string | undefined>).project;
    const list = (await policies(d, project)).sort((a, b) => `${a.project}/${a.name}`.localeCompare(`${b.project}/${b.name}`));
    return policyViews(list);
  });
  app.post('/v1/policies', { schema: { body: PolicyApply } }, async (req) => {
    const { policy, result } = await applyPolicy(d, req.body.object, req.body.project);
    return { result, policy: (await policyViews([policy]))[0] };
  });
  app.get('/v1/policies/:project/:name', { schema: { params: PolicyRef } }, async (req) =>
    (await policyViews([await getPolicy(d, req.params.project, req.params.name)]))[0],
  );
  app.delete('/v1/policies/:project/:name', { schema: { params: PolicyRef } }, async (req) => deletePolicy(d, req.params.project, req.params.name));
  app.post('/v1/policies/check', { schema: { body: PolicyCheck } }, async (req) => policyCheck(d, req.body));
  app.post('/v1/policies/matrix', { schema: { body: PolicyMatrixRequest } }, async (req) => policyMatrix(d, req.body));

  const projectViews = async (): Promise<ProjectView[]> => {
    const [world, stored] = await Promise.all([policyWorld(d), storedProjects(d)]);
    const created = new Map(stored.map((p) => [p.name, p.created]));
    return [...world.projects]
      .map(([name, labels]) => ({
        name,
        labels,
        created: created.get(name),
        containers: world.pods.filter((p) => p.project === name).length,
        policies: world.policies.filter((p) => p.project === name).length,
      }))
      .sort((a, b) => a.name.localeCompare(b.name));
  };
  const ProjectRef = Type.Object({ name: Type.String() });
  app.get('/v1/projects', async () => projectViews());
  app.get('/v1/projects/:name', { schema: { params: ProjectRef } }, async (req) => {
    checkProjectName(req.params.name);
    const found = (await projectViews()).find((p) => p.name === req.params.name);
    if (!found) throw new ApiError(404, `no such project: ${req.params.name} (a project exists once a container, a policy or a label names it)`);
    return found;
  });
  app.post('/v1/projects/:name/labels', { schema: { params: ProjectRef, body: LabelChange } }, async (req) => {
    await labelProject(d, req.params.name, req.body);
    return (await projectViews()).find((p) => p.name === req.params.name);
  });
  app.post('/v1/containers/:ref/labels', { schema: { params: Ref, body: LabelChange } }, async (req) =>
    d.containerView(await labelContainer(d, req.params.ref, req.body)),
  );

  // ---------------------------------------------------------------- services
  app.get('/v1/services', async (req) => {
    const q = req.query as Record<string, unknown>;
    const names = asList(q.name), labels = asList(q.label);
    const list = (await d.services())
      .filter((s) => (!names.length || names.some((x) => s.name.includes(x))) && matchLabels(s.labels, labels))
      .sort((a, b) => a.name.localeCompare(b.name));
    return Promise.all(list.map((s) => serviceView(d, s)));
  });
  app.post('/v1/services', { schema: { body: ServiceCreate } }, async (req, reply) => {
    reply.status(201);
    return createService(d, req.body);
  });
  app.get('/v1/services/:ref', { schema: { params: Ref } }, async (req) => serviceView(d, await resolveService(d, req.params.ref)));
  app.post('/v1/services/:ref/update', { schema: { params: Ref, body: ServiceUpdate } }, async (req) => updateService(d, req.params.ref, req.body));
  app.delete('/v1/services/:ref', { schema: { params: Ref } }, async (req, reply) => {
    await removeService(d, req.params.ref);
    return reply.status(204).send();
  });

  // ---------------------------------------------------------------- containers
  app.get('/v1/containers', async (req) => {
    const [nets, cs] = await Promise.all([d.networks(), d.containers()]);
    const list = filterContainers(cs, req.query as Record<string, unknown>).sort((a, b) => b.created.localeCompare(a.created));
    return Promise.all(list.map((c) => d.containerView(c, nets)));
  });
  app.post('/v1/containers', { schema: { body: ContainerCreate } }, async (req, reply) => {
    reply.status(201);
    return createContainer(d, req.body);
  });
  app.get('/v1/containers/:ref', { schema: { params: Ref } }, async (req) => d.containerView(await d.resolveContainer(req.params.ref)));
  app.post('/v1/containers/:ref/start', { schema: { params: Ref } }, async (req) => startContainer(d, req.params.ref));
  const timeout = (q: unknown) => {
    const t = Number((q as { t?: string }).t ?? 10);
    return Number.isFinite(t) && t >= 0 ? t : 10;
  };
  app.post('/v1/containers/:ref/stop', { schema: { params: Ref } }, async (req) => stopContainer(d, req.params.ref, timeout(req.query)));
  app.post('/v1/containers/:ref/restart', { schema: { params: Ref } }, async (req) => restartContainer(d, req.params.ref, timeout(req.query)));
  app.delete('/v1/containers/:ref', { schema: { params: Ref } }, async (req, reply) => {
    await removeContainer(d, req.params.ref, truthy((req.query as { force?: string }).force));
    return reply.status(204).send();
  });
  app.post('/v1/containers/:ref/wait', { schema: { params: Ref } }, async (req) => {
    const c = await d.resolveContainer(req.params.ref);
    // register before reading the state, so a stop in between is not missed
    const waiting = d.waitStopped(c.id);
    const now = await d.getContainer(c.id);
    if (now && now.state.phase === 'running') await waiting.stopped;
    else waiting.cancel();
    const after = await d.getContainer(c.id);
    return { exitCode: after?.state.exitCode ?? now?.state.exitCode ?? 0 };
  });

  app.get('/v1/containers/:ref/logs', { schema: { params: Ref } }, async (req, reply) => {
    const c = await d.resolveContainer(req.params.ref);
    const q = req.query as Record<string, string>;
    const follow = truthy(q.follow);
    const tail = q.tail !== undefined && q.tail !== 'all' ? Number(q.tail) : undefined;
    const ac = new AbortController();
    const raw = startStream(reply);
    raw.on('close', () => ac.abort());
    let live = c.state.phase === 'running';
    const unsubscribe = d.events.subscribe((ev) => {
      if (ev.id === c.id && (ev.action === 'die' || ev.action === 'destroy')) live = false;
      if (ev.id === c.id && (ev.action === 'start' || ev.action === 'restart')) live = true;
    });
    try {
      await readLogs(
        d.containerDir(c.id),
        {
          stdout: q.stdout !== '0',
          stderr: q.stderr !== '0',
          tail,
          follow,
          signal: ac.signal,
          isDone: () => !live,
        },
        (stream, data) => {
          raw.write(encodeFrame(stream === 'stdout' ? Frame.stdout : Frame.stderr, data));
        },
      );
    } finally {
      unsubscribe();
      raw.end();
    }
  });

  app.post('/v1/containers/:ref/exec', { schema: { params: Ref, body: ExecCreate } }, async (req, reply) => {
    const c = await d.resolveContainer(req.params.ref);
    if (c.state.phase !== 'running' || !c.state.pid || !processAlive(c.state.pid, c.state.pidStart ?? 0))
      throw conflict(`container ${c.name} is not running`);
    const child = spawnExec({
      netns: c.netns,
      utsPid: c.netns ? c.state.pid : undefined,
      cmd: req.body.cmd,
      env: [...c.config.env, ...(req.body.env ?? [])],
      workdir: req.body.workdir ?? c.config.workdir,
    });
    const raw = startStream(reply);
    raw.on('close', () => {
      if (child.exitCode === null) child.kill('SIGKILL');
    });
    child.stdout!.on('data', (b: Buffer) => raw.write(encodeFrame(Frame.stdout, b)));
    child.stderr!.on('data', (b: Buffer) => raw.write(encodeFrame(Frame.stderr, b)));
    await new Promise<void>((resolve) => {
      child.on('error', (e) => {
        raw.write(encodeFrame(Frame.stderr, `exec failed: ${e.message}\n`));
        raw.end(encodeFrame(Frame.exit, '126'));
        resolve();
      });
      child.on('close', (code, signal) => {
        raw.end(encodeFrame(Frame.exit, String(code ?? (signal ? 128 + (os.constants.signals[signal] ?? 9) : 1))));
        resolve();
      });
    });
  });

  // ---------------------------------------------------------------- events and system
  app.get('/v1/events', async (req, reply) => {
    const since = Number((req.query as { since?: string }).since ?? -1);
    const raw = startStream(reply, 'application/x-ndjson');
    if (since >= 0) for (const ev of d.events.since(since)) raw.write(JSON.stringify(ev) + '\n');
    const unsubscribe = d.events.subscribe((ev) => raw.write(JSON.stringify(ev) + '\n'));
    await new Promise<void>((resolve) => raw.on('close', () => resolve()));
    unsubscribe();
  });

  app.post('/v1/system/prune', { schema: { body: Type.Optional(SystemPrune) } }, async (req) => {
    const all = req.body?.all ?? false;
    const removed: string[] = [];
    for (const c of await d.containers()) {
      if (c.state.phase === 'running' && !all) continue;
      await removeContainer(d, c.id, true);
      removed.push(c.name);
    }
    return { containers: removed, networks: await pruneNetworks(d) };
  });
  app.get('/v1/system/check', async () => ({ leaks: await reconcile(d, { repair: false }) }));

  return app;
}

/** Takes over the response for a stream (framed or NDJSON). */
function startStream(reply: FastifyReply, type = 'application/vnd.weft.stream') {
  reply.hijack();
  const raw = reply.raw;
  raw.writeHead(200, { 'content-type': type, 'cache-control': 'no-cache' });
  raw.flushHeaders();
  return raw;
}
