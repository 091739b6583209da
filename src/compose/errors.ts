/**
 * Errors of the compose front end. Loading collects every problem of the files as a ComposeIssue
 * (file, line, key path, message) and throws one ComposeError listing them all; the planner throws
 * a PlanError when the current state conflicts with the project (a name held by someone else).
 */

/** One problem found in a compose file (or in a file it names, such as .env). */
export interface ComposeIssue {
  /** the file as the user named it */
  file?: string;
  /** 1-based */
  line?: number;
  /** the key path, e.g. services.web.ports[0] */
  path?: string;
  message: string;
}

/** `compose.yml:12: services.web.ports[0]: "80:eighty" is not a valid port mapping` */
export function formatIssue(issue: ComposeIssue): string {
  const where = issue.file ? (issue.line ? `${issue.file}:${issue.line}: ` : `${issue.file}: `) : '';
  const path = issue.path ? `${issue.path}: ` : '';
  return `${where}${path}${issue.message}`;
}

/** Every problem of a project, one per line in `message` (the first line is the first problem). */
export class ComposeError extends Error {
  constructor(readonly issues: readonly ComposeIssue[]) {
    super(issues.map(formatIssue).join('\n') || 'invalid compose project');
    this.name = 'ComposeError';
  }
}

/** The current state conflicts with the project; the message names the object and the fix. */
export class PlanError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PlanError';
  }
}
