import { randomBytes } from 'node:crypto';
import { aesGcmOpen, aesGcmSeal, NONCE_BYTES, TAG_BYTES } from '../aes-gcm.js';
import { canonicalContext, lengthPrefixed } from '../binding.js';
import { CiphertextRejectedError, CryptoErrorMessage, KeyNotFoundError, KmsUnavailableError } from '../errors.js';
import { DATA_KEY_BYTES, type GeneratedDataKey, type KmsProvider } from '../kms-provider.js';
import {
  ensureLocalKey,
  localKeyId,
  localKeyName,
  rotateLocalKey,
  type KeyRing,
  type KeyRingStore,
} from './local-key-ring.js';

export {
  emptyKeyRing,
  InMemoryKeyRingStore,
  keyRingFromSecretData,
  keyRingToSecretData,
  rotateLocalKey,
  withNewKeyVersion,
  type KeyRing,
  type KeyRingStore,
} from './local-key-ring.js';

export const LOCAL_PROVIDER_NAME = 'local';

/** Layout of a locally wrapped data key: `0x01 | u32be kekVersion | nonce(12) | ct(32) | tag(16)`. */
const WRAP_FORMAT = 1;
const WRAP_HEADER_BYTES = 1 + 4;
const WRAPPED_BYTES = WRAP_HEADER_BYTES + NONCE_BYTES + DATA_KEY_BYTES + TAG_BYTES;
const WRAP_AAD_LABEL = 'atoll.dev/local-kms/v1';

export interface LocalKmsProviderOptions {
  store: KeyRingStore;
  /** How long a loaded ring is trusted before new wraps re-read it (picks up rotations by other replicas). */
  refreshIntervalMs?: number;
  now?: () => number;
}

/**
 * The embedded development KMS: key-encryption keys in a key ring (a Secret
 * of the operator's namespace in production), data keys wrapped with
 * AES-256-GCM whose AAD is the canonical encryption context. A wrapped key
 * moved to another binding therefore fails exactly as with AWS KMS. Key ids
 * are `local/<name>`; a key is created on first use.
 *
 * Not a substitute for a real KMS in production: whoever can read the
 * operator's Secret can unwrap every data key.
 */
export class LocalKmsProvider implements KmsProvider {
  readonly name = LOCAL_PROVIDER_NAME;
  readonly #store: KeyRingStore;
  readonly #refreshIntervalMs: number;
  readonly #now: () => number;
  #ring: KeyRing | undefined;
  #loadedAt = Number.NEGATIVE_INFINITY;
  #loading: Promise<KeyRing | undefined> | undefined;

  constructor(options: LocalKmsProviderOptions) {
    this.#store = options.store;
    this.#refreshIntervalMs = options.refreshIntervalMs ?? 60_000;
    this.#now = options.now ?? Date.now;
  }

  async generateDataKey(keyId: string, context: Record<string, string>): Promise<GeneratedDataKey> {
    const name = localKeyName(keyId);
    let ring = await this.#currentRing(this.#now() - this.#loadedAt > this.#refreshIntervalMs);
    if (!ring?.keys.has(name)) ring = await this.#createKey(name);
    const key = ring.keys.get(name);
    const kek = key?.versions.get(key.primary);
    if (!key || !kek) throw new KeyNotFoundError();
    const plaintext = randomBytes(DATA_KEY_BYTES);
    const header = Buffer.alloc(WRAP_HEADER_BYTES);
    header.writeUInt8(WRAP_FORMAT, 0);
    header.writeUInt32BE(key.primary, 1);
    const { nonce, sealed } = aesGcmSeal(kek, plaintext, wrapAad(name, key.primary, context));
    return { plaintext, wrapped: Buffer.concat([header, nonce, sealed]), keyId: localKeyId(name) };
  }

  async decryptDataKey(keyId: string, wrapped: Buffer, context: Record<string, string>): Promise<Buffer> {
    const name = localKeyName(keyId);
    if (wrapped.length !== WRAPPED_BYTES || wrapped.readUInt8(0) !== WRAP_FORMAT) throw new CiphertextRejectedError();
    const version = wrapped.readUInt32BE(1);
    let ring = await this.#currentRing(false);
    if (!ring?.keys.get(name)?.versions.has(version)) ring = await this.#currentRing(true);
    const key = ring?.keys.get(name);
    if (!key) throw new KeyNotFoundError();
    const kek = key.versions.get(version);
    if (!kek) throw new CiphertextRejectedError(CryptoErrorMessage.wrongKey);
    const nonce = wrapped.subarray(WRAP_HEADER_BYTES, WRAP_HEADER_BYTES + NONCE_BYTES);
    const sealed = wrapped.subarray(WRAP_HEADER_BYTES + NONCE_BYTES);
    try {
      return aesGcmOpen(kek, nonce, sealed, wrapAad(name, version, context));
    } catch (err) {
      throw new CiphertextRejectedError(CryptoErrorMessage.ciphertextRejected, { cause: err });
    }
  }

  /** Adds a new primary version of `name` and makes this provider use it at once. */
  async rotate(name: string): Promise<number> {
    const version = await this.#guardStore(() => rotateLocalKey(this.#store, name));
    await this.#currentRing(true);
    return version;
  }

  async #createKey(name: string): Promise<KeyRing> {
    const ring = await this.#guardStore(() => ensureLocalKey(this.#store, name));
    this.#remember(ring);
    return ring;
  }

  async #currentRing(reload: boolean): Promise<KeyRing | undefined> {
    if (this.#ring && !reload) return this.#ring;
    this.#loading ??= this.#guardStore(() => this.#store.load()).finally(() => {
      this.#loading = undefined;
    });
    const ring = await this.#loading;
    this.#remember(ring);
    return ring;
  }

  #remember(ring: KeyRing | undefined): void {
    this.#ring = ring;
    this.#loadedAt = this.#now();
  }

  /**
   * Store failures (API server down, repeated conflicts, a ring that does not
   * parse) make the KMS unavailable: retryable, and never a reason to touch data.
   */
  async #guardStore<T>(op: () => Promise<T>): Promise<T> {
    try {
      return await op();
    } catch (err) {
      if (err instanceof TypeError) throw err;
      throw new KmsUnavailableError(CryptoErrorMessage.keyRingUnavailable, { cause: err });
    }
  }
}

/** AAD of a local wrap: label, key name, KEK version and the canonical encryption context. */
function wrapAad(name: string, version: number, context: Record<string, string>): Buffer {
  const versionBytes = Buffer.alloc(4);
  versionBytes.writeUInt32BE(version);
  return Buffer.concat([lengthPrefixed(WRAP_AAD_LABEL), lengthPrefixed(name), versionBytes, canonicalContext(context)]);
}
