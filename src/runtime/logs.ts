/**
 * Reading a container's logs (DIR/stdout.log, DIR/stderr.log), once or following them as they
 * grow. Bytes are passed on as they are in the files, each exactly once, in file order per stream;
 * the order between stdout and stderr is not known (two files).
 */
import { watch, type FSWatcher } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { STDERR_LOG, STDOUT_LOG } from './process.js';

export type LogStream = 'stdout' | 'stderr';

export interface ReadLogsOptions {
  stdout: boolean;
  stderr: boolean;
  /** only the last N lines of each stream (0: none of what is there yet); default all */
  tail?: number;
  /** keep reading as the files grow, until signal aborts or isDone() */
  follow: boolean;
  signal?: AbortSignal;
  /**
   * Following stops once this returns true (the process is gone) and what was written up to then
   * has been read. Without it, only signal stops following.
   */
  isDone?: () => boolean;
  /** how often to look for growth when no file event came (ms, default 250) */
  pollMs?: number;
}

export type ChunkHandler = (stream: LogStream, data: Buffer) => void | Promise<void>;

const CHUNK = 64 * 1024;
const NL = 0x0a;

interface Source {
  stream: LogStream;
  path: string;
  fh?: FileHandle;
  pos: number;
}

async function openIfExists(path: string): Promise<FileHandle | undefined> {
  try {
    return await open(path, 'r');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

/** Offset where the last n lines of the file start. A final newline ends the last line. */
export async function tailOffset(fh: FileHandle, n: number): Promise<number> {
  const { size } = await fh.stat();
  if (n <= 0) return size;
  const buf = Buffer.alloc(CHUNK);
  let end = size;
  let seen = 0;
  while (end > 0) {
    const start = Math.max(0, end - CHUNK);
    const { bytesRead } = await fh.read(buf, 0, end - start, start);
    for (let i = bytesRead - 1; i >= 0; i--) {
      if (buf[i] !== NL || start + i === size - 1) continue;
      if (++seen === n) return start + i + 1;
    }
    end = start;
  }
  return 0;
}

/** Passes on everything from src.pos to the current end of the file. */
async function drain(src: Source, onChunk: ChunkHandler): Promise<void> {
  if (!src.fh) {
    src.fh = await openIfExists(src.path);
    if (!src.fh) return;
  }
  const buf = Buffer.allocUnsafe(CHUNK);
  while (true) {
    const { bytesRead } = await src.fh.read(buf, 0, CHUNK, src.pos);
    if (bytesRead === 0) return;
    src.pos += bytesRead;
    await onChunk(src.stream, Buffer.from(buf.subarray(0, bytesRead))); // a copy the handler may keep
  }
}

/**
 * Reads the logs in dir. Resolves at the end of the files (not following), or when following
 * stops: signal aborted, or isDone() was true and everything written before was passed on.
 */
export async function readLogs(dir: string, opts: ReadLogsOptions, onChunk: ChunkHandler): Promise<void> {
  const sources: Source[] = [];
  if (opts.stdout) sources.push({ stream: 'stdout', path: join(dir, STDOUT_LOG), pos: 0 });
  if (opts.stderr) sources.push({ stream: 'stderr', path: join(dir, STDERR_LOG), pos: 0 });
  let watcher: FSWatcher | undefined;
  try {
    for (const s of sources) {
      s.fh = await openIfExists(s.path);
      if (s.fh && opts.tail !== undefined) s.pos = await tailOffset(s.fh, opts.tail);
    }
    if (!opts.follow) {
      for (const s of sources) await drain(s, onChunk);
      return;
    }

    // Wake early on file events; poll anyway (isDone has no event, and a watch may fail).
    let dirty = false;
    let wake: (() => void) | undefined;
    const poke = () => {
      dirty = true;
      wake?.();
    };
    try {
      watcher = watch(dir, { persistent: false }, poke);
      watcher.on('error', () => {});
    } catch {
      watcher = undefined; // polling only
    }
    const signal = opts.signal;
    signal?.addEventListener('abort', poke);
    try {
      while (!signal?.aborted) {
        // Ask before reading: if the process was already gone, this read gets its last bytes.
        const done = opts.isDone?.() ?? false;
        dirty = false;
        for (const s of sources) await drain(s, onChunk);
        if (done) return;
        if (dirty || signal?.aborted) continue;
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, opts.pollMs ?? 250);
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        wake = undefined;
      }
    } finally {
      signal?.removeEventListener('abort', poke);
    }
  } finally {
    watcher?.close();
    for (const s of sources) await s.fh?.close();
  }
}
