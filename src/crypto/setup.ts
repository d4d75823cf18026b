import { readFile } from 'node:fs/promises';
import type { OperatorConfig } from '../config/operator-config.js';
import type { KubeClient } from '../kube/client.js';
import { DekCache } from './dek-cache.js';
import { Envelope } from './envelope.js';
import { createProviderRegistry, type ProvidersConfig } from './providers/index.js';
import { loadFingerprintKey, SecretKeyRingStore } from './secret-key-ring-store.js';
import type { KeyRef } from './kms-provider.js';

export interface CryptoSetup {
  envelope: Envelope;
  fingerprintKey: Buffer;
  /** The key a workspace uses when it names none. */
  defaultKey: KeyRef;
  /** Resolves a Workspace's `spec.encryption.keyId` to a provider and key. */
  keyFor(keyId: string | undefined): KeyRef;
}

/**
 * Builds the envelope from configuration. The local provider is always
 * registered (so `local/...` key ids keep working after a move to a real
 * KMS); aws-kms or vault-transit only when configured.
 */
export async function setupCrypto(
  config: OperatorConfig,
  client: KubeClient,
  opts: { fingerprints?: boolean } = {},
): Promise<CryptoSetup> {
  const providers: ProvidersConfig = { local: { store: new SecretKeyRingStore(client, config.namespace) } };
  if (config.kms.provider === 'aws-kms') {
    providers.awsKms = {
      region: config.kms.awsRegion!,
      requestTimeoutMs: config.kms.requestTimeoutMs,
      maxAttempts: 2,
      ...(config.kms.awsEndpoint ? { endpoint: config.kms.awsEndpoint } : {}),
    };
  }
  const vault = config.kms.provider === 'vault-transit' ? config.kms.vault : undefined;
  if (vault) {
    providers.vaultTransit = {
      address: vault.address,
      auth: vault.auth,
      requestTimeoutMs: config.kms.requestTimeoutMs,
      ...(vault.caFile ? { caPem: await readFile(vault.caFile, 'utf8') } : {}),
      ...(vault.namespace ? { namespace: vault.namespace } : {}),
    };
  }
  const envelope = new Envelope({
    providers: createProviderRegistry(providers),
    cache: new DekCache({ maxAgeMs: config.kms.dekCacheMaxAgeMs, idleMs: config.kms.dekCacheIdleMs }),
  });
  // The gateway only opens ciphertexts; only the controller needs (and may create) the fingerprint key.
  const fingerprintKey =
    opts.fingerprints === false ? Buffer.alloc(0) : await loadFingerprintKey(client, config.namespace);
  const keyFor = (keyId: string | undefined): KeyRef => {
    const id = keyId || config.kms.defaultKeyId;
    return {
      provider: id.startsWith('local/')
        ? 'local'
        : config.kms.provider === 'vault-transit'
          ? 'vault-transit'
          : 'aws-kms',
      keyId: id,
    };
  };
  return { envelope, fingerprintKey, defaultKey: keyFor(undefined), keyFor };
}
