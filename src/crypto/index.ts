/** The crypto layer's public surface: import from here rather than from individual files. */
export { additionalData, BINDING_FORMAT, encryptionContext, ENVELOPE_VERSION, managedCopy, SPEC_COPY, type Binding } from './binding.js';
export { DekCache, DEK_CACHE_DEFAULTS, type DekCacheOptions, type DekCacheStats, type KmsOperation } from './dek-cache.js';
export { Envelope, looksSealed, parseEnvelope, type EnvelopeOptions, type ParsedEnvelope } from './envelope.js';
export * from './errors.js';
export { fingerprint, placeFingerprint, sameFingerprint, type CredentialPlace } from './fingerprint.js';
export { credentialHint } from './hint.js';
export type { GeneratedDataKey, KeyRef, KmsProvider } from './kms-provider.js';
export { ProviderRegistry } from './provider-registry.js';
export * from './providers/index.js';
export {
  ensureLocalKey,
  InMemoryKeyRingStore,
  keyRingFromSecretData,
  keyRingToSecretData,
  localKeyId,
  localKeyName,
  rotateLocalKey,
  type KeyRing,
  type KeyRingStore,
  type LocalKey,
} from './providers/local.js';
