/**
 * Per-item exponential backoff combined with an overall token bucket, as
 * controller-runtime's default: one noisy key backs off on its own, and the
 * whole controller never exceeds a steady rate of retries.
 */
export class RateLimiter {
  private readonly failures = new Map<string, number>();
  private tokens: number;
  private last = Date.now();

  constructor(
    private readonly baseDelayMs = 1000,
    private readonly maxDelayMs = 5 * 60_000,
    private readonly qps = 10,
    private readonly burst = 100,
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

  /** Forget a key's failures: only after it reconciled successfully. */
  forget(key: string): void {
    this.failures.delete(key);
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
