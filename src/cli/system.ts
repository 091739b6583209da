/** version, info, events, system prune, system check. */
import type { Command } from 'commander';
import type { Leak, SystemInfo, VersionInfo, WeftEvent } from '../api/schemas.js';
import { cliVersion, type Ctx } from './context.js';
import { ExitCode } from './errors.js';
import { json, keyValues } from './format.js';
import { parseCount, parseFormat } from './options.js';

export function clientInfo(): { version: string; node: string; os: string } {
  return { version: cliVersion(), node: process.version, os: `${process.platform}/${process.arch}` };
}

/** One line per event, like `docker events`: time type action id (name=..., k=v...). */
export function eventLine(e: WeftEvent): string {
  const attrs: Record<string, string> = { ...(e.attributes ?? {}), name: e.name };
  const list = Object.keys(attrs)
    .sort()
    .map((k) => `${k}=${attrs[k]}`)
    .join(', ');
  return `${e.time} ${e.type} ${e.action} ${e.id} (${list})`;
}

export function leakLine(l: Leak): string {
  return `${l.kind} ${l.name}: ${l.detail}`;
}

/**
 * For `version` and `info`: prints the client part, then asks the agent. If the agent is away
 * the client part stays printed and the error line follows (exit 1), like Docker.
 */
async function clientThenServer<T>(
  ctx: Ctx,
  format: 'table' | 'json',
  path: string,
  clientText: string,
  serverText: (server: T) => string,
): Promise<void> {
  const client = clientInfo();
  if (format === 'json') {
    let server: T | undefined;
    let error: Error | undefined;
    try {
      server = await ctx.client().get<T>(path);
    } catch (err) {
      error = err as Error;
    }
    ctx.out(json({ client: { ...client, host: `unix://${ctx.socketPath()}` }, server: server ?? null }));
    if (error) throw error;
    return;
  }
  ctx.out(clientText);
  const server = await ctx.client().get<T>(path);
  ctx.out(`\n${serverText(server)}`);
}

export function registerSystem(program: Command, ctx: Ctx): void {
  program
    .command('version')
    .description('Show the client and agent versions')
    .option('--format <format>', 'table or json', 'table')
    .action(async (opts: { format: string }) => {
      const c = clientInfo();
      await clientThenServer<VersionInfo>(
        ctx,
        parseFormat(opts.format),
        '/v1/version',
        `Client:\n${keyValues(
          [
            ['Version', c.version],
            ['Node', c.node],
            ['OS/Arch', c.os],
          ],
          ' ',
        )}`,
        (s) =>
          `Agent:\n${keyValues(
            [
              ['Version', s.version],
              ['API version', s.apiVersion],
              ['Node', s.node],
              ['OS', s.os],
              ['Kernel', s.kernel],
            ],
            ' ',
          )}`,
      );
    });

  program
    .command('info')
    .description('Show what the agent runs and where')
    .option('--format <format>', 'table or json', 'table')
    .action(async (opts: { format: string }) => {
      const c = clientInfo();
      await clientThenServer<SystemInfo>(
        ctx,
        parseFormat(opts.format),
        '/v1/info',
        `Client:\n${keyValues(
          [
            ['Version', c.version],
            ['Host', `unix://${ctx.socketPath()}`],
          ],
          ' ',
        )}`,
        (s) =>
          `Agent:\n${keyValues(
            [
              ['Containers', String(s.containers)],
              ['  Running', String(s.running)],
              ['  Stopped', String(s.stopped)],
              ['Networks', String(s.networks)],
              ['Store', s.store],
              ['State dir', s.stateDir],
              ['Socket', s.socket],
              ['Node id', s.nodeId],
              ['Kernel', s.kernel],
              ['nftables', s.nftables ? 'yes' : 'no'],
            ],
            ' ',
          )}`,
      );
    });

  program
    .command('events')
    .description('Follow what happens to networks and containers')
    .option('--since <revision>', 'start after this store revision (default: from now)')
    .option('--format <format>', 'table (one line per event) or json (one object per line)', 'table')
    .action(async (opts: { since?: string; format: string }) => {
      const format = parseFormat(opts.format);
      const since = opts.since === undefined ? undefined : parseCount(opts.since, '--since');
      await ctx.client().ndjson<WeftEvent>('/v1/events', { query: { since } }, (e) =>
        ctx.line(format === 'json' ? JSON.stringify(e) : eventLine(e)),
      );
    });

  const system = program.command('system').description('Manage weft itself');

  system
    .command('prune')
    .description('Remove stopped containers and networks no container uses')
    .option('-a, --all', 'remove running containers too')
    .option('-f, --force', 'do not ask for confirmation')
    .action(async (opts: { all?: boolean; force?: boolean }) => {
      const warning = [
        'WARNING! This will remove:',
        opts.all ? '  - all containers, running ones included' : '  - all stopped containers',
        '  - all networks not used by at least one container',
      ].join('\n');
      if (!opts.force && !(await ctx.confirm(warning))) return;
      const res = await ctx
        .client()
        .post<{ containers: string[]; networks: string[] }>('/v1/system/prune', opts.all ? { all: true } : {});
      if (res.containers.length) {
        ctx.line('Deleted Containers:');
        for (const c of res.containers) ctx.line(c);
        ctx.line();
      }
      if (res.networks.length) {
        ctx.line('Deleted Networks:');
        for (const n of res.networks) ctx.line(n);
      }
    });

  system
    .command('check')
    .description("Look for leftovers weft owns but no object explains (exit 1 if any)")
    .option('--format <format>', 'table or json', 'table')
    .action(async (opts: { format: string }) => {
      const format = parseFormat(opts.format);
      const { leaks } = await ctx.client().get<{ leaks: Leak[] }>('/v1/system/check');
      if (format === 'json') ctx.out(json(leaks));
      else if (!leaks.length) ctx.line('no leaks');
      else for (const l of leaks) ctx.line(leakLine(l));
      if (leaks.length) throw new ExitCode(1);
    });
}
