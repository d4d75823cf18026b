import { ProviderRegistry } from '../provider-registry.js';
import { AwsKmsProvider, type AwsKmsProviderOptions } from './aws-kms.js';
import { LocalKmsProvider, type LocalKmsProviderOptions } from './local.js';
import { VaultTransitProvider, type VaultTransitProviderOptions } from './vault-transit.js';

export { ProviderRegistry } from '../provider-registry.js';
export { AWS_KMS_PROVIDER_NAME, AwsKmsProvider, type AwsKmsProviderOptions } from './aws-kms.js';
export { LOCAL_PROVIDER_NAME, LocalKmsProvider, type LocalKmsProviderOptions } from './local.js';
export { rewrapEnvelope, transitKeyVersion, VAULT_TRANSIT_PROVIDER_NAME, VaultTransitProvider, type VaultTransitProviderOptions } from './vault-transit.js';

/** Which providers to enable; each one present is registered. */
export interface ProvidersConfig {
  local?: LocalKmsProviderOptions;
  awsKms?: AwsKmsProviderOptions;
  vaultTransit?: VaultTransitProviderOptions;
}

/**
 * The one place providers are registered, explicitly and by name. Adding
 * Vault Transit, GCP KMS or Azure Key Vault means one more line here; a
 * duplicate name throws at start-up.
 */
export function createProviderRegistry(config: ProvidersConfig): ProviderRegistry {
  const registry = new ProviderRegistry();
  if (config.local) registry.register(new LocalKmsProvider(config.local));
  if (config.awsKms) registry.register(new AwsKmsProvider(config.awsKms));
  if (config.vaultTransit) registry.register(new VaultTransitProvider(config.vaultTransit));
  return registry;
}
