import { describe, expect, it } from 'vitest';
import { RateLimiter } from './rate-limiter.js';
import { WorkQueue } from './workqueue.js';

describe('WorkQueue', () => {
  it('de-duplicates keys and never hands out a key twice at once', async () => {
    const q = new WorkQueue();
    q.add('a');
    q.add('a');
    q.add('b');
    expect(q.length).toBe(2);
    const first = await q.get();
    expect(first).toBe('a');
    q.add('a'); // re-added while processing: comes back after done()
    expect(await q.get()).toBe('b');
    q.done('b');
    expect(q.length).toBe(0);
    q.done('a');
    expect(await q.get()).toBe('a');
  });

  it('keeps the earliest delay for a key', async () => {
    const q = new WorkQueue();
    q.addAfter('k', 10_000);
    q.addAfter('k', 20);
    expect(await q.get()).toBe('k');
    q.shutDown();
    expect(await q.get()).toBeUndefined();
  });
});

describe('RateLimiter', () => {
  it('backs off exponentially per key and forgets on success', () => {
    const r = new RateLimiter(100, 1000, 1000, 1000);
    expect([r.when('x'), r.when('x'), r.when('x'), r.when('x'), r.when('x')]).toEqual([100, 200, 400, 800, 1000]);
    expect(r.when('y')).toBe(100);
    r.forget('x');
    expect(r.when('x')).toBe(100);
  });
});
