import type * as KmsSdk from '@aws-sdk/client-kms';
import type { KMSClient, KMSClientConfig } from '@aws-sdk/client-kms';
import {
  CiphertextRejectedError,
  CryptoErrorMessage,
  KeyNotFoundError,
  KmsAccessDeniedError,
  KmsUnavailableError,
  type CryptoError,
} from '../errors.js';
import { DATA_KEY_BYTES, type GeneratedDataKey, type KmsProvider } from '../kms-provider.js';
import { ownBuffer } from '../owned-bytes.js';
import { loadOnce } from '../../util/load-once.js';

export const AWS_KMS_PROVIDER_NAME = 'aws-kms';

export interface AwsKmsProviderOptions {
  region: string;
  /** Override for KMS-compatible endpoints (moto in tests, VPC endpoints, LocalStack). */
  endpoint?: string;
  /** Static credentials; the SDK's default chain (IRSA, env, instance role) when omitted. */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /** SDK attempts per call including the first (default 3); the reconciler's backoff does the rest. */
  maxAttempts?: number;
  /** Per-request timeout in ms (default 5000), so an outage fails fast instead of stalling reconciles. */
  requestTimeoutMs?: number;
  /** TCP connect timeout in ms (default 2000). */
  connectionTimeoutMs?: number;
}

/**
 * AWS KMS: `GenerateDataKey` (AES_256) and `Decrypt`, both with the binding as
 * EncryptionContext, and `Decrypt` pinned to the key id recorded in the
 * envelope so a ciphertext cannot be steered to another key. SDK errors are
 * mapped to the crypto layer's typed errors and never surface raw.
 */
export class AwsKmsProvider implements KmsProvider {
  readonly name = AWS_KMS_PROVIDER_NAME;
  /** The SDK loads on first use: ~20 MiB a process without this provider need not carry (ADR 0035). */
  readonly #kms: () => Promise<Kms>;
  #loaded: Promise<Kms> | undefined;

  constructor(options: AwsKmsProviderOptions) {
    const config: KMSClientConfig = {
      region: options.region,
      ...(options.endpoint ? { endpoint: options.endpoint } : {}),
      ...(options.credentials ? { credentials: options.credentials } : {}),
      maxAttempts: options.maxAttempts ?? 3,
      requestHandler: {
        requestTimeout: options.requestTimeoutMs ?? 5_000,
        connectionTimeout: options.connectionTimeoutMs ?? 2_000,
        // Without this the SDK only warns and keeps waiting: a hung KMS must fail fast (and closed).
        throwOnRequestTimeout: true,
      },
    };
    const load = loadOnce(async () => {
      const sdk = await import('@aws-sdk/client-kms');
      return { sdk, client: new sdk.KMSClient(config) };
    });
    this.#kms = () => (this.#loaded = load());
  }

  async generateDataKey(keyId: string, context: Record<string, string>): Promise<GeneratedDataKey> {
    let out;
    try {
      const { sdk, client } = await this.#kms();
      out = await client.send(
        new sdk.GenerateDataKeyCommand({ KeyId: keyId, KeySpec: 'AES_256', EncryptionContext: context }),
      );
    } catch (err) {
      throw kmsError(err);
    }
    if (!out.Plaintext || !out.CiphertextBlob || out.Plaintext.length !== DATA_KEY_BYTES) {
      throw new KmsUnavailableError();
    }
    return { plaintext: ownBuffer(out.Plaintext), wrapped: Buffer.from(out.CiphertextBlob), keyId: out.KeyId ?? keyId };
  }

  async decryptDataKey(keyId: string, wrapped: Buffer, context: Record<string, string>): Promise<Buffer> {
    let out;
    try {
      const { sdk, client } = await this.#kms();
      out = await client.send(
        new sdk.DecryptCommand({ KeyId: keyId, CiphertextBlob: wrapped, EncryptionContext: context }),
      );
    } catch (err) {
      throw kmsError(err);
    }
    if (!out.Plaintext || out.Plaintext.length !== DATA_KEY_BYTES) throw new CiphertextRejectedError();
    return ownBuffer(out.Plaintext);
  }

  /** Closes the SDK's connection pool (tests, shutdown). */
  close(): void {
    void this.#loaded?.then(
      ({ client }) => client.destroy(),
      () => undefined,
    );
  }
}

interface Kms {
  sdk: typeof KmsSdk;
  client: KMSClient;
}

const REJECTED = new Set(['InvalidCiphertextException']);
const WRONG_KEY = new Set(['IncorrectKeyException']);
const ACCESS_DENIED = new Set([
  'AccessDeniedException',
  'UnrecognizedClientException',
  'InvalidSignatureException',
  'IncompleteSignatureException',
  'ExpiredTokenException',
  'CredentialsProviderError',
]);
const KEY_MISSING = new Set(['NotFoundException']);
const KEY_DISABLED = new Set(['KMSInvalidStateException', 'DisabledException']);
const KEY_NOT_USABLE = new Set(['InvalidKeyUsageException', 'InvalidGrantTokenException']);
const THROTTLED = new Set([
  'ThrottlingException',
  'LimitExceededException',
  'TooManyRequestsException',
  'RequestLimitExceeded',
]);

/**
 * One place that turns an SDK failure into a typed crypto error. Anything not
 * recognised is treated as an unavailable KMS: retryable and fail-closed.
 */
export function kmsError(err: unknown): CryptoError {
  const name = err instanceof Error ? err.name : '';
  if (REJECTED.has(name)) return new CiphertextRejectedError(CryptoErrorMessage.ciphertextRejected, { cause: err });
  if (WRONG_KEY.has(name)) return new CiphertextRejectedError(CryptoErrorMessage.wrongKey, { cause: err });
  if (ACCESS_DENIED.has(name)) return new KmsAccessDeniedError({ cause: err });
  if (KEY_MISSING.has(name)) return new KeyNotFoundError(CryptoErrorMessage.keyNotFound, { cause: err });
  if (KEY_DISABLED.has(name)) return new KeyNotFoundError(CryptoErrorMessage.keyDisabled, { cause: err });
  if (KEY_NOT_USABLE.has(name)) return new KeyNotFoundError(CryptoErrorMessage.keyNotUsable, { cause: err });
  if (THROTTLED.has(name)) return new KmsUnavailableError(CryptoErrorMessage.kmsThrottled, { cause: err });
  return new KmsUnavailableError(CryptoErrorMessage.kmsUnavailable, { cause: err });
}
