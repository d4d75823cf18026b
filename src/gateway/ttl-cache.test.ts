import { describe, expect, it } from 'vitest';
import { TtlCache } from './ttl-cache.js';

describe('TtlCache', () => {
  it('returns values until they expire', () => {
    let now = 1000;
    const cache = new TtlCache<string>(10, () => now);
    cache.set('a', 'x', 500);
    expect(cache.get('a')).toBe('x');
    now = 1499;
    expect(cache.get('a')).toBe('x');
    now = 1500;
    expect(cache.get('a')).toBeUndefined();
    expect(cache.size).toBe(0);
  });

  it('never holds more than maxEntries, evicting the oldest', () => {
    const cache = new TtlCache<number>(3);
    for (let i = 0; i < 10; i++) cache.set(`k${i}`, i, 60_000);
    expect(cache.size).toBe(3);
    expect(cache.get('k6')).toBeUndefined();
    expect([cache.get('k7'), cache.get('k8'), cache.get('k9')]).toEqual([7, 8, 9]);
  });

  it('does not store entries with a non-positive lifetime', () => {
    const cache = new TtlCache<number>(3);
    cache.set('a', 1, 0);
    expect(cache.get('a')).toBeUndefined();
  });
});
