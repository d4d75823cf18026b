import type { GeneratedDataKey, KmsProvider } from '../../src/crypto/kms-provider.js';

/**
 * Wraps a real provider and counts the calls that reach it, so tests can
 * assert what the KMS actually received (e.g. "1,000 opens, 1 decrypt").
 */
export class CountingProvider implements KmsProvider {
  readonly calls = { generateDataKey: 0, decryptDataKey: 0 };
  constructor(private readonly inner: KmsProvider) {}

  get name(): string {
    return this.inner.name;
  }

  generateDataKey(keyId: string, context: Record<string, string>): Promise<GeneratedDataKey> {
    this.calls.generateDataKey += 1;
    return this.inner.generateDataKey(keyId, context);
  }

  decryptDataKey(keyId: string, wrapped: Buffer, context: Record<string, string>): Promise<Buffer> {
    this.calls.decryptDataKey += 1;
    return this.inner.decryptDataKey(keyId, wrapped, context);
  }
}
