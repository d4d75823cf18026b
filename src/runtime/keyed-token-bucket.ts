/**
 * One token bucket per key (a namespace, a connection): a noisy key drains
 * only its own bucket, so it cannot starve the others. Buckets of idle keys
 * are refilled to full and dropped, so memory follows the active keys only.
 */
export interface TokenBucketLimits {
  /** Tokens added per second. */
  readonly ratePerSecond: number;
  /** Bucket size: how many requests may come at once after a quiet period. */
  readonly burst: number;
}

export type TakeResult = { allowed: true } | { allowed: false; retryAfterSeconds: number };

interface Bucket {
  tokens: number;
  at: number;
}

const PRUNE_EVERY = 1024;

export class KeyedTokenBucket {
  private readonly buckets = new Map<string, Bucket>();
  private takes = 0;

  constructor(
    readonly limits: TokenBucketLimits,
    private readonly now: () => number = Date.now,
  ) {
    if (!(limits.ratePerSecond > 0) || !(limits.burst >= 1))
      throw new Error('a token bucket needs ratePerSecond > 0 and burst >= 1');
  }

  /** Takes `cost` tokens from `key`'s bucket, or says how long until they would be there. */
  take(key: string, cost = 1): TakeResult {
    const t = this.now();
    if (++this.takes % PRUNE_EVERY === 0) this.prune(t);
    const bucket = this.refill(this.buckets.get(key), t);
    this.buckets.set(key, bucket);
    const need = Math.min(cost, this.limits.burst);
    if (bucket.tokens >= need) {
      bucket.tokens -= need;
      return { allowed: true };
    }
    return {
      allowed: false,
      retryAfterSeconds: Math.max(1, Math.ceil((need - bucket.tokens) / this.limits.ratePerSecond)),
    };
  }

  private refill(bucket: Bucket | undefined, t: number): Bucket {
    if (!bucket) return { tokens: this.limits.burst, at: t };
    bucket.tokens = Math.min(this.limits.burst, bucket.tokens + ((t - bucket.at) / 1000) * this.limits.ratePerSecond);
    bucket.at = t;
    return bucket;
  }

  private prune(t: number): void {
    for (const [key, bucket] of this.buckets) {
      if (this.refill(bucket, t).tokens >= this.limits.burst) this.buckets.delete(key);
    }
  }
}
