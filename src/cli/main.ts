/**
 * The weft CLI's entry (bin/weft runs dist/cli/main.js). Builds the command tree, runs one
 * command, and turns every failure into one line on stderr and an exit code:
 *   1 in general, 125 when `run`/`create` fail before the container's command started,
 *   the container's or command's own code for `run` (foreground), `exec` and `lab exec`.
 * Heavy modules (the agent, the lab) are imported only by the commands that need them.
 */
import { realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { Command, CommanderError } from 'commander';
import { registerAgent } from './agent.js';
import { registerCompose } from './compose.js';
import { ApiError, ConnectError } from './client.js';
import { registerContainerCommands } from './container.js';
import { cliVersion, Ctx, DEFAULT_HOST, type Io } from './context.js';
import { CliError, ExitCode, oneLine } from './errors.js';
import { registerLab } from './lab.js';
import { registerNetwork } from './network.js';
import { registerPolicy } from './policy.js';
import { registerService } from './service.js';
import { registerSystem } from './system.js';

export function buildProgram(ctx: Ctx): Command {
  const program = new Command('weft')
    .description('Container networking for Linux, with the kernel as its data plane')
    .usage('[-H HOST] COMMAND [OPTIONS]')
    .option(
      '-H, --host <host>',
      `the agent's socket: unix:///path or /path (default: $WEFT_HOST, else ${DEFAULT_HOST})`,
    )
    .version(cliVersion(), '-v, --version', 'print the version')
    .enablePositionalOptions()
    .configureOutput({
      writeOut: (s) => ctx.io.stdout.write(s),
      writeErr: (s) => ctx.io.stderr.write(s),
      outputError: (s, write) => write(`Error: ${oneLine(s.replace(/^error:\s*/i, ''))}\n`),
    })
    .exitOverride();
  program.hook('preAction', () => {
    ctx.host = program.opts<{ host?: string }>().host;
  });

  registerContainerCommands(program, ctx, { group: false });
  registerNetwork(program, ctx);
  registerService(program, ctx);
  registerPolicy(program, ctx);
  registerContainerCommands(program.command('container').description('Manage containers'), ctx, { group: true });
  registerCompose(program, ctx);
  registerSystem(program, ctx);
  registerLab(program, ctx);
  registerAgent(program, ctx);
  return program;
}

/** Runs one command line (the arguments after `weft`); resolves with the exit code. */
export async function main(args: string[], io: Io): Promise<number> {
  const ctx = new Ctx(io);
  try {
    await buildProgram(ctx).parseAsync(args, { from: 'user' });
    return 0;
  } catch (err) {
    if (err instanceof ExitCode) return err.code;
    // commander has already printed its message (usage errors, help, version)
    if (err instanceof CommanderError) return err.exitCode;
    if (err instanceof CliError) {
      ctx.error(err.message);
      return err.exitCode;
    }
    if (err instanceof ApiError || err instanceof ConnectError) {
      ctx.error(err.message);
      return 1;
    }
    const e = err instanceof Error ? err : new Error(String(err));
    ctx.error(e.message);
    if (io.env.WEFT_DEBUG) io.stderr.write(`${e.stack ?? ''}\n`);
    return 1;
  }
}

/** The real process's Io. */
export function processIo(): Io {
  let lines: AsyncIterator<string> | undefined;
  return {
    stdout: process.stdout,
    stderr: process.stderr,
    env: process.env,
    now: () => Date.now(),
    async readLine() {
      if (!lines) {
        const { createInterface } = process.getBuiltinModule('node:readline');
        lines = createInterface({ input: process.stdin, terminal: false })[Symbol.asyncIterator]();
      }
      const next = await lines.next();
      return next.done ? null : next.value;
    },
    onSignal(handler) {
      process.on('SIGINT', handler);
      process.on('SIGTERM', handler);
      return () => {
        process.off('SIGINT', handler);
        process.off('SIGTERM', handler);
      };
    },
  };
}

function isEntry(): boolean {
  const script = process.argv[1];
  if (!script) return false;
  try {
    return import.meta.url === pathToFileURL(realpathSync(script)).href;
  } catch {
    return false;
  }
}

/** Runs the CLI as the process: `weft ARGS...` (the ESM entry below and the startup snapshot). */
export function runProcess(args: string[]): void {
  // `weft ps | head -1`: a closed pipe ends the command quietly.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(0);
    throw err;
  });
  void main(args, processIo()).then((code) => process.exit(code));
}

if (isEntry()) runProcess(process.argv.slice(2));
