import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKmsKey, MOTO_CREDENTIALS, MOTO_REGION, startMoto, type MotoServer } from '../../test/support/moto.js';
import type { Binding } from './binding.js';
import { DekCache } from './dek-cache.js';
import { Envelope, parseEnvelope } from './envelope.js';
import {
  CiphertextRejectedError,
  CryptoError,
  MalformedCiphertextError,
  ProviderNotRegisteredError,
} from './errors.js';
import type { KeyRef, KmsProvider } from './kms-provider.js';
import { AwsKmsProvider } from './providers/aws-kms.js';
import { ProviderRegistry } from './providers/index.js';
import { InMemoryKeyRingStore, LocalKmsProvider } from './providers/local.js';
import { CountingProvider } from '../../test/support/counting-provider.js';

const binding: Binding = {
  namespace: 'acme',
  workspace: 'acme-7f3c',
  connection: 'datadog-eu',
  field: 'apiKey',
  destination: 'dest-1',
};
const secret = 'dd-api-0123456789abcdef-🔑-ünïcødé';

interface Setup {
  envelope: (cache?: DekCache) => Envelope;
  counting: CountingProvider;
  ref: KeyRef;
  otherRef: KeyRef;
}

let moto: MotoServer;
let aws: AwsKmsProvider;

beforeAll(async () => {
  moto = await startMoto();
  aws = new AwsKmsProvider({
    region: MOTO_REGION,
    endpoint: moto.endpoint,
    credentials: MOTO_CREDENTIALS,
    maxAttempts: 1,
  });
});

afterAll(async () => {
  aws?.close();
  await moto?.stop();
});

const setups: Record<string, () => Promise<Setup>> = {
  local: async () => {
    const counting = new CountingProvider(new LocalKmsProvider({ store: new InMemoryKeyRingStore() }));
    const registry = new ProviderRegistry().register(counting);
    return {
      counting,
      envelope: (cache) => new Envelope({ providers: registry, cache: cache ?? new DekCache() }),
      ref: { provider: 'local', keyId: 'local/default' },
      otherRef: { provider: 'local', keyId: 'local/team-b' },
    };
  },
  'aws-kms': async () => {
    const counting = new CountingProvider(aws);
    const providers = new Map([[counting.name, counting]]);
    return {
      counting,
      envelope: (cache) => new Envelope({ providers, cache: cache ?? new DekCache() }),
      ref: { provider: 'aws-kms', keyId: await createKmsKey(moto.endpoint) },
      otherRef: { provider: 'aws-kms', keyId: await createKmsKey(moto.endpoint) },
    };
  },
};

describe.each(Object.keys(setups))('Envelope with the %s provider', (providerName) => {
  let s: Setup;
  beforeAll(async () => {
    s = await setups[providerName]!();
  });

  it('round-trips, with a self-describing atoll:v1 string that does not contain the plaintext', async () => {
    const envelope = s.envelope();
    const sealed = await envelope.seal(secret, binding, s.ref);
    expect(sealed).toMatch(/^atoll:v1:[a-z-]+(:[A-Za-z0-9_-]+){4}$/);
    expect(sealed).not.toContain('0123456789abcdef');
    expect(envelope.describe(sealed)).toEqual({ provider: providerName, keyId: s.ref.keyId, version: 1 });
    expect(await envelope.open(sealed, binding)).toBe(secret);
    // A fresh process (empty cache) opens it through the KMS.
    expect(await s.envelope().open(sealed, { ...binding })).toBe(secret);
    expect(await envelope.open(await envelope.seal('', binding, s.ref), binding)).toBe('');
  });

  it('uses a fresh nonce per value even when the data key is reused', async () => {
    const envelope = s.envelope();
    const a = parseEnvelope(await envelope.seal(secret, binding, s.ref));
    const b = parseEnvelope(await envelope.seal(secret, binding, s.ref));
    expect(a.wrapped.equals(b.wrapped)).toBe(true);
    expect(a.nonce.equals(b.nonce)).toBe(false);
    expect(a.ciphertext.equals(b.ciphertext)).toBe(false);
  });

  it.each(['namespace', 'workspace', 'connection', 'field'] as const)(
    'refuses to open a value moved to another %s',
    async (part) => {
      const envelope = s.envelope();
      const sealed = await envelope.seal(secret, binding, s.ref);
      await envelope.open(sealed, binding); // warm the cache: it must not bypass the binding
      const moved = { ...binding, [part]: `${binding[part]}-other` };
      const err = await envelope.open(sealed, moved).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(CiphertextRejectedError);
      expect((err as Error).message).not.toContain(secret);
      await expect(s.envelope().open(sealed, moved)).rejects.toBeInstanceOf(CiphertextRejectedError);
    },
  );

  it('fails on tampering with every part of the string', async () => {
    const envelope = s.envelope();
    const sealed = await envelope.seal(secret, binding, s.ref);
    const parts = sealed.split(':');
    const withPart = (i: number, value: string) => parts.map((p, j) => (j === i ? value : p)).join(':');
    const flipLastByte = (field: string) => {
      const bytes = Buffer.from(field, 'base64url');
      bytes[bytes.length - 1]! ^= 0x01;
      return bytes.toString('base64url');
    };
    const flipFirstByte = (field: string) => {
      const bytes = Buffer.from(field, 'base64url');
      bytes[0]! ^= 0x80;
      return bytes.toString('base64url');
    };
    const tampered: Array<[string, string, abstract new (...args: never[]) => Error]> = [
      ['magic', withPart(0, 'atolx'), MalformedCiphertextError],
      ['version', withPart(1, 'v2'), MalformedCiphertextError],
      ['provider', withPart(2, 'vault-transit'), ProviderNotRegisteredError],
      ['keyId', withPart(3, Buffer.from(s.otherRef.keyId).toString('base64url')), CryptoError],
      ['wrapped DEK', withPart(4, flipLastByte(parts[4]!)), CiphertextRejectedError],
      ['nonce', withPart(5, flipLastByte(parts[5]!)), CiphertextRejectedError],
      ['ciphertext', withPart(6, flipFirstByte(parts[6]!)), CiphertextRejectedError],
      ['tag', withPart(6, flipLastByte(parts[6]!)), CiphertextRejectedError],
      ['truncated ciphertext', withPart(6, parts[6]!.slice(0, -4)), CryptoError],
      ['extra field', `${sealed}:AAAA`, MalformedCiphertextError],
      ['missing field', parts.slice(0, 6).join(':'), MalformedCiphertextError],
      ['padding', withPart(5, `${parts[5]}==`), MalformedCiphertextError],
      ['whitespace', `${sealed}\n`, MalformedCiphertextError],
    ];
    for (const [what, value, errorClass] of tampered) {
      expect(value, what).not.toBe(sealed);
      const err = await s
        .envelope()
        .open(value, binding)
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      expect(err, what).toBeInstanceOf(errorClass);
      expect((err as Error).message, what).not.toContain(secret);
    }
    await envelope.open(sealed, binding);
    // Every bit of the AEAD ciphertext and tag is authenticated (cached DEK, so no KMS round trips).
    const body = Buffer.from(parts[6]!, 'base64url');
    for (let i = 0; i < body.length; i++) {
      const copy = Buffer.from(body);
      copy[i]! ^= 0x01;
      await expect(envelope.open(withPart(6, copy.toString('base64url')), binding)).rejects.toBeInstanceOf(
        CiphertextRejectedError,
      );
    }
  });

  it('1,000 opens of the same value make exactly one KMS decrypt', async () => {
    const envelope = s.envelope(new DekCache());
    const sealed = await s.envelope().seal(secret, binding, s.ref);
    const before = s.counting.calls.decryptDataKey;
    for (let i = 0; i < 500; i++) expect(await envelope.open(sealed, binding)).toBe(secret);
    await Promise.all(Array.from({ length: 500 }, () => envelope.open(sealed, binding)));
    expect(s.counting.calls.decryptDataKey - before).toBe(1);
    expect(envelope.stats().kmsCalls.decryptDataKey).toBe(1);
    expect(envelope.stats().hits.decrypt).toBe(999);
  });

  it('the cache age and use bounds cause new KMS calls', async () => {
    let now = 0;
    const envelope = s.envelope(new DekCache({ maxAgeMs: 60_000, maxUses: 100, now: () => now }));
    const sealed = await s.envelope().seal(secret, binding, s.ref);
    const before = s.counting.calls.decryptDataKey;
    for (let i = 0; i < 250; i++) await envelope.open(sealed, binding);
    expect(s.counting.calls.decryptDataKey - before).toBe(3);
    now += 60_000;
    await envelope.open(sealed, binding);
    expect(s.counting.calls.decryptDataKey - before).toBe(4);
  });

  it('seals of one binding share a data key; a value opens right after sealing without a KMS call', async () => {
    const envelope = s.envelope();
    const generates = s.counting.calls.generateDataKey;
    const decrypts = s.counting.calls.decryptDataKey;
    const sealed = await Promise.all(
      Array.from({ length: 50 }, (_, i) => envelope.seal(`${secret}-${i}`, binding, s.ref)),
    );
    expect(s.counting.calls.generateDataKey - generates).toBe(1);
    expect(await envelope.open(sealed[7]!, binding)).toBe(`${secret}-7`);
    expect(s.counting.calls.decryptDataKey - decrypts).toBe(0);
    await envelope.seal(secret, { ...binding, field: 'appKey' }, s.ref);
    expect(s.counting.calls.generateDataKey - generates).toBe(2);
  });

  it('rewraps under another key: new key id, same plaintext, old key no longer named', async () => {
    const envelope = s.envelope();
    const sealed = await envelope.seal(secret, binding, s.ref);
    const rewrapped = await envelope.rewrap(sealed, binding, s.otherRef);
    expect(envelope.describe(rewrapped).keyId).toBe(s.otherRef.keyId);
    expect(envelope.isWrappedWith(rewrapped, s.otherRef)).toBe(true);
    expect(envelope.isWrappedWith(sealed, s.otherRef)).toBe(false);
    expect(parseEnvelope(rewrapped).wrapped.equals(parseEnvelope(sealed).wrapped)).toBe(false);
    expect(await s.envelope().open(rewrapped, binding)).toBe(secret);
    await expect(envelope.rewrap(sealed, { ...binding, field: 'x' }, s.otherRef)).rejects.toBeInstanceOf(
      CiphertextRejectedError,
    );
  });
});

describe('Envelope', () => {
  it('AES-GCM additional data binds on its own, even behind a KMS that ignores the context', async () => {
    // Some backends (e.g. Vault Transit without derived keys) do not authenticate a context.
    const inner = new LocalKmsProvider({ store: new InMemoryKeyRingStore() });
    const fixed = { fixed: 'context' };
    const contextBlind: KmsProvider = {
      name: 'local',
      generateDataKey: (keyId) => inner.generateDataKey(keyId, fixed),
      decryptDataKey: (keyId, wrapped) => inner.decryptDataKey(keyId, wrapped, fixed),
    };
    const envelope = new Envelope({ providers: new Map([['local', contextBlind]]) });
    const sealed = await envelope.seal(secret, binding, { provider: 'local', keyId: 'local/default' });
    for (const part of ['namespace', 'workspace', 'connection', 'field'] as const) {
      const err = await envelope.open(sealed, { ...binding, [part]: 'other' }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(CiphertextRejectedError);
      expect((err as Error).cause).toBeInstanceOf(Error);
      expect((err as Error).cause).not.toBeInstanceOf(CiphertextRejectedError);
    }
    expect(await envelope.open(sealed, binding)).toBe(secret);
  });

  it('refuses strings that are not envelopes, without echoing them', async () => {
    const envelope = new Envelope({ providers: new Map() });
    for (const value of [
      '',
      'plaintext-password',
      'atoll:v1:',
      'atoll:v1:local:::::',
      `atoll:v1:local:${'A'.repeat(300_000)}`,
    ]) {
      const err = await envelope.open(value, binding).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(MalformedCiphertextError);
      expect((err as Error).message).not.toContain('plaintext-password');
      expect(() => envelope.describe(value)).toThrow(MalformedCiphertextError);
    }
  });

  it('names an unregistered provider as such, and registry duplicates throw', async () => {
    const local = new LocalKmsProvider({ store: new InMemoryKeyRingStore() });
    await expect(
      new Envelope({ providers: new Map() }).seal('x', binding, { provider: 'local', keyId: 'local/default' }),
    ).rejects.toBeInstanceOf(ProviderNotRegisteredError);
    expect(() =>
      new ProviderRegistry().register(local).register(new LocalKmsProvider({ store: new InMemoryKeyRingStore() })),
    ).toThrow(/already registered/);
  });
});
