/**
 * `weft lab ...`: several "hosts" on one machine, each a network namespace with its own agent.
 * The lab module is loaded only when a lab command runs.
 */
import type { Command } from 'commander';
import type { LabInfo } from '../lab/types.js';
import type { Ctx } from './context.js';
import { CliError, ExitCode } from './errors.js';
import { json, keyValues, table } from './format.js';
import { parseFormat, parseStoreSpec } from './options.js';

function lab(): Promise<typeof import('../lab/index.js')> {
  return import('../lab/index.js');
}

export function envLine(info: LabInfo): string {
  return `export WEFT_HOST=unix://${info.socket}`;
}

export function agentState(info: LabInfo): string {
  if (!info.agentRunning) return 'stopped';
  return info.agentPid === undefined ? 'running' : `running (pid ${info.agentPid})`;
}

export function labDetails(info: LabInfo): string {
  return keyValues([
    ['Name', info.name],
    ['Folder', info.dir],
    ['Agent', agentState(info)],
    ['Socket', info.socket],
    ['Store', info.store],
    ['Host netns', info.hostNetns],
    ['Host address', info.hostAddress],
    ['Outside netns', info.outsideNetns],
    ['Outside address', info.outsideAddress],
  ]);
}

export function labTable(labs: readonly LabInfo[]): string {
  const rows = [...labs]
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .map((l) => [l.name, agentState(l), l.hostAddress, l.store, l.socket]);
  return table(['NAME', 'AGENT', 'HOST ADDRESS', 'STORE', 'SOCKET'], rows);
}

/** `lab exec NAME [--host] [--] CMD...`: --host and -- may follow the name. */
export function splitLabExecArgs(args: string[], hostFlag: boolean): { name: string; cmd: string[]; host: boolean } {
  const [name, ...rest] = args;
  let host = hostFlag;
  while (rest[0] === '--host') {
    host = true;
    rest.shift();
  }
  if (rest[0] === '--') rest.shift();
  if (!name || !rest.length) throw new CliError('lab exec needs a lab and a command: weft lab exec NAME [--host] -- COMMAND [ARG...]');
  return { name, cmd: rest, host };
}

export function registerLab(program: Command, ctx: Ctx): void {
  const group = program.command('lab').description('Lab hosts: network namespaces with their own agent, for trying designs');

  group
    .command('up')
    .description('Create a lab host and start its agent; prints the WEFT_HOST line to use it')
    .argument('<name>', 'the lab name')
    .option('--store <store>', 'the agent store: sqlite or etcd://HOST:PORT', 'sqlite')
    .action(async (name: string, opts: { store: string }) => {
      const store = parseStoreSpec(opts.store);
      ctx.note(`Creating lab ${name}...`);
      const info = await (await lab()).labUp(name, { store });
      // The details are for people (stderr); stdout is only the env line, so eval "$(weft lab up x)" works.
      ctx.note(labDetails(info).trimEnd());
      ctx.line(envLine(info));
    });

  group
    .command('down')
    .description('Stop lab hosts and remove everything they made')
    .argument('<name...>', 'lab names')
    .action(async (names: string[]) => {
      const { labDown } = await lab();
      let failed = false;
      for (const name of names) {
        try {
          await labDown(name);
          ctx.line(name);
        } catch (err) {
          ctx.error((err as Error).message);
          failed = true;
        }
      }
      if (failed) throw new ExitCode(1);
    });

  group
    .command('ls')
    .alias('list')
    .description('List labs')
    .option('-q, --quiet', 'only the names')
    .option('--format <format>', 'table or json', 'table')
    .action(async (opts: { quiet?: boolean; format: string }) => {
      const format = parseFormat(opts.format);
      const labs = await (await lab()).labList();
      if (opts.quiet) for (const l of labs) ctx.line(l.name);
      else if (format === 'json') ctx.out(json(labs));
      else ctx.out(labTable(labs));
    });

  group
    .command('inspect')
    .description('Show a lab')
    .argument('<name>', 'the lab name')
    .option('--format <format>', 'table or json', 'table')
    .action(async (name: string, opts: { format: string }) => {
      const format = parseFormat(opts.format);
      const info = await (await lab()).labInspect(name);
      ctx.out(format === 'json' ? json(info) : labDetails(info));
    });

  const agent = group.command('agent').description("Stop or start a lab's agent (the data plane stays up meanwhile)");
  agent
    .command('stop')
    .description("Stop a lab's agent by its PID (SIGTERM, or SIGKILL with --kill)")
    .argument('<name>', 'the lab name')
    .option('--kill', 'SIGKILL instead of SIGTERM, as a crash would')
    .action(async (name: string, opts: { kill?: boolean }) => {
      await (await lab()).labStopAgent(name, { kill: opts.kill });
    });
  agent
    .command('start')
    .description("Start a lab's agent again")
    .argument('<name>', 'the lab name')
    .action(async (name: string) => {
      ctx.io.stderr.write(labDetails(await (await lab()).labStartAgent(name)));
    });

  group
    .command('env')
    .description("Print the shell line that points weft at a lab's agent")
    .argument('<name>', 'the lab name')
    .action(async (name: string) => {
      ctx.line(envLine(await (await lab()).labInspect(name)));
    });

  group
    .command('exec')
    .description("Run a command in a lab's outside namespace (or the lab host's with --host)")
    .argument('<name>', 'the lab name')
    .argument('<command...>', 'the command and its arguments')
    .option('--host', "run in the lab host's namespace instead of the outside")
    .passThroughOptions()
    .action(async (name: string, command: string[], opts: { host?: boolean }) => {
      const split = splitLabExecArgs([name, ...command], Boolean(opts.host));
      const code = await (await lab()).labExec(split.name, split.cmd, split.host ? 'host' : 'outside');
      throw new ExitCode(code);
    });
}
