/**
 * Reference: the Docker engine (Debian docker.io 20.10) running inside its own network namespace.
 *
 * How (see shared/REFERENCE-SYSTEMS.md §1):
 * - netns `weft-b-<id>-dk`; dockerd is started as `setsid ip netns exec NS start.sh`. `ip netns exec`
 *   gives a private mount namespace and a fresh /sys without the cgroup v1 mounts, so start.sh
 *   remounts them, then execs dockerd with --data-root/--exec-root/-H/--pidfile under our temp dir.
 * - the image is a `docker import` of a busybox-static rootfs built here.
 * - dockerd still writes /etc/docker/key.json, /run/docker, /run/containerd and /var/lib/docker: the
 *   ones that did not exist before start are removed at stop.
 * - stop: rm -f every container, SIGTERM dockerd by PID, end by PID whatever remains in the netns and
 *   every container PID, delete the netns and the temp dir.
 */
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { benchName, netnsAdd, netnsDelete, netnsPids, runSubdir } from '../lib/ns.js';
import { descendants, killPid, pidAlive, pidComm, rssBytes, run, startDetached, tryRun, waitFor, type Detached, type RunResult } from '../lib/proc.js';

/** Paths dockerd writes whatever its --data-root/--exec-root say. */
export const DOCKER_GLOBAL_PATHS = ['/etc/docker/key.json', '/run/docker', '/run/containerd', '/var/lib/docker'];
const DOCKER_CLI = existsSync('/usr/bin/docker') ? '/usr/bin/docker' : 'docker';
const BUSYBOX = ['/bin/busybox', '/usr/bin/busybox'].find((p) => existsSync(p)) ?? '/bin/busybox';
const APPLETS = ['sh', 'sleep', 'ping', 'wget', 'nc', 'httpd', 'ip', 'nslookup', 'cat', 'ls', 'echo', 'hostname', 'ps'];

export const DOCKER_IMAGE = 'weft-b/busybox:1';

export async function dockerAvailable(): Promise<string | null> {
  for (const p of ['/usr/sbin/dockerd', '/usr/bin/containerd', '/usr/sbin/runc']) {
    if (!existsSync(p)) return `${p} missing (apt-get install docker.io)`;
  }
  if (!existsSync(BUSYBOX)) return 'busybox missing (apt-get install busybox-static)';
  return null;
}

export interface ContainerPair {
  network: string;
  a: { name: string; pid: number; ip: string };
  b: { name: string; pid: number; ip: string };
}

export class DockerRef {
  readonly ns: string;
  readonly dir: string;
  readonly sock: string;
  private daemon: Detached | null = null;
  private daemonPid = 0;
  private createdGlobals: string[] = [];
  private containerPids = new Set<number>();
  serverVersion = '';
  setupNotes: string[] = [];

  constructor(suffix = 'dk') {
    this.ns = benchName(suffix, 'netns');
    this.dir = runSubdir(`docker-${suffix}`);
    this.sock = join(this.dir, 'docker.sock');
  }

  /** Runs the docker CLI against this daemon. */
  docker(args: string[], timeoutMs = 60_000): Promise<RunResult> {
    return run(DOCKER_CLI, ['-H', `unix://${this.sock}`, ...args], {
      timeoutMs,
      env: { DOCKER_CONFIG: join(this.dir, 'cli'), DOCKER_HOST: undefined, DOCKER_CONTEXT: undefined },
    });
  }

  async start(): Promise<void> {
    // Which global paths will be ours to remove: those that do not exist yet.
    this.createdGlobals = DOCKER_GLOBAL_PATHS.filter((p) => !existsSync(p));
    const pre = DOCKER_GLOBAL_PATHS.filter((p) => existsSync(p));
    if (pre.length) this.setupNotes.push(`already present before start, left alone at stop: ${pre.join(', ')}`);
    writeFileSync(join(this.dir, 'globals-created.json'), JSON.stringify(this.createdGlobals));
    for (const d of ['data', 'exec', 'cli']) mkdirSync(join(this.dir, d), { recursive: true });

    const script = join(this.dir, 'start.sh');
    writeFileSync(
      script,
      [
        '#!/bin/sh',
        '# runs inside `ip netns exec` (private mount ns, fresh /sys without cgroup mounts)',
        'set -e',
        'mount -t tmpfs -o mode=755 cgroup_root /sys/fs/cgroup',
        'for c in cpu cpuacct cpuset memory devices freezer blkio pids; do',
        '  mkdir -p /sys/fs/cgroup/$c; mount -t cgroup -o $c cgroup /sys/fs/cgroup/$c',
        'done',
        'mkdir -p /sys/fs/cgroup/systemd; mount -t cgroup -o none,name=systemd cgroup /sys/fs/cgroup/systemd',
        'mkdir -p /sys/fs/cgroup/unified; mount -t cgroup2 cgroup2 /sys/fs/cgroup/unified',
        'ip link set lo up',
        `exec dockerd --data-root ${this.dir}/data --exec-root ${this.dir}/exec \\`,
        `  -H unix://${this.sock} --pidfile ${this.dir}/dockerd.pid \\`,
        '  --storage-driver overlay2 --shutdown-timeout 2',
        '',
      ].join('\n'),
    );
    chmodSync(script, 0o755);
    await netnsAdd(this.ns);
    // `ip netns exec` execs without forking and start.sh execs dockerd: the PID is dockerd's.
    this.daemon = startDetached('ip', ['netns', 'exec', this.ns, script], join(this.dir, 'dockerd.log'));
    this.daemonPid = this.daemon.pid;
    this.serverVersion = await waitFor(
      'dockerd to answer',
      async () => {
        if (!this.daemon?.isRunning()) throw new Error(`dockerd exited: ${this.logTail()}`);
        const r = await this.docker(['version', '--format', '{{.Server.Version}}'], 5000);
        return r.stdout.trim();
      },
      30_000,
      100,
    );
    await this.importBusybox();
  }

  logTail(): string {
    try {
      return readFileSync(join(this.dir, 'dockerd.log'), 'utf8').trim().split('\n').slice(-3).join(' / ');
    } catch {
      return '(no log)';
    }
  }

  private async importBusybox(): Promise<void> {
    const root = join(this.dir, 'rootfs');
    for (const d of ['bin', 'etc', 'tmp', 'www']) mkdirSync(join(root, d), { recursive: true });
    copyFileSync(BUSYBOX, join(root, 'bin/busybox'));
    chmodSync(join(root, 'bin/busybox'), 0o755);
    for (const a of APPLETS) symlinkSync('busybox', join(root, 'bin', a));
    writeFileSync(join(root, 'www/index.html'), 'hello-from-busybox\n');
    const tar = join(this.dir, 'busybox.tar');
    await run('tar', ['-C', root, '-cf', tar, '.']);
    await this.docker(['import', tar, DOCKER_IMAGE]);
    rmSync(root, { recursive: true, force: true });
    rmSync(tar, { force: true });
  }

  // ---- timed operations: each returns the wall time of the docker CLI call in ms ----

  async networkCreate(name: string, subnet: string): Promise<number> {
    return (await this.docker(['network', 'create', '--subnet', subnet, name])).ms;
  }

  async networkRm(name: string): Promise<number> {
    return (await this.docker(['network', 'rm', name])).ms;
  }

  /** `docker run -d --name N --network NET busybox sleep 3600` */
  async runDetached(name: string, network: string): Promise<number> {
    return (await this.docker(['run', '-d', '--name', name, '--network', network, DOCKER_IMAGE, '/bin/sleep', '3600'])).ms;
  }

  async networkConnect(network: string, name: string): Promise<number> {
    return (await this.docker(['network', 'connect', network, name])).ms;
  }

  async rmForce(name: string): Promise<number> {
    return (await this.docker(['rm', '-f', name])).ms;
  }

  // ---- queries ----

  async containerPid(name: string): Promise<number> {
    const pid = Number((await this.docker(['inspect', '-f', '{{.State.Pid}}', name])).stdout.trim());
    if (!Number.isInteger(pid) || pid <= 1) throw new Error(`container ${name} has no PID`);
    this.containerPids.add(pid);
    return pid;
  }

  async containerIp(name: string, network: string): Promise<string> {
    const ip = (await this.docker(['inspect', '-f', `{{(index .NetworkSettings.Networks "${network}").IPAddress}}`, name])).stdout.trim();
    if (!/^\d+\.\d+\.\d+\.\d+$/.test(ip)) throw new Error(`container ${name} has no IPv4 on ${network}: "${ip}"`);
    return ip;
  }

  /** A bridge network with two busybox containers on it, for iperf3 through `nsenter -t PID -n`. */
  async bridgePair(network: string, subnet: string): Promise<ContainerPair> {
    await this.networkCreate(network, subnet);
    const names = [`${network}-a`, `${network}-b`];
    for (const n of names) await this.runDetached(n, network);
    const [a, b] = await Promise.all(names.map(async (name) => ({ name, pid: await this.containerPid(name), ip: await this.containerIp(name, network) })));
    return { network, a, b };
  }

  /** dockerd's PID (0 when not running); the embedded DNS of every container is served from it. */
  get dockerdPid(): number {
    return this.daemonPid;
  }

  /** RSS in bytes of dockerd and containerd (the daemons, not the per-container shims). */
  async daemonRss(): Promise<{ dockerd: number; containerd: number; shims: number; shimCount: number }> {
    const pids = await netnsPids(this.ns);
    let containerd = 0;
    let shims = 0;
    let shimCount = 0;
    for (const p of pids) {
      const comm = pidComm(p);
      if (comm === 'containerd') containerd += rssBytes(p) ?? 0;
      else if (comm?.startsWith('containerd-shim')) {
        shims += rssBytes(p) ?? 0;
        shimCount++;
      }
    }
    return { dockerd: rssBytes(this.daemonPid) ?? 0, containerd, shims, shimCount };
  }

  /** Removes everything: containers, daemon, netns, temp dir, global paths we created. Safe to call twice. */
  async stop(): Promise<void> {
    const daemonUp = this.daemonPid > 0 && pidAlive(this.daemonPid);
    if (daemonUp) {
      const ids = await tryRun(DOCKER_CLI, ['-H', `unix://${this.sock}`, 'ps', '-aq'], { timeoutMs: 10_000, env: { DOCKER_CONFIG: join(this.dir, 'cli') } });
      const list = ids?.stdout.split(/\s+/).filter(Boolean) ?? [];
      for (const id of list) {
        const p = await tryRun(DOCKER_CLI, ['-H', `unix://${this.sock}`, 'inspect', '-f', '{{.State.Pid}}', id], { timeoutMs: 10_000, env: { DOCKER_CONFIG: join(this.dir, 'cli') } });
        const pid = Number(p?.stdout.trim());
        if (Number.isInteger(pid) && pid > 1) this.containerPids.add(pid);
      }
      // rm -f in chunks, so 1,000 containers do not make one enormous command line
      for (let i = 0; i < list.length; i += 100) {
        await tryRun(DOCKER_CLI, ['-H', `unix://${this.sock}`, 'rm', '-f', ...list.slice(i, i + 100)], { timeoutMs: 300_000, env: { DOCKER_CONFIG: join(this.dir, 'cli') } });
      }
    }
    let pidFromFile = 0;
    try {
      pidFromFile = Number(readFileSync(join(this.dir, 'dockerd.pid'), 'utf8').trim());
    } catch {
      /* not written (yet) */
    }
    // container processes live in their own netns; find them as descendants of the shims
    for (const p of await netnsPids(this.ns)) for (const d of descendants(p)) this.containerPids.add(d);
    if (this.daemonPid > 0) await killPid(this.daemonPid, 15_000);
    if (pidFromFile > 1 && pidFromFile !== this.daemonPid) await killPid(pidFromFile, 15_000);
    // containerd, shims and anything else left in the daemon's netns, by PID
    await netnsDelete(this.ns);
    for (const p of this.containerPids) await killPid(p, 2000);
    this.containerPids.clear();
    this.daemonPid = 0;
    this.daemon = null;
    for (const p of this.createdGlobals) rmSync(p, { recursive: true, force: true });
    rmSync(this.dir, { recursive: true, force: true });
  }
}
