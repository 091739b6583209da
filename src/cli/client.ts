/**
 * A small client for the agent's HTTP API on its unix socket (see src/api/schemas.ts): JSON in
 * and out, framed streams (logs, exec) and NDJSON streams (events). Errors come back as ApiError
 * (the agent answered with a status >= 400) or ConnectError (no agent on that socket).
 */
import type { IncomingMessage, RequestOptions as HttpRequestOptions } from 'node:http';
import { oneLine } from './errors.js';

/** The agent answered with an error: its status and its one-line message. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/** The agent could not be reached, or went away mid-request. */
export class ConnectError extends Error {
  constructor(
    readonly socketPath: string,
    readonly code: string | undefined,
    message: string,
  ) {
    super(message);
    this.name = 'ConnectError';
  }
}

export type QueryValue = string | number | boolean | readonly string[] | undefined;
export type Query = Record<string, QueryValue>;

/** path + query string; arrays repeat the key, true is 1, false and undefined are left out. */
export function withQuery(path: string, query?: Query): string {
  const parts: string[] = [];
  for (const [key, value] of Object.entries(query ?? {})) {
    if (value === undefined || value === false) continue;
    const values = Array.isArray(value) ? value : [value === true ? '1' : String(value)];
    for (const v of values) parts.push(`${encodeURIComponent(key)}=${encodeURIComponent(v)}`);
  }
  return parts.length ? `${path}?${parts.join('&')}` : path;
}

/** One path segment from a user's reference (name, id or id prefix). */
export function seg(ref: string): string {
  return encodeURIComponent(ref);
}

export interface RequestOptions {
  query?: Query;
  body?: unknown;
  signal?: AbortSignal;
}

export interface StreamHandlers {
  stdout(chunk: Buffer): void;
  stderr(chunk: Buffer): void;
}

/** The error for a response with status >= 400: the agent's { message }, else what we can tell. */
export function apiErrorFrom(status: number, statusMessage: string | undefined, body: string): ApiError {
  let message: string | undefined;
  const text = body.trim();
  if (text) {
    try {
      const parsed = JSON.parse(text) as unknown;
      if (parsed && typeof parsed === 'object' && typeof (parsed as { message?: unknown }).message === 'string') {
        message = (parsed as { message: string }).message;
      }
    } catch {
      // not JSON: the text itself is the best message there is
    }
    message ??= text.length > 300 ? `${text.slice(0, 300)}...` : text;
  }
  if (!message?.trim()) message = `the agent answered ${status}${statusMessage ? ` ${statusMessage}` : ''}`;
  return new ApiError(status, oneLine(message));
}

function isAbort(err: unknown): boolean {
  return err instanceof Error && (err.name === 'AbortError' || (err as NodeJS.ErrnoException).code === 'ABORT_ERR');
}

export class Client {
  constructor(readonly socketPath: string) {}

  get<T>(path: string, query?: Query): Promise<T> {
    return this.request<T>('GET', path, { query });
  }

  post<T>(path: string, body?: unknown, query?: Query): Promise<T> {
    return this.request<T>('POST', path, { body, query });
  }

  delete(path: string, query?: Query): Promise<void> {
    return this.request<void>('DELETE', path, { query });
  }

  /** One request, JSON answer (undefined for an empty body, e.g. 204). */
  async request<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
    const res = await this.open(method, path, opts);
    const text = await this.readAll(res);
    if (!text.trim()) return undefined as T;
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new ApiError(res.statusCode ?? 0, `the agent sent a response that is not JSON for ${method} ${path}`);
    }
  }

  /**
   * A framed stream (logs, exec): stdout and stderr frames go to the handlers. Resolves with the
   * exit frame's code, or undefined when the stream ended (or was aborted) without one.
   */
  async framed(method: string, path: string, opts: RequestOptions, handlers: StreamHandlers): Promise<number | undefined> {
    // Loaded here, not at the top: src/api/schemas.ts pulls in typebox, which costs every
    // command ~150 ms of startup; only the streaming commands need the decoder.
    const [res, { FrameDecoder, Frame }] = await Promise.all([
      this.open(method, path, opts),
      import('../api/frames.js'),
    ]);
    return new Promise<number | undefined>((resolve, reject) => {
      let exit: number | undefined;
      const decoder = new FrameDecoder((stream, payload) => {
        if (stream === Frame.stdout) handlers.stdout(payload);
        else if (stream === Frame.stderr) handlers.stderr(payload);
        else if (stream === Frame.exit) {
          const code = Number.parseInt(payload.toString('utf8').trim(), 10);
          exit = Number.isNaN(code) ? 1 : code;
        }
      });
      res.on('data', (chunk: Buffer) => decoder.push(chunk));
      res.on('end', () => resolve(exit));
      res.on('close', () => resolve(exit));
      res.on('error', (err) => (isAbort(err) || opts.signal?.aborted ? resolve(exit) : reject(this.connectionError(err))));
    });
  }

  /** An NDJSON stream (events): one parsed object per line, until the stream ends or is aborted. */
  async ndjson<T>(path: string, opts: RequestOptions, onItem: (item: T) => void): Promise<void> {
    const res = await this.open('GET', path, opts);
    res.setEncoding('utf8');
    return new Promise<void>((resolve, reject) => {
      let pending = '';
      const take = (line: string): void => {
        if (!line.trim()) return;
        let item: T;
        try {
          item = JSON.parse(line) as T;
        } catch {
          res.destroy();
          reject(new ApiError(res.statusCode ?? 0, `the agent sent a line that is not JSON on ${path}: ${line.slice(0, 80)}`));
          return;
        }
        onItem(item);
      };
      res.on('data', (chunk: string) => {
        pending += chunk;
        let nl: number;
        while ((nl = pending.indexOf('\n')) >= 0) {
          const line = pending.slice(0, nl);
          pending = pending.slice(nl + 1);
          take(line);
        }
      });
      res.on('end', () => {
        take(pending);
        pending = '';
        resolve();
      });
      res.on('close', () => resolve());
      res.on('error', (err) => (isAbort(err) || opts.signal?.aborted ? resolve() : reject(this.connectionError(err))));
    });
  }

  /** Sends the request; resolves with a 1xx-3xx response, rejects with ApiError or ConnectError. */
  private open(method: string, path: string, opts: RequestOptions): Promise<IncomingMessage> {
    return new Promise((resolve, reject) => {
      const payload = opts.body === undefined ? undefined : Buffer.from(JSON.stringify(opts.body));
      const headers: Record<string, string | number> = { accept: 'application/json' };
      if (payload) headers['content-type'] = 'application/json';
      if (method !== 'GET') headers['content-length'] = payload?.length ?? 0;
      const options: HttpRequestOptions & { servername: string } = {
        socketPath: this.socketPath,
        path: withQuery(path, opts.query),
        method,
        headers,
        agent: false,
        // no TLS here: an empty servername spares node's net.isIP check of the host, whose
        // IPv6 regular expression costs ~7 ms to compile on every CLI call
        servername: '',
        signal: opts.signal,
      };
      // node:http is fetched at the first request, not imported: Node 20 cannot build it into the
      // CLI's startup snapshot (see src/cli/snapshot.ts).
      const req = process.getBuiltinModule('node:http').request(
        options,
        (res) => {
          const status = res.statusCode ?? 0;
          if (status >= 400) {
            this.readAll(res).then((body) => reject(apiErrorFrom(status, res.statusMessage, body)), reject);
            return;
          }
          resolve(res);
        },
      );
      req.on('error', (err) => reject(isAbort(err) ? err : this.connectionError(err)));
      req.end(payload);
    });
  }

  private readAll(res: IncomingMessage): Promise<string> {
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
      res.on('error', (err) => reject(this.connectionError(err)));
    });
  }

  /** A socket-level failure, said in terms of what the user can do about it. */
  connectionError(err: Error): Error {
    if (err instanceof ApiError || err instanceof ConnectError) return err;
    const code = (err as NodeJS.ErrnoException).code;
    const at = this.socketPath;
    switch (code) {
      case 'ENOENT':
      case 'ECONNREFUSED':
      case 'ENOTSOCK':
      case 'ENOTDIR':
        return new ConnectError(
          at,
          code,
          `cannot reach the weft agent at ${at}: is it running? (start it with 'weft agent', or set WEFT_HOST / -H)`,
        );
      case 'EACCES':
      case 'EPERM':
        return new ConnectError(at, code, `permission denied on the weft agent's socket ${at}: run as root, or as a user who may use it`);
      case 'ECONNRESET':
      case 'EPIPE':
        return new ConnectError(at, code, `lost the connection to the weft agent at ${at}: did it stop? (see its log)`);
      default:
        return new ConnectError(at, code, `talking to the weft agent at ${at}: ${err.message}`);
    }
  }
}
