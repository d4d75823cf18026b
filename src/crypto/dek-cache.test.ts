import { describe, expect, it } from 'vitest';
import { encryptionContext } from './binding.js';
import { DEK_CACHE_DEFAULTS, DekCache } from './dek-cache.js';

const context = encryptionContext({
  namespace: 'acme',
  workspace: 'acme',
  connection: 'pg',
  field: 'password',
  destination: 'dest-1',
});
const id = { provider: 'local', keyId: 'local/default', wrapped: Buffer.from('wrapped-1'), context };

/**
 * A stand-in KMS unwrap that counts calls and returns a fresh key each time
 * (`issued`), and a `use` that records each distinct key the cache hands out
 * (`held`: the cache's own copies, the ones it must zero).
 */
function unwrapper() {
  const issued: Buffer[] = [];
  const held: Buffer[] = [];
  const unwrap = async () => {
    const dek = Buffer.alloc(32, issued.length + 1);
    issued.push(dek);
    return dek;
  };
  const use = (dek: Buffer) => {
    if (!held.includes(dek)) held.push(dek);
    return dek[0];
  };
  return { unwrap, issued, held, use };
}

describe('DekCache decryption', () => {
  it('1,000 sequential uses make one unwrap', async () => {
    const cache = new DekCache();
    const { unwrap, issued } = unwrapper();
    for (let i = 0; i < 1000; i++) expect(await cache.withDecryptionKey(id, unwrap, (dek) => dek[0])).toBe(1);
    expect(issued).toHaveLength(1);
    expect(cache.stats()).toMatchObject({
      kmsCalls: { decryptDataKey: 1 },
      hits: { decrypt: 999 },
      misses: { decrypt: 1 },
    });
  });

  it('1,000 concurrent uses share one unwrap', async () => {
    const cache = new DekCache();
    const { unwrap, issued } = unwrapper();
    const results = await Promise.all(
      Array.from({ length: 1000 }, () => cache.withDecryptionKey(id, unwrap, (dek) => dek[0])),
    );
    expect(new Set(results)).toEqual(new Set([1]));
    expect(issued).toHaveLength(1);
  });

  it('a different wrapped key or context is a different entry', async () => {
    const cache = new DekCache();
    const { unwrap, issued, use } = unwrapper();
    await cache.withDecryptionKey(id, unwrap, use);
    await cache.withDecryptionKey({ ...id, wrapped: Buffer.from('wrapped-2') }, unwrap, use);
    await cache.withDecryptionKey({ ...id, context: { ...context, 'atoll.dev/field': 'user' } }, unwrap, use);
    await cache.withDecryptionKey({ ...id, keyId: 'local/other' }, unwrap, use);
    expect(issued).toHaveLength(4);
  });

  it('the age bound forces a new unwrap and zeroes the old key', async () => {
    let now = 0;
    const cache = new DekCache({ maxAgeMs: 1_000, now: () => now });
    const { unwrap, issued, held, use } = unwrapper();
    await cache.withDecryptionKey(id, unwrap, use);
    now = 999;
    await cache.withDecryptionKey(id, unwrap, use);
    expect(issued).toHaveLength(1);
    now = 1_000;
    expect(await cache.withDecryptionKey(id, unwrap, (dek) => dek[0])).toBe(2);
    expect(issued).toHaveLength(2);
    expect(held[0]!.every((b) => b === 0)).toBe(true);
  });

  it('a key used more often than the idle expiry stays cached until its absolute lifetime', async () => {
    // The production shape: probes every 10 min, idle expiry 30 min, lifetime 24 h (here in ms).
    let now = 0;
    const cache = new DekCache({ idleMs: 30, maxAgeMs: 1_440, now: () => now });
    const { unwrap, issued, held, use } = unwrapper();
    for (now = 0; now < 1_440; now += 10) await cache.withDecryptionKey(id, unwrap, use);
    expect(issued).toHaveLength(1);
    await cache.withDecryptionKey(id, unwrap, use); // now = 1,440: the lifetime is over
    expect(issued).toHaveLength(2);
    expect(held[0]!.every((b) => b === 0)).toBe(true);
  });

  it('a key not used for the idle expiry is unwrapped again, and the old one zeroed', async () => {
    let now = 0;
    const cache = new DekCache({ idleMs: 30, maxAgeMs: 1_440, now: () => now });
    const { unwrap, issued, held, use } = unwrapper();
    await cache.withDecryptionKey(id, unwrap, use);
    now = 29;
    await cache.withDecryptionKey(id, unwrap, use);
    now = 59; // 30 after the last use
    expect(await cache.withDecryptionKey(id, unwrap, (dek) => dek[0])).toBe(2);
    expect(issued).toHaveLength(2);
    expect(held[0]!.every((b) => b === 0)).toBe(true);
  });

  it('the sweep zeroes idle keys nobody asks for any more (a re-wrapped or retired key)', async () => {
    let now = 0;
    const cache = new DekCache({ idleMs: 40, maxAgeMs: 1_440, now: () => now });
    const { unwrap, held, use } = unwrapper();
    const old = { ...id, wrapped: Buffer.from('wrapped-under-the-retired-key') };
    await cache.withDecryptionKey(old, unwrap, use);
    for (now = 10; now <= 50; now += 10) await cache.withDecryptionKey(id, unwrap, use);
    expect(cache.stats().entries.decrypt).toBe(1);
    expect(held[0]!.every((b) => b === 0)).toBe(true);
    expect(held[1]!.every((b) => b === 2)).toBe(true);
  });

  it('the use bound forces a new unwrap', async () => {
    const cache = new DekCache({ maxUses: 10 });
    const { unwrap, issued, held, use } = unwrapper();
    for (let i = 0; i < 25; i++) await cache.withDecryptionKey(id, unwrap, use);
    expect(issued).toHaveLength(3);
    expect(held[0]!.every((b) => b === 0)).toBe(true);
    expect(held[2]!.every((b) => b === 3)).toBe(true);
  });

  it('the entry bound evicts the least recently used and zeroes it', async () => {
    const cache = new DekCache({ maxEntries: 2 });
    const { unwrap, issued, held, use } = unwrapper();
    const a = { ...id, wrapped: Buffer.from('a') };
    const b = { ...id, wrapped: Buffer.from('b') };
    const c = { ...id, wrapped: Buffer.from('c') };
    await cache.withDecryptionKey(a, unwrap, use);
    await cache.withDecryptionKey(b, unwrap, use);
    await cache.withDecryptionKey(a, unwrap, use); // a is now most recent
    await cache.withDecryptionKey(c, unwrap, use); // evicts b
    expect(cache.stats().entries.decrypt).toBe(2);
    expect(held[1]!.every((x) => x === 0)).toBe(true);
    await cache.withDecryptionKey(a, unwrap, use);
    expect(issued).toHaveLength(3);
    await cache.withDecryptionKey(b, unwrap, use);
    expect(issued).toHaveLength(4);
  });

  it('a failed unwrap is not cached and reaches every waiter', async () => {
    const cache = new DekCache();
    let calls = 0;
    const failing = async () => {
      calls += 1;
      throw new Error('kms down');
    };
    const results = await Promise.allSettled([1, 2, 3].map(() => cache.withDecryptionKey(id, failing, () => 0)));
    expect(results.every((r) => r.status === 'rejected')).toBe(true);
    expect(calls).toBe(1);
    const { unwrap } = unwrapper();
    expect(await cache.withDecryptionKey(id, unwrap, (dek) => dek[0])).toBe(1);
  });

  it('clear() zeroes every key', async () => {
    const cache = new DekCache();
    const { unwrap, held, use } = unwrapper();
    await cache.withDecryptionKey(id, unwrap, use);
    cache.clear();
    expect(held[0]!.every((b) => b === 0)).toBe(true);
    expect(cache.stats().entries.decrypt).toBe(0);
  });

  it('keeps its own copy of a key, not a slice of a shared buffer pool, and zeroes the one it was given', async () => {
    const cache = new DekCache();
    const given = Buffer.from(Buffer.alloc(32, 7).toString('latin1'), 'latin1'); // a slice of Node's 8 KiB pool
    expect(given.buffer.byteLength).toBeGreaterThan(32);
    const kept = await cache.withDecryptionKey(
      id,
      async () => given,
      (dek) => dek,
    );
    expect(kept.buffer.byteLength).toBe(32);
    expect(kept.every((b) => b === 7)).toBe(true);
    expect(given.every((b) => b === 0)).toBe(true);
  });

  it('a disabled cache still works, calling the KMS each time and zeroing after use', async () => {
    const cache = new DekCache({ maxEntries: 0 });
    const { unwrap, issued } = unwrapper();
    for (let i = 0; i < 3; i++) await cache.withDecryptionKey(id, unwrap, () => 0);
    expect(issued).toHaveLength(3);
    expect(issued.every((dek) => dek.every((b) => b === 0))).toBe(true);
  });
});

describe('DekCache encryption', () => {
  it('holds sealing keys for fewer bindings than opening keys (maxEncryptionKeys), evicting the least recent', async () => {
    const cache = new DekCache({ maxEncryptionKeys: 2 });
    let generated = 0;
    const generate = async () => {
      generated += 1;
      return { dek: Buffer.alloc(32, generated), wrapped: Buffer.from(`w${generated}`), keyId: 'arn:1' };
    };
    const binding = (connection: string) => ({
      provider: 'aws-kms',
      keyId: 'alias/x',
      context: { ...context, connection },
    });
    const held: Buffer[] = [];
    for (const c of ['a', 'b', 'c']) await cache.withEncryptionKey(binding(c), generate, (key) => held.push(key.dek));
    expect(cache.stats().entries.encrypt).toBe(2);
    // The evicted sealing key leaves no key material behind; the kept ones are intact.
    expect(held[0]!.every((b) => b === 0)).toBe(true);
    expect(held[2]!.every((b) => b === 3)).toBe(true);
    await cache.withEncryptionKey(binding('c'), generate, () => 0);
    expect(generated).toBe(3);
    await cache.withEncryptionKey(binding('a'), generate, () => 0);
    expect(generated).toBe(4);
    expect(DEK_CACHE_DEFAULTS.maxEncryptionKeys).toBeLessThan(DEK_CACHE_DEFAULTS.maxEntries);
  });

  it('reuses one generated key per (provider, key, binding) within the bounds', async () => {
    const cache = new DekCache({ maxUses: 100 });
    let generated = 0;
    const generate = async () => {
      generated += 1;
      return { dek: Buffer.alloc(32, generated), wrapped: Buffer.from(`w${generated}`), keyId: 'arn:1' };
    };
    const encId = { provider: 'aws-kms', keyId: 'alias/x', context };
    for (let i = 0; i < 250; i++) await cache.withEncryptionKey(encId, generate, (key) => key.wrapped.toString());
    expect(generated).toBe(3);
    await cache.withEncryptionKey({ ...encId, context: { ...context, 'atoll.dev/field': 'user' } }, generate, () => 0);
    expect(generated).toBe(4);
    expect(cache.stats().kmsCalls.generateDataKey).toBe(4);
  });
});
