/**
 * Containers: run, create, exec, ps, logs, stop, start, restart, rm, inspect, port — at the top
 * level like Docker (`weft ps`) and under `weft container` (`weft container ls`).
 */
import { readFileSync } from 'node:fs';
import { CommanderError, type Command } from 'commander';
import type { ContainerCreate, ContainerView, ExecCreate, NetworkView } from '../api/schemas.js';
import { ApiError, ConnectError, seg } from './client.js';
import type { Ctx } from './context.js';
import { addHealthOptions, healthRequest, type HealthOptions } from './service.js';
import { CliError, ExitCode } from './errors.js';
import { commandColumn, json, portLines, portsColumn, shortId, table, timeAgo, hostAddress } from './format.js';
import { eachName, inspectNetworks } from './network.js';
import {
  collect,
  parseAddHost,
  parseCount,
  parseEnvFile,
  parseEnvList,
  parseFilters,
  parseFormat,
  parseIp,
  parseKeyValues,
  parseRestart,
  parseTail,
} from './options.js';
import { parsePortSpecs, parsePrivatePort } from './ports.js';

export const CONTAINER_FILTERS = ['name', 'label', 'id', 'status'] as const;

/** Docker's exit code when `run` fails before the container's command started. */
export const RUN_FAILED = 125;

export interface CreateOptions extends HealthOptions {
  name?: string;
  network?: string;
  ip?: string;
  ip6?: string;
  networkAlias?: string[];
  publish?: string[];
  env?: string[];
  envFile?: string[];
  workdir?: string;
  hostname?: string;
  label?: string[];
  restart?: string;
  addHost?: string[];
  dns?: string[];
  project?: string;
  expose?: string[];
}

export interface RunOptions extends CreateOptions {
  detach?: boolean;
  rm?: boolean;
}

function readTextFile(path: string, flag: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new CliError(`cannot read ${flag} ${path}: ${code === 'ENOENT' ? 'no such file' : (err as Error).message}`);
  }
}

/** The request for `run`/`create` from the command and its options. Pure but for --env-file. */
export function containerCreateRequest(
  cmd: string[],
  opts: CreateOptions,
  env: NodeJS.ProcessEnv,
  readFile: (path: string, flag: string) => string = readTextFile,
): ContainerCreate {
  if (!cmd.length) throw new CliError('no command given: weft run [OPTIONS] COMMAND [ARG...]');
  const req: ContainerCreate = { cmd };
  if (opts.name !== undefined) {
    if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(opts.name)) {
      throw new CliError(`invalid --name '${opts.name}': use letters, digits, '_', '.' and '-', starting with a letter or digit`);
    }
    req.name = opts.name;
  }
  const envs = [
    ...(opts.envFile ?? []).flatMap((file) => parseEnvFile(readFile(file, '--env-file'), file, env)),
    ...parseEnvList(opts.env, env),
  ];
  if (envs.length) req.env = envs;
  if (opts.workdir !== undefined) req.workdir = opts.workdir;
  if (opts.hostname !== undefined) req.hostname = opts.hostname;
  const labels = parseKeyValues(opts.label, '--label', true);
  if (Object.keys(labels).length) req.labels = labels;
  if (opts.restart !== undefined) req.restart = parseRestart(opts.restart);
  const ports = parsePortSpecs(opts.publish);
  if (ports.length) req.ports = ports;
  if (opts.network !== undefined) req.network = opts.network;
  if (opts.ip !== undefined) req.ipv4 = parseIp(opts.ip, '--ip', 4);
  if (opts.ip6 !== undefined) req.ipv6 = parseIp(opts.ip6, '--ip6', 6);
  if (opts.networkAlias?.length) req.aliases = opts.networkAlias;
  if (opts.addHost?.length) req.extraHosts = opts.addHost.map(parseAddHost);
  if (opts.dns?.length) req.dns = opts.dns.map((ip) => parseIp(ip, '--dns'));
  const health = healthRequest(opts);
  if (health) req.healthcheck = health;
  if (opts.project !== undefined) req.project = opts.project;
  if (opts.expose?.length) req.expose = opts.expose.flatMap(parseExpose);
  return req;
}

/** --expose [NAME=]PORT[-END][/PROTO]: a name makes it a named port for network policies. */
export function parseExpose(spec: string): NonNullable<ContainerCreate['expose']> {
  const m = /^(?:([a-z0-9-]{1,15})=)?(\d+)(?:-(\d+))?(?:\/(tcp|udp|sctp))?$/.exec(spec);
  const bad = () => new CliError(`invalid --expose '${spec}': use [NAME=]PORT[-END][/tcp|udp|sctp], e.g. http=8080/tcp`);
  if (!m) throw bad();
  const [lo, hi] = [Number(m[2]), Number(m[3] ?? m[2])];
  if (!(lo >= 1 && hi <= 65535 && lo <= hi) || (m[1] && hi !== lo)) throw bad();
  const protocol = (m[4] ?? 'tcp') as 'tcp' | 'udp' | 'sctp';
  return Array.from({ length: hi - lo + 1 }, (_, i) => (m[1] ? { name: m[1], port: lo, protocol } : { port: lo + i, protocol }));
}

/** `exec` wants `CONTAINER CMD...`; a `--` right after the container is a separator, not the command. */
export function splitExecArgs(args: string[]): { container: string; cmd: string[] } {
  const [container, ...rest] = args;
  if (rest[0] === '--') rest.shift();
  if (!container || !rest.length) throw new CliError('exec needs a container and a command: weft exec [OPTIONS] CONTAINER COMMAND [ARG...]');
  return { container, cmd: rest };
}

/** Newest first, like docker ps. */
export function sortContainers(containers: readonly ContainerView[]): ContainerView[] {
  return [...containers].sort((a, b) => Date.parse(b.created) - Date.parse(a.created));
}

export function psTable(containers: readonly ContainerView[], now: number, noTrunc = false): string {
  const rows = sortContainers(containers).map((c) => [
    noTrunc ? c.id : shortId(c.id),
    commandColumn(c.config.cmd, noTrunc),
    timeAgo(c.created, now),
    c.status,
    portsColumn(c.ports ?? []),
    c.name,
  ]);
  return table(['CONTAINER ID', 'COMMAND', 'CREATED', 'STATUS', 'PORTS', 'NAMES'], rows);
}

function addCreateOptions(cmd: Command): Command {
  return addHealthOptions(cmd)
    .helpOption('--help', 'display help for command')
    .option('--name <name>', 'name the container')
    .option('--project <name>', 'the project (a Kubernetes namespace for network policies; default: "default")')
    .option('--expose <[name=]port[/proto]>', 'a port the container serves; named, a policy can allow it by name (repeatable)', collect)
    .option('--network <network>', "connect to this network ('host', 'none', 'container:NAME', or a network's name or id)")
    .option('--ip <ipv4>', 'IPv4 address on --network')
    .option('--ip6 <ipv6>', 'IPv6 address on --network')
    .option('--network-alias <alias>', 'a name for the container on --network (repeatable)', collect)
    .option('-p, --publish <spec>', 'publish a port: [hostIP:][hostPort:]containerPort[/tcp|udp] (repeatable)', collect)
    .option('-e, --env <KEY=VALUE>', 'set an environment variable; KEY alone takes it from here (repeatable)', collect)
    .option('--env-file <file>', 'read environment variables from a file (repeatable)', collect)
    .option('-w, --workdir <dir>', 'working directory of the command')
    .option('-h, --hostname <name>', 'hostname of the container')
    .option('-l, --label <key=value>', 'a label on the container (repeatable)', collect)
    .option('--restart <policy>', 'no, on-failure[:N], always or unless-stopped')
    .option('--add-host <name:ip>', 'add a line to /etc/hosts (repeatable)', collect)
    .option('--dns <ip>', 'a DNS server for the container (repeatable)', collect)
    .argument('<command...>', 'the command and its arguments')
    .passThroughOptions()
    .exitOverride((err) => {
      // Docker exits 125 when `run` fails before the container starts, flag errors included.
      throw err.exitCode === 0 ? err : new CommanderError(RUN_FAILED, err.code, err.message);
    });
}

/** Errors from run/create before the container's command started: exit 125. */
function as125(err: unknown): unknown {
  if (err instanceof ApiError || err instanceof ConnectError) return new CliError(err.message, RUN_FAILED);
  if (err instanceof CliError) return new CliError(err.message, RUN_FAILED);
  return err;
}

async function runForeground(ctx: Ctx, req: ContainerCreate, rm: boolean): Promise<number> {
  const client = ctx.client();
  let created: ContainerView;
  try {
    created = await client.post<ContainerView>('/v1/containers', { ...req, start: true });
  } catch (err) {
    throw as125(err);
  }
  const ref = seg(created.id);
  const abort = new AbortController();
  let interrupts = 0;
  let forceExit: (code: number) => void = () => undefined;
  const forced = new Promise<number>((resolve) => (forceExit = resolve));
  const unlisten = ctx.io.onSignal(() => {
    interrupts++;
    if (interrupts === 1) {
      client.post(`/v1/containers/${ref}/stop`).catch((err: Error) => ctx.error(err.message));
    } else {
      forceExit(130);
    }
  });
  try {
    const logs = client
      .framed(
        'GET',
        `/v1/containers/${ref}/logs`,
        { query: { follow: true, stdout: true, stderr: true }, signal: abort.signal },
        { stdout: (b) => ctx.io.stdout.write(b), stderr: (b) => ctx.io.stderr.write(b) },
      )
      .catch((err: Error) => ctx.error(`reading the container's output: ${err.message}`));
    const waited = client
      .request<{ exitCode: number }>('POST', `/v1/containers/${ref}/wait`, { signal: abort.signal })
      .then((r) => r.exitCode);
    let code: number;
    try {
      code = await Promise.race([waited, forced]);
    } catch (err) {
      abort.abort();
      throw as125(err);
    }
    if (interrupts > 1) {
      abort.abort();
      waited.catch(() => undefined);
      ctx.note(`weft: left container ${shortId(created.id)} stopping${rm ? '; it will not be removed' : ''}`);
      return code;
    }
    // The log stream ends when the container exits; give it a moment to deliver the last lines.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([logs, new Promise((resolve) => (timer = setTimeout(resolve, 2000)))]);
    clearTimeout(timer);
    abort.abort();
    if (rm) {
      try {
        await client.delete(`/v1/containers/${ref}`, { force: true });
      } catch (err) {
        if (!(err instanceof ApiError || err instanceof ConnectError)) throw err;
        ctx.error(`removing container ${req.name ?? shortId(created.id)}: ${err.message}`);
      }
    }
    return code;
  } finally {
    unlisten();
  }
}

export interface ContainerCommandsOptions {
  /** under `weft container`: ls (ps, list), container-only inspect */
  group: boolean;
}

export function registerContainerCommands(parent: Command, ctx: Ctx, { group }: ContainerCommandsOptions): void {
  addCreateOptions(parent.command('run').description('Create and run a container (in the foreground unless -d)'))
    .option('-d, --detach', 'run in the background and print the container id')
    .option('--rm', 'remove the container when it exits')
    .action(async (cmd: string[], opts: RunOptions) => {
      let req: ContainerCreate;
      try {
        req = containerCreateRequest(cmd, opts, ctx.io.env);
      } catch (err) {
        throw as125(err);
      }
      if (opts.detach) {
        try {
          const created = await ctx.client().post<ContainerView>('/v1/containers', { ...req, autoRemove: opts.rm || undefined, start: true });
          ctx.line(created.id);
        } catch (err) {
          throw as125(err);
        }
        return;
      }
      throw new ExitCode(await runForeground(ctx, req, Boolean(opts.rm)));
    });

  addCreateOptions(parent.command('create').description('Create a container without starting it')).action(
    async (cmd: string[], opts: CreateOptions) => {
      try {
        const req = containerCreateRequest(cmd, opts, ctx.io.env);
        const created = await ctx.client().post<ContainerView>('/v1/containers', { ...req, start: false });
        ctx.line(created.id);
      } catch (err) {
        throw as125(err);
      }
    },
  );

  parent
    .command('exec')
    .description('Run a command in a running container')
    .option('-e, --env <KEY=VALUE>', 'set an environment variable (repeatable)', collect)
    .option('-w, --workdir <dir>', 'working directory of the command')
    .argument('<container>', 'container name or id')
    .argument('<command...>', 'the command and its arguments')
    .passThroughOptions()
    .action(async (container: string, command: string[], opts: { env?: string[]; workdir?: string }) => {
      const split = splitExecArgs([container, ...command]);
      const req: ExecCreate = { cmd: split.cmd };
      const env = parseEnvList(opts.env, ctx.io.env);
      if (env.length) req.env = env;
      if (opts.workdir !== undefined) req.workdir = opts.workdir;
      const code = await ctx.client().framed(
        'POST',
        `/v1/containers/${seg(split.container)}/exec`,
        { body: req },
        { stdout: (b) => ctx.io.stdout.write(b), stderr: (b) => ctx.io.stderr.write(b) },
      );
      if (code === undefined) throw new CliError('the exec stream ended without an exit code (did the agent stop?)');
      throw new ExitCode(code);
    });

  parent
    .command(group ? 'ls' : 'ps')
    .aliases(group ? ['ps', 'list'] : [])
    .description('List containers')
    .option('-a, --all', 'all containers (default: only running ones)')
    .option('-q, --quiet', 'only the ids')
    .option('-f, --filter <key=value>', `filter: ${CONTAINER_FILTERS.join('=, ')}= (repeatable)`, collect)
    .option('--no-trunc', 'full ids and commands')
    .option('--format <format>', 'table or json', 'table')
    .action(async (opts: { all?: boolean; quiet?: boolean; filter?: string[]; trunc: boolean; format: string }) => {
      const filters = parseFilters(opts.filter, CONTAINER_FILTERS, 'ps');
      const format = parseFormat(opts.format);
      // A status filter asks for stopped containers too, as in Docker.
      const all = Boolean(opts.all || filters.status);
      const list = sortContainers(await ctx.client().get<ContainerView[]>('/v1/containers', { all, ...filters }));
      if (opts.quiet) {
        for (const c of list) ctx.line(opts.trunc ? shortId(c.id) : c.id);
      } else if (format === 'json') {
        ctx.out(json(list));
      } else {
        ctx.out(psTable(list, ctx.io.now(), !opts.trunc));
      }
    });

  parent
    .command('logs')
    .description("Show a container's output")
    .argument('<container>', 'container name or id')
    .option('-f, --follow', 'keep following the output')
    .option('-n, --tail <lines>', "only the last N lines ('all' for everything)", 'all')
    .action(async (container: string, opts: { follow?: boolean; tail: string }) => {
      const tail = parseTail(opts.tail);
      await ctx.client().framed(
        'GET',
        `/v1/containers/${seg(container)}/logs`,
        { query: { follow: Boolean(opts.follow), stdout: true, stderr: true, tail } },
        { stdout: (b) => ctx.io.stdout.write(b), stderr: (b) => ctx.io.stderr.write(b) },
      );
    });

  parent
    .command('stop')
    .description('Stop running containers (SIGTERM, then SIGKILL after the timeout)')
    .argument('<container...>', 'container names or ids')
    .option('-t, --time <seconds>', 'seconds to wait before killing')
    .action(async (names: string[], opts: { time?: string }) => {
      const t = opts.time === undefined ? undefined : parseCount(opts.time, '--time');
      await eachName(ctx, names, (name) => ctx.client().post(`/v1/containers/${seg(name)}/stop`, undefined, { t }));
    });

  parent
    .command('start')
    .description('Start stopped containers')
    .argument('<container...>', 'container names or ids')
    .action(async (names: string[]) => {
      await eachName(ctx, names, (name) => ctx.client().post(`/v1/containers/${seg(name)}/start`));
    });

  parent
    .command('restart')
    .description('Restart containers')
    .argument('<container...>', 'container names or ids')
    .option('-t, --time <seconds>', 'seconds to wait for the stop before killing')
    .action(async (names: string[], opts: { time?: string }) => {
      const t = opts.time === undefined ? undefined : parseCount(opts.time, '--time');
      await eachName(ctx, names, (name) => ctx.client().post(`/v1/containers/${seg(name)}/restart`, undefined, { t }));
    });

  parent
    .command('rm')
    .alias('remove')
    .description('Remove containers')
    .argument('<container...>', 'container names or ids')
    .option('-f, --force', 'stop running containers first')
    .action(async (names: string[], opts: { force?: boolean }) => {
      await eachName(ctx, names, (name) =>
        ctx.client().delete(`/v1/containers/${seg(name)}`, { force: Boolean(opts.force) }),
      );
    });

  const inspect = parent
    .command('inspect')
    .description(group ? 'Show containers in detail (JSON)' : 'Show containers or networks in detail (JSON)')
    .argument('<name...>', group ? 'container names or ids' : 'container or network names or ids')
    .option('--format <format>', 'json', 'json');
  if (!group) inspect.option('--type <type>', 'only this kind of object: container or network');
  inspect.action(async (names: string[], opts: { format: string; type?: string }) => {
    parseFormat(opts.format, ['json']);
    const type = group ? 'container' : opts.type;
    if (type !== undefined && type !== 'container' && type !== 'network') {
      throw new CliError(`invalid --type '${type}': use container or network`);
    }
    if (type === 'network') {
      const { found, failed } = await inspectNetworks(ctx, names);
      ctx.out(json(found));
      if (failed) throw new ExitCode(1);
      return;
    }
    const found: (ContainerView | NetworkView)[] = [];
    let failed = false;
    for (const name of names) {
      try {
        found.push(await ctx.client().get<ContainerView>(`/v1/containers/${seg(name)}`));
        continue;
      } catch (err) {
        if (!(err instanceof ApiError)) throw err;
        if (err.status !== 404) {
          ctx.error(err.message);
          failed = true;
          continue;
        }
      }
      if (type === undefined) {
        try {
          found.push(await ctx.client().get<NetworkView>(`/v1/networks/${seg(name)}`));
          continue;
        } catch (err) {
          if (!(err instanceof ApiError)) throw err;
          if (err.status !== 404) {
            ctx.error(err.message);
            failed = true;
            continue;
          }
        }
      }
      ctx.error(type === 'container' ? `no such container: ${name}` : `no such object: ${name}`);
      failed = true;
    }
    ctx.out(json(found));
    if (failed) throw new ExitCode(1);
  });

  parent
    .command('port')
    .description("List a container's published ports")
    .argument('<container>', 'container name or id')
    .argument('[private]', 'only this container port: PORT[/tcp|udp]')
    .action(async (container: string, priv: string | undefined) => {
      const wanted = priv === undefined ? undefined : parsePrivatePort(priv);
      const c = await ctx.client().get<ContainerView>(`/v1/containers/${seg(container)}`);
      const ports = c.ports ?? [];
      if (!wanted) {
        for (const line of portLines(ports)) ctx.line(line);
        return;
      }
      const protocol = wanted.protocol ?? 'tcp';
      const matching = ports.filter((p) => p.containerPort === wanted.port && p.protocol === protocol);
      if (!matching.length) {
        throw new CliError(`no public port '${wanted.port}/${protocol}' published for ${container}`);
      }
      for (const p of matching) ctx.line(`${hostAddress(p.hostIp)}:${p.hostPort}`);
    });
}
