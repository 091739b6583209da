import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { appendFile, mkdir, mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readLogs, tailOffset, type LogStream, type ReadLogsOptions } from './logs.js';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function collect(dir: string, opts: ReadLogsOptions): Promise<Record<LogStream, string>> {
  const got: Record<LogStream, Buffer[]> = { stdout: [], stderr: [] };
  await readLogs(dir, opts, (stream, data) => {
    got[stream].push(data);
  });
  return { stdout: Buffer.concat(got.stdout).toString(), stderr: Buffer.concat(got.stderr).toString() };
}

describe('readLogs', () => {
  let base = '';
  let n = 0;
  const newDir = async (out?: string, err?: string) => {
    const d = join(base, `c${n++}`);
    await mkdir(d);
    if (out !== undefined) await writeFile(join(d, 'stdout.log'), out);
    if (err !== undefined) await writeFile(join(d, 'stderr.log'), err);
    return d;
  };
  before(async () => {
    base = await mkdtemp(join(tmpdir(), 'weft-t-logs-'));
  });
  after(async () => {
    await rm(base, { recursive: true, force: true });
  });

  it('reads both streams whole, or only the one asked for', async () => {
    const d = await newDir('o1\no2\n', 'e1\n');
    assert.deepEqual(await collect(d, { stdout: true, stderr: true, follow: false }), { stdout: 'o1\no2\n', stderr: 'e1\n' });
    assert.deepEqual(await collect(d, { stdout: false, stderr: true, follow: false }), { stdout: '', stderr: 'e1\n' });
    assert.deepEqual(await collect(d, { stdout: true, stderr: false, follow: false }), { stdout: 'o1\no2\n', stderr: '' });
  });

  it('reads missing files as empty', async () => {
    const d = await newDir();
    assert.deepEqual(await collect(d, { stdout: true, stderr: true, follow: false }), { stdout: '', stderr: '' });
  });

  it('tails the last N lines of each stream', async () => {
    const d = await newDir('a\nb\nc\nd\n', 'x\ny\npartial');
    assert.deepEqual(await collect(d, { stdout: true, stderr: true, tail: 2, follow: false }), { stdout: 'c\nd\n', stderr: 'y\npartial' });
    assert.deepEqual(await collect(d, { stdout: true, stderr: true, tail: 1, follow: false }), { stdout: 'd\n', stderr: 'partial' });
    assert.deepEqual(await collect(d, { stdout: true, stderr: true, tail: 0, follow: false }), { stdout: '', stderr: '' });
    assert.deepEqual(await collect(d, { stdout: true, stderr: true, tail: 99, follow: false }), { stdout: 'a\nb\nc\nd\n', stderr: 'x\ny\npartial' });
  });

  it('tails empty lines and lines across read blocks', async () => {
    const long = 'z'.repeat(200_000);
    const d = await newDir(`first\n${long}\n\n${long}\nlast\n`, '\n\n\n');
    const got = await collect(d, { stdout: true, stderr: true, tail: 3, follow: false });
    assert.equal(got.stdout, `\n${long}\nlast\n`);
    assert.equal(got.stderr, '\n\n\n');
    const fh = await open(join(d, 'stdout.log'), 'r');
    try {
      assert.equal(await tailOffset(fh, 4), 'first\n'.length);
      assert.equal(await tailOffset(fh, 5), 0);
    } finally {
      await fh.close();
    }
  });

  it('follows growing files until isDone, passing on every byte once, including the last ones', async () => {
    const d = await newDir('old1\nold2\n', '');
    let done = false;
    let started!: () => void;
    const following = new Promise<void>((r) => (started = r));
    const writer = (async () => {
      await following; // the tail is taken before anything new is written
      for (let i = 0; i < 40; i++) {
        await appendFile(join(d, 'stdout.log'), `line ${i}\n`);
        if (i % 3 === 0) await appendFile(join(d, 'stderr.log'), `err ${i}\n`);
        if (i % 7 === 0) await sleep(15);
      }
      // a partial line, then the last bytes written just before the process "exits"
      await appendFile(join(d, 'stdout.log'), 'no newline');
      await appendFile(join(d, 'stderr.log'), 'bye\n');
      done = true;
    })();
    const parts: Record<LogStream, Buffer[]> = { stdout: [], stderr: [] };
    await readLogs(d, { stdout: true, stderr: true, tail: 1, follow: true, isDone: () => done, pollMs: 20 }, (stream, data) => {
      parts[stream].push(data);
      started();
    });
    await writer;
    const got = { stdout: Buffer.concat(parts.stdout).toString(), stderr: Buffer.concat(parts.stderr).toString() };
    const want = ['old2'];
    for (let i = 0; i < 40; i++) want.push(`line ${i}`);
    assert.equal(got.stdout, want.join('\n') + '\nno newline');
    const wantErr: string[] = [];
    for (let i = 0; i < 40; i += 3) wantErr.push(`err ${i}\n`);
    assert.equal(got.stderr, wantErr.join('') + 'bye\n');
  });

  it('follows a file created after it started', async () => {
    const d = await newDir();
    let done = false;
    setTimeout(async () => {
      await writeFile(join(d, 'stdout.log'), 'late\n');
      done = true;
    }, 50);
    const got = await collect(d, { stdout: true, stderr: true, follow: true, isDone: () => done, pollMs: 20 });
    assert.deepEqual(got, { stdout: 'late\n', stderr: '' });
  });

  it('with tail 0, follows only what is written after it started', async () => {
    const d = await newDir('before\n', 'before\n');
    let done = false;
    setTimeout(async () => {
      await appendFile(join(d, 'stdout.log'), 'after\n');
      done = true;
    }, 50);
    const got = await collect(d, { stdout: true, stderr: true, tail: 0, follow: true, isDone: () => done, pollMs: 20 });
    assert.deepEqual(got, { stdout: 'after\n', stderr: '' });
  });

  it('stops following when the signal aborts, having passed on what was there', async () => {
    const d = await newDir('a\n', '');
    const ac = new AbortController();
    const chunks: string[] = [];
    const reading = readLogs(d, { stdout: true, stderr: false, follow: true, signal: ac.signal, pollMs: 10_000 }, (_s, data) => {
      chunks.push(data.toString());
    });
    await sleep(50);
    await appendFile(join(d, 'stdout.log'), 'b\n');
    // the write wakes the follower (file event) long before the 10 s poll
    for (let i = 0; i < 100 && chunks.join('') !== 'a\nb\n'; i++) await sleep(20);
    assert.equal(chunks.join(''), 'a\nb\n');
    ac.abort();
    await reading;
  });

  it('passes on a handler error', async () => {
    const d = await newDir('x\n', '');
    await assert.rejects(
      readLogs(d, { stdout: true, stderr: false, follow: false }, () => {
        throw new Error('client went away');
      }),
      /client went away/,
    );
  });
});
