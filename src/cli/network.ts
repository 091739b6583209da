/** `weft network ...`: create, ls, inspect, rm, connect, disconnect, prune. */
import { isIP } from 'node:net';
import type { Command } from 'commander';
import type {
  ContainerView,
  NetworkConnect,
  NetworkCreate,
  NetworkDisconnect,
  NetworkView,
  SubnetRequest,
} from '../api/schemas.js';
import { ApiError, seg } from './client.js';
import type { Ctx } from './context.js';
import { CliError, ExitCode } from './errors.js';
import { json, shortId, table } from './format.js';
import { collect, parseFilters, parseFormat, parseIp, parseKeyValues } from './options.js';

export const NETWORK_FILTERS = ['name', 'driver', 'label', 'id'] as const;

export interface NetworkCreateOptions {
  driver?: string;
  subnet?: string[];
  ipRange?: string[];
  gateway?: string[];
  ipv6?: boolean;
  internal?: boolean;
  opt?: string[];
  label?: string[];
}

function familyOf(value: string): 4 | 6 {
  return value.includes(':') ? 6 : 4;
}

function checkCidr(value: string, flag: string): void {
  const slash = value.indexOf('/');
  const addr = slash < 0 ? value : value.slice(0, slash);
  const prefix = slash < 0 ? '' : value.slice(slash + 1);
  const max = familyOf(addr) === 6 ? 128 : 32;
  if (slash < 0 || !isIP(addr) || !/^\d{1,3}$/.test(prefix) || Number(prefix) > max) {
    throw new CliError(`invalid ${flag} '${value}': expected a CIDR like 10.1.0.0/24 or fd00:1::/64`);
  }
}

/**
 * --subnet/--ip-range/--gateway -> SubnetRequest[]. As in Docker, the n-th --ip-range (or
 * --gateway) of a family goes with the n-th --subnet of that family.
 */
export function pairSubnets(subnets: string[] = [], ipRanges: string[] = [], gateways: string[] = []): SubnetRequest[] {
  const out: SubnetRequest[] = subnets.map((subnet) => {
    checkCidr(subnet, '--subnet');
    return { subnet };
  });
  const slots: Record<4 | 6, number[]> = { 4: [], 6: [] };
  subnets.forEach((s, i) => slots[familyOf(s)].push(i));

  const assign = (values: string[], flag: string, key: 'ipRange' | 'gateway'): void => {
    const used: Record<4 | 6, number> = { 4: 0, 6: 0 };
    for (const value of values) {
      if (key === 'ipRange') checkCidr(value, flag);
      else parseIp(value, flag);
      const family = familyOf(value);
      const index = slots[family][used[family]++];
      if (index === undefined) {
        throw new CliError(
          `${flag} ${value} has no IPv${family} --subnet to go with: give one --subnet per ${flag}, in the same order`,
        );
      }
      out[index][key] = value;
    }
  };
  assign(ipRanges, '--ip-range', 'ipRange');
  assign(gateways, '--gateway', 'gateway');
  return out;
}

export function networkCreateRequest(name: string, opts: NetworkCreateOptions): NetworkCreate {
  const req: NetworkCreate = { name };
  if (opts.driver !== undefined) {
    if (opts.driver !== 'bridge') {
      throw new CliError(`unsupported --driver '${opts.driver}': weft networks use the bridge driver`);
    }
    req.driver = opts.driver;
  }
  const subnets = pairSubnets(opts.subnet, opts.ipRange, opts.gateway);
  if (subnets.length) req.subnets = subnets;
  if (opts.ipv6) req.ipv6 = true;
  if (opts.internal) req.internal = true;
  const options = parseKeyValues(opts.opt, '--opt');
  if (Object.keys(options).length) req.options = options;
  const labels = parseKeyValues(opts.label, '--label', true);
  if (Object.keys(labels).length) req.labels = labels;
  return req;
}

/** Docker lists networks by name. */
export function sortNetworks(networks: readonly NetworkView[]): NetworkView[] {
  return [...networks].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

export function networkTable(networks: readonly NetworkView[], noTrunc = false): string {
  const rows = sortNetworks(networks).map((n) => [noTrunc ? n.id : shortId(n.id), n.name, n.driver, 'local']);
  return table(['NETWORK ID', 'NAME', 'DRIVER', 'SCOPE'], rows);
}

/** GET each network; 404s become "no such network: X". */
export async function inspectNetworks(ctx: Ctx, names: readonly string[]): Promise<{ found: NetworkView[]; failed: boolean }> {
  const found: NetworkView[] = [];
  let failed = false;
  for (const name of names) {
    try {
      found.push(await ctx.client().get<NetworkView>(`/v1/networks/${seg(name)}`));
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      ctx.error(err.status === 404 ? `no such network: ${name}` : err.message);
      failed = true;
    }
  }
  return { found, failed };
}

/** Runs fn for each name; prints the name on success, an error line on failure; exit 1 if any. */
export async function eachName(ctx: Ctx, names: readonly string[], fn: (name: string) => Promise<unknown>): Promise<void> {
  let failed = false;
  for (const name of names) {
    try {
      await fn(name);
      ctx.line(name);
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      ctx.error(err.message);
      failed = true;
    }
  }
  if (failed) throw new ExitCode(1);
}

export function registerNetwork(program: Command, ctx: Ctx): void {
  const network = program.command('network').description('Manage networks');

  network
    .command('create')
    .description('Create a network')
    .argument('<name>', 'the network name')
    .option('-d, --driver <driver>', 'network driver (bridge)')
    .option('--subnet <cidr>', 'a subnet in CIDR form; repeat for several (IPv4 and IPv6)', collect)
    .option('--ip-range <cidr>', 'allocate addresses from this range of the --subnet in the same position', collect)
    .option('--gateway <ip>', 'gateway of the --subnet in the same position (per family)', collect)
    .option('--ipv6', 'enable IPv6')
    .option('--internal', 'no traffic to or from outside the network')
    .option('-o, --opt <key=value>', 'driver option', collect)
    .option('--label <key=value>', 'a label on the network', collect)
    .action(async (name: string, opts: NetworkCreateOptions) => {
      const req = networkCreateRequest(name, opts);
      const created = await ctx.client().post<NetworkView>('/v1/networks', req);
      ctx.line(created.id);
    });

  network
    .command('ls')
    .alias('list')
    .description('List networks')
    .option('-f, --filter <key=value>', `filter: ${NETWORK_FILTERS.join('=, ')}= (repeatable)`, collect)
    .option('-q, --quiet', 'only the ids')
    .option('--no-trunc', 'full ids')
    .option('--format <format>', 'table or json', 'table')
    .action(async (opts: { filter?: string[]; quiet?: boolean; trunc: boolean; format: string }) => {
      const filters = parseFilters(opts.filter, NETWORK_FILTERS, 'network ls');
      const format = parseFormat(opts.format);
      const networks = sortNetworks(await ctx.client().get<NetworkView[]>('/v1/networks', filters));
      if (opts.quiet) {
        for (const n of networks) ctx.line(opts.trunc ? shortId(n.id) : n.id);
      } else if (format === 'json') {
        ctx.out(json(networks));
      } else {
        ctx.out(networkTable(networks, !opts.trunc));
      }
    });

  network
    .command('inspect')
    .description('Show networks in detail (JSON)')
    .argument('<name...>', 'network names or ids')
    .option('--format <format>', 'json', 'json')
    .action(async (names: string[], opts: { format: string }) => {
      parseFormat(opts.format, ['json']);
      const { found, failed } = await inspectNetworks(ctx, names);
      ctx.out(json(found));
      if (failed) throw new ExitCode(1);
    });

  network
    .command('rm')
    .alias('remove')
    .description('Remove networks')
    .argument('<name...>', 'network names or ids')
    .action(async (names: string[]) => {
      await eachName(ctx, names, (name) => ctx.client().delete(`/v1/networks/${seg(name)}`));
    });

  network
    .command('connect')
    .description('Connect a container to a network')
    .argument('<network>', 'network name or id')
    .argument('<container>', 'container name or id')
    .option('--ip <ipv4>', 'IPv4 address for the container')
    .option('--ip6 <ipv6>', 'IPv6 address for the container')
    .option('--alias <alias>', 'a name for the container on this network (repeatable)', collect)
    .action(async (net: string, container: string, opts: { ip?: string; ip6?: string; alias?: string[] }) => {
      const req: NetworkConnect = { container };
      if (opts.ip !== undefined) req.ipv4 = parseIp(opts.ip, '--ip', 4);
      if (opts.ip6 !== undefined) req.ipv6 = parseIp(opts.ip6, '--ip6', 6);
      if (opts.alias?.length) req.aliases = opts.alias;
      await ctx.client().post<ContainerView>(`/v1/networks/${seg(net)}/connect`, req);
    });

  network
    .command('disconnect')
    .description('Disconnect a container from a network')
    .argument('<network>', 'network name or id')
    .argument('<container>', 'container name or id')
    .option('-f, --force', 'disconnect even if the container is not running cleanly')
    .action(async (net: string, container: string, opts: { force?: boolean }) => {
      const req: NetworkDisconnect = { container };
      if (opts.force) req.force = true;
      await ctx.client().post<ContainerView>(`/v1/networks/${seg(net)}/disconnect`, req);
    });

  network
    .command('prune')
    .description('Remove all networks no container uses')
    .option('-f, --force', 'do not ask for confirmation')
    .action(async (opts: { force?: boolean }) => {
      if (
        !opts.force &&
        !(await ctx.confirm('WARNING! This will remove all custom networks not used by at least one container.'))
      ) {
        return;
      }
      const res = await ctx.client().post<{ deleted: string[] }>('/v1/networks/prune');
      if (res.deleted.length) {
        ctx.line('Deleted Networks:');
        for (const name of res.deleted) ctx.line(name);
      }
    });
}
