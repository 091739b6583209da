/**
 * Connect-latency configurations measured together: the first of them asked in a round runs the
 * connects of every member in `chunks` chunks, interleaved and rotated (A B C ..., B C ... A, ...),
 * so that a burst of noise, or what the configuration before left behind, falls on all of them
 * alike; each member then reads its own samples.
 */
import { quantile } from './stats.js';

/** What bench/refs/svc-client.mjs `latency --raw 1` prints. */
export interface RawLatencyJson {
  n: number;
  errors: number;
  samples: number[];
}

interface Member {
  name: string;
  /** host:port, for messages */
  target: string;
  /** makes `count` connects and returns their raw samples */
  run: (count: number) => Promise<RawLatencyJson>;
}

export class InterleavedLatency {
  private members: Member[] = [];
  private round: number | null = null;
  private results = new Map<string, number[] | Error>();

  constructor(
    private readonly connects: number,
    readonly chunks = 8,
  ) {}

  join(m: Member): void {
    this.leave(m.name);
    this.members.push(m);
  }

  leave(name: string): void {
    this.members = this.members.filter((m) => m.name !== name);
  }

  describe(): string {
    return `the connects of ${this.members.map((m) => m.name).join(', ')} interleaved in ${this.chunks} chunks per round`;
  }

  async samples(name: string, round: number): Promise<number[]> {
    if (this.round !== round || !this.results.has(name)) await this.runRound(round);
    const r = this.results.get(name);
    if (r instanceof Error) throw r;
    if (!r) throw new Error(`${name}: no latency samples`);
    return r;
  }

  private async runRound(round: number): Promise<void> {
    this.round = round;
    this.results.clear();
    const per = Math.ceil(this.connects / this.chunks);
    const acc = new Map<string, { xs: number[]; errors: number; failed?: Error }>(this.members.map((m) => [m.name, { xs: [], errors: 0 }]));
    await new Promise((r) => setTimeout(r, 1000)); // let the programming rounds' churn settle
    const k = this.members.length;
    for (let c = 0; c < this.chunks; c++) {
      for (let i = 0; i < k; i++) {
        const m = this.members[(i + c + Math.max(round, 0)) % k]!;
        const a = acc.get(m.name)!;
        if (a.failed) continue;
        try {
          const r = await m.run(per);
          a.xs.push(...r.samples);
          a.errors += r.errors;
        } catch (e) {
          a.failed = e instanceof Error ? e : new Error(String(e));
        }
      }
    }
    for (const m of this.members) {
      const a = acc.get(m.name)!;
      if (a.failed) this.results.set(m.name, a.failed);
      else if (a.errors > 0.01 * per * this.chunks) this.results.set(m.name, new Error(`${a.errors} of ${per * this.chunks} connects to ${m.target} failed`));
      else this.results.set(m.name, a.xs);
    }
  }
}

/** The p-quantile of unsorted samples. */
export const pct = (xs: number[], p: number): number => quantile([...xs].sort((a, b) => a - b), p);

/** svc-client.mjs arguments for `count` raw latency samples to host:port. */
export const latencyArgs = (host: string, port: number, count: number): string[] =>
  ['latency', '--host', host, '--port', String(port), '--count', String(count), '--warmup', '20', '--raw', '1'];
