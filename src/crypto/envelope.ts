import { aesGcmOpen, aesGcmSeal } from './aes-gcm.js';
import { additionalData, encryptionContext, type Binding } from './binding.js';
import { DekCache } from './dek-cache.js';
import { formatEnvelope, parseEnvelope } from './envelope-format.js';
import { CiphertextRejectedError, CryptoErrorMessage } from './errors.js';
import type { KeyRef, KmsProvider } from './kms-provider.js';
import { ProviderRegistry } from './provider-registry.js';

export { parseEnvelope } from './envelope-format.js';

export interface EnvelopeOptions {
  providers: Map<string, KmsProvider> | ProviderRegistry;
  /** Shared DEK cache; a default-bounded one when omitted. */
  cache?: DekCache;
}

/**
 * Envelope encryption of credentials (spec section 4): a data key from the
 * KMS, AES-256-GCM with a random 96-bit nonce per value, and every value bound
 * to its namespace, workspace, connection and field twice over — by the KMS
 * encryption context that unwraps the data key and by the AES-GCM additional
 * data. Opening under any other binding fails with CiphertextRejectedError.
 */
export class Envelope {
  readonly #providers: ProviderRegistry;
  readonly #cache: DekCache;
  /** What each requested key resolved to at the KMS (alias → ARN), learnt while sealing. */
  readonly #resolvedKeyIds = new Map<string, string>();

  constructor(options: EnvelopeOptions) {
    this.#providers =
      options.providers instanceof ProviderRegistry ? options.providers : ProviderRegistry.from(options.providers);
    this.#cache = options.cache ?? new DekCache();
  }

  /** Encrypts `plaintext` for `binding` under `ref`; returns an `atoll:v1:` string. */
  async seal(plaintext: string, binding: Binding, ref: KeyRef): Promise<string> {
    if (typeof plaintext !== 'string') throw new TypeError(CryptoErrorMessage.plaintextNotString);
    const provider = this.#providers.get(ref.provider);
    const context = encryptionContext(binding);
    const aad = additionalData(binding);
    const bytes = Buffer.from(plaintext, 'utf8');
    try {
      return await this.#cache.withEncryptionKey(
        { provider: provider.name, keyId: ref.keyId, context },
        async () => {
          const generated = await provider.generateDataKey(ref.keyId, context);
          this.#resolvedKeyIds.set(refKey(ref), generated.keyId);
          this.#cache.primeDecryption(
            { provider: provider.name, keyId: generated.keyId, wrapped: generated.wrapped, context },
            Buffer.from(generated.plaintext),
          );
          return { dek: generated.plaintext, wrapped: generated.wrapped, keyId: generated.keyId };
        },
        (key) => {
          const { nonce, sealed } = aesGcmSeal(key.dek, bytes, aad);
          return formatEnvelope({
            provider: provider.name,
            keyId: key.keyId,
            wrapped: key.wrapped,
            nonce,
            ciphertext: sealed,
          });
        },
      );
    } finally {
      bytes.fill(0);
    }
  }

  /** Decrypts an envelope sealed for exactly this binding. */
  async open(sealed: string, binding: Binding): Promise<string> {
    const envelope = parseEnvelope(sealed);
    const provider = this.#providers.get(envelope.provider);
    const context = encryptionContext(binding);
    const aad = additionalData(binding);
    const bytes = await this.#cache.withDecryptionKey(
      { provider: provider.name, keyId: envelope.keyId, wrapped: envelope.wrapped, context },
      () => provider.decryptDataKey(envelope.keyId, envelope.wrapped, context),
      (dek) => {
        try {
          return aesGcmOpen(dek, envelope.nonce, envelope.ciphertext, aad);
        } catch (err) {
          throw new CiphertextRejectedError(undefined, { cause: err });
        }
      },
    );
    try {
      return bytes.toString('utf8');
    } finally {
      bytes.fill(0);
    }
  }

  /** Which provider and key an envelope names, without any KMS call (status `keyId`, rotation checks). */
  describe(sealed: string): { provider: string; keyId: string; version: 1 } {
    const { provider, keyId, version } = parseEnvelope(sealed);
    return { provider, keyId, version };
  }

  /**
   * Whether `sealed` is already wrapped by `ref`, so re-wrapping after a key change can
   * skip it. Knows an alias matches its ARN once this process has sealed with it.
   */
  isWrappedWith(sealed: string, ref: KeyRef): boolean {
    const current = this.describe(sealed);
    if (current.provider !== ref.provider) return false;
    return current.keyId === ref.keyId || current.keyId === this.#resolvedKeyIds.get(refKey(ref));
  }

  /** Re-encrypts under another key (KMS key rotation): open, then seal with a fresh DEK and nonce. */
  async rewrap(sealed: string, binding: Binding, to: KeyRef): Promise<string> {
    return this.seal(await this.open(sealed, binding), binding, to);
  }

  /** Names of the registered KMS providers (admission refuses envelopes naming another). */
  providerNames(): string[] {
    return this.#providers.names();
  }

  /** The cache's counters, for metrics. */
  stats() {
    return this.#cache.stats();
  }
}

function refKey(ref: KeyRef): string {
  return `${ref.provider}\u0000${ref.keyId}`;
}
