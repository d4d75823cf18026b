/**
 * Typed errors of the crypto layer. Callers branch on the class (or on
 * `retryable` / `reason`), never on message text. Every message is a constant:
 * nothing derived from plaintext, data keys, ciphertext or provider responses is
 * ever interpolated, so these errors are safe to log, record in Events and put
 * in condition messages. The original error, when there is one, is kept as
 * `cause` for debugging and must be logged only through the redacting logger.
 */

/** Condition reasons the crypto errors map to (CamelCase, Kubernetes style). */
export const CryptoErrorReason = {
  KmsUnavailable: 'KmsUnavailable',
  KmsAccessDenied: 'KmsAccessDenied',
  CiphertextRejected: 'CiphertextRejected',
  MalformedCiphertext: 'MalformedCiphertext',
  KeyNotFound: 'KeyNotFound',
  ProviderNotRegistered: 'ProviderNotRegistered',
} as const;
export type CryptoErrorReason = (typeof CryptoErrorReason)[keyof typeof CryptoErrorReason];

export const CryptoErrorMessage = {
  kmsUnavailable: 'the key management service could not be reached; the operation will be retried',
  kmsThrottled: 'the key management service throttled the request; the operation will be retried',
  keyRingUnavailable: 'the local key ring could not be read or written; the operation will be retried',
  kmsAccessDenied: 'the key management service denied access to the key',
  ciphertextRejected:
    'the ciphertext does not belong to this namespace, workspace, connection and field, or it was altered',
  wrongKey: 'the ciphertext was not wrapped by the named key',
  malformedCiphertext: 'the value is not an atoll:v1 ciphertext',
  keyNotFound: 'the key does not exist',
  keyDisabled: 'the key is disabled or pending deletion',
  keyNotUsable: 'the key cannot be used to wrap or unwrap data keys',
  providerNotRegistered: 'no KMS provider of that name is registered',
  duplicateProvider: 'a KMS provider of that name is already registered',
  invalidProviderName: 'a KMS provider name must match ^[a-z][a-z0-9-]{0,31}$',
  invalidBinding: 'a binding needs a non-empty namespace, workspace, connection and field',
  invalidLocalKeyId: 'a local key id must look like local/<name> with a DNS-label name',
  keyRingConflict: 'the key ring changed since it was read',
  keyRingCorrupt: 'the stored key ring cannot be parsed',
  plaintextNotString: 'only string credentials can be sealed',
} as const;

/** Base class: `retryable` tells whether the same call may later succeed unchanged. */
export abstract class CryptoError extends Error {
  abstract readonly reason: CryptoErrorReason;
  abstract readonly retryable: boolean;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Network failure, timeout, throttling or a 5xx from the KMS (or the local key ring's store). */
export class KmsUnavailableError extends CryptoError {
  readonly reason = CryptoErrorReason.KmsUnavailable;
  readonly retryable = true;
  constructor(message: string = CryptoErrorMessage.kmsUnavailable, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/**
 * The KMS refused the caller (IAM, missing credentials). Retryable because the
 * fix (a policy change) happens outside the operator and needs no new input.
 */
export class KmsAccessDeniedError extends CryptoError {
  readonly reason = CryptoErrorReason.KmsAccessDenied;
  readonly retryable = true;
  constructor(options?: { cause?: unknown }) {
    super(CryptoErrorMessage.kmsAccessDenied, options);
  }
}

/**
 * The ciphertext is well formed but cannot be opened here: wrong binding
 * (copied to another namespace, workspace, connection or field), tampered,
 * or wrapped by another key. Terminal: retrying cannot help.
 */
export class CiphertextRejectedError extends CryptoError {
  readonly reason = CryptoErrorReason.CiphertextRejected;
  readonly retryable = false;
  constructor(message: string = CryptoErrorMessage.ciphertextRejected, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** The string is not an `atoll:v1` envelope at all. Terminal. */
export class MalformedCiphertextError extends CryptoError {
  readonly reason = CryptoErrorReason.MalformedCiphertext;
  readonly retryable = false;
  constructor(options?: { cause?: unknown }) {
    super(CryptoErrorMessage.malformedCiphertext, options);
  }
}

/** The key named by a workspace or an envelope does not exist or cannot be used. */
export class KeyNotFoundError extends CryptoError {
  readonly reason = CryptoErrorReason.KeyNotFound;
  readonly retryable = false;
  constructor(message: string = CryptoErrorMessage.keyNotFound, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** An envelope or a workspace names a provider this operator was not configured with. */
export class ProviderNotRegisteredError extends CryptoError {
  readonly reason = CryptoErrorReason.ProviderNotRegistered;
  readonly retryable = false;
  constructor() {
    super(CryptoErrorMessage.providerNotRegistered);
  }
}

/** Programming or configuration error at start-up: two providers with one name. */
export class DuplicateProviderError extends Error {
  constructor() {
    super(CryptoErrorMessage.duplicateProvider);
    this.name = 'DuplicateProviderError';
  }
}

/**
 * Thrown by a {@link KeyRingStore} when the stored ring changed since it was
 * loaded (optimistic concurrency, e.g. a 409 from the API server). The local
 * provider reloads and retries.
 */
export class ConflictError extends Error {
  constructor(options?: { cause?: unknown }) {
    super(CryptoErrorMessage.keyRingConflict, options);
    this.name = 'ConflictError';
  }
}
