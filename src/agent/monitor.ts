/**
 * Watches container processes (they are not the agent's children: they outlive it). A process
 * that died is recorded with its exit code, waiters are woken, and the restart policy applies.
 */
import type { Container } from '../model/types.js';
import { processAlive } from '../kernel/process.js';
import { finalExitCode } from '../runtime/process.js';
import { autoRemove, launch, markExited } from './containers.js';
import type { Daemon } from './daemon.js';

export function wantsRestart(c: Container): boolean {
  const p = c.config.restart;
  if (c.state.stoppedByUser) return false;
  if (p.name === 'always' || p.name === 'unless-stopped') return true;
  if (p.name === 'on-failure') return (c.state.exitCode ?? 0) !== 0 && (p.maxRetries === 0 || c.state.restartCount < p.maxRetries);
  return false;
}

export class Monitor {
  private timer?: NodeJS.Timeout;
  private busy = false;
  private pendingRestarts = new Set<string>();

  constructor(private readonly d: Daemon) {}

  start(intervalMs = 300): void {
    this.timer = setInterval(() => void this.tick(), intervalMs);
    void this.tick();
  }

  /** At agent start: restarts that were due while the agent was away. */
  async resume(): Promise<void> {
    for (const c of await this.d.containers()) {
      if (c.state.phase === 'exited' && wantsRestart(c)) this.schedule(c.id, 0);
      else if (c.state.phase === 'exited') await autoRemove(this.d, c.id);
    }
  }

  private schedule(id: string, delay: number): void {
    if (this.pendingRestarts.has(id)) return;
    this.pendingRestarts.add(id);
    setTimeout(() => void this.restart(id), delay);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  async tick(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      for (const c of await this.d.containers()) {
        if (c.state.phase === 'running' && c.state.pid && !processAlive(c.state.pid, c.state.pidStart ?? 0)) await this.exited(c.id);
      }
    } catch (e) {
      this.d.log.warn({ err: String(e) }, 'monitor tick failed');
    } finally {
      this.busy = false;
    }
  }

  private async exited(id: string): Promise<void> {
    const d = this.d;
    const restart = await d.locks.run(id, async () => {
      const c = await d.getContainer(id);
      if (!c || c.state.phase !== 'running' || !c.state.pid || processAlive(c.state.pid, c.state.pidStart ?? 0)) return false;
      markExited(c, await finalExitCode(d.containerDir(id)));
      await d.putContainer(c);
      d.events.emit('container', 'die', c.id, c.name, { exitCode: String(c.state.exitCode) });
      d.notifyStopped(c.id);
      if (!wantsRestart(c)) return false;
      this.schedule(id, Math.min(100 * 2 ** c.state.restartCount, 5000));
      return true;
    });
    if (!restart) await autoRemove(d, id);
  }

  private async restart(id: string): Promise<void> {
    const d = this.d;
    this.pendingRestarts.delete(id);
    await d.locks
      .run(id, async () => {
        const c = await d.getContainer(id);
        if (!c || c.state.phase !== 'exited' || !wantsRestart(c)) return;
        c.state.restartCount++;
        await launch(d, c);
        d.events.emit('container', 'restart', c.id, c.name);
      })
      .catch((e) => d.log.warn({ err: String(e), id }, 'restart failed'));
  }
}
