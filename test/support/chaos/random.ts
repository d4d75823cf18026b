import { randomInt } from 'node:crypto';

/**
 * A seeded PRNG (sfc32 over a splitmix32-expanded seed): the fault plan and
 * the workload's choices come from it, so a failing run replays with
 * ATOLL_CHAOS_SEED=<seed>. Timing still varies run to run (real processes),
 * but what happens and in which order does not.
 */
export class Random {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(readonly seed: number) {
    let s = seed >>> 0;
    const next = () => {
      s = (s + 0x9e3779b9) >>> 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.a = next();
    this.b = next();
    this.c = next();
    this.d = next();
  }

  /** From ATOLL_CHAOS_SEED, or a fresh one. */
  static fromEnv(env = process.env): Random {
    const given = env.ATOLL_CHAOS_SEED;
    if (given !== undefined && !/^\d+$/.test(given))
      throw new Error(
        `ATOLL_CHAOS_SEED must be a non-negative integer (the seed a chaos run printed), got ${JSON.stringify(given)}`,
      );
    return new Random(given !== undefined ? Number(given) : randomInt(2 ** 31));
  }

  /** Uniform in [0, 1). */
  next(): number {
    const t = (((this.a + this.b) >>> 0) + this.d) >>> 0;
    this.d = (this.d + 1) >>> 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) >>> 0;
    this.c = ((this.c << 21) | (this.c >>> 11)) >>> 0;
    this.c = (this.c + t) >>> 0;
    return t / 4294967296;
  }

  /** Integer in [min, max]. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)]!;
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  /** A hex token (values written by the workload). */
  hex(bytes: number): string {
    let out = '';
    for (let i = 0; i < bytes; i++) out += this.int(0, 255).toString(16).padStart(2, '0');
    return out;
  }

  /** An independent stream for one consumer, so adding draws in one place does not shift another's. */
  fork(label: string): Random {
    let h = this.seed >>> 0;
    for (const ch of label) h = Math.imul(h ^ ch.charCodeAt(0), 0x01000193) >>> 0;
    return new Random(h);
  }
}
