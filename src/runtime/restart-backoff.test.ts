import { describe, expect, it } from 'vitest';
import { RestartBackoff } from './restart-backoff.js';

describe('RestartBackoff', () => {
  it('doubles from 800 ms to 30 s, stretches each wait by up to 100 %, and starts over after 2 min without a restart', () => {
    let now = 0;
    let random = 0;
    const b = new RestartBackoff({ now: () => now, random: () => random });
    expect([1, 2, 3, 4, 5, 6, 7, 8].map(() => b.next())).toEqual([
      800, 1600, 3200, 6400, 12_800, 25_600, 30_000, 30_000,
    ]);
    random = 1;
    expect(b.next()).toBe(60_000);
    now += 120_001;
    random = 0;
    expect(b.next()).toBe(800);
    now += 60_000; // restarts less than 2 min apart keep growing
    expect(b.next()).toBe(1600);
  });
});
