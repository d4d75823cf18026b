/**
 * Per-item exponential backoff combined with an overall token bucket, as
 * controller-runtime's default: one noisy key backs off on its own, and the
 * whole controller never exceeds a steady rate of retries.
 *
 * Conflicts (409) have their own, faster schedule: they are the normal
 * outcome of acting on a cache a moment old, so the first retries come
 * quickly - but a key that keeps conflicting (a 409 storm: another writer
 * in a loop) backs off too, with jitter so keys that collide stop colliding.
 */
export class RateLimiter {
  private readonly failures = new Map<string, number>();
  private readonly conflicts = new Map<string, number>();
  private tokens: number;
  private last = Date.now();

  constructor(
    private readonly baseDelayMs = 1000,
    private readonly maxDelayMs = 5 * 60_000,
    private readonly qps = 10,
    private readonly burst = 100,
    private readonly conflictBackoff: { baseMs: number; maxMs: number; random: () => number } = {
      baseMs: 100,
      maxMs: 10_000,
      random: Math.random,
    },
  ) {
    this.tokens = burst;
  }

  /** Delay before `key` may be retried; grows with each consecutive failure. */
  when(key: string): number {
    const n = this.failures.get(key) ?? 0;
    this.failures.set(key, n + 1);
    const exp = Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** n);
    return Math.max(exp, this.bucketDelay());
  }

  /** Delay before `key` is retried after a conflict: base × 2^n, capped, then jittered down by up to a half. */
  whenConflict(key: string): number {
    const n = this.conflicts.get(key) ?? 0;
    this.conflicts.set(key, n + 1);
    const { baseMs, maxMs, random } = this.conflictBackoff;
    const exp = Math.min(maxMs, baseMs * 2 ** Math.min(n, 30));
    return Math.max(exp * (0.5 + random() / 2), this.bucketDelay());
  }

  /** Forget a key's failures and conflicts: only after it reconciled successfully. */
  forget(key: string): void {
    this.failures.delete(key);
    this.conflicts.delete(key);
  }

  retries(key: string): number {
    return this.failures.get(key) ?? 0;
  }

  private bucketDelay(): number {
    const now = Date.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.qps);
    this.last = now;
    this.tokens -= 1;
    return this.tokens >= 0 ? 0 : Math.ceil((-this.tokens / this.qps) * 1000);
  }
}
