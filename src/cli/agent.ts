/** `weft agent`: runs the daemon in this process (loaded only for this command). */
import type { Command } from 'commander';
import { DEFAULT_SOCKET, DEFAULT_STATE_DIR, type AgentOptions } from '../agent/options.js';
import type { Ctx } from './context.js';
import { parseCidr } from '../ipam/cidr.js';
import { parseDnsUpstream, parseLogLevel, parseStoreSpec } from './options.js';
import { CliError } from './errors.js';

export interface AgentFlags {
  stateDir: string;
  socket: string;
  netns?: string;
  store: string;
  logLevel?: string;
  dnsUpstream?: string[];
  serviceRange?: string;
}

export function agentOptions(flags: AgentFlags): AgentOptions {
  const opts: AgentOptions = {
    stateDir: flags.stateDir,
    socket: flags.socket,
    store: parseStoreSpec(flags.store),
  };
  if (flags.netns !== undefined) opts.netns = flags.netns;
  if (flags.logLevel !== undefined) opts.logLevel = parseLogLevel(flags.logLevel);
  if (flags.dnsUpstream?.length) opts.dnsUpstreams = flags.dnsUpstream.map(parseDnsUpstream);
  if (flags.serviceRange !== undefined) {
    let c;
    try {
      c = parseCidr(flags.serviceRange, { what: '--service-range' });
    } catch (e) {
      throw new CliError((e as Error).message);
    }
    if (c.family !== 4 || c.prefix < 8 || c.prefix > 28) throw new CliError(`invalid --service-range "${flags.serviceRange}": give an IPv4 CIDR from /8 to /28, e.g. 10.96.0.0/16`);
    opts.serviceRange = flags.serviceRange;
  }
  return opts;
}

export function registerAgent(program: Command, _ctx: Ctx): void {
  program
    .command('agent')
    .description('Run the weft agent (the daemon) in the foreground')
    .option('--state-dir <dir>', 'where the agent keeps its state', DEFAULT_STATE_DIR)
    .option('--socket <path>', 'the API socket to listen on', DEFAULT_SOCKET)
    .option('--netns <name>', 'run inside this network namespace')
    .option('--store <store>', 'sqlite or etcd://HOST:PORT', 'sqlite')
    .option('--log-level <level>', 'trace, debug, info, warn, error, fatal or silent')
    .option(
      '--dns-upstream <addr>',
      "a resolver for names the embedded DNS does not know (repeatable; default: the host's resolv.conf)",
      (v: string, prev: string[] = []) => [...prev, v],
    )
    .option('--service-range <cidr>', "where services' virtual IPs come from", '10.96.0.0/16')
    .action(async (flags: AgentFlags) => {
      const opts = agentOptions(flags);
      const { runAgent } = await import('../agent/index.js');
      await runAgent(opts);
    });
}
