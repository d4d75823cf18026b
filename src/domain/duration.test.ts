import { describe, expect, it } from 'vitest';
import { parseDuration } from './duration.js';

describe('parseDuration', () => {
  it('reads every zero spelling as 0 (periodic probes off), not as the fallback', () => {
    for (const zero of ['0', '0s', '0m', '0h', '0ms', '0m0s']) expect(parseDuration(zero, 600_000)).toBe(0);
  });

  it('reads Go durations and falls back on nonsense', () => {
    expect(parseDuration('1m30s', 0)).toBe(90_000);
    expect(parseDuration('ten minutes', 7)).toBe(7);
    expect(parseDuration(undefined, 7)).toBe(7);
  });
});
