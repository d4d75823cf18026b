/**
 * What every KMS backend implements. Deliberately small — wrap and unwrap a
 * data key under a named key with an encryption context — so that AWS KMS, the
 * embedded local provider and later Vault Transit, GCP KMS or Azure Key Vault
 * fit without changing the envelope. Implementations throw only the errors of
 * `./errors.js`: KmsUnavailableError (retryable), KmsAccessDeniedError,
 * CiphertextRejectedError, KeyNotFoundError.
 */
export interface KmsProvider {
  /** Registry name, also written into every envelope (e.g. `aws-kms`, `local`). */
  readonly name: string;
  /**
   * A fresh 256-bit data key, in plaintext and wrapped under `keyId` with
   * `context` authenticated. `keyId` in the result is the provider's stable
   * identity of the key that wrapped it (AWS: the key ARN, even when an alias
   * was asked for), which is what the envelope records and decrypt is pinned to.
   */
  generateDataKey(keyId: string, context: Record<string, string>): Promise<GeneratedDataKey>;
  /** Unwraps a data key; fails with CiphertextRejectedError unless `keyId` and `context` match the wrap. */
  decryptDataKey(keyId: string, wrapped: Buffer, context: Record<string, string>): Promise<Buffer>;
}

export interface GeneratedDataKey {
  /** 32 bytes. The caller owns it and zeroes it when done. */
  plaintext: Buffer;
  wrapped: Buffer;
  keyId: string;
}

/** A provider and key, as a workspace or an envelope names them. */
export interface KeyRef {
  provider: string;
  keyId: string;
}

/** AES-256 data keys only. */
export const DATA_KEY_BYTES = 32;
