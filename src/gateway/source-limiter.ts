/**
 * A token bucket per source address for requests whose bearer token the
 * gateway has not verified yet, so nobody can turn the gateway into a
 * TokenReview amplifier against the API server (or brute-force tokens).
 * A TokenReview costs one token; a token that turns out valid is refunded,
 * so workloads with real tokens never drain their bucket, only failures do.
 */
export interface SourceLimiterOptions {
  /** Reviews a source may start at once. */
  burst: number;
  /** Tokens returned per second. */
  perSecond: number;
  /** Sources tracked at most (oldest forgotten first). */
  maxSources?: number;
  now?: () => number;
}

interface Bucket {
  tokens: number;
  at: number;
}

export class SourceLimiter {
  readonly #buckets = new Map<string, Bucket>();
  readonly #opts: Required<SourceLimiterOptions>;

  constructor(opts: SourceLimiterOptions) {
    this.#opts = { maxSources: 10_000, now: Date.now, ...opts };
  }

  /** Takes one token for `source`; returns 0 when allowed, else the seconds until one is available. */
  take(source: string): number {
    const bucket = this.#refill(source);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return 0;
    }
    return Math.max(1, Math.ceil((1 - bucket.tokens) / this.#opts.perSecond));
  }

  /** Gives back the token of a review that found a valid token. */
  refund(source: string): void {
    const bucket = this.#buckets.get(source);
    if (bucket !== undefined) bucket.tokens = Math.min(this.#opts.burst, bucket.tokens + 1);
  }

  #refill(source: string): Bucket {
    const now = this.#opts.now();
    let bucket = this.#buckets.get(source);
    if (bucket === undefined) {
      if (this.#buckets.size >= this.#opts.maxSources)
        this.#buckets.delete(this.#buckets.keys().next().value as string);
      bucket = { tokens: this.#opts.burst, at: now };
    } else {
      this.#buckets.delete(source);
      bucket.tokens = Math.min(this.#opts.burst, bucket.tokens + ((now - bucket.at) / 1000) * this.#opts.perSecond);
      bucket.at = now;
    }
    this.#buckets.set(source, bucket);
    return bucket;
  }
}

/** One key per client: IPv4-mapped IPv6 addresses count as their IPv4 address, IPv6 clients per /64. */
export function sourceKey(address: string | undefined): string {
  if (address === undefined) return 'unknown';
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return mapped[1] as string;
  if (!address.includes(':')) return address;
  const groups = expandIPv6(address);
  return groups === undefined ? address : `${groups.slice(0, 4).join(':')}::/64`;
}

function expandIPv6(address: string): string[] | undefined {
  const [head, tail] = address.split('::') as [string, string | undefined];
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  if (tail === undefined && left.length !== 8) return undefined;
  const zeros = new Array<string>(8 - left.length - right.length).fill('0');
  return [...left, ...zeros, ...right].map((g) => g.toLowerCase().replace(/^0+(?=.)/, ''));
}
