import { describe, expect, it } from 'vitest';
import { encryptionContext, type Binding } from '../binding.js';
import { CiphertextRejectedError, ConflictError, KeyNotFoundError, KmsUnavailableError } from '../errors.js';
import {
  InMemoryKeyRingStore,
  keyRingFromSecretData,
  keyRingToSecretData,
  LocalKmsProvider,
  rotateLocalKey,
  withNewKeyVersion,
  emptyKeyRing,
  type KeyRing,
  type KeyRingStore,
} from './local.js';

const binding: Binding = {
  namespace: 'acme',
  workspace: 'acme',
  connection: 'pg',
  field: 'password',
  destination: 'dest-1',
};
const context = encryptionContext(binding);

describe('key ring serialisation', () => {
  it('round-trips through Secret data with base64 values', () => {
    let ring = withNewKeyVersion(emptyKeyRing(), 'default').ring;
    ring = withNewKeyVersion(ring, 'default').ring;
    ring = withNewKeyVersion(ring, 'team-a').ring;
    const data = keyRingToSecretData(ring);
    expect(Object.keys(data).sort()).toEqual([
      'default.primary',
      'default.v1',
      'default.v2',
      'keyring.format',
      'team-a.primary',
      'team-a.v1',
    ]);
    for (const value of Object.values(data)) expect(Buffer.from(value, 'base64').toString('base64')).toBe(value);
    const back = keyRingFromSecretData(data, '7');
    expect(back.revision).toBe('7');
    expect(back.keys.get('default')?.primary).toBe(2);
    expect(back.keys.get('default')?.versions.get(1)?.equals(ring.keys.get('default')!.versions.get(1)!)).toBe(true);
    expect(back.keys.get('team-a')?.versions.size).toBe(1);
  });

  it('refuses data it does not understand instead of guessing', () => {
    const data = keyRingToSecretData(withNewKeyVersion(emptyKeyRing(), 'default').ring);
    expect(() => keyRingFromSecretData({ ...data, 'default.v1': Buffer.alloc(16).toString('base64') })).toThrow();
    expect(() => keyRingFromSecretData({ ...data, 'default.primary': Buffer.from('3').toString('base64') })).toThrow();
    expect(() => keyRingFromSecretData({ ...data, stray: 'eA==' })).toThrow();
    expect(() =>
      keyRingFromSecretData({ 'default.v1': data['default.v1']!, 'default.primary': data['default.primary']! }),
    ).toThrow();
  });
});

describe('LocalKmsProvider', () => {
  it('creates the key ring on first use and round-trips a data key', async () => {
    const store = new InMemoryKeyRingStore();
    const kms = new LocalKmsProvider({ store });
    expect(await store.load()).toBeUndefined();
    const generated = await kms.generateDataKey('local/default', context);
    expect(generated.keyId).toBe('local/default');
    expect(generated.plaintext).toHaveLength(32);
    expect(store.secretData()?.['default.v1']).toBeDefined();
    const unwrapped = await kms.decryptDataKey('local/default', generated.wrapped, context);
    expect(unwrapped.equals(generated.plaintext)).toBe(true);
    // Another replica (new provider, same store) unwraps it too: the key is persisted, not in memory.
    const other = new LocalKmsProvider({ store });
    expect((await other.decryptDataKey('local/default', generated.wrapped, context)).equals(generated.plaintext)).toBe(
      true,
    );
  });

  it('rejects a wrapped key presented under any other binding part', async () => {
    const kms = new LocalKmsProvider({ store: new InMemoryKeyRingStore() });
    const { wrapped } = await kms.generateDataKey('local/default', context);
    for (const part of ['namespace', 'workspace', 'connection', 'field'] as const) {
      const moved = encryptionContext({ ...binding, [part]: 'elsewhere' });
      await expect(kms.decryptDataKey('local/default', wrapped, moved)).rejects.toBeInstanceOf(CiphertextRejectedError);
    }
    await expect(kms.decryptDataKey('local/default', wrapped, { ...context, extra: 'x' })).rejects.toBeInstanceOf(
      CiphertextRejectedError,
    );
  });

  it('rejects a wrapped key under another local key, and an unknown key', async () => {
    const kms = new LocalKmsProvider({ store: new InMemoryKeyRingStore() });
    const { wrapped } = await kms.generateDataKey('local/default', context);
    await kms.generateDataKey('local/team-a', context);
    await expect(kms.decryptDataKey('local/team-a', wrapped, context)).rejects.toBeInstanceOf(CiphertextRejectedError);
    await expect(kms.decryptDataKey('local/missing', wrapped, context)).rejects.toBeInstanceOf(KeyNotFoundError);
  });

  it('rejects every single-bit change of a wrapped key', async () => {
    const kms = new LocalKmsProvider({ store: new InMemoryKeyRingStore() });
    const { wrapped } = await kms.generateDataKey('local/default', context);
    for (let i = 0; i < wrapped.length; i++) {
      const tampered = Buffer.from(wrapped);
      tampered[i]! ^= 0x01;
      await expect(kms.decryptDataKey('local/default', tampered, context)).rejects.toBeInstanceOf(
        CiphertextRejectedError,
      );
    }
    await expect(kms.decryptDataKey('local/default', wrapped.subarray(1), context)).rejects.toBeInstanceOf(
      CiphertextRejectedError,
    );
  });

  it('rotation: new wraps use the new primary, old versions still unwrap, other replicas catch up', async () => {
    const store = new InMemoryKeyRingStore();
    const kms = new LocalKmsProvider({ store });
    const replica = new LocalKmsProvider({ store, refreshIntervalMs: 3_600_000 });
    const before = await kms.generateDataKey('local/default', context);
    await replica.generateDataKey('local/default', context);
    expect(await kms.rotate('default')).toBe(2);
    const after = await kms.generateDataKey('local/default', context);
    expect(after.wrapped.readUInt32BE(1)).toBe(2);
    expect(before.wrapped.readUInt32BE(1)).toBe(1);
    expect((await kms.decryptDataKey('local/default', before.wrapped, context)).equals(before.plaintext)).toBe(true);
    // The replica's cached ring lacks v2: it reloads on the unknown version instead of failing.
    expect((await replica.decryptDataKey('local/default', after.wrapped, context)).equals(after.plaintext)).toBe(true);
    expect(await rotateLocalKey(store, 'default')).toBe(3);
    expect((await store.load())?.keys.get('default')?.versions.size).toBe(3);
  });

  it('two replicas racing to create a key end up with one key', async () => {
    const store = new InMemoryKeyRingStore();
    const a = new LocalKmsProvider({ store });
    const b = new LocalKmsProvider({ store });
    const [ka, kb] = await Promise.all([
      a.generateDataKey('local/default', context),
      b.generateDataKey('local/default', context),
    ]);
    expect((await store.load())?.keys.get('default')?.versions.size).toBe(1);
    expect((await b.decryptDataKey('local/default', ka.wrapped, context)).equals(ka.plaintext)).toBe(true);
    expect((await a.decryptDataKey('local/default', kb.wrapped, context)).equals(kb.plaintext)).toBe(true);
  });

  it('a failing store is an unavailable KMS, retryable, with the cause kept', async () => {
    const broken: KeyRingStore = {
      load: () => Promise.reject(new Error('connect ECONNREFUSED 127.0.0.1:6443')),
      save: () => Promise.reject(new Error('unreachable')),
    };
    const err = await new LocalKmsProvider({ store: broken })
      .generateDataKey('local/default', context)
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KmsUnavailableError);
    expect((err as KmsUnavailableError).retryable).toBe(true);
    expect((err as Error).cause).toBeInstanceOf(Error);
  });

  it('a store that always conflicts gives up with a retryable error', async () => {
    const inner = new InMemoryKeyRingStore();
    const conflicting: KeyRingStore = {
      load: () => inner.load(),
      save: async (_ring: KeyRing) => {
        throw new ConflictError();
      },
    };
    await expect(
      new LocalKmsProvider({ store: conflicting }).generateDataKey('local/default', context),
    ).rejects.toBeInstanceOf(KmsUnavailableError);
  });

  it('refuses key ids that are not local/<dns-label>', async () => {
    const kms = new LocalKmsProvider({ store: new InMemoryKeyRingStore() });
    for (const keyId of ['default', 'local/', 'local/UPPER', 'local/a.b', 'local/../x', 'aws/default']) {
      await expect(kms.generateDataKey(keyId, context)).rejects.toThrow(TypeError);
    }
  });
});
