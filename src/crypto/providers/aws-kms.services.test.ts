import {
  CreateAliasCommand,
  IncorrectKeyException,
  InvalidCiphertextException,
  KMSClient,
  KMSInternalException,
  KMSInvalidStateException,
  NotFoundException,
} from '@aws-sdk/client-kms';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKmsKey, MOTO_CREDENTIALS, MOTO_REGION, startMoto, type MotoServer } from '../../../test/support/moto.js';
import { encryptionContext, type Binding } from '../binding.js';
import { DekCache } from '../dek-cache.js';
import { Envelope } from '../envelope.js';
import {
  CiphertextRejectedError,
  CryptoErrorMessage,
  KeyNotFoundError,
  KmsAccessDeniedError,
  KmsUnavailableError,
} from '../errors.js';
import { AwsKmsProvider, kmsError } from './aws-kms.js';

const binding: Binding = {
  namespace: 'acme',
  workspace: 'acme-7f3c',
  connection: 'pg',
  field: 'password',
  destination: 'dest-1',
};
const context = encryptionContext(binding);

let moto: MotoServer;
let kms: AwsKmsProvider;
let keyArn: string;

beforeAll(async () => {
  moto = await startMoto();
  kms = new AwsKmsProvider({
    region: MOTO_REGION,
    endpoint: moto.endpoint,
    credentials: MOTO_CREDENTIALS,
    maxAttempts: 1,
  });
  keyArn = await createKmsKey(moto.endpoint);
});

afterAll(async () => {
  kms?.close();
  await moto?.stop();
});

describe('AwsKmsProvider against moto', () => {
  it('generates an AES-256 data key wrapped under the key, and unwraps it with the same context', async () => {
    const generated = await kms.generateDataKey(keyArn, context);
    expect(generated.plaintext).toHaveLength(32);
    expect(generated.keyId).toBe(keyArn);
    expect(generated.wrapped.includes(generated.plaintext)).toBe(false);
    expect((await kms.decryptDataKey(keyArn, generated.wrapped, context)).equals(generated.plaintext)).toBe(true);
  });

  it('the KMS itself enforces the encryption context: a moved wrapped key fails at Decrypt', async () => {
    const { wrapped } = await kms.generateDataKey(keyArn, context);
    for (const part of ['namespace', 'workspace', 'connection', 'field'] as const) {
      const err = await kms
        .decryptDataKey(keyArn, wrapped, encryptionContext({ ...binding, [part]: 'other' }))
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(CiphertextRejectedError);
      // The failing layer is the KMS (an SDK InvalidCiphertextException), not our AES-GCM.
      expect((err as Error).cause).toBeInstanceOf(InvalidCiphertextException);
    }
    await expect(kms.decryptDataKey(keyArn, wrapped, {})).rejects.toBeInstanceOf(CiphertextRejectedError);
  });

  it('an envelope opened under another binding is refused by the KMS before any AES-GCM', async () => {
    const envelope = new Envelope({ providers: new Map([['aws-kms', kms]]), cache: new DekCache() });
    const sealed = await envelope.seal('pg-password-123', binding, { provider: 'aws-kms', keyId: keyArn });
    const err = await envelope.open(sealed, { ...binding, workspace: 'intruder' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CiphertextRejectedError);
    expect((err as Error).cause).toBeInstanceOf(InvalidCiphertextException);
  });

  it('decrypt is pinned to the recorded key', async () => {
    const other = await createKmsKey(moto.endpoint);
    const { wrapped } = await kms.generateDataKey(keyArn, context);
    // Real KMS answers IncorrectKeyException (→ CiphertextRejectedError); moto answers AccessDeniedException.
    const err = await kms.decryptDataKey(other, wrapped, context).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KmsAccessDeniedError);
  });

  it('an unknown key is KeyNotFoundError', async () => {
    const missing = keyArn.replace(/[0-9a-f-]{36}$/, '00000000-0000-0000-0000-000000000000');
    await expect(kms.generateDataKey(missing, context)).rejects.toBeInstanceOf(KeyNotFoundError);
    await expect(kms.generateDataKey('alias/does-not-exist', context)).rejects.toBeInstanceOf(KeyNotFoundError);
  });

  it('an alias resolves to its key ARN, which the envelope records and recognises', async () => {
    const client = new KMSClient({ region: MOTO_REGION, endpoint: moto.endpoint, credentials: MOTO_CREDENTIALS });
    await client.send(new CreateAliasCommand({ AliasName: 'alias/atoll-test', TargetKeyId: keyArn }));
    client.destroy();
    const envelope = new Envelope({ providers: new Map([['aws-kms', kms]]) });
    const alias = { provider: 'aws-kms', keyId: 'alias/atoll-test' };
    const sealed = await envelope.seal('value-behind-alias', binding, alias);
    expect(envelope.describe(sealed).keyId).toBe(keyArn);
    expect(envelope.isWrappedWith(sealed, alias)).toBe(true);
    expect(await new Envelope({ providers: new Map([['aws-kms', kms]]) }).open(sealed, binding)).toBe(
      'value-behind-alias',
    );
  });

  it('a stopped KMS fails fast with the retryable KmsUnavailableError', async () => {
    const doomed = await startMoto();
    const key = await createKmsKey(doomed.endpoint);
    const provider = new AwsKmsProvider({
      region: MOTO_REGION,
      endpoint: doomed.endpoint,
      credentials: MOTO_CREDENTIALS,
      maxAttempts: 1,
      connectionTimeoutMs: 500,
      requestTimeoutMs: 1_000,
    });
    const { wrapped } = await provider.generateDataKey(key, context);
    await doomed.stop();
    const started = Date.now();
    const err = await provider.decryptDataKey(key, wrapped, context).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KmsUnavailableError);
    expect((err as KmsUnavailableError).retryable).toBe(true);
    await expect(provider.generateDataKey(key, context)).rejects.toBeInstanceOf(KmsUnavailableError);
    expect(Date.now() - started).toBeLessThan(3_000);
    provider.close();
  });
});

describe('kmsError', () => {
  const meta = { $metadata: {}, message: 'x' };
  it.each([
    [
      'InvalidCiphertextException',
      new InvalidCiphertextException(meta),
      CiphertextRejectedError,
      CryptoErrorMessage.ciphertextRejected,
    ],
    ['IncorrectKeyException', new IncorrectKeyException(meta), CiphertextRejectedError, CryptoErrorMessage.wrongKey],
    [
      'AccessDeniedException',
      Object.assign(new Error('denied'), { name: 'AccessDeniedException' }),
      KmsAccessDeniedError,
      CryptoErrorMessage.kmsAccessDenied,
    ],
    ['NotFoundException', new NotFoundException(meta), KeyNotFoundError, CryptoErrorMessage.keyNotFound],
    ['KMSInvalidStateException', new KMSInvalidStateException(meta), KeyNotFoundError, CryptoErrorMessage.keyDisabled],
    ['KMSInternalException', new KMSInternalException(meta), KmsUnavailableError, CryptoErrorMessage.kmsUnavailable],
    [
      'ThrottlingException',
      Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' }),
      KmsUnavailableError,
      CryptoErrorMessage.kmsThrottled,
    ],
    [
      'ECONNREFUSED',
      Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }),
      KmsUnavailableError,
      CryptoErrorMessage.kmsUnavailable,
    ],
  ])('maps %s', (_name, sdkError, errorClass, message) => {
    const mapped = kmsError(sdkError);
    expect(mapped).toBeInstanceOf(errorClass);
    expect(mapped.message).toBe(message);
    expect(mapped.cause).toBe(sdkError);
  });
});
