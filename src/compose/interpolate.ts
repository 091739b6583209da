/**
 * Compose's variable interpolation and its .env file format. Pure: variables come from a lookup
 * function.
 *
 *   $VAR  ${VAR}       the value, or "" when unset (with a warning)
 *   ${VAR:-default}    default when VAR is unset or empty     ${VAR-default}  only when unset
 *   ${VAR:?message}    error when VAR is unset or empty       ${VAR?message}  only when unset
 *   ${VAR:+other}      other when VAR is set and not empty    ${VAR+other}    when set
 *   $$                 a literal $
 *
 * Defaults and replacements may themselves contain interpolations (`${A:-${B:-x}}`); they are
 * evaluated only when used. A `$` followed by anything else is an error, as in Compose (write $$).
 */

export type Lookup = (name: string) => string | undefined;

/** Bad template syntax or a required variable without a value. */
export class InterpolationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InterpolationError';
  }
}

type Op = ':-' | '-' | ':?' | '?' | ':+' | '+';

interface Ref {
  name: string;
  op?: Op;
  arg: Part[];
}

type Part = string | Ref;

const NAME = /[A-Za-z_][A-Za-z0-9_]*/y;
const OPS: readonly Op[] = [':-', ':?', ':+', '-', '?', '+'];

function bad(text: string, why: string): InterpolationError {
  return new InterpolationError(`invalid interpolation in "${text}": ${why}`);
}

/** Parses from `pos` to the end of the text, or to the `}` closing a braced reference. */
function parseParts(text: string, pos: number, inBraces: boolean): { parts: Part[]; end: number } {
  const parts: Part[] = [];
  let lit = '';
  let i = pos;
  const flush = (): void => {
    if (lit) parts.push(lit);
    lit = '';
  };
  while (i < text.length) {
    const c = text[i];
    if (inBraces && c === '}') {
      flush();
      return { parts, end: i };
    }
    if (c !== '$') {
      lit += c;
      i++;
      continue;
    }
    const next = text[i + 1];
    if (next === '$') {
      lit += '$';
      i += 2;
      continue;
    }
    if (next === '{') {
      const { ref, end } = parseBraced(text, i + 2);
      flush();
      parts.push(ref);
      i = end + 1;
      continue;
    }
    NAME.lastIndex = i + 1;
    const m = NAME.exec(text);
    if (!m) {
      const what = next === undefined ? 'a "$" at the end' : `"$${next}"`;
      throw bad(text, `${what} is not a variable; write $$ for a literal $`);
    }
    flush();
    parts.push({ name: m[0], arg: [] });
    i += 1 + m[0].length;
  }
  if (inBraces) throw bad(text, 'missing "}" to close "${"');
  flush();
  return { parts, end: i };
}

/** After `${`: NAME, then `}` or an operator, its argument and `}`. Returns the `}` position. */
function parseBraced(text: string, pos: number): { ref: Ref; end: number } {
  NAME.lastIndex = pos;
  const m = NAME.exec(text);
  if (!m) {
    if (pos >= text.length) throw bad(text, 'missing "}" to close "${"');
    throw bad(text, `"\${${text.slice(pos, pos + 10)}" does not start with a variable name (letters, digits, _)`);
  }
  const name = m[0];
  let i = pos + name.length;
  if (i >= text.length) throw bad(text, `missing "}" to close "\${${name}"`);
  if (text[i] === '}') return { ref: { name, arg: [] }, end: i };
  const op = OPS.find((o) => text.startsWith(o, i));
  if (!op) {
    throw bad(
      text,
      `unexpected "${text[i]}" in "\${${name}"; use \${${name}}, \${${name}:-default}, \${${name}-default}, ` +
        `\${${name}:?error}, \${${name}?error}, \${${name}:+other} or \${${name}+other}`,
    );
  }
  i += op.length;
  const { parts, end } = parseParts(text, i, true);
  return { ref: { name, op, arg: parts }, end };
}

function evaluate(parts: Part[], lookup: Lookup, onUnset: (name: string) => void): string {
  let out = '';
  for (const p of parts) {
    if (typeof p === 'string') {
      out += p;
      continue;
    }
    const value = lookup(p.name);
    const set = value !== undefined;
    const nonEmpty = set && value !== '';
    const arg = (): string => evaluate(p.arg, lookup, onUnset);
    switch (p.op) {
      case undefined:
        if (!set) onUnset(p.name);
        out += value ?? '';
        break;
      case ':-':
        out += nonEmpty ? value : arg();
        break;
      case '-':
        out += set ? value : arg();
        break;
      case ':?':
      case '?': {
        const ok = p.op === ':?' ? nonEmpty : set;
        if (!ok) {
          const msg = arg();
          throw new InterpolationError(`required variable ${p.name} is missing a value${msg ? `: ${msg}` : ''}`);
        }
        out += value;
        break;
      }
      case ':+':
        out += nonEmpty ? arg() : '';
        break;
      case '+':
        out += set ? arg() : '';
        break;
    }
  }
  return out;
}

/**
 * Interpolates one string. Throws InterpolationError for bad syntax or a missing required
 * variable; `onUnset` hears of each plain reference to an unset variable (Compose warns).
 */
export function interpolate(text: string, lookup: Lookup, onUnset: (name: string) => void = () => {}): string {
  if (!text.includes('$')) return text;
  return evaluate(parseParts(text, 0, false).parts, lookup, onUnset);
}

/** One variable of a .env / env_file, with its line. */
export interface DotenvEntry {
  name: string;
  /** undefined: a bare NAME line whose variable the lookup does not know */
  value: string | undefined;
  line: number;
}

export interface DotenvProblem {
  line: number;
  message: string;
}

const DOTENV_NAME = /^[A-Za-z_][A-Za-z0-9_.-]*$/;

/** Double-quoted escapes. */
function unescapeDouble(s: string): string {
  return s.replace(/\\([\\"nrt$`]|.)/g, (_all, c: string) => {
    switch (c) {
      case 'n':
        return '\n';
      case 'r':
        return '\r';
      case 't':
        return '\t';
      case '\\':
      case '"':
      case '$':
      case '`':
        return c === '$' ? '$$' : c;
      default:
        return `\\${c}`;
    }
  });
}

/**
 * Parses a .env or env_file text (Compose's dotenv format):
 *
 *   NAME=value            unquoted: trimmed, ` #` starts a comment, interpolated
 *   export NAME="value"   double quotes: \n \t \\ \" escapes, may span lines, interpolated
 *   NAME='value'          single quotes: literal, may span lines
 *   NAME                  the value comes from the lookup (dropped when unknown)
 *
 * Interpolations see the lookup first, then the variables defined above in the same file.
 */
export function parseDotenv(text: string, lookup: Lookup): { entries: DotenvEntry[]; problems: DotenvProblem[] } {
  const entries: DotenvEntry[] = [];
  const problems: DotenvProblem[] = [];
  const defined = new Map<string, string>();
  const scoped: Lookup = (n) => lookup(n) ?? defined.get(n);
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1;
    let line = lines[i].trim();
    if (line === '' || line.startsWith('#')) continue;
    if (/^export\s+/.test(line)) line = line.replace(/^export\s+/, '');
    const eq = line.indexOf('=');
    const name = (eq < 0 ? line : line.slice(0, eq)).trim();
    if (!DOTENV_NAME.test(name)) {
      problems.push({ line: lineNo, message: `"${lines[i].trim()}" is not NAME=VALUE (a name is letters, digits, _ . -, not starting with a digit)` });
      continue;
    }
    if (eq < 0) {
      entries.push({ name, value: lookup(name), line: lineNo });
      continue;
    }
    let rest = line.slice(eq + 1).trimStart();
    let value: string;
    try {
      const quote = rest[0];
      if (quote === '"' || quote === "'") {
        // the value may continue on the following lines until the closing quote
        let body = rest.slice(1);
        let close = findClose(body, quote);
        while (close < 0 && i + 1 < lines.length) {
          i++;
          body += '\n' + lines[i];
          close = findClose(body, quote);
        }
        if (close < 0) {
          problems.push({ line: lineNo, message: `${name}: missing the closing ${quote} of the value` });
          continue;
        }
        const after = body.slice(close + 1).trim();
        if (after !== '' && !after.startsWith('#')) {
          problems.push({ line: lineNo, message: `${name}: unexpected text after the closing ${quote}: "${after}"` });
          continue;
        }
        const raw = body.slice(0, close);
        value = quote === "'" ? raw : interpolate(unescapeDouble(raw), scoped);
      } else {
        const hash = rest.search(/\s#/);
        if (hash >= 0) rest = rest.slice(0, hash);
        value = interpolate(rest.trim(), scoped);
      }
    } catch (e) {
      problems.push({ line: lineNo, message: `${name}: ${(e as Error).message}` });
      continue;
    }
    defined.set(name, value);
    entries.push({ name, value, line: lineNo });
  }
  return { entries, problems };
}

function findClose(body: string, quote: string): number {
  for (let j = 0; j < body.length; j++) {
    if (quote === '"' && body[j] === '\\') {
      j++;
      continue;
    }
    if (body[j] === quote) return j;
  }
  return -1;
}
