import { describe, expect, it } from 'vitest';
import { redactSecrets } from './redact.js';

describe('redactSecrets', () => {
  it('replaces every occurrence of each secret', () => {
    expect(redactSecrets('token s3cr3t-a and s3cr3t-a, jwt ey.J9', ['s3cr3t-a', 'ey.J9'])).toBe(
      'token [redacted] and [redacted], jwt [redacted]',
    );
  });

  it('leaves values shorter than four characters, and absent ones, alone', () => {
    expect(redactSecrets('a bad result', ['bad', undefined, ''])).toBe('a bad result');
  });
});
