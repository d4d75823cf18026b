import { describe, expect, it } from 'vitest';
import { KeyedTokenBucket } from './keyed-token-bucket.js';

describe('KeyedTokenBucket', () => {
  it('allows a burst, then refuses with the seconds until enough tokens are back', () => {
    let t = 0;
    const bucket = new KeyedTokenBucket({ ratePerSecond: 2, burst: 3 }, () => t);
    expect([1, 2, 3].map(() => bucket.take('a').allowed)).toEqual([true, true, true]);
    expect(bucket.take('a')).toEqual({ allowed: false, retryAfterSeconds: 1 });
    t += 500;
    expect(bucket.take('a').allowed).toBe(true);
    expect(bucket.take('a', 3)).toEqual({ allowed: false, retryAfterSeconds: 2 });
  });

  it('keeps keys apart: one drained key does not slow another', () => {
    const t = 0;
    const bucket = new KeyedTokenBucket({ ratePerSecond: 1, burst: 2 }, () => t);
    bucket.take('noisy');
    bucket.take('noisy');
    expect(bucket.take('noisy').allowed).toBe(false);
    expect(bucket.take('quiet').allowed).toBe(true);
  });

  it('caps a cost larger than the burst at the burst, so a big request can still pass when full', () => {
    const bucket = new KeyedTokenBucket({ ratePerSecond: 1, burst: 2 }, () => 0);
    expect(bucket.take('a', 5).allowed).toBe(true);
    expect(bucket.take('a').allowed).toBe(false);
  });

  it('refuses nonsensical limits', () => {
    expect(() => new KeyedTokenBucket({ ratePerSecond: 0, burst: 1 })).toThrow(/ratePerSecond/);
  });
});
