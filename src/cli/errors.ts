/** Errors the CLI turns into one line on stderr and an exit code. */

/** An error reported as `Error: <message>` with this exit code. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

/** Thrown by a command that ends with a specific exit code and has nothing more to print. */
export class ExitCode extends Error {
  constructor(readonly code: number) {
    super(`exit ${code}`);
    this.name = 'ExitCode';
  }
}

/** Messages are one line: newlines (and the space around them) become one space. */
export function oneLine(message: string): string {
  const text = message.replace(/\s*\n\s*/g, ' ').trim();
  return text || 'unknown error';
}
