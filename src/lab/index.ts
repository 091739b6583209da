/**
 * Lab hosts: a "host" network namespace running its own agent, joined by an uplink veth to an
 * "outside" namespace that stands for the rest of the world (so masquerading and published ports
 * can be tried end to end). Nothing here touches the machine's root network namespace.
 *
 *   outside netns  weft-lab-NAME-out   eth0 198.18.N.1/24
 *        | uplink veth
 *   host netns     weft-lab-NAME       eth0 198.18.N.2/24, default via 198.18.N.1, agent inside
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import http from 'node:http';
import type { LabInfo, LabUpOptions } from './types.js';
import { ipBatch, netnsAdd, netnsDelete, netnsExists, netnsList } from '../kernel/net.js';
import { killNetnsProcesses } from '../kernel/process.js';
import { runInherit, spawnDaemon } from '../kernel/exec.js';
import { netnsPrefix } from '../drivers/names.js';

export type { LabInfo, LabUpOptions };

const NAME_RE = /^[a-z0-9][a-z0-9-]{0,19}$/;

export function labBaseDir(): string {
  return process.env.WEFT_LAB_DIR ?? '/tmp/weft-labs';
}

function hostNs(name: string): string {
  return `weft-lab-${name}`;
}

function outsideNs(name: string): string {
  return `weft-lab-${name}-out`;
}

function checkName(name: string): void {
  if (!NAME_RE.test(name)) throw new Error(`invalid lab name "${name}": use 1-20 lowercase letters, digits and '-'`);
}

/** The CLI entry the lab's agent runs: dist/cli/main.js, or the TypeScript source under tsx. */
function agentCommand(): string[] {
  const js = fileURLToPath(new URL('../cli/main.js', import.meta.url));
  if (existsSync(js)) return [process.execPath, js];
  const ts = fileURLToPath(new URL('../cli/main.ts', import.meta.url));
  return [process.execPath, '--import', 'tsx', ts];
}

async function readInfo(name: string): Promise<LabInfo | undefined> {
  try {
    return JSON.parse(await readFile(path.join(labBaseDir(), name, 'lab.json'), 'utf8')) as LabInfo;
  } catch {
    return undefined;
  }
}

function pidAlive(pid: number | undefined): boolean {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Whether pid is still the agent of this lab (and not a recycled PID). */
async function isLabAgent(pid: number, socket: string): Promise<boolean> {
  try {
    return (await readFile(`/proc/${pid}/cmdline`, 'utf8')).includes(socket);
  } catch {
    return false;
  }
}

function ping(socket: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get({ socketPath: socket, path: '/v1/version', timeout: 1000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => {
      req.destroy();
      resolve(false);
    });
  });
}

async function pickUplinkIndex(): Promise<number> {
  const used = new Set<number>();
  for (const l of await labList()) used.add(Number(l.hostAddress.split('.')[2]));
  for (let i = 1; i < 255; i++) if (!used.has(i)) return i;
  throw new Error('too many labs on this machine (254); remove some with weft lab down');
}

export async function labUp(name: string, opts: LabUpOptions = {}): Promise<LabInfo> {
  checkName(name);
  const dir = path.join(labBaseDir(), name);
  if (existsSync(path.join(dir, 'lab.json')) || (await netnsExists(hostNs(name))))
    throw new Error(`lab ${name} already exists; remove it with 'weft lab down ${name}'`);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const n = await pickUplinkIndex();
  const info: LabInfo = {
    name,
    dir,
    socket: path.join(dir, 'agent.sock'),
    hostNetns: hostNs(name),
    outsideNetns: outsideNs(name),
    hostAddress: `198.18.${n}.2`,
    outsideAddress: `198.18.${n}.1`,
    agentRunning: false,
    store: opts.store ?? 'sqlite',
  };
  await writeFile(path.join(dir, 'lab.json'), JSON.stringify(info, null, 2) + '\n');
  try {
    await netnsAdd(info.hostNetns);
    await netnsAdd(info.outsideNetns);
    // the uplink is made inside the host namespace and its peer goes straight to the outside one
    await ipBatch(
      [
        `link add name eth0 type veth peer name eth0 netns ${info.outsideNetns}`,
        `addr add ${info.hostAddress}/24 dev eth0`,
        `link set eth0 up`,
        `route add default via ${info.outsideAddress} dev eth0`,
      ],
      info.hostNetns,
    );
    await ipBatch([`addr add ${info.outsideAddress}/24 dev eth0`, `link set eth0 up`], info.outsideNetns);
    await startLabAgent(info);
  } catch (e) {
    await labDown(name).catch(() => {});
    throw e;
  }
  return labInspect(name);
}

async function startLabAgent(info: LabInfo): Promise<void> {
  const [node, ...entry] = agentCommand();
  const args = [
    `--net=/run/netns/${info.hostNetns}`,
    '--',
    node,
    ...entry,
    'agent',
    '--state-dir',
    path.join(info.dir, 'state'),
    '--socket',
    info.socket,
    '--store',
    info.store,
    // the outside namespace stands for the world: its address is the lab's resolver (a test may
    // run one there); the machine's own resolvers are never used from a lab
    '--dns-upstream',
    info.outsideAddress,
  ];
  const log = path.join(info.dir, 'agent.log');
  const pid = spawnDaemon('nsenter', args, log);
  await writeFile(path.join(info.dir, 'agent.pid'), `${pid}\n`);
  for (let i = 0; i < 300; i++) {
    if (await ping(info.socket)) return;
    if (!pidAlive(pid)) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  const tail = (await readFile(log, 'utf8').catch(() => '')).trim().split('\n').slice(-5).join('\n');
  throw new Error(`the agent of lab ${info.name} did not start; last lines of ${log}:\n${tail}`);
}

/** Starts the lab's agent again (after it was stopped or killed). */
export async function labStartAgent(name: string): Promise<LabInfo> {
  const info = await labInspect(name);
  if (info.agentRunning) return info;
  await startLabAgent(info);
  return labInspect(name);
}

/** Stops the lab's agent by PID (SIGTERM, or SIGKILL with kill=true); the data plane stays. */
export async function labStopAgent(name: string, opts: { kill?: boolean } = {}): Promise<void> {
  const info = await labInspect(name);
  const pid = info.agentPid;
  if (!pid || !(await isLabAgent(pid, info.socket))) return;
  process.kill(pid, opts.kill ? 'SIGKILL' : 'SIGTERM');
  for (let i = 0; i < 100 && pidAlive(pid); i++) await new Promise((r) => setTimeout(r, 50));
  if (pidAlive(pid)) process.kill(pid, 'SIGKILL');
  for (let i = 0; i < 100 && pidAlive(pid); i++) await new Promise((r) => setTimeout(r, 20));
}

/** Removes every trace of a lab: its agent, containers, namespaces, files. Safe on half-made labs. */
export async function labDown(name: string): Promise<void> {
  checkName(name);
  const dir = path.join(labBaseDir(), name);
  const info = await readInfo(name);
  if (info) await labStopAgent(name, { kill: true }).catch(() => {});
  let nodeId: string | undefined;
  try {
    nodeId = JSON.parse(await readFile(path.join(dir, 'state', 'node.json'), 'utf8')).nodeId;
  } catch {
    nodeId = undefined;
  }
  const doomed = [hostNs(name), outsideNs(name)];
  if (nodeId) doomed.push(...(await netnsList()).filter((ns) => ns.startsWith(netnsPrefix(nodeId!))));
  for (const ns of doomed) await killNetnsProcesses(ns);
  for (const ns of doomed) {
    await netnsDelete(ns);
    await rm(`/etc/netns/${ns}`, { recursive: true, force: true });
  }
  await rm(dir, { recursive: true, force: true });
}

export async function labList(): Promise<LabInfo[]> {
  const names = await readdir(labBaseDir()).catch(() => [] as string[]);
  const out: LabInfo[] = [];
  for (const n of names.sort()) {
    try {
      out.push(await labInspect(n));
    } catch {
      /* not a lab */
    }
  }
  return out;
}

export async function labInspect(name: string): Promise<LabInfo> {
  const info = await readInfo(name);
  if (!info) throw new Error(`no such lab: ${name}`);
  const pid = Number((await readFile(path.join(info.dir, 'agent.pid'), 'utf8').catch(() => '')).trim()) || undefined;
  const running = !!pid && pidAlive(pid) && (await isLabAgent(pid, info.socket));
  return { ...info, agentPid: pid, agentRunning: running };
}

/** Runs a command in the lab's outside (or host) namespace with the caller's terminal. */
export async function labExec(name: string, cmd: string[], where: 'outside' | 'host'): Promise<number> {
  const info = await labInspect(name);
  if (!cmd.length) throw new Error('lab exec: give a command after --');
  return runInherit('ip', ['netns', 'exec', where === 'host' ? info.hostNetns : info.outsideNetns, ...cmd]);
}

export function labEnv(info: LabInfo): string {
  return `export WEFT_HOST=unix://${info.socket}`;
}
