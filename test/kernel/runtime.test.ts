/**
 * Container processes for real: a netns of the test's own, detached shims, exit codes on disk.
 * Needs root. Everything made here has the prefix weft-t-rt- and is removed in after(), also when
 * a test fails; processes are killed by PID.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readlinkSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { hostname as osHostname } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { childEnv, run } from '../../src/kernel/exec.js';
import { DEFAULT_PATH, childPids, groupAlive, readProcStat, signalGroup, signalProcess, spawnExec } from '../../src/kernel/process.js';
import {
  finalExitCode,
  killProcess,
  processAlive,
  readExitCode,
  startProcess,
  stopProcess,
  waitForExit,
  type ProcessIdentity,
  type ProcessSpec,
} from '../../src/runtime/process.js';
import { readLogs } from '../../src/runtime/logs.js';
import { removeEtcFiles, renderHosts, renderResolvConf, writeEtcFiles } from '../../src/runtime/etc.js';

const NS = `weft-t-rt-${randomBytes(4).toString('hex')}`;
const REPO = fileURLToPath(new URL('../../', import.meta.url));
const HOST_NAME = osHostname();
const T = { timeout: 30_000 };

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

let tmp = '';
let nsMade = false;
let n = 0;
const started: ProcessIdentity[] = [];
const helpers: ChildProcess[] = [];

/** Starts a container process in a fresh dir under tmp and remembers it for cleanup. */
async function start(spec: ProcessSpec): Promise<ProcessIdentity & { dir: string }> {
  const dir = join(tmp, `c${n++}`);
  const p = await startProcess(dir, spec);
  started.push(p);
  return { ...p, dir };
}

async function exited(p: ProcessIdentity): Promise<void> {
  assert.ok(await waitForExit(p.pid, p.pidStart, AbortSignal.timeout(20_000)), `process ${p.pid} did not exit`);
}

async function logOf(dir: string, stream: 'stdout' | 'stderr'): Promise<string> {
  try {
    return await readFile(join(dir, `${stream}.log`), 'utf8');
  } catch {
    return '';
  }
}

/** Waits until the file has a line "text" (a script saying it is ready). */
async function waitForLine(path: string, text: string): Promise<void> {
  for (let i = 0; i < 400; i++) {
    try {
      if ((await readFile(path, 'utf8')).split('\n').includes(text)) return;
    } catch {
      // not yet
    }
    await sleep(25);
  }
  assert.fail(`${path} never had a line "${text}"`);
}

/** Gone, or a zombie that its new parent has not reaped yet. */
function dead(pid: number): boolean {
  const st = readProcStat(pid);
  return st === undefined || st.state === 'Z' || st.state === 'X';
}

/** The command the shim runs (its one child), once it has exec'd into `comm`. */
async function commandPid(shim: number, comm: string): Promise<number> {
  for (let i = 0; i < 400; i++) {
    for (const c of childPids(shim)) {
      try {
        if ((await readFile(`/proc/${c}/comm`, 'utf8')).trim() === comm) return c;
      } catch {
        // gone
      }
    }
    await sleep(10);
  }
  assert.fail(`shim ${shim} has no child ${comm}`);
}

function nsId(path: string): string {
  const s = statSync(path);
  return `${s.dev}:${s.ino}`;
}

describe('container processes (kernel)', () => {
  before(async () => {
    tmp = await mkdtemp('/tmp/weft-t-rt-');
    await run('ip', ['netns', 'add', NS]);
    nsMade = true;
    await run('ip', ['-n', NS, 'link', 'set', 'lo', 'up']);
  });

  after(async () => {
    for (const h of helpers) if (h.exitCode === null && h.signalCode === null && h.pid) signalProcess(h.pid, 'SIGKILL');
    for (const p of started) {
      const st = readProcStat(p.pid);
      if (st && st.startTime !== p.pidStart) continue; // recycled pid: not ours
      if (groupAlive(p.pid)) signalGroup(p.pid, 'SIGKILL');
    }
    for (const p of started) {
      for (let i = 0; i < 200 && groupAlive(p.pid); i++) await sleep(10);
    }
    if (nsMade) await run('ip', ['netns', 'del', NS]);
    await removeEtcFiles(NS);
    if (tmp) await rm(tmp, { recursive: true, force: true });
    assert.equal(osHostname(), HOST_NAME, 'the machine hostname changed');
  });

  it('runs in its netns with its own hostname and the /etc files of /etc/netns/NS', T, async () => {
    const hosts = renderHosts({ hostname: 'box1', names: ['c1', 'web'], addresses: ['10.99.0.2/24'], extraHosts: ['db:10.99.0.9'] });
    const resolv = renderResolvConf({ dns: ['192.0.2.53'], search: ['t.example'] }, '');
    await writeEtcFiles(NS, { hosts, resolvConf: resolv, hostname: 'box1' });
    const script = [
      'hostname', 'echo ---', 'cat /etc/hostname', 'echo ---', 'cat /etc/hosts', 'echo ---', 'cat /etc/resolv.conf', 'echo ---',
      'readlink /proc/self/ns/net', 'readlink /proc/self/ns/uts',
    ].join('; ');
    const p = await start({ netns: NS, hostname: 'box1', cmd: ['sh', '-c', script], env: [] });
    await exited(p);
    assert.equal(await finalExitCode(p.dir), 0, await logOf(p.dir, 'stderr'));
    const [name, etcHostname, seenHosts, seenResolv, ids] = (await logOf(p.dir, 'stdout')).split('---\n');
    assert.equal(name, 'box1\n');
    assert.equal(etcHostname, 'box1\n');
    assert.equal(seenHosts, hosts);
    assert.equal(seenResolv, resolv);
    const [net, uts] = ids.trim().split('\n');
    assert.equal(net, `net:[${statSync(`/run/netns/${NS}`).ino}]`);
    assert.notEqual(net, readlinkSync('/proc/self/ns/net'));
    assert.notEqual(uts, readlinkSync('/proc/self/ns/uts'));
    assert.equal(osHostname(), HOST_NAME);
  });

  it('gives the command exactly the env it was given, plus PATH when absent', T, async () => {
    process.env.WEFT_T_RT_AGENT_ONLY = 'must not leak';
    try {
      const env = ['A=1', 'B=two words', 'EMPTY=', 'PATH=/usr/bin:/bin'];
      const p1 = await start({ netns: NS, hostname: 'envbox', cmd: ['env'], env });
      const p2 = await start({ netns: NS, cmd: ['env'], env: ['ONLY=this'] });
      const p3 = await start({ cmd: ['env'], env: ['HOSTMODE=1'] });
      await Promise.all([exited(p1), exited(p2), exited(p3)]);
      assert.deepEqual((await logOf(p1.dir, 'stdout')).trimEnd().split('\n').sort(), [...env].sort());
      assert.deepEqual((await logOf(p2.dir, 'stdout')).trimEnd().split('\n').sort(), ['ONLY=this', `PATH=${DEFAULT_PATH}`]);
      assert.deepEqual((await logOf(p3.dir, 'stdout')).trimEnd().split('\n').sort(), ['HOSTMODE=1', `PATH=${DEFAULT_PATH}`]);
    } finally {
      delete process.env.WEFT_T_RT_AGENT_ONLY;
    }
  });

  it('runs in its workdir; a missing workdir is exit 126 with a line in the stderr log', T, async () => {
    const wd = join(tmp, 'work dir');
    await mkdir(wd);
    const p = await start({ netns: NS, cmd: ['pwd'], env: [], workdir: wd });
    const q = await start({ netns: NS, cmd: ['pwd'], env: [], workdir: join(tmp, 'missing') });
    const r = await start({ netns: NS, cmd: ['pwd'], env: [] });
    await Promise.all([exited(p), exited(q), exited(r)]);
    assert.equal(await logOf(p.dir, 'stdout'), `${wd}\n`);
    assert.equal(await finalExitCode(p.dir), 0);
    assert.equal(await finalExitCode(q.dir), 126);
    assert.equal(await logOf(q.dir, 'stdout'), '');
    assert.match(await logOf(q.dir, 'stderr'), /^weft: workdir .*\/missing: no such directory$/m);
    assert.equal(await logOf(r.dir, 'stdout'), '/\n');
  });

  it('records exit codes 0, 3 and 127 (command not found), with stdout and stderr apart', T, async () => {
    const ok = await start({ netns: NS, cmd: ['true'], env: [] });
    const three = await start({ netns: NS, cmd: ['sh', '-c', 'echo to-out; echo to-err >&2; exit 3'], env: [] });
    const missing = await start({ netns: NS, cmd: ['weft-no-such-command', 'x'], env: [] });
    const missingPath = await start({ netns: NS, cmd: ['/nonexistent/weft-cmd'], env: [] });
    await Promise.all([ok, three, missing, missingPath].map(exited));
    assert.equal(await readExitCode(ok.dir), 0);
    assert.equal(await readExitCode(three.dir), 3);
    assert.equal(await logOf(three.dir, 'stdout'), 'to-out\n');
    assert.equal(await logOf(three.dir, 'stderr'), 'to-err\n');
    assert.equal(await readExitCode(missing.dir), 127);
    assert.match(await logOf(missing.dir, 'stderr'), /^weft: exec: "weft-no-such-command": executable file not found in \$PATH$/m);
    assert.equal(await readExitCode(missingPath.dir), 127);
    assert.match(await logOf(missingPath.dir, 'stderr'), /"\/nonexistent\/weft-cmd": no such file or directory/);
  });

  it('is in the netns; has no exit code while it runs; SIGTERM on stop is recorded as 143', T, async () => {
    const p = await start({ netns: NS, hostname: 'sleeper', cmd: ['sleep', '60'], env: [] });
    const cmd = await commandPid(p.pid, 'sleep');
    assert.equal(nsId(`/proc/${cmd}/ns/net`), nsId(`/run/netns/${NS}`));
    assert.notEqual(nsId(`/proc/${cmd}/ns/uts`), nsId('/proc/self/ns/uts'));
    assert.equal(readProcStat(cmd)?.pgrp, p.pid, 'the command is in the shim group');
    assert.equal(readProcStat(p.pid)?.session, p.pid, 'the shim leads its own session');
    assert.ok(processAlive(p.pid, p.pidStart));
    assert.equal(await readExitCode(p.dir), undefined);
    assert.equal(await stopProcess(p.pid, p.pidStart, 10_000), 'stopped');
    assert.ok(!groupAlive(p.pid));
    assert.ok(!processAlive(p.pid, p.pidStart));
    assert.equal(await readExitCode(p.dir), 143);
  });

  it('stop: a command that traps TERM and exits gets its own code recorded', T, async () => {
    const p = await start({
      netns: NS,
      cmd: ['sh', '-c', 'trap "echo got-term; exit 7" TERM; echo ready; while :; do sleep 0.05; done'],
      env: [],
    });
    await waitForLine(join(p.dir, 'stdout.log'), 'ready');
    assert.equal(await stopProcess(p.pid, p.pidStart, 10_000), 'stopped');
    assert.equal(await readExitCode(p.dir), 7);
    assert.equal(await logOf(p.dir, 'stdout'), 'ready\ngot-term\n');
  });

  it('stop: TERM reaches every process of the group, each exactly once', T, async () => {
    // A grandchild that ends on TERM, under a parent that ignores TERM: the container stops only if
    // the grandchild got it too.
    const gcFile = join(tmp, 'gc-term');
    const p = await start({
      netns: NS,
      cmd: ['sh', '-c', `(trap "echo gc-term >> '${gcFile}'; exit 0" TERM; while :; do sleep 0.05; done) & trap "" TERM; echo ready; wait`],
      env: [],
    });
    await waitForLine(join(p.dir, 'stdout.log'), 'ready');
    await sleep(100); // the subshell has set its trap
    assert.equal(await stopProcess(p.pid, p.pidStart, 10_000), 'stopped');
    assert.equal(await readFile(gcFile, 'utf8'), 'gc-term\n');
    assert.equal(await readExitCode(p.dir), 0);

    // A command that counts its TERMs and does not exit: one TERM, then SIGKILL at the timeout.
    const q = await start({ netns: NS, cmd: ['sh', '-c', 'trap "echo term" TERM; echo ready; while :; do sleep 0.05; done'], env: [] });
    await waitForLine(join(q.dir, 'stdout.log'), 'ready');
    assert.equal(await stopProcess(q.pid, q.pidStart, 700), 'killed');
    assert.equal(await logOf(q.dir, 'stdout'), 'ready\nterm\n');
  });

  it('stop right after start: TERM is not lost while the shim starts the command', T, async () => {
    // TERM may reach `ip`/`unshare` (125: never started), the shim before its fork, or the moment
    // between fork and exec; in every case the container must end by TERM, not at the timeout.
    for (let i = 0; i < 12; i++) {
      const p = await start({ netns: NS, hostname: `quick${i}`, cmd: ['sleep', '60'], env: [] });
      if (i % 3 === 1) await sleep(2 + i);
      assert.equal(await stopProcess(p.pid, p.pidStart, 5_000), 'stopped', `round ${i}`);
      assert.ok([125, 143].includes(await finalExitCode(p.dir)), `round ${i}: exit ${await finalExitCode(p.dir)}`);
    }
  });

  it('stop: a command that ignores TERM is killed after the timeout, grandchildren too', T, async () => {
    const p = await start({
      netns: NS,
      cmd: ['sh', '-c', 'trap "" TERM; sleep 300 & echo $! > gc.pid; echo ready; wait'],
      env: [],
      workdir: tmp,
    });
    await waitForLine(join(p.dir, 'stdout.log'), 'ready');
    const grandchild = Number(await readFile(join(tmp, 'gc.pid'), 'utf8'));
    assert.ok(!dead(grandchild));
    const t0 = Date.now();
    assert.equal(await stopProcess(p.pid, p.pidStart, 500), 'killed');
    assert.ok(Date.now() - t0 >= 450, 'SIGKILL came before the timeout');
    assert.ok(!groupAlive(p.pid));
    assert.ok(dead(grandchild), 'grandchild survived');
    assert.equal(await readExitCode(p.dir), undefined);
    assert.equal(await finalExitCode(p.dir), 137);
    assert.equal(await stopProcess(p.pid, p.pidStart, 500), 'not-running');
  });

  it('ends what the command left behind when the command exits', T, async () => {
    const p = await start({ netns: NS, cmd: ['sh', '-c', 'sleep 300 & echo $! > left.pid; exit 4'], env: [], workdir: tmp });
    await exited(p);
    assert.equal(await readExitCode(p.dir), 4);
    const left = Number(await readFile(join(tmp, 'left.pid'), 'utf8'));
    for (let i = 0; i < 200 && !dead(left); i++) await sleep(10);
    assert.ok(dead(left), 'the background process outlived the container');
  });

  it('passes INT to the command (not ignored as in a dash background job) and HUP to the command only', T, async () => {
    const p = await start({ netns: NS, cmd: ['sleep', '60'], env: [] });
    await commandPid(p.pid, 'sleep');
    assert.ok(killProcess(p.pid, p.pidStart, 'SIGINT'));
    await exited(p);
    assert.equal(await readExitCode(p.dir), 130);

    const q = await start({ netns: NS, cmd: ['sh', '-c', 'trap "echo hup" HUP; echo ready; while :; do sleep 0.05; done'], env: [] });
    await waitForLine(join(q.dir, 'stdout.log'), 'ready');
    assert.ok(killProcess(q.pid, q.pidStart, 'SIGHUP'));
    await waitForLine(join(q.dir, 'stdout.log'), 'hup');
    assert.ok(processAlive(q.pid, q.pidStart), 'HUP ended the container');
    assert.throws(() => killProcess(q.pid, q.pidStart, 'SIGALRM'), /SIGALRM: cannot be sent to a container/);
    assert.equal(await stopProcess(q.pid, q.pidStart, 10_000), 'stopped');
    assert.equal(await finalExitCode(q.dir), 143);
  });

  it('survives the kill -9 of the process that started it, and still records its exit code', T, async () => {
    const dir = join(tmp, 'survivor');
    const helper = join(tmp, 'helper.mts');
    await writeFile(
      helper,
      [
        `import { startProcess } from ${JSON.stringify(join(REPO, 'src/runtime/process.ts'))};`,
        'const p = await startProcess(process.argv[2], JSON.parse(process.argv[3]));',
        "process.stdout.write(JSON.stringify(p) + '\\n');",
        'setInterval(() => {}, 1000);',
      ].join('\n'),
    );
    const spec: ProcessSpec = {
      netns: NS,
      hostname: 'survivor',
      cmd: ['sh', '-c', 'while [ ! -e go ]; do sleep 0.05; done; echo finished; exit 5'],
      env: [],
      workdir: dir,
    };
    await mkdir(dir);
    const h = spawn(process.execPath, ['--import', 'tsx', helper, dir, JSON.stringify(spec)], {
      cwd: REPO,
      env: childEnv(),
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    helpers.push(h);
    const gone = new Promise<void>((r) => h.on('exit', () => r()));
    let out = '';
    for await (const chunk of h.stdout) {
      out += chunk;
      if (out.includes('\n')) break;
    }
    const p = JSON.parse(out) as ProcessIdentity;
    started.push(p);
    assert.equal(readProcStat(p.pid)?.ppid, h.pid);
    signalProcess(h.pid!, 'SIGKILL');
    await gone;
    await sleep(100);
    assert.ok(processAlive(p.pid, p.pidStart), 'the container died with its starter');
    assert.notEqual(readProcStat(p.pid)?.ppid, h.pid);
    await writeFile(join(dir, 'go'), '');
    await exited(p);
    assert.equal(await readExitCode(dir), 5);
    assert.equal(await logOf(dir, 'stdout'), 'finished\n');
  });

  it('guards against a recycled pid: a wrong start time is not our process', T, async () => {
    const p = await start({ netns: NS, cmd: ['sleep', '60'], env: [] });
    assert.ok(processAlive(p.pid, p.pidStart));
    assert.ok(!processAlive(p.pid, p.pidStart + 1));
    assert.equal(await stopProcess(p.pid, p.pidStart + 1, 100), 'not-running');
    assert.ok(!killProcess(p.pid, p.pidStart + 1, 'SIGKILL'));
    await sleep(50);
    assert.ok(processAlive(p.pid, p.pidStart), 'a stop with the wrong start time hit the process');
    assert.equal(await stopProcess(p.pid, p.pidStart, 10_000), 'stopped');
    assert.ok(!processAlive(p.pid, p.pidStart));
  });

  it('exec: runs in the container netns and UTS namespace, streams its output, returns its code', T, async () => {
    await writeEtcFiles(NS, {
      hosts: renderHosts({ hostname: 'execbox', addresses: ['10.99.0.3'] }),
      resolvConf: renderResolvConf({ dns: ['192.0.2.54'] }, ''),
      hostname: 'execbox',
    });
    const p = await start({ netns: NS, hostname: 'execbox', cmd: ['sleep', '60'], env: [] });
    await commandPid(p.pid, 'sleep');
    const script = [
      'echo first', 'read line', 'echo "got $line"', 'hostname', 'readlink /proc/self/ns/net', 'readlink /proc/self/ns/uts',
      'pwd', 'echo "X=$X"', 'grep execbox /etc/hosts', 'cat /etc/resolv.conf', 'echo oops >&2', 'exit 4',
    ].join('; ');
    const child = spawnExec({ netns: NS, utsPid: p.pid, cmd: ['sh', '-c', script], env: ['X=1'], workdir: tmp });
    const code = new Promise<number | null>((r) => child.on('close', (c) => r(c)));
    let out = '';
    let err = '';
    child.stderr!.on('data', (d: Buffer) => (err += d));
    const firstLine = new Promise<void>((r) => {
      child.stdout!.on('data', (d: Buffer) => {
        out += d;
        if (out.includes('first\n')) r();
      });
    });
    // The first line arrives while the command still waits for its input: streamed, not buffered.
    await firstLine;
    assert.equal(out, 'first\n');
    child.stdin!.end('hello\n');
    assert.equal(await code, 4);
    const lines = out.trimEnd().split('\n');
    assert.deepEqual(lines.slice(0, 3), ['first', 'got hello', 'execbox']);
    assert.equal(lines[3], `net:[${statSync(`/run/netns/${NS}`).ino}]`);
    assert.equal(lines[4], readlinkSync(`/proc/${p.pid}/ns/uts`));
    assert.equal(lines[5], tmp);
    assert.equal(lines[6], 'X=1');
    assert.equal(lines[7], '10.99.0.3\texecbox');
    assert.ok(lines.includes('nameserver 192.0.2.54'));
    assert.equal(err, 'oops\n');

    const missing = spawnExec({ netns: NS, utsPid: p.pid, cmd: ['weft-no-such-command'], env: [] });
    missing.stdin!.end();
    missing.stdout!.resume();
    missing.stderr!.resume();
    assert.equal(await new Promise((r) => missing.on('close', r)), 127);
    assert.equal(await stopProcess(p.pid, p.pidStart, 10_000), 'stopped');
  });

  it('host mode: runs in the caller netns and UTS namespace; a hostname needs a netns', T, async () => {
    const p = await start({ cmd: ['sh', '-c', 'readlink /proc/self/ns/net /proc/self/ns/uts; hostname'], env: [] });
    await exited(p);
    assert.equal(await finalExitCode(p.dir), 0);
    assert.deepEqual((await logOf(p.dir, 'stdout')).trimEnd().split('\n'), [
      readlinkSync('/proc/self/ns/net'),
      readlinkSync('/proc/self/ns/uts'),
      HOST_NAME,
    ]);
    await assert.rejects(start({ hostname: 'nope', cmd: ['true'], env: [] }), /hostname: needs a network namespace/);
    const ex = spawnExec({ cmd: ['sh', '-c', 'readlink /proc/self/ns/net; exit 9'], env: [] });
    let out = '';
    ex.stdout!.on('data', (d: Buffer) => (out += d));
    ex.stdin!.end();
    assert.equal(await new Promise((r) => ex.on('close', r)), 9);
    assert.equal(out.trim(), readlinkSync('/proc/self/ns/net'));
    assert.equal(osHostname(), HOST_NAME);
  });

  it('follows a running container logs to its end', T, async () => {
    const p = await start({
      netns: NS,
      cmd: ['sh', '-c', 'for i in 1 2 3; do echo out$i; echo err$i >&2; sleep 0.05; done; printf tail'],
      env: [],
    });
    const got = { stdout: '', stderr: '' };
    await readLogs(p.dir, { stdout: true, stderr: true, follow: true, isDone: () => !processAlive(p.pid, p.pidStart), pollMs: 20 }, (s, d) => {
      got[s] += d.toString();
    });
    assert.deepEqual(got, { stdout: 'out1\nout2\nout3\ntail', stderr: 'err1\nerr2\nerr3\n' });
  });

  it('refuses bad input with a clear error and starts nothing', T, async () => {
    await assert.rejects(start({ netns: `${NS}-missing`, cmd: ['true'], env: [] }), /netns "weft-t-rt-.*-missing" does not exist/);
    await assert.rejects(start({ netns: NS, cmd: [], env: [] }), /cmd: empty/);
    await assert.rejects(start({ netns: NS, cmd: ['true'], env: ['NOEQUALS'] }), /env: "NOEQUALS" is not NAME=VALUE/);
    await assert.rejects(start({ netns: NS, cmd: ['true'], env: [], workdir: 'relative' }), /workdir "relative": must be an absolute path/);
    await assert.rejects(start({ netns: NS, hostname: 'bad_name!', cmd: ['true'], env: [] }), /hostname "bad_name!"/);
    assert.throws(() => spawnExec({ netns: NS, cmd: ['true'], env: [], workdir: join(tmp, 'nope') }), /workdir .*nope.*: no such directory/);
    assert.ok(!existsSync(join(tmp, `c${n - 1}`, 'stdout.log')));
  });
});
