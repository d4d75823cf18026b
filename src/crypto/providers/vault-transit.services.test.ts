import { writeFileSync } from 'node:fs';
import { inspect } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTransitKey, startVault, tokenWithPolicy, transitPolicy, type VaultServer } from '../../dev/vault.js';
import { encryptionContext, type Binding } from '../binding.js';
import { DekCache } from '../dek-cache.js';
import { Envelope, parseEnvelope } from '../envelope.js';
import {
  CiphertextRejectedError,
  CryptoErrorMessage,
  KeyNotFoundError,
  KmsAccessDeniedError,
  KmsUnavailableError,
} from '../errors.js';
import {
  rewrapEnvelope,
  transitKeyVersion,
  VaultResponseError,
  VaultTransitMessage,
  VaultTransitProvider,
  vaultError,
  type VaultTransitProviderOptions,
} from './vault-transit.js';

const binding: Binding = {
  namespace: 'acme',
  workspace: 'acme-7f3c',
  connection: 'pg',
  field: 'password',
  destination: 'dest-1',
};
const context = encryptionContext(binding);

let vault: VaultServer;
let keyId: string;
let tokenFile: string;
let kms: VaultTransitProvider;
const providers: VaultTransitProvider[] = [];

function provider(options: Partial<VaultTransitProviderOptions> = {}): VaultTransitProvider {
  const p = new VaultTransitProvider({
    address: vault.address,
    caPem: vault.caPem!,
    auth: { method: 'token', tokenFile },
    requestTimeoutMs: 2_000,
    ...options,
  });
  providers.push(p);
  return p;
}
const envelopeWith = (p: VaultTransitProvider) =>
  new Envelope({ providers: new Map([['vault-transit', p]]), cache: new DekCache() });

beforeAll(async () => {
  vault = await startVault();
  keyId = await createTransitKey(vault, 'atoll');
  // The operator's token holds exactly the documented least-privilege policy, not root.
  ({ file: tokenFile } = await tokenWithPolicy(vault, 'atoll-controller', transitPolicy(keyId)));
  kms = provider();
});

afterAll(async () => {
  for (const p of providers) await p.close();
  await vault?.destroy();
});

describe('VaultTransitProvider against a real Vault dev server (TLS, least-privilege token)', () => {
  it('generates an AES-256 data key wrapped by Transit, and unwraps it with the same context', async () => {
    const generated = await kms.generateDataKey(keyId, context);
    expect(generated.plaintext).toHaveLength(32);
    expect(generated.keyId).toBe(keyId);
    expect(generated.wrapped.toString()).toMatch(/^vault:v1:/);
    expect(transitKeyVersion(generated.wrapped)).toBe(1);
    expect(generated.wrapped.includes(generated.plaintext)).toBe(false);
    expect((await kms.decryptDataKey(keyId, generated.wrapped, context)).equals(generated.plaintext)).toBe(true);
  });

  it('Vault itself enforces the binding: a wrapped key under another context is refused by Vault', async () => {
    const { wrapped } = await kms.generateDataKey(keyId, context);
    for (const part of ['namespace', 'workspace', 'connection', 'field', 'destination'] as const) {
      const err = await kms
        .decryptDataKey(keyId, wrapped, encryptionContext({ ...binding, [part]: 'other' }))
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(CiphertextRejectedError);
      // The refusing layer is Vault (a 400 from Transit's decrypt), not our AES-GCM.
      expect((err as Error).cause).toBeInstanceOf(VaultResponseError);
      expect(((err as Error).cause as VaultResponseError).status).toBe(400);
    }
    await expect(kms.decryptDataKey(keyId, wrapped, {})).rejects.toBeInstanceOf(CiphertextRejectedError);
  });

  it('an envelope copied to another binding is refused by Vault before any AES-GCM', async () => {
    const envelope = envelopeWith(kms);
    const sealed = await envelope.seal('pg-password-123', binding, { provider: 'vault-transit', keyId });
    expect(sealed.startsWith('atoll:v1:vault-transit:')).toBe(true);
    expect(await envelopeWith(kms).open(sealed, binding)).toBe('pg-password-123');
    const err = await envelopeWith(kms)
      .open(sealed, { ...binding, workspace: 'intruder' })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CiphertextRejectedError);
    expect((err as Error).cause).toBeInstanceOf(VaultResponseError);
  });

  it('decrypt is pinned to the recorded key: another Transit key cannot unwrap it', async () => {
    const other = await createTransitKey(vault, 'other');
    const onOther = await tokenWithPolicy(vault, 'other-key', transitPolicy(other));
    const { wrapped } = await kms.generateDataKey(keyId, context);
    const err = await provider({ auth: { method: 'token', tokenFile: onOther.file } })
      .decryptDataKey(other, wrapped, context)
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CiphertextRejectedError);
  });

  it('an unknown key is KeyNotFoundError; a malformed key id never reaches Vault', async () => {
    const rootFile = await tokenWithPolicy(
      vault,
      'all-transit',
      'path "transit/*" {\n  capabilities = ["update"]\n}\n',
    );
    const p = provider({ auth: { method: 'token', tokenFile: rootFile.file } });
    await expect(p.generateDataKey('transit/keys/does-not-exist', context)).rejects.toBeInstanceOf(KeyNotFoundError);
    await expect(p.generateDataKey('transit/does-not-exist', context)).rejects.toThrow(
      VaultTransitMessage.invalidKeyId,
    );
    await expect(p.generateDataKey('transit/keys/../sys', context)).rejects.toThrow(VaultTransitMessage.invalidKeyId);
  });

  it('refuses a Transit key created without derived=true (Vault would ignore the binding)', async () => {
    const plain = await createTransitKey(vault, 'not-derived', { derived: false });
    const t = await tokenWithPolicy(vault, 'not-derived', transitPolicy(plain));
    const err = await provider({ auth: { method: 'token', tokenFile: t.file } })
      .generateDataKey(plain, context)
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KeyNotFoundError);
    expect((err as Error).message).toBe(VaultTransitMessage.notDerived);
  });

  it('key rotation: new seals use the new Transit version; rewrap moves old ones without the value; retirement refuses the rest', async () => {
    const key = await createTransitKey(vault, 'rotating');
    const t = await tokenWithPolicy(vault, 'rotating', transitPolicy(key) + transitPolicy(key, 'rewrap'));
    const p = provider({ auth: { method: 'token', tokenFile: t.file } });
    const ref = { provider: 'vault-transit', keyId: key };
    const v1a = await envelopeWith(p).seal('value-a', binding, ref);
    const v1b = await envelopeWith(p).seal('value-b', binding, ref);
    expect(transitKeyVersion(parseEnvelope(v1a).wrapped)).toBe(1);

    await vault.api('POST', 'transit/keys/rotating/rotate');
    const v2 = await envelopeWith(p).seal('value-c', binding, ref);
    expect(transitKeyVersion(parseEnvelope(v2).wrapped)).toBe(2);
    // The key id is the same across Transit versions: atoll's status keyId does not change.
    expect(envelopeWith(p).describe(v2).keyId).toBe(key);

    const rewrapped = await rewrapEnvelope(p, v1a, binding);
    expect(transitKeyVersion(parseEnvelope(rewrapped).wrapped)).toBe(2);
    // Only the wrapped data key changed; the value's nonce and AES-GCM ciphertext did not.
    expect(parseEnvelope(rewrapped).ciphertext.equals(parseEnvelope(v1a).ciphertext)).toBe(true);
    expect(parseEnvelope(rewrapped).nonce.equals(parseEnvelope(v1a).nonce)).toBe(true);
    expect(await envelopeWith(p).open(rewrapped, binding)).toBe('value-a');
    // Re-wrap also carries the binding: under another binding Vault refuses it.
    await expect(rewrapEnvelope(p, v1b, { ...binding, connection: 'other' })).rejects.toBeInstanceOf(
      CiphertextRejectedError,
    );

    // Retire version 1: what was re-wrapped opens; what was not is refused by Vault with a clear reason.
    await vault.api('POST', 'transit/keys/rotating/config', { min_decryption_version: 2 });
    expect(await envelopeWith(p).open(rewrapped, binding)).toBe('value-a');
    expect(await envelopeWith(p).open(v2, binding)).toBe('value-c');
    const err = await envelopeWith(p)
      .open(v1b, binding)
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CiphertextRejectedError);
    expect((err as Error).message).toBe(VaultTransitMessage.retiredVersion);
  });

  it('the controller policy cannot re-wrap, and the gateway policy (decrypt only) can open but not seal', async () => {
    await expect(
      rewrapEnvelope(kms, await envelopeWith(kms).seal('x', binding, { provider: 'vault-transit', keyId }), binding),
    ).rejects.toBeInstanceOf(KmsAccessDeniedError);
    const sealed = await envelopeWith(kms).seal('for-the-gateway', binding, { provider: 'vault-transit', keyId });
    const g = await tokenWithPolicy(vault, 'atoll-gateway', transitPolicy(keyId, 'gateway'));
    const gateway = provider({ auth: { method: 'token', tokenFile: g.file } });
    expect(await envelopeWith(gateway).open(sealed, binding)).toBe('for-the-gateway');
    await expect(gateway.generateDataKey(keyId, context)).rejects.toBeInstanceOf(KmsAccessDeniedError);
    await expect(rewrapEnvelope(gateway, sealed, binding)).rejects.toBeInstanceOf(KmsAccessDeniedError);
  });

  it('a revoked Vault policy is KmsAccessDenied with a constant message; a new token in the file is picked up on the next 403', async () => {
    const t = await tokenWithPolicy(vault, 'revocable', transitPolicy(keyId));
    const p = provider({ auth: { method: 'token', tokenFile: t.file } });
    const { wrapped, plaintext } = await p.generateDataKey(keyId, context);
    await vault.api('DELETE', 'sys/policies/acl/revocable');
    const err = await p.decryptDataKey(keyId, wrapped, context).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KmsAccessDeniedError);
    expect((err as Error).message).toBe(CryptoErrorMessage.kmsAccessDenied);
    expect(((err as Error).cause as VaultResponseError).status).toBe(403);
    // Neither the token nor key material appears anywhere in the error.
    for (const text of [inspect(err, { depth: 10 }), JSON.stringify(err), String(err)]) {
      expect(text).not.toContain(t.token);
      expect(text).not.toContain(plaintext.toString('base64'));
    }
    // The platform fixes it (Vault Agent writes a fresh token): the provider re-reads the file after the 403.
    const fresh = await tokenWithPolicy(vault, 'revocable-2', transitPolicy(keyId));
    writeFileSync(t.file, fresh.token);
    expect((await p.decryptDataKey(keyId, wrapped, context)).equals(plaintext)).toBe(true);
  });

  it('an unreadable token file is KmsAccessDenied', async () => {
    const p = provider({ auth: { method: 'token', tokenFile: '/nonexistent/vault-token' } });
    await expect(p.generateDataKey(keyId, context)).rejects.toBeInstanceOf(KmsAccessDeniedError);
  });

  it('a Vault certificate not signed by the configured CA is refused (KmsUnavailable, nothing sent)', async () => {
    // Same server, but the provider trusts only the system roots, not Vault's dev CA.
    const p = new VaultTransitProvider({
      address: vault.address,
      auth: { method: 'token', tokenFile },
      requestTimeoutMs: 2_000,
    });
    providers.push(p);
    const err = await p.generateDataKey(keyId, context).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KmsUnavailableError);
    expect(String(((err as Error).cause as Error).cause ?? (err as Error).cause)).toMatch(/certificate/i);
  });

  it('a sealed Vault is KmsUnavailable with a reason that says so; unsealing recovers', async () => {
    const { wrapped, plaintext } = await kms.generateDataKey(keyId, context);
    await vault.seal();
    try {
      const err = await kms.decryptDataKey(keyId, wrapped, context).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(KmsUnavailableError);
      expect((err as KmsUnavailableError).retryable).toBe(true);
      expect((err as Error).message).toBe(VaultTransitMessage.sealed);
      await expect(kms.generateDataKey(keyId, context)).rejects.toThrow(VaultTransitMessage.sealed);
    } finally {
      await vault.unseal();
    }
    expect((await kms.decryptDataKey(keyId, wrapped, context)).equals(plaintext)).toBe(true);
  });
});

describe('VaultTransitProvider: outage and restart of a persistent Vault', () => {
  let persistent: VaultServer;
  beforeAll(async () => {
    persistent = await startVault({ mode: 'persistent' });
  });
  afterAll(async () => {
    await persistent?.destroy();
  });

  it('a stopped Vault fails fast with KmsUnavailable; restarted (sealed, then unsealed) it opens what was sealed before', async () => {
    const key = await createTransitKey(persistent, 'atoll');
    const t = await tokenWithPolicy(persistent, 'atoll-controller', transitPolicy(key));
    const p = new VaultTransitProvider({
      address: persistent.address,
      auth: { method: 'token', tokenFile: t.file },
      requestTimeoutMs: 1_000,
      connectTimeoutMs: 500,
    });
    providers.push(p);
    const sealed = await envelopeWith(p).seal('survives-an-outage', binding, { provider: 'vault-transit', keyId: key });

    await persistent.stop();
    const started = Date.now();
    const err = await envelopeWith(p)
      .open(sealed, binding)
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KmsUnavailableError);
    expect((err as KmsUnavailableError).retryable).toBe(true);
    await expect(p.generateDataKey(key, context)).rejects.toBeInstanceOf(KmsUnavailableError);
    expect(Date.now() - started).toBeLessThan(3_000);

    await persistent.start();
    await expect(envelopeWith(p).open(sealed, binding)).rejects.toThrow(VaultTransitMessage.sealed);
    await persistent.unseal();
    expect(await envelopeWith(p).open(sealed, binding)).toBe('survives-an-outage');
  });
});

describe('vaultError', () => {
  it.each([
    [403, ['permission denied'], KmsAccessDeniedError, CryptoErrorMessage.kmsAccessDenied],
    [503, ['Vault is sealed'], KmsUnavailableError, VaultTransitMessage.sealed],
    [503, ['upstream connect error'], KmsUnavailableError, CryptoErrorMessage.kmsUnavailable],
    [
      429,
      ['request path "transit/decrypt/atoll": rate limit quota exceeded'],
      KmsUnavailableError,
      CryptoErrorMessage.kmsThrottled,
    ],
    [400, ['encryption key not found'], KeyNotFoundError, CryptoErrorMessage.keyNotFound],
    [400, ['cipher: message authentication failed'], CiphertextRejectedError, CryptoErrorMessage.ciphertextRejected],
    [400, ['invalid ciphertext: no prefix'], CiphertextRejectedError, CryptoErrorMessage.ciphertextRejected],
    [
      400,
      ['ciphertext or signature version is disallowed by policy (too old)'],
      CiphertextRejectedError,
      VaultTransitMessage.retiredVersion,
    ],
    [400, ['key type rsa-2048 does not support data keys'], KeyNotFoundError, CryptoErrorMessage.keyNotUsable],
    [500, ['internal error'], KmsUnavailableError, CryptoErrorMessage.kmsUnavailable],
  ])('maps %i %j', (status, errors, errorClass, message) => {
    const mapped = vaultError(status, errors);
    expect(mapped).toBeInstanceOf(errorClass);
    expect(mapped.message).toBe(message);
    expect(mapped.cause).toBeInstanceOf(VaultResponseError);
  });
});
