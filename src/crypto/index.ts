/** The crypto layer's surface for the rest of atoll: import from here rather than from individual files. */
export { managedCopy } from './binding.js';
export { Envelope } from './envelope.js';
export * from './errors.js';
export { fingerprint } from './fingerprint.js';
export * from './providers/index.js';
export { InMemoryKeyRingStore } from './providers/local.js';
