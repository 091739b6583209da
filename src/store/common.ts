/**
 * Rules shared by both store engines, so that a request the SQLite engine accepts is one etcd
 * accepts too (and fails the same way when it does not).
 */
import { StoreError, type Compare, type KeyValue, type TxnOp } from './types.js';

/** etcd's default --max-txn-ops: a txn may hold at most this many compares, success or failure ops. */
export const MAX_TXN_OPS = 128;

const TARGETS = new Set(['version', 'create', 'mod', 'value']);
const OPS = new Set(['=', '!=', '<', '>']);

export function checkKey(key: unknown, what = 'key'): asserts key is string {
  if (typeof key !== 'string' || key.length === 0) {
    throw new StoreError(`${what} must be a non-empty string`, 'invalid');
  }
}

export function checkPrefix(prefix: unknown, what = 'prefix'): asserts prefix is string {
  if (typeof prefix !== 'string') throw new StoreError(`${what} must be a string`, 'invalid');
}

export function checkValue(value: unknown): asserts value is string {
  if (typeof value !== 'string') throw new StoreError('value must be a string', 'invalid');
}

export function checkRevision(revision: unknown, what: string): asserts revision is number {
  if (typeof revision !== 'number' || !Number.isSafeInteger(revision) || revision < 0) {
    throw new StoreError(`${what} must be an integer >= 0, got ${String(revision)}`, 'invalid');
  }
}

/**
 * Validates a txn the way etcd does: at most MAX_TXN_OPS compares and ops per branch, well-typed
 * compares, and in each branch no key put twice nor put and deleted (etcd: "duplicate key given
 * in txn request").
 */
export function checkTxn(compares: Compare[], success: TxnOp[], failure: TxnOp[]): void {
  if (!Array.isArray(compares) || !Array.isArray(success) || !Array.isArray(failure)) {
    throw new StoreError('txn: compares, success and failure must be arrays', 'invalid');
  }
  if (compares.length > MAX_TXN_OPS || success.length > MAX_TXN_OPS || failure.length > MAX_TXN_OPS) {
    throw new StoreError(`txn: at most ${MAX_TXN_OPS} compares and ${MAX_TXN_OPS} ops per branch`, 'invalid');
  }
  for (const c of compares) {
    checkKey(c?.key, 'compare key');
    if (!TARGETS.has(c.target)) {
      throw new StoreError(`compare target must be version, create, mod or value, got ${String(c.target)}`, 'invalid');
    }
    if (!OPS.has(c.op)) throw new StoreError(`compare op must be =, !=, < or >, got ${String(c.op)}`, 'invalid');
    if (c.target === 'value') {
      if (typeof c.value !== 'string') throw new StoreError('a value compare needs a string value', 'invalid');
    } else if (typeof c.value !== 'number' || !Number.isSafeInteger(c.value)) {
      throw new StoreError(`a ${c.target} compare needs an integer value`, 'invalid');
    }
  }
  checkBranch(success, 'success');
  checkBranch(failure, 'failure');
}

function checkBranch(ops: TxnOp[], name: string): void {
  const puts = new Set<string>();
  const deletedKeys = new Set<string>();
  const deletedPrefixes: string[] = [];
  for (const op of ops) {
    switch (op?.type) {
      case 'put':
        checkKey(op.key);
        checkValue(op.value);
        if (puts.has(op.key)) throw duplicate(name, op.key);
        puts.add(op.key);
        break;
      case 'delete':
        checkKey(op.key);
        deletedKeys.add(op.key);
        break;
      case 'deletePrefix':
        checkPrefix(op.prefix);
        deletedPrefixes.push(op.prefix);
        break;
      case 'get':
        checkKey(op.key);
        break;
      case 'range':
        checkPrefix(op.prefix);
        break;
      default:
        throw new StoreError(`txn ${name}: unknown op type ${String((op as { type?: unknown })?.type)}`, 'invalid');
    }
  }
  for (const key of puts) {
    if (deletedKeys.has(key) || deletedPrefixes.some((p) => key.startsWith(p))) throw duplicate(name, key);
  }
}

function duplicate(branch: string, key: string): StoreError {
  return new StoreError(
    `txn ${branch}: key ${JSON.stringify(key)} is written twice (a txn may put a key once and not also delete it)`,
    'invalid',
  );
}

/** Compares strings by their UTF-8 bytes, the order etcd (and SQLite's BINARY collation) uses. */
export function compareUtf8(a: string, b: string): number {
  if (a === b) return 0;
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/**
 * Evaluates one compare against a key's current state (undefined when missing). As in etcd, a
 * missing key has version = create = mod = 0, and any value compare on it is false (even '!=').
 */
export function compareHolds(kv: KeyValue | undefined, c: Compare): boolean {
  let cmp: number;
  if (c.target === 'value') {
    if (!kv) return false;
    cmp = compareUtf8(kv.value, c.value as string);
  } else {
    const actual = !kv ? 0 : c.target === 'version' ? kv.version : c.target === 'create' ? kv.createRevision : kv.modRevision;
    cmp = Math.sign(actual - (c.value as number));
  }
  switch (c.op) {
    case '=':
      return cmp === 0;
    case '!=':
      return cmp !== 0;
    case '<':
      return cmp < 0;
    case '>':
      return cmp > 0;
  }
}

/**
 * The smallest string greater than every string that starts with prefix (in UTF-8 byte order), or
 * undefined when there is none (empty prefix, or only U+10FFFF characters).
 */
export function prefixEnd(prefix: string): string | undefined {
  const cps = Array.from(prefix, (ch) => ch.codePointAt(0) as number);
  while (cps.length > 0) {
    const last = cps.pop() as number;
    if (last < 0x10ffff) {
      // the surrogate range holds no characters: the next one after U+D7FF is U+E000
      const next = last + 1 === 0xd800 ? 0xe000 : last + 1;
      return String.fromCodePoint(...cps, next);
    }
  }
  return undefined;
}

/** Runs a user callback; what it throws goes to onError, or, without one, is rethrown out of band. */
export function callSafely(fn: () => void, onError: ((err: Error) => void) | undefined): void {
  try {
    fn();
  } catch (err) {
    const e = err instanceof Error ? err : new Error(String(err));
    if (onError) onError(e);
    else
      setImmediate(() => {
        throw e;
      });
  }
}

/** Reports a watch failure to onError, or as a process warning when the caller gave none. */
export function reportWatchError(err: Error, onError: ((err: Error) => void) | undefined): void {
  if (onError) callSafely(() => onError(err), undefined);
  else process.emitWarning(`weft store watch stopped: ${err.message}`, 'StoreWarning');
}
