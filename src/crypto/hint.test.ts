import { describe, expect, it } from 'vitest';
import { credentialHint } from './hint.js';

describe('credentialHint', () => {
  it.each([
    ['', ''],
    ['a', ''],
    ['1234567', ''],
    ['12345678', '…78'],
    ['12345678901', '…01'],
    ['123456789012', '…012'],
    ['123456789012345', '…345'],
    ['1234567890123456', '…3456'],
    ['x'.repeat(20) + 'f3a9', '…f3a9'],
  ])('%j → %j', (plaintext, hint) => {
    expect(credentialHint(plaintext)).toBe(hint);
  });

  it('never shows more than a quarter of the value or more than 4 characters', () => {
    for (let n = 0; n < 80; n++) {
      const shown = Array.from(credentialHint('k'.repeat(n)).replace('…', '')).length;
      expect(shown).toBeLessThanOrEqual(Math.min(4, n / 4));
      if (n < 8) expect(shown).toBe(0);
    }
  });

  it('counts code points, not UTF-16 units', () => {
    // 7 emoji are 14 UTF-16 units but 7 code points: below 8, so no hint.
    expect(credentialHint('😀'.repeat(7))).toBe('');
    // 8 code points → 2 shown, and a surrogate pair is never cut in half.
    expect(credentialHint('abcdef😀🔑')).toBe('…😀🔑');
    expect(credentialHint('ab😀c😀d😀e😀f😀g😀h😀')).toBe('…😀h😀');
  });
});
