/**
 * The compose front end's commands: `weft up`, `weft down` and `weft compose up|down|ps|logs|config`.
 * src/compose/ turns the files into a Project and plans the API calls (pure); this file runs the
 * plan against the agent, one progress line per action, as `docker compose` does.
 */
import type { Command } from 'commander';
import type { ContainerView, NetworkView, PolicyView, ServiceView } from '../api/schemas.js';
import { policyObject, type PolicyDocument } from '../policy/parse.js';
import type { HealthSpec } from '../health/spec.js';
import type { Action, Project } from '../compose/index.js';
import type { Ctx } from './context.js';
import { CliError, ExitCode } from './errors.js';
import { json, portsColumn, table } from './format.js';
import { parseFormat } from './options.js';
import { seg } from './client.js';

interface ProjectFlags {
  file?: string[];
  projectName?: string;
  envFile?: string[];
}

/** src/compose is loaded only by these commands. */
function compose(): Promise<typeof import('../compose/index.js')> {
  return import('../compose/index.js');
}

const collect = (v: string, prev: string[] = []) => [...prev, v];

function projectOptions(cmd: Command): Command {
  return cmd
    .option('-f, --file <file>', 'compose file (repeatable; default: compose.yaml in this folder or above)', collect)
    .option('-p, --project-name <name>', 'project name (default: the name: key, else the folder)')
    .option('--env-file <file>', 'variables for interpolation (default: .env in the project folder)', collect);
}

/** Reads, interpolates and validates the files; every problem is printed, one per line. */
async function loadProject(ctx: Ctx, flags: ProjectFlags): Promise<Project> {
  const { loadProject: load, ComposeError } = await compose();
  try {
    const project = load({
      files: flags.file ?? [],
      projectName: flags.projectName,
      envFiles: flags.envFile,
      env: ctx.io.env,
      cwd: process.cwd(),
    });
    for (const w of project.warnings) ctx.note(`WARN ${w}`);
    return project;
  } catch (e) {
    if (e instanceof ComposeError) {
      for (const line of e.message.split('\n')) ctx.error(line);
      throw new ExitCode(1);
    }
    throw e;
  }
}

/**
 * The project for commands that only need its name (down, ps, logs): from the files when there
 * are some, else from -p alone (then down removes whatever carries the project's label).
 */
async function projectByName(ctx: Ctx, flags: ProjectFlags): Promise<Project> {
  if (flags.file?.length || !flags.projectName) return loadProject(ctx, flags);
  const { normalizeProjectName } = await compose();
  return {
    name: normalizeProjectName(flags.projectName),
    workingDir: process.cwd(),
    files: [],
    networks: [],
    services: [],
    disabledServices: [],
    extensions: {},
    warnings: [],
  };
}

async function currentState(ctx: Ctx, project: string): Promise<{ networks: NetworkView[]; containers: ContainerView[]; services: ServiceView[] }> {
  const { LABELS } = await compose();
  const [networks, containers, services] = await Promise.all([
    ctx.client().get<NetworkView[]>('/v1/networks'),
    ctx.client().get<ContainerView[]>('/v1/containers', { all: true, label: `${LABELS.project}=${project}` }),
    // all of them: a service name is unique per agent, so the planner checks who holds it
    ctx.client().get<ServiceView[]>('/v1/services'),
  ]);
  return { networks, containers, services };
}

/** Runs one action: one API call (plus waiting for dependencies before a start). */
async function apply(ctx: Ctx, project: Project, a: Action): Promise<void> {
  const client = ctx.client();
  switch (a.kind) {
    case 'create-network':
      await client.post('/v1/networks', a.request);
      return;
    case 'remove-network':
      await client.delete(`/v1/networks/${seg(a.id)}`);
      return;
    case 'create-container':
      // network_mode service:X joins the namespace of X's first container
      await client.post('/v1/containers', a.shareNetworkWith ? { ...a.request, network: `container:${a.shareNetworkWith}` } : a.request);
      return;
    case 'connect':
      await client.post(`/v1/networks/${seg(a.network)}/connect`, a.request);
      return;
    case 'start-container':
      for (const dep of a.waitFor) await waitForDependency(ctx, project, a.service, dep);
      await client.post(`/v1/containers/${seg(a.id ?? a.container)}/start`);
      return;
    case 'restart-container':
      await client.post(`/v1/containers/${seg(a.id)}/restart`, undefined, { t: a.timeoutSeconds });
      return;
    case 'stop-container':
      await client.post(`/v1/containers/${seg(a.id)}/stop`, undefined, { t: a.timeoutSeconds });
      return;
    case 'remove-container':
      await client.delete(`/v1/containers/${seg(a.id)}`, { force: true });
      return;
    case 'create-service':
      await client.post('/v1/services', a.request);
      return;
    case 'update-service':
      await client.post(`/v1/services/${seg(a.id)}/update`, a.request);
      return;
    case 'remove-service':
      await client.delete(`/v1/services/${seg(a.id)}`);
      return;
  }
}

async function waitForDependency(
  ctx: Ctx,
  project: Project,
  service: string,
  dep: { service: string; condition: string },
): Promise<void> {
  if (dep.condition === 'service_healthy') return waitHealthy(ctx, project, service, dep.service);
  if (dep.condition !== 'service_completed_successfully') return;
  for (const c of await serviceContainers(ctx, project, dep.service)) {
    const { exitCode } = await ctx.client().post<{ exitCode: number }>(`/v1/containers/${seg(c.id)}/wait`);
    if (exitCode !== 0) {
      throw new CliError(`service ${service} depends on ${dep.service} completing successfully, but ${c.name} exited with code ${exitCode}`);
    }
  }
}

async function serviceContainers(ctx: Ctx, project: Project, service: string): Promise<ContainerView[]> {
  const { LABELS } = await compose();
  return ctx.client().get<ContainerView[]>('/v1/containers', {
    all: true,
    label: [`${LABELS.project}=${project.name}`, `${LABELS.service}=${service}`],
  });
}

/**
 * Long enough for a check to settle either way: the start period, then `retries` failures in a
 * row of (interval + timeout) each, once more for luck, and some slack for starting up.
 */
function healthWaitMs(spec: HealthSpec | undefined): number {
  if (!spec) return 60_000;
  return Math.max(30_000, spec.startPeriodMs + (spec.retries + 1) * (spec.intervalMs + spec.timeoutMs) + 10_000);
}

/**
 * depends_on with service_healthy: waits until every container of `dep` reports healthy, as
 * Compose does; fails at once when one is unhealthy or has exited, or has no check to wait for.
 */
async function waitHealthy(ctx: Ctx, project: Project, service: string, dep: string): Promise<void> {
  let limitMs: number | undefined;
  const since = Date.now();
  let waiting = false;
  for (;;) {
    const containers = (await serviceContainers(ctx, project, dep)).filter((c) => c.state.phase !== 'removing');
    const fail = (why: string) => new CliError(`service ${service} depends on ${dep} being healthy, but ${why}`);
    const pending: string[] = [];
    for (const c of containers) {
      if (!c.config.healthcheck) throw fail(`${c.name} has no healthcheck; add one to ${dep}, or use condition: service_started`);
      if (c.state.phase === 'exited') throw fail(`${c.name} exited${c.state.exitCode !== undefined ? ` with code ${c.state.exitCode}` : ''} before it was healthy`);
      const health = c.state.health?.status;
      if (health === 'unhealthy') {
        const last = c.state.health?.log.at(-1)?.output.trim();
        throw fail(`${c.name} is unhealthy${last ? ` (last check: ${last.split('\n')[0]})` : ''}`);
      }
      if (health !== 'healthy') pending.push(c.name);
    }
    if (!pending.length) {
      if (waiting) for (const c of containers) ctx.note(` ✔ Container ${c.name}  Healthy`);
      return;
    }
    limitMs ??= Math.max(...containers.map((c) => healthWaitMs(c.config.healthcheck)));
    if (Date.now() - since > limitMs) throw fail(`${pending.join(', ')} did not become healthy within ${Math.round(limitMs / 1000)}s (still starting); see weft inspect ${pending[0]}`);
    if (!waiting) ctx.note(` … Container ${pending.join(', ')}  Waiting (healthy)`);
    waiting = true;
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function runPlan(ctx: Ctx, project: Project, actions: Action[], describe: (a: Action) => string): Promise<void> {
  for (const a of actions) {
    const what = describe(a);
    try {
      await apply(ctx, project, a);
    } catch (e) {
      ctx.note(` ✘ ${what}`);
      throw e;
    }
    ctx.note(` ✔ ${what}`);
  }
}

async function up(ctx: Ctx, flags: ProjectFlags & { detach?: boolean; removeOrphans?: boolean }): Promise<void> {
  const project = await loadProject(ctx, flags);
  const { planUp, describeAction, PlanError } = await compose();
  let plan;
  try {
    plan = planUp(project, await currentState(ctx, project.name), { removeOrphans: flags.removeOrphans ?? true });
  } catch (e) {
    if (e instanceof PlanError) throw new CliError(e.message);
    throw e;
  }
  for (const w of plan.warnings) ctx.note(`WARN ${w}`);
  // policies first: no container of the project runs a moment without them
  const policiesChanged = await syncPolicies(ctx, project, await composePolicies(ctx, project));
  if (!plan.actions.length && !policiesChanged) ctx.note(`Project ${project.name} is up to date`);
  await runPlan(ctx, project, plan.actions, describeAction);
  if (flags.detach) return;
  await attach(ctx, project);
}

/**
 * `up` without -d: follows every container's output, prefixed with its name, until they have all
 * exited; Ctrl-C stops the project's containers (as docker compose does) and ends the command.
 */
async function attach(ctx: Ctx, project: Project): Promise<void> {
  const { containers } = await currentState(ctx, project.name);
  const abort = new AbortController();
  let stopping = false;
  const off = ctx.io.onSignal(() => {
    if (stopping) return abort.abort(); // a second Ctrl-C: stop waiting
    stopping = true;
    ctx.note('Gracefully stopping... (press Ctrl+C again to force)');
    void Promise.all(containers.map((c) => ctx.client().post(`/v1/containers/${seg(c.id)}/stop`).catch(() => {}))).then(() => abort.abort());
  });
  try {
    await showLogs(ctx, containers, true, abort.signal);
  } finally {
    off();
  }
}

/** The output of several containers, each line prefixed with its container's name. */
async function showLogs(ctx: Ctx, containers: ContainerView[], follow: boolean, signal?: AbortSignal): Promise<void> {
  const width = Math.max(0, ...containers.map((c) => c.name.length));
  await Promise.all(
    containers.map((c) => {
      const prefix = `${c.name.padEnd(width)}  | `;
      return ctx
        .client()
        .framed(
          'GET',
          `/v1/containers/${seg(c.id)}/logs`,
          { query: { follow, stdout: true, stderr: true }, signal },
          { stdout: prefixer(prefix, (s) => ctx.io.stdout.write(s)), stderr: prefixer(prefix, (s) => ctx.io.stderr.write(s)) },
        )
        .catch((e: Error) => {
          if (e.name !== 'AbortError') throw e;
        });
    }),
  );
}

/** Writes a stream's output line by line, each line prefixed (a partial line waits for its end). */
function prefixer(prefix: string, write: (s: string) => void): (b: Buffer) => void {
  let partial = '';
  return (b) => {
    const text = partial + b.toString('utf8');
    const lines = text.split('\n');
    partial = lines.pop() ?? '';
    if (lines.length) write(lines.map((l) => `${prefix}${l}\n`).join(''));
  };
}

async function down(ctx: Ctx, flags: ProjectFlags & { volumes?: boolean; removeOrphans?: boolean; timeout?: string }): Promise<void> {
  const project = await projectByName(ctx, flags);
  const { planDown, describeAction } = await compose();
  const plan = planDown(project, await currentState(ctx, project.name), { volumes: flags.volumes, removeOrphans: flags.removeOrphans ?? true });
  for (const w of plan.warnings) ctx.note(`WARN ${w}`);
  if (flags.timeout !== undefined) {
    const t = Number(flags.timeout);
    if (!Number.isInteger(t) || t < 0) throw new CliError(`invalid --timeout '${flags.timeout}': give whole seconds`);
    for (const a of plan.actions) if (a.kind === 'stop-container') a.timeoutSeconds = t;
  }
  await runPlan(ctx, project, plan.actions, describeAction);
  await syncPolicies(ctx, project, []);
}

async function composePolicies(ctx: Ctx, project: Project): Promise<PolicyDocument[]> {
  const { projectPolicies } = await compose();
  try {
    return projectPolicies(project);
  } catch (e) {
    const lines = (e as Error).message.split('\n');
    for (const l of lines.slice(0, -1)) ctx.error(l);
    throw new CliError(lines[lines.length - 1]!);
  }
}

/** Applies the project's policies and deletes the ones compose applied before that are gone; true if anything changed. */
async function syncPolicies(ctx: Ctx, project: Project, docs: PolicyDocument[]): Promise<boolean> {
  const { LABELS } = await compose();
  const client = ctx.client();
  let changed = false;
  for (const d of docs) {
    const { result } = await client.post<{ result: string }>('/v1/policies', { object: policyObject(d) });
    if (result !== 'unchanged') {
      ctx.note(` ✔ Policy ${d.name} ${result}`);
      changed = true;
    }
  }
  const keep = new Set(docs.map((d) => d.name));
  const current = await client.get<PolicyView[]>('/v1/policies', { project: project.name });
  for (const p of current) {
    if (p.labels[LABELS.project] !== project.name || keep.has(p.name)) continue;
    await client.delete(`/v1/policies/${seg(project.name)}/${seg(p.name)}`);
    ctx.note(` ✔ Policy ${p.name} removed`);
    changed = true;
  }
  return changed;
}

async function ps(ctx: Ctx, flags: ProjectFlags & { all?: boolean; format: string; quiet?: boolean }): Promise<void> {
  const project = await projectByName(ctx, flags);
  const list = (await currentState(ctx, project.name)).containers
    .filter((c) => flags.all || c.state.phase === 'running')
    .sort((a, b) => a.name.localeCompare(b.name));
  if (flags.quiet) {
    for (const c of list) ctx.line(c.id);
    return;
  }
  if (parseFormat(flags.format) === 'json') {
    ctx.out(json(list));
    return;
  }
  const { LABELS } = await compose();
  const rows = list.map((c) => [c.name, c.config.labels[LABELS.service] ?? '', c.status, portsColumn(c.ports)]);
  ctx.out(table(['NAME', 'SERVICE', 'STATUS', 'PORTS'], rows));
}

async function logs(ctx: Ctx, services: string[], flags: ProjectFlags & { follow?: boolean }): Promise<void> {
  const project = await projectByName(ctx, flags);
  const { LABELS } = await compose();
  const containers = (await currentState(ctx, project.name)).containers
    .filter((c) => !services.length || services.includes(c.config.labels[LABELS.service] ?? ''))
    .sort((a, b) => a.name.localeCompare(b.name));
  if (services.length && !containers.length) throw new CliError(`no containers for service ${services.join(', ')} in project ${project.name}`);
  await showLogs(ctx, containers, Boolean(flags.follow));
}

async function config(ctx: Ctx, flags: ProjectFlags): Promise<void> {
  const project = await loadProject(ctx, flags);
  await composePolicies(ctx, project);
  ctx.out(json(project));
}

/** A subcommand's flags with the `compose` group's (-f/-p given before the subcommand) beneath. */
function merged<T>(cmd: Command): T {
  return { ...(cmd.parent?.name() === 'compose' ? cmd.parent.opts() : {}), ...cmd.opts() } as T;
}

function upCommand(cmd: Command, ctx: Ctx): Command {
  return projectOptions(cmd.description('Create and start a compose project, or converge it to the file'))
    .option('-d, --detach', 'leave the containers running in the background')
    .option('--no-remove-orphans', "keep containers of services that left the file (default: they are removed)")
    .action((_flags, c: Command) => up(ctx, merged(c)));
}

function downCommand(cmd: Command, ctx: Ctx): Command {
  return projectOptions(cmd.description("Stop and remove a compose project's containers and networks"))
    .option('-v, --volumes', 'accepted for compatibility: weft has no volumes')
    .option('-t, --timeout <seconds>', 'seconds to wait for each container to stop')
    .option('--no-remove-orphans', 'keep containers of services that left the file')
    .action((_flags, c: Command) => down(ctx, merged(c)));
}

export function registerCompose(program: Command, ctx: Ctx): void {
  upCommand(program.command('up'), ctx);
  downCommand(program.command('down'), ctx);

  // as in docker compose: `weft compose [-f FILE] [-p NAME] COMMAND`
  const group = projectOptions(program.command('compose').description('Compose projects: up, down, ps, logs, config'));
  upCommand(group.command('up'), ctx);
  downCommand(group.command('down'), ctx);
  group
    .command('ps')
    .description("List a project's containers")
    .option('-a, --all', 'stopped containers too')
    .option('-q, --quiet', 'only the ids')
    .option('--format <format>', 'table or json', 'table')
    .action((_flags, c: Command) => ps(ctx, merged(c)));
  group
    .command('logs')
    .description("Show the output of a project's containers")
    .argument('[service...]', 'only these services')
    .option('-f, --follow', 'keep following the output')
    .action((services: string[], _flags, c: Command) => logs(ctx, services, merged(c)));
  group
    .command('config')
    .description('Validate the files and print the project as weft understands it')
    .action((_flags, c: Command) => config(ctx, merged(c)));
}
