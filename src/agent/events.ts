import { EventEmitter } from 'node:events';
import type { WeftEvent } from '../api/schemas.js';

/** Recent events in memory (for `events --since`) and live subscribers. */
export class EventBus {
  private seq = 0;
  private recent: WeftEvent[] = [];
  private emitter = new EventEmitter();

  constructor(private readonly keep = 1000) {
    this.emitter.setMaxListeners(0);
  }

  emit(type: WeftEvent['type'], action: string, id: string, name: string, attributes?: Record<string, string>): void {
    const ev: WeftEvent = { revision: ++this.seq, time: new Date().toISOString(), type, action, id, name, attributes };
    this.recent.push(ev);
    if (this.recent.length > this.keep) this.recent.splice(0, this.recent.length - this.keep);
    this.emitter.emit('event', ev);
  }

  since(revision: number): WeftEvent[] {
    return this.recent.filter((e) => e.revision > revision);
  }

  subscribe(fn: (ev: WeftEvent) => void): () => void {
    this.emitter.on('event', fn);
    return () => this.emitter.off('event', fn);
  }
}
