/**
 * loadProject: compose files -> Project, everything checked before anything starts.
 *
 *   1. the files: -f in order, else COMPOSE_FILE, else compose.yaml (or compose.yml,
 *      docker-compose.yaml, docker-compose.yml) in the working directory or the nearest parent,
 *      with its compose.override.yaml beside it;
 *   2. the variables: the process environment over the project's .env (or --env-file);
 *   3. each file parsed (keeping lines) and interpolated, then the files merged;
 *   4. the project name: -p, else COMPOSE_PROJECT_NAME, else the top-level name, else the project
 *      directory's name made valid (lower case, [a-z0-9_-], starting with a letter or digit);
 *      a name given explicitly must be valid already, as in Compose;
 *   5. the project built and checked (project.ts).
 *
 * Every problem is collected; one ComposeError lists them, each with file:line and key path.
 * Synchronous: the only I/O is reading files (readFile is replaceable for tests).
 */
import { readFileSync } from 'node:fs';
import { basename, dirname, isAbsolute, relative, resolve } from 'node:path';
import { type At, Checker } from './check.js';
import { ComposeError, type ComposeIssue, formatIssue } from './errors.js';
import { InterpolationError, type Lookup, interpolate, parseDotenv } from './interpolate.js';
import { mergeDocuments, stripMarkers } from './merge.js';
import type { Project } from './model.js';
import { buildProject } from './project.js';
import { Locations, Override, type PlainMap, isPlainMap, parseYaml } from './source.js';

export interface LoadOptions {
  /** -f files in merge order (relative to cwd); empty: COMPOSE_FILE or the default names */
  files: string[];
  /** -p */
  projectName?: string;
  /** the process environment */
  env: Record<string, string | undefined>;
  cwd: string;
  /** --env-file (relative to cwd); default: .env in the project directory, if present */
  envFiles?: string[];
  /** --profile; default: COMPOSE_PROFILES (comma separated) */
  profiles?: string[];
  /** --project-directory; default: the first file's directory */
  projectDirectory?: string;
  /** the file's text, or undefined if there is no such file */
  readFile?: (path: string) => string | undefined;
}

export const DEFAULT_FILES = ['compose.yaml', 'compose.yml', 'docker-compose.yaml', 'docker-compose.yml'];
export const OVERRIDE_FILES = ['compose.override.yaml', 'compose.override.yml', 'docker-compose.override.yaml', 'docker-compose.override.yml'];

const PROJECT_NAME_RE = /^[a-z0-9][a-z0-9_-]*$/;

/** Compose's rule for a name it derives (from a directory): lower case, [a-z0-9_-], no leading _ or -. */
export function normalizeProjectName(name: string): string {
  return name
    .toLowerCase()
    .replace(/[^a-z0-9_-]/g, '')
    .replace(/^[_-]+/, '');
}

export function isValidProjectName(name: string): boolean {
  return PROJECT_NAME_RE.test(name);
}

function defaultReadFile(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR') return undefined;
    throw e;
  }
}

/** The default compose file (and its override) in `cwd` or the nearest parent that has one. */
export function findComposeFiles(cwd: string, readFile: (path: string) => string | undefined): { files: string[]; warnings: string[] } {
  for (let dir = resolve(cwd); ; dir = dirname(dir)) {
    const found = DEFAULT_FILES.filter((f) => readFile(resolve(dir, f)) !== undefined);
    if (found.length) {
      const warnings = found.length > 1 ? [`found ${found.join(', ')} in ${dir}; using ${found[0]}`] : [];
      const override = OVERRIDE_FILES.find((f) => readFile(resolve(dir, f)) !== undefined);
      return { files: [resolve(dir, found[0]), ...(override ? [resolve(dir, override)] : [])], warnings };
    }
    if (dirname(dir) === dir) return { files: [], warnings: [] };
  }
}

/** Interpolates every string value of the tree in place (keys are left as they are). */
function interpolateTree(ck: Checker, at: At, lookup: Lookup, unset: Map<string, At>): void {
  const container = at.value;
  const keys: (string | number)[] = Array.isArray(container) ? container.map((_, i) => i) : isPlainMap(container) ? Object.keys(container) : [];
  for (const key of keys) {
    const child = ck.child(at, key);
    const set = (v: unknown): void => {
      (container as Record<string | number, unknown>)[key] = v;
    };
    let v = child.value;
    const wrapped = v instanceof Override;
    if (v instanceof Override) v = v.value;
    if (typeof v === 'string') {
      try {
        v = interpolate(v, lookup, (name) => {
          if (!unset.has(name)) unset.set(name, child);
        });
      } catch (e) {
        if (!(e instanceof InterpolationError)) throw e;
        ck.error(child, e.message);
        ck.failed.add(child.path);
      }
    } else {
      interpolateTree(ck, { ...child, value: v }, lookup, unset);
    }
    set(wrapped ? new Override(v) : v);
  }
}

function sortIssues(issues: ComposeIssue[], files: string[]): ComposeIssue[] {
  const rank = (f?: string): number => {
    const i = f === undefined ? -1 : files.indexOf(f);
    return i < 0 ? (f === undefined ? -1 : files.length) : i;
  };
  return issues
    .map((issue, i) => ({ issue, i }))
    .sort((a, b) => rank(a.issue.file) - rank(b.issue.file) || (a.issue.line ?? 0) - (b.issue.line ?? 0) || a.i - b.i)
    .map((x) => x.issue);
}

/** Reads, checks and builds the project. Throws ComposeError listing every problem. */
export function loadProject(opts: LoadOptions): Project {
  const readFile = opts.readFile ?? defaultReadFile;
  const cwd = resolve(opts.cwd);
  const display = (p: string): string => {
    const rel = relative(cwd, p);
    return rel && !rel.startsWith('..') && !isAbsolute(rel) ? rel : p;
  };
  const fail = (message: string, file?: string): never => {
    throw new ComposeError([{ file, message }]);
  };
  const warnings: string[] = [];

  // 1. the files
  let files: string[];
  if (opts.files.length) files = opts.files.map((f) => resolve(cwd, f));
  else if (opts.env.COMPOSE_FILE) {
    const sep = opts.env.COMPOSE_PATH_SEPARATOR || ':';
    files = opts.env.COMPOSE_FILE.split(sep).filter(Boolean).map((f) => resolve(cwd, f));
  } else {
    const found = findComposeFiles(cwd, readFile);
    if (!found.files.length) fail(`no compose file found in ${cwd} or its parents (looked for ${DEFAULT_FILES.join(', ')}); give one with -f`);
    files = found.files;
    warnings.push(...found.warnings);
  }
  const texts = files.map((f) => readFile(f) ?? fail(`compose file ${display(f)} not found`));
  const projectDir = opts.projectDirectory ? resolve(cwd, opts.projectDirectory) : dirname(files[0]);

  // 2. the variables
  const issues: ComposeIssue[] = [];
  const dotenv = new Map<string, string>();
  const processLookup: Lookup = (n) => opts.env[n];
  const envFiles = opts.envFiles?.length ? opts.envFiles.map((f) => resolve(cwd, f)) : [resolve(projectDir, '.env')];
  for (const f of envFiles) {
    const text = readFile(f);
    if (text === undefined) {
      if (opts.envFiles?.length) issues.push({ file: display(f), message: 'env file not found' });
      continue;
    }
    const { entries, problems } = parseDotenv(text, (n) => processLookup(n) ?? dotenv.get(n));
    for (const p of problems) issues.push({ file: display(f), line: p.line, message: p.message });
    for (const e of entries) if (e.value !== undefined) dotenv.set(e.name, e.value);
  }
  const lookup: Lookup = (n) => opts.env[n] ?? dotenv.get(n);

  // 3. parse, interpolate, merge
  const locs = new Locations();
  const ck = new Checker(locs);
  ck.issues.push(...issues);
  const docs: PlainMap[] = [];
  const unset = new Map<string, At>();
  files.forEach((f, i) => {
    const file = display(f);
    const parsed = parseYaml(texts[i], file, locs);
    ck.issues.push(...parsed.issues);
    if (parsed.issues.length) return;
    if (parsed.value === null) {
      ck.issues.push({ file, message: 'the file is empty; a compose file has at least services' });
      return;
    }
    if (!isPlainMap(parsed.value)) {
      ck.issues.push({ file, line: parsed.line, message: 'a compose file is a mapping (services:, networks: ...)' });
      return;
    }
    interpolateTree(ck, { value: parsed.value, path: '', loc: { file, line: parsed.line } }, lookup, unset);
    docs.push(parsed.value);
  });
  for (const [name, at] of unset) ck.warn(at, `the "${name}" variable is not set; defaulting to a blank string`);
  if (docs.length !== files.length) throw new ComposeError(sortIssues(ck.issues, files.map(display)));
  const merged = docs.length === 1 ? (stripMarkers(locs, docs[0]) as PlainMap) : mergeDocuments(locs, docs);
  const root: At = { value: merged, path: '', loc: { file: display(files[0]), line: 1 } };

  // 4. the project name
  let name: string | undefined;
  const nameFrom = (value: string, where: string, at?: At): void => {
    if (isValidProjectName(value)) name = value;
    else {
      const msg = `invalid project name "${value}" (${where}): use lower-case letters, digits, '_' and '-', starting with a letter or digit`;
      if (at) ck.error(at, msg);
      else ck.issues.push({ message: msg });
      name = normalizeProjectName(value) || 'invalid';
    }
  };
  const nameAt = ck.child(root, 'name');
  if (opts.projectName !== undefined) nameFrom(opts.projectName, '-p');
  else if (lookup('COMPOSE_PROJECT_NAME')) nameFrom(lookup('COMPOSE_PROJECT_NAME') as string, 'COMPOSE_PROJECT_NAME');
  else if (nameAt.value !== undefined && nameAt.value !== null) {
    const n = ck.string(nameAt);
    if (n !== undefined) nameFrom(n, 'the top-level name', nameAt);
  } else {
    name = normalizeProjectName(basename(projectDir));
    if (!name) ck.issues.push({ message: `cannot make a project name from the directory "${basename(projectDir)}"; give one with -p or a top-level name:` });
  }

  // 5. the project
  const profiles = opts.profiles ?? (lookup('COMPOSE_PROFILES') ?? '').split(',').map((p) => p.trim()).filter(Boolean);
  const project = buildProject(ck, {
    root,
    name: name || 'invalid',
    projectDir,
    files,
    profiles,
    service: { projectDir, lookup, readFile, display },
  });
  if (ck.issues.length) throw new ComposeError(sortIssues(ck.issues, files.map(display)));
  project.warnings = [...warnings, ...sortIssues(ck.warnings, files.map(display)).map(formatIssue)];
  return project;
}
