import { createHmac, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { Binding } from './binding.js';
import { fingerprint, placeFingerprint, sameFingerprint } from './fingerprint.js';

const key = Buffer.alloc(32, 7);
const binding: Binding = {
  namespace: 'acme',
  workspace: 'acme',
  connection: 'pg',
  field: 'password',
  destination: 'dest-1',
  format: 1,
};

describe('fingerprint', () => {
  it('is stable for the same key, binding and value', () => {
    const a = fingerprint(key, binding, 's3cret-value');
    expect(fingerprint(Buffer.from(key), { ...binding }, 's3cret-value')).toBe(a);
    expect(a).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  it('is HMAC-SHA256 over the documented layout, pinned so stored annotations survive upgrades', () => {
    const lp = (s: string) => Buffer.concat([Buffer.from([0, 0, 0, Buffer.byteLength(s)]), Buffer.from(s)]);
    const message = Buffer.concat([
      lp('atoll.dev/envelope'),
      Buffer.from([1]),
      lp('acme'),
      lp('acme'),
      lp('pg'),
      lp('password'),
      lp('dest-1'),
      Buffer.from('hunter2hunter2'),
    ]);
    const expected = createHmac('sha256', key).update(message).digest('base64url');
    expect(fingerprint(key, binding, 'hunter2hunter2')).toBe(expected);
    expect(expected).toBe('CAVCxf4ltJYJCzqNyBgpGmzaRZFotOtb7YqCYBbdA_I');
  });

  it('since binding format 2 covers the place and the value, not the destination (a rebind is not a rotation)', () => {
    const lp = (s: string) => Buffer.concat([Buffer.from([0, 0, 0, Buffer.byteLength(s)]), Buffer.from(s)]);
    const place = { namespace: 'acme', workspace: 'acme', connection: 'pg', field: 'password' };
    const message = Buffer.concat([
      lp('atoll.dev/fingerprint/v2'),
      lp('acme'),
      lp('acme'),
      lp('pg'),
      lp('password'),
      Buffer.from('hunter2hunter2'),
    ]);
    expect(placeFingerprint(key, place, 'hunter2hunter2')).toBe(
      createHmac('sha256', key).update(message).digest('base64url'),
    );
    expect(placeFingerprint(key, { ...place, field: 'token' }, 'hunter2hunter2')).not.toBe(
      placeFingerprint(key, place, 'hunter2hunter2'),
    );
    expect(placeFingerprint(key, place, 'hunter2hunter2')).not.toBe(fingerprint(key, binding, 'hunter2hunter2'));
  });

  it('changes with the value, the binding and the key', () => {
    const a = fingerprint(key, binding, 'value');
    expect(fingerprint(key, binding, 'value2')).not.toBe(a);
    expect(fingerprint(key, { ...binding, field: 'token' }, 'value')).not.toBe(a);
    expect(fingerprint(key, { ...binding, namespace: 'other' }, 'value')).not.toBe(a);
    expect(fingerprint(randomBytes(32), binding, 'value')).not.toBe(a);
  });

  it('does not contain the value', () => {
    expect(fingerprint(key, binding, 'AAAAAAAAAAAA')).not.toContain('AAAAAAAA');
  });

  it('refuses a short key', () => {
    expect(() => fingerprint(Buffer.alloc(8), binding, 'v')).toThrow(RangeError);
  });
});

describe('sameFingerprint', () => {
  it('compares exactly', () => {
    const a = fingerprint(key, binding, 'value');
    expect(sameFingerprint(a, fingerprint(key, binding, 'value'))).toBe(true);
    expect(sameFingerprint(a, fingerprint(key, binding, 'other'))).toBe(false);
    expect(sameFingerprint(a, a.slice(1))).toBe(false);
    expect(sameFingerprint(a, '')).toBe(false);
  });
});
