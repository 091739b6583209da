/**
 * What every command gets: where to write, the environment, the agent's client, and how errors
 * turn into exit codes. main.ts builds one per run; tests build their own with captured output.
 */
import { readFileSync } from 'node:fs';
import { DEFAULT_SOCKET } from '../agent/options.js';
import { Client } from './client.js';
import { oneLine } from './errors.js';
import { parseHost } from './options.js';

/** Where output goes. process.stdout/stderr fit; tests pass collectors. */
export interface Sink {
  write(chunk: string | Uint8Array): unknown;
}

export interface Io {
  stdout: Sink;
  stderr: Sink;
  env: NodeJS.ProcessEnv;
  /** one line from stdin (confirmations), null at end of input */
  readLine(): Promise<string | null>;
  /** milliseconds since the epoch, for "5 seconds ago" */
  now(): number;
  /** Ctrl-C / SIGTERM while this is registered calls handler instead of ending the process. */
  onSignal(handler: () => void): () => void;
}

export const DEFAULT_HOST = `unix://${DEFAULT_SOCKET}`;

export class Ctx {
  /** the -H value, set by main.ts once commander has parsed the global options */
  host: string | undefined;
  private cached: Client | undefined;

  constructor(readonly io: Io) {}

  /** The agent's socket path: -H, else WEFT_HOST, else the default. */
  socketPath(): string {
    const env = this.io.env.WEFT_HOST;
    return parseHost(this.host ?? (env ? env : DEFAULT_HOST));
  }

  client(): Client {
    this.cached ??= new Client(this.socketPath());
    return this.cached;
  }

  out(text: string): void {
    this.io.stdout.write(text);
  }

  /** Print one line (adds the newline). */
  line(text = ''): void {
    this.io.stdout.write(`${text}\n`);
  }

  /** Report an error without stopping (commands that act on several objects). */
  error(message: string): void {
    this.io.stderr.write(`Error: ${oneLine(message)}\n`);
  }

  /** Progress and notes for people: stderr, so stdout stays parseable. */
  note(text: string): void {
    this.io.stderr.write(`${text}\n`);
  }

  /** Docker's confirmation prompt; true only on an explicit yes. */
  async confirm(warning: string): Promise<boolean> {
    this.io.stdout.write(`${warning}\nAre you sure you want to continue? [y/N] `);
    const answer = await this.io.readLine();
    if (answer === null) this.io.stdout.write('\n');
    return answer !== null && /^\s*y(es)?\s*$/i.test(answer);
  }
}

let version: string | undefined;

/** The CLI's version, from package.json (two levels up from both src/cli and dist/cli). */
export function cliVersion(): string {
  if (version === undefined) {
    try {
      const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
        version?: string;
      };
      version = pkg.version ?? 'unknown';
    } catch {
      version = 'unknown';
    }
  }
  return version;
}
