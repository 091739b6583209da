/** `weft service ...`: create, ls, inspect, rm, scale, update. */
import type { Command } from 'commander';
import type { HealthcheckRequest, ServiceCreate, ServicePortRequest, ServiceUpdate, ServiceView } from '../api/schemas.js';
import { seg } from './client.js';
import type { Ctx } from './context.js';
import { CliError } from './errors.js';
import { json, shortId, table } from './format.js';
import { LB_ALGORITHMS as ALGORITHMS } from '../model/types.js';
import { collect, parseCount, parseEnvList, parseFormat, parseIp, parseKeyValues, parseRestart } from './options.js';


export interface HealthOptions {
  healthCmd?: string;
  healthTcp?: string;
  healthHttp?: string;
  healthInterval?: string;
  healthTimeout?: string;
  healthRetries?: string;
  healthStartPeriod?: string;
  healthStartInterval?: string;
  healthcheck?: boolean;
}

/** Docker's --health-* flags, plus weft's --health-tcp PORT and --health-http PORT[/PATH]. */
export function addHealthOptions(cmd: Command): Command {
  return cmd
    .option('--health-cmd <command>', 'a command run in the container to check its health (shell form)')
    .option('--health-tcp <port>', 'healthy when the container accepts a TCP connection on this port')
    .option('--health-http <port[/path]>', 'healthy when GET http://CONTAINER:PORT/PATH answers 200-399')
    .option('--health-interval <duration>', 'time between checks (e.g. 2s; default 30s)')
    .option('--health-timeout <duration>', 'how long a check may take (default 30s)')
    .option('--health-retries <n>', 'failures in a row before unhealthy (default 3)')
    .option('--health-start-period <duration>', 'failures in this time after start do not count')
    .option('--health-start-interval <duration>', 'time between checks during the start period (default 5s)')
    .option('--no-healthcheck', 'disable any health check');
}

/** The healthcheck of a request from --health-* flags; undefined when none is given. */
export function healthRequest(o: HealthOptions): HealthcheckRequest | undefined {
  if (o.healthcheck === false) return { test: ['NONE'] };
  const tests = [o.healthCmd, o.healthTcp, o.healthHttp].filter((x) => x !== undefined);
  if (tests.length > 1) throw new CliError('give one of --health-cmd, --health-tcp and --health-http');
  const timing = [o.healthInterval, o.healthTimeout, o.healthRetries, o.healthStartPeriod, o.healthStartInterval].some((x) => x !== undefined);
  if (!tests.length) {
    if (timing) throw new CliError('--health-interval and the like need a check: --health-cmd, --health-tcp or --health-http');
    return undefined;
  }
  let test: string[];
  if (o.healthCmd !== undefined) test = ['CMD-SHELL', o.healthCmd];
  else if (o.healthTcp !== undefined) test = ['TCP', o.healthTcp];
  else {
    const m = /^(\d+)(\/.*)?$/.exec(o.healthHttp!);
    if (!m) throw new CliError(`invalid --health-http '${o.healthHttp}': use PORT or PORT/PATH, e.g. 8080/healthz`);
    test = ['HTTP', m[1], m[2] ?? '/'];
  }
  const req: HealthcheckRequest = { test };
  if (o.healthInterval !== undefined) req.interval = o.healthInterval;
  if (o.healthTimeout !== undefined) req.timeout = o.healthTimeout;
  if (o.healthRetries !== undefined) req.retries = parseCount(o.healthRetries, '--health-retries');
  if (o.healthStartPeriod !== undefined) req.start_period = o.healthStartPeriod;
  if (o.healthStartInterval !== undefined) req.start_interval = o.healthStartInterval;
  return req;
}

/** --port [NAME=]PORT[:TARGET][/PROTO] */
export function parseServicePort(spec: string): ServicePortRequest {
  const m = /^(?:([a-z0-9-]+)=)?(\d+)(?::(\d+))?(?:\/(tcp|udp))?$/.exec(spec);
  const bad = () => new CliError(`invalid --port '${spec}': use [NAME=]PORT[:TARGET][/tcp|udp], e.g. http=80:8080`);
  if (!m) throw bad();
  const port = Number(m[2]);
  const targetPort = m[3] ? Number(m[3]) : port;
  if (!(port >= 1 && port <= 65535 && targetPort >= 1 && targetPort <= 65535)) throw bad();
  const p: ServicePortRequest = { port, targetPort, protocol: (m[4] as 'tcp' | 'udp') ?? 'tcp' };
  if (m[1]) p.name = m[1];
  return p;
}

/** -p HOSTPORT:PORT[/PROTO]: publishes the service port PORT (made if --port did not name it). */
export function applyPublish(ports: ServicePortRequest[], specs: string[]): ServicePortRequest[] {
  const out = ports.map((p) => ({ ...p }));
  for (const spec of specs) {
    const m = /^(\d+):(\d+)(?:\/(tcp|udp))?$/.exec(spec);
    if (!m) throw new CliError(`invalid --publish '${spec}': use HOSTPORT:PORT[/tcp|udp], e.g. 8080:80`);
    const [host, port, protocol] = [Number(m[1]), Number(m[2]), (m[3] as 'tcp' | 'udp') ?? 'tcp'];
    const found = out.find((p) => p.port === port && (p.protocol ?? 'tcp') === protocol);
    if (found) found.publish = host;
    else out.push({ port, targetPort: port, protocol, publish: host });
  }
  return out;
}

function parseWeights(list: string[] | undefined): Record<string, number> | undefined {
  if (!list?.length) return undefined;
  const kv = parseKeyValues(list, '--weight');
  return Object.fromEntries(
    Object.entries(kv).map(([k, v]) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 1 || n > 1000) throw new CliError(`invalid --weight ${k}=${v}: a whole number from 1 to 1000`);
      return [k, n];
    }),
  );
}

function parseAlgorithm(a: string | undefined): ServiceCreate['algorithm'] {
  if (a === undefined) return undefined;
  const alias: Record<string, string> = { rr: 'round-robin', wrr: 'weighted-round-robin', sh: 'source-affinity', lc: 'least-connections', mh: 'maglev' };
  const name = alias[a] ?? a;
  if (!(ALGORITHMS as readonly string[]).includes(name)) throw new CliError(`unknown --algorithm '${a}'; use one of ${ALGORITHMS.join(', ')}`);
  return name as ServiceCreate['algorithm'];
}

interface CommonOptions extends HealthOptions {
  port?: string[];
  publish?: string[];
  algorithm?: string;
  weight?: string[];
  affinityTimeout?: string;
  selector?: string[];
  replicas?: string;
  env?: string[];
  containerLabel?: string[];
  restart?: string;
}

interface CreateOptions extends CommonOptions {
  network?: string;
  endpointMode?: string;
  vip?: string;
  label?: string[];
}

/** Fields shared by create and update. A health check is a probe (TCP/HTTP) or, with a command, the replicas' own. */
function commonFields(opts: CommonOptions, cmd: string[], env: NodeJS.ProcessEnv): ServiceUpdate {
  const req: ServiceUpdate = {};
  const ports = applyPublish((opts.port ?? []).map(parseServicePort), opts.publish ?? []);
  if (ports.length) req.ports = ports;
  req.algorithm = parseAlgorithm(opts.algorithm);
  req.weights = parseWeights(opts.weight);
  if (opts.affinityTimeout !== undefined) req.affinityTimeout = parseCount(opts.affinityTimeout, '--affinity-timeout');
  if (opts.selector?.length) req.selector = parseKeyValues(opts.selector, '--selector');
  if (opts.replicas !== undefined) req.replicas = parseCount(opts.replicas, '--replicas');
  const health = healthRequest(opts);
  const probe = health && (health.test[0] === 'TCP' || health.test[0] === 'HTTP' || health.test[0] === 'NONE');
  if (probe) req.healthcheck = health;
  if (cmd.length) {
    req.template = { cmd };
    const envs = parseEnvList(opts.env, env);
    if (envs.length) req.template.env = envs;
    const labels = parseKeyValues(opts.containerLabel, '--container-label', true);
    if (Object.keys(labels).length) req.template.labels = labels;
    if (opts.restart) req.template.restart = parseRestart(opts.restart);
    if (health && !probe) req.template.healthcheck = health;
  } else if (health && !probe) throw new CliError('--health-cmd runs in the replicas: give the replicas a command (-- CMD...)');
  for (const k of Object.keys(req) as (keyof ServiceUpdate)[]) if (req[k] === undefined) delete req[k];
  return req;
}

export function serviceCreateRequest(name: string, cmd: string[], opts: CreateOptions, env: NodeJS.ProcessEnv): ServiceCreate {
  const req: ServiceCreate = { name, ...commonFields(opts, cmd, env) };
  if (cmd.length && req.replicas === undefined) req.replicas = 1;
  if (opts.network) req.network = opts.network;
  if (opts.endpointMode) {
    if (opts.endpointMode !== 'vip' && opts.endpointMode !== 'dnsrr') throw new CliError(`invalid --endpoint-mode '${opts.endpointMode}': vip or dnsrr`);
    req.endpointMode = opts.endpointMode;
  }
  if (opts.vip) req.vip = parseIp(opts.vip, '--vip', 4);
  const labels = parseKeyValues(opts.label, '--label', true);
  if (Object.keys(labels).length) req.labels = labels;
  return req;
}

function portsText(s: ServiceView): string {
  return s.ports
    .map((p) => `${p.publish ? `*:${p.publish}->` : ''}${p.port}${p.targetPort !== p.port ? `:${p.targetPort}` : ''}/${p.protocol}`)
    .join(', ');
}

export function serviceTable(list: readonly ServiceView[]): string {
  const rows = list.map((s) => [
    shortId(s.id),
    s.name,
    s.endpointMode,
    s.vip ?? '-',
    portsText(s),
    s.endpointMode === 'vip' ? s.algorithm : '-',
    `${s.backends.filter((b) => b.active).length}/${s.replicas ?? s.backends.length}`,
  ]);
  return table(['ID', 'NAME', 'MODE', 'VIP', 'PORTS', 'ALGORITHM', 'BACKENDS'], rows);
}

function addCommonOptions(cmd: Command): Command {
  return addHealthOptions(
    cmd
      .option('--port <spec>', 'a service port: [NAME=]PORT[:TARGET][/tcp|udp] (repeatable)', collect)
      .option('-p, --publish <spec>', 'publish a service port on the host: HOSTPORT:PORT[/tcp|udp] (repeatable)', collect)
      .option('--algorithm <name>', `load balancing: ${ALGORITHMS.join(', ')}`)
      .option('--weight <name=w>', "a backend container's weight (repeatable)", collect)
      .option('--affinity-timeout <seconds>', 'source-affinity: how long a client keeps its backend')
      .option('--selector <key=value>', 'backends are the containers with these labels (repeatable)', collect)
      .option('--replicas <n>', 'run N containers of the command (NAME-1...)')
      .option('-e, --env <KEY=VALUE>', 'an environment variable of the replicas (repeatable)', collect)
      .option('--container-label <key=value>', 'a label on the replicas (repeatable)', collect)
      .option('--restart <policy>', 'the replicas\' restart policy (default always)'),
  );
}

export function registerService(program: Command, ctx: Ctx): void {
  const svc = program.command('service').description('Manage services: virtual IPs balanced over containers');

  addCommonOptions(svc.command('create').description('Create a service (of new replicas, or of the containers a selector picks)'))
    .argument('<name>', 'the service name (its DNS name)')
    .argument('[command...]', 'the replicas\' command, after --')
    .option('--network <network>', 'where backends are reached and the name resolves')
    .option('--endpoint-mode <mode>', 'vip (a virtual IP, balanced in the kernel) or dnsrr (DNS round robin)')
    .option('--vip <ip>', 'this virtual IP instead of the next free one')
    .option('-l, --label <key=value>', 'a label on the service (repeatable)', collect)
    .action(async (name: string, cmd: string[], opts: CreateOptions) => {
      const created = await ctx.client().post<ServiceView>('/v1/services', serviceCreateRequest(name, cmd, opts, ctx.io.env));
      ctx.line(created.id);
    });

  svc
    .command('ls')
    .alias('list')
    .description('List services')
    .option('-q, --quiet', 'only ids')
    .option('--format <format>', 'table or json', 'table')
    .action(async (opts: { quiet?: boolean; format: string }) => {
      const list = await ctx.client().get<ServiceView[]>('/v1/services');
      if (opts.quiet) for (const s of list) ctx.line(shortId(s.id));
      else if (parseFormat(opts.format) === 'json') ctx.out(json(list));
      else ctx.out(serviceTable(list));
    });

  svc
    .command('inspect')
    .description('Show services in detail (JSON)')
    .argument('<service...>')
    .action(async (names: string[]) => {
      const found = await Promise.all(names.map((n) => ctx.client().get<ServiceView>(`/v1/services/${seg(n)}`)));
      ctx.out(json(found));
    });

  svc
    .command('rm')
    .alias('remove')
    .description('Remove services (and their replicas)')
    .argument('<service...>')
    .action(async (names: string[]) => {
      for (const n of names) {
        await ctx.client().delete(`/v1/services/${seg(n)}`);
        ctx.line(n);
      }
    });

  svc
    .command('scale')
    .description('Set the number of replicas: weft service scale web=3 [api=2...]')
    .argument('<name=replicas...>')
    .action(async (specs: string[]) => {
      for (const spec of specs) {
        const m = /^([^=]+)=(\d+)$/.exec(spec);
        if (!m) throw new CliError(`invalid scale '${spec}': use NAME=REPLICAS`);
        await ctx.client().post<ServiceView>(`/v1/services/${seg(m[1])}/update`, { replicas: Number(m[2]) });
        ctx.line(`${m[1]} scaled to ${m[2]}`);
      }
    });

  addCommonOptions(svc.command('update').description('Change a service: ports, algorithm, weights, selector, health check, replicas, command'))
    .argument('<name>')
    .argument('[command...]', 'a new command for the replicas (they are replaced one at a time)')
    .action(async (name: string, cmd: string[], opts: CommonOptions) => {
      const req = commonFields(opts, cmd, ctx.io.env);
      if (!Object.keys(req).length) throw new CliError('nothing to update: give --algorithm, --weight, --port, --replicas...');
      const s = await ctx.client().post<ServiceView>(`/v1/services/${seg(name)}/update`, req);
      ctx.line(s.name);
    });
}
