/**
 * Container processes: started detached inside a network namespace (and a UTS namespace of their
 * own), so they outlive the agent that started them, and found again by PID + start time.
 *
 * A container process is a tiny /bin/sh shim (the "shim", its pid is the container's pid and its
 * process group) that runs the command as its child and writes the command's exit status to a
 * file when it ends:
 *
 *   ip netns exec NETNS  unshare --uts --  /bin/sh -c SHIM weft-shim EXIT MV HOSTNAME WORKDIR CMD0 \
 *     ENV [-u PWD] [-u OLDPWD] [--default-signal=INT,QUIT] -- CMD...
 *
 * `ip netns exec` and `unshare` exec in place (no fork), so the pid Node gets is the shim's. The
 * shim, in order:
 *  - traps TERM, INT and QUIT and passes them on once to its whole process group (the command and
 *    everything it started), ignoring its own copy; HUP, USR1, USR2 and WINCH go to the command;
 *  - truncates EXIT, which the agent pre-fills with 125 ("failed to start": `ip` or `unshare`
 *    failed before the shim ran);
 *  - sets the hostname through /proc/sys/kernel/hostname, after checking that its UTS namespace
 *    is not its parent's (it never renames the machine);
 *  - cds to WORKDIR (126 and a line on stderr if it cannot), looks the command up in the
 *    container's PATH (127 / 126 and a line on stderr, the way Docker words it);
 *  - runs the command in the background through coreutils `env`, which drops the PWD/OLDPWD that
 *    dash exports and resets INT/QUIT (dash ignores them in background jobs) to their defaults;
 *  - holds the signals it traps (keeps a list) until that child has exec'd, then passes them on:
 *    between fork and exec the child still has dash's handlers, and a signal caught there would
 *    be lost. It polls the PF_FORKNOEXEC bit (0x40) of the child's /proc/PID/stat flags, a few
 *    reads as a rule;
 *  - waits for it. A trapped signal interrupts `wait` with 128+N, possibly after dash has already
 *    reaped the command; so after a trap it waits again, which returns the kept status of a
 *    finished job (dash frees it only at its next fork). Then it writes the status to EXIT.tmp,
 *    renames it to EXIT, and SIGKILLs what is left of its group: as with a PID namespace, the
 *    container ends when its main process ends.
 *
 * Exit statuses follow the shell: 128+N for a command killed by signal N. A shim that was itself
 * SIGKILLed writes nothing: callers read that as 137.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { accessSync, closeSync, constants, existsSync, openSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import { netnsPids } from './net.js';

export interface ContainerProcessSpec {
  /** a named netns under /run/netns; absent: the caller's own netns (network mode host) */
  netns?: string;
  /** needs netns: set in a new UTS namespace */
  hostname?: string;
  cmd: string[];
  /** NAME=VALUE; the process gets exactly these (plus PATH when absent), nothing of the agent's */
  env: string[];
  /** absolute; default / */
  workdir?: string;
  /** opened for append */
  stdoutPath: string;
  stderrPath: string;
  /** the shim writes the command's exit status here (tmp + rename) */
  exitPath: string;
}

export interface ProcessIdentity {
  pid: number;
  /** /proc/PID/stat field 22 (clock ticks after boot): tells our process from a recycled PID */
  pidStart: number;
}

export interface ExecSpec {
  /** absent: the caller's netns */
  netns?: string;
  /** join this process's UTS namespace (/proc/PID/ns/uts): the container's hostname */
  utsPid?: number;
  cmd: string[];
  env: string[];
  /** absolute; default / */
  workdir?: string;
}

/** Docker's default PATH, given to a container whose env has none. */
export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** Written to the exit file before the spawn; the shim clears it as soon as it runs. */
export const START_FAILED_EXIT_CODE = 125;

const SHELL = '/bin/sh';

/** Signals the shim passes on to its whole group, once each. */
export const GROUP_FORWARDED_SIGNALS: readonly NodeJS.Signals[] = ['SIGTERM', 'SIGINT', 'SIGQUIT'];
/** Signals the shim passes on to the command only. */
export const COMMAND_FORWARDED_SIGNALS: readonly NodeJS.Signals[] = ['SIGHUP', 'SIGUSR1', 'SIGUSR2', 'SIGWINCH'];

// The shim. Its own variables start with _weft_ and are not exported, so they never reach the
// command's environment (unless that environment already has variables of those names).
const SHIM = `
_weft_pid= _weft_pend= _weft_lead= _weft_trapped=
_weft_sig() {
  _weft_trapped=1
  if [ -z "$_weft_pid" ]; then _weft_pend="$_weft_pend $1:$2"; else _weft_send "$1" "$2"; fi
  return 0
}
_weft_send() {
  if [ "$2" = group ] && [ -n "$_weft_lead" ]; then
    trap '' "$1"; kill -s "$1" 0 2>/dev/null; trap "_weft_sig $1 group" "$1"
  else
    kill -s "$1" "$_weft_pid" 2>/dev/null
  fi
  return 0
}
trap '_weft_sig TERM group' TERM
trap '_weft_sig INT group' INT
trap '_weft_sig QUIT group' QUIT
trap '_weft_sig HUP cmd' HUP
trap '_weft_sig USR1 cmd' USR1
trap '_weft_sig USR2 cmd' USR2
trap '_weft_sig WINCH cmd' WINCH
_weft_exit=$1 _weft_mv=$2 _weft_host=$3 _weft_wd=$4 _weft_cmd=$5
shift 5
_weft_done() {
  _weft_pid= # from here on signals are only noted: a forwarded TERM must not hit mv
  [ -z "$2" ] || printf 'weft: %s\\n' "$2" >&2
  printf '%s\\n' "$1" > "$_weft_exit.tmp" && "$_weft_mv" -f "$_weft_exit.tmp" "$_weft_exit"
  [ -z "$_weft_lead" ] || kill -s KILL 0
  exit "$1"
}
_weft_isleader() {
  read -r _weft_stat < "/proc/$$/stat" || return 1
  set -- \${_weft_stat##*') '}
  [ "$3" = "$$" ]
}
_weft_execd() {
  { read -r _weft_cst < "/proc/$1/stat"; } 2>/dev/null || return 0
  set -- \${_weft_cst##*') '}
  case $1 in Z|X) return 0 ;; esac
  [ $(( $7 & 68 )) -ne 64 ]
}
_weft_isleader && _weft_lead=1
: > "$_weft_exit"
if [ -n "$_weft_host" ]; then
  if [ /proc/self/ns/uts -ef "/proc/$PPID/ns/uts" ]; then
    _weft_done 125 "refusing to set the hostname: not in a UTS namespace of its own"
  fi
  printf '%s' "$_weft_host" > /proc/sys/kernel/hostname || _weft_done 125 "cannot set the hostname to $_weft_host"
fi
if ! cd "$_weft_wd" 2>/dev/null; then
  if [ -d "$_weft_wd" ]; then _weft_done 126 "workdir $_weft_wd: permission denied"; fi
  _weft_done 126 "workdir $_weft_wd: no such directory"
fi
case $_weft_cmd in
*/*)
  if [ -d "$_weft_cmd" ]; then _weft_done 126 "exec: \\"$_weft_cmd\\": is a directory"
  elif [ ! -e "$_weft_cmd" ]; then _weft_done 127 "exec: \\"$_weft_cmd\\": no such file or directory"
  elif [ ! -x "$_weft_cmd" ]; then _weft_done 126 "exec: \\"$_weft_cmd\\": permission denied"
  fi ;;
*)
  _weft_found= _weft_ifs=$IFS
  IFS=:; set -f
  for _weft_d in $PATH; do
    if [ -f "\${_weft_d:-.}/$_weft_cmd" ] && [ -x "\${_weft_d:-.}/$_weft_cmd" ]; then _weft_found=1; break; fi
  done
  IFS=$_weft_ifs; set +f
  [ -n "$_weft_found" ] || _weft_done 127 "exec: \\"$_weft_cmd\\": executable file not found in \\$PATH" ;;
esac
"$@" &
_weft_child=$!
_weft_i=0
until _weft_execd "$_weft_child" || [ "$_weft_i" -ge 100000 ]; do _weft_i=$((_weft_i + 1)); done
_weft_pid=$_weft_child
for _weft_p in $_weft_pend; do _weft_send "\${_weft_p%:*}" "\${_weft_p#*:}"; done
while :; do
  _weft_trapped=
  wait "$_weft_pid"; _weft_rc=$?
  [ -n "$_weft_trapped" ] && [ "$_weft_rc" -gt 128 ] || break
done
_weft_done "$_weft_rc"
`;

// ---------------------------------------------------------------- helpers

const binCache = new Map<string, string>();

/** Absolute path of a tool: the container's PATH may not have it, and spawn looks it up there. */
function bin(name: string): string {
  const cached = binCache.get(name);
  if (cached) return cached;
  const dirs = [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/usr/bin', '/sbin', '/bin'];
  for (const d of dirs) {
    if (!d.startsWith('/')) continue;
    const p = `${d}/${name}`;
    try {
      accessSync(p, constants.X_OK);
      if (!statSync(p).isFile()) continue;
      binCache.set(name, p);
      return p;
    } catch {
      // next
    }
  }
  throw new Error(`${name}: not found in PATH or the usual system directories; install it (iproute2, util-linux, coreutils)`);
}

let defaultSignalSupport: boolean | undefined;

/** coreutils env >= 8.31 can reset signal dispositions (needed to undo dash's ignored INT/QUIT). */
function envHasDefaultSignal(): boolean {
  if (defaultSignalSupport === undefined) {
    const r = spawnSync(bin('env'), ['--default-signal=INT,QUIT', 'true'], { stdio: 'ignore', env: {}, timeout: 5000 });
    defaultSignalSupport = r.status === 0;
  }
  return defaultSignalSupport;
}

const NETNS_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$/;

function checkNetns(netns: string): void {
  if (!NETNS_NAME.test(netns)) throw new Error(`netns "${netns}": invalid name (letters, digits, _ . -)`);
  if (!existsSync(`/run/netns/${netns}`)) throw new Error(`netns "${netns}" does not exist (no /run/netns/${netns})`);
}

function checkCmd(cmd: string[]): void {
  if (cmd.length === 0 || cmd[0] === '') throw new Error('cmd: empty; give the program to run');
  for (const a of cmd) if (a.includes('\0')) throw new Error('cmd: arguments cannot contain NUL bytes');
}

/** NAME=VALUE list -> environment object, plus PATH when absent. */
export function containerEnv(list: string[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const entry of list) {
    const eq = entry.indexOf('=');
    if (eq <= 0) throw new Error(`env: "${entry}" is not NAME=VALUE`);
    if (entry.includes('\0')) throw new Error(`env: "${entry.slice(0, eq)}" contains a NUL byte`);
    env[entry.slice(0, eq)] = entry.slice(eq + 1);
  }
  if (env.PATH === undefined) env.PATH = DEFAULT_PATH;
  return env;
}

function checkWorkdir(workdir: string | undefined): string {
  const wd = workdir ?? '/';
  if (!isAbsolute(wd)) throw new Error(`workdir "${wd}": must be an absolute path`);
  return wd;
}

/** The kernel's limit for a hostname is 64 bytes. */
function checkHostname(hostname: string): void {
  if (!/^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/.test(hostname) || Buffer.byteLength(hostname) > 64) {
    throw new Error(`hostname "${hostname}": use 1-64 letters, digits, dots and dashes, starting and ending with a letter or digit`);
  }
}

export interface ProcStat {
  state: string;
  ppid: number;
  pgrp: number;
  session: number;
  startTime: number;
}

/** /proc/PID/stat, or undefined when there is no such process. */
export function readProcStat(pid: number): ProcStat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // comm (field 2) is in parentheses and may contain spaces or parentheses: split after the last ')'
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // f[0] is field 3 (state); field N is f[N - 3]
  return { state: f[0], ppid: Number(f[1]), pgrp: Number(f[2]), session: Number(f[3]), startTime: Number(f[19]) };
}

function checkPid(pid: number): void {
  if (!Number.isInteger(pid) || pid <= 1) throw new Error(`pid ${pid}: not a process weft may signal`);
  if (pid === process.pid) throw new Error(`pid ${pid}: is this process`);
}

function ignoreEsrch(fn: () => void): void {
  try {
    fn();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ESRCH') throw e;
  }
}

// ---------------------------------------------------------------- API

/**
 * Starts a container process detached from the caller (own session and process group, unref'd):
 * it keeps running when the caller dies. Returns the shim's pid (the group leader).
 */
export function spawnContainerProcess(spec: ContainerProcessSpec): ProcessIdentity {
  checkCmd(spec.cmd);
  const env = containerEnv(spec.env);
  const workdir = checkWorkdir(spec.workdir);
  if (spec.hostname !== undefined) {
    if (!spec.netns) throw new Error('hostname: needs a network namespace (network mode host shares the host\'s hostname)');
    checkHostname(spec.hostname);
  }
  if (spec.netns) checkNetns(spec.netns);

  const wrapper = [bin('env')];
  if (!('PWD' in env)) wrapper.push('-u', 'PWD');
  if (!('OLDPWD' in env)) wrapper.push('-u', 'OLDPWD');
  if (envHasDefaultSignal()) wrapper.push('--default-signal=INT,QUIT');
  wrapper.push('--');
  const shimArgs = ['-c', SHIM, 'weft-shim', spec.exitPath, bin('mv'), spec.hostname ?? '', workdir, spec.cmd[0], ...wrapper, ...spec.cmd];

  let file = SHELL;
  let args = shimArgs;
  if (spec.netns) {
    file = bin('ip');
    args = ['netns', 'exec', spec.netns];
    if (spec.hostname !== undefined) args.push(bin('unshare'), '--uts', '--');
    args.push(SHELL, ...shimArgs);
  }

  writeFileSync(spec.exitPath, `${START_FAILED_EXIT_CODE}\n`);
  const out = openSync(spec.stdoutPath, 'a', 0o640);
  let child: ChildProcess;
  try {
    const err = openSync(spec.stderrPath, 'a', 0o640);
    try {
      child = spawn(file, args, { detached: true, stdio: ['ignore', out, err], env, cwd: '/' });
    } finally {
      closeSync(err);
    }
  } finally {
    closeSync(out);
  }
  child.on('error', () => {}); // reported below through the missing pid
  child.unref();
  const pid = child.pid;
  if (pid === undefined) throw new Error(`cannot start ${file}: spawn failed`);
  // Read before returning to the event loop: until then libuv cannot reap the child, so even a
  // process that already exited is still there as a zombie with its start time.
  const st = readProcStat(pid);
  if (!st) throw new Error(`process ${pid} vanished right after it was spawned`);
  return { pid, pidStart: st.startTime };
}

/** True only for a live (not zombie) process with this pid and start time. */
export function processAlive(pid: number, pidStart: number): boolean {
  const st = readProcStat(pid);
  return st !== undefined && st.startTime === pidStart && st.state !== 'Z' && st.state !== 'X';
}

/** Signals one process; a process that is gone is not an error. */
export function signalProcess(pid: number, signal: NodeJS.Signals): void {
  checkPid(pid);
  ignoreEsrch(() => process.kill(pid, signal));
}

/**
 * Signals the process group led by pid; a group that is gone is not an error. For TERM, INT and
 * QUIT to a container, signal the shim alone (signalProcess): it passes them on to the group, so
 * signalling the group as well would deliver them twice.
 */
export function signalGroup(pid: number, signal: NodeJS.Signals): void {
  checkPid(pid);
  const own = readProcStat(process.pid);
  if (own && own.pgrp === pid) throw new Error(`process group ${pid} is this process's own`);
  ignoreEsrch(() => process.kill(-pid, signal));
}

/** Whether the process group pgid has a member that is not a zombie. */
export function groupAlive(pgid: number): boolean {
  checkPid(pgid);
  try {
    process.kill(-pgid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw e;
  }
  // kill() counts zombies too: look for a live member
  for (const name of readdirSync('/proc')) {
    if (name.charCodeAt(0) < 48 || name.charCodeAt(0) > 57) continue;
    const st = readProcStat(Number(name));
    if (st && st.pgrp === pgid && st.state !== 'Z' && st.state !== 'X') return true;
  }
  return false;
}

/** The children of a process (from /proc/PID/task/PID/children). */
export function childPids(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/**
 * Runs a command inside a container's netns and UTS namespace (`weft exec`), as a child of the
 * caller with piped stdio. It sees the container's /etc/hosts, resolv.conf and hostname.
 * A missing command exits 127 (nsenter's "failed to execute").
 */
export function spawnExec(spec: ExecSpec): ChildProcess {
  checkCmd(spec.cmd);
  const env = containerEnv(spec.env);
  const workdir = checkWorkdir(spec.workdir);
  let isDir = false;
  try {
    isDir = statSync(workdir).isDirectory();
  } catch {
    // reported below
  }
  if (!isDir) throw new Error(`workdir "${workdir}": no such directory`);
  if (spec.netns) checkNetns(spec.netns);
  const nsenter = [bin('nsenter')];
  if (spec.utsPid !== undefined) {
    checkPid(spec.utsPid);
    if (!existsSync(`/proc/${spec.utsPid}/ns/uts`)) throw new Error(`process ${spec.utsPid} is gone: cannot join its UTS namespace`);
    nsenter.push(`--uts=/proc/${spec.utsPid}/ns/uts`);
  }
  nsenter.push('--', ...spec.cmd);
  const [file, args] = spec.netns ? [bin('ip'), ['netns', 'exec', spec.netns, ...nsenter]] : [nsenter[0], nsenter.slice(1)];
  return spawn(file, args, { stdio: ['pipe', 'pipe', 'pipe'], env, cwd: workdir });
}

/**
 * SIGKILLs every process in a named netns, and the group each leads: a container's shim group,
 * but also processes outside it (an exec's child, a daemon that left the group), which would
 * otherwise keep running in a namespace whose name is gone. Returns the PIDs it found.
 */
export async function killNetnsProcesses(netns: string): Promise<number[]> {
  const pids = await netnsPids(netns).catch(() => [] as number[]);
  for (const pid of pids) {
    if (pid <= 1 || pid === process.pid) continue;
    ignoreEsrch(() => process.kill(-pid, 'SIGKILL'));
    ignoreEsrch(() => process.kill(pid, 'SIGKILL'));
  }
  return pids;
}
