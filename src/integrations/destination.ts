import { createHash } from 'node:crypto';
import type { IntegrationTypeObject, IntegrationTypeSpec } from './probe-types.js';
import { validateSettings } from './settings.js';
import { templateReferences } from './templates.js';

/** Settings that decide where a protocol driver sends a credential, and whether it is encrypted on the way. */
const DRIVER_DESTINATION_SETTINGS = ['host', 'port', 'endpoint', 'url', 'bucket', 'region', 'forcePathStyle', 'tls', 'sslmode', 'auth'];

/**
 * The settings of a type that say where its credentials go: every setting in
 * the probe URL and gateway base URL templates, and for protocol drivers the
 * host, port, endpoint and TLS settings.
 */
export function destinationSettings(type: IntegrationTypeSpec | IntegrationTypeObject): string[] {
  const spec = 'spec' in type ? type.spec : type;
  const known = memo.get(spec);
  if (known) return known;
  const names = new Set<string>();
  const templates = [spec.probe?.http?.url, spec.probe?.http?.auth?.type, (spec as { gateway?: { baseURL?: string; auth?: { type?: string } } }).gateway?.baseURL, (spec as { gateway?: { auth?: { type?: string } } }).gateway?.auth?.type];
  for (const t of templates) {
    for (const ref of t ? templateReferences(t) : []) if (ref.startsWith('settings.')) names.add(ref.slice('settings.'.length));
  }
  if (spec.probe?.driver) {
    const declared = Object.keys((spec.settingsSchema as { properties?: Record<string, unknown> } | undefined)?.properties ?? {});
    for (const n of DRIVER_DESTINATION_SETTINGS) if (declared.includes(n)) names.add(n);
  }
  const result = [...names].sort();
  memo.set(spec, result);
  return result;
}

// Types come from informer caches (a new object per change), so identity is a safe memo key.
const memo = new WeakMap<object, string[]>();

/**
 * A digest of where a connection's credentials go, bound into every
 * ciphertext beside namespace, workspace, connection and field. Pointing a
 * connection elsewhere (another host, a plaintext port) therefore makes its
 * stored credentials unusable: whoever may edit a connection cannot send a
 * credential they never saw to a server of their choosing.
 */
export function destinationDigest(type: IntegrationTypeSpec | IntegrationTypeObject, settings: Record<string, unknown> | undefined): string {
  const withDefaults = validateSettings(type, settings ?? {}).settings;
  const pairs = destinationSettings(type).map((n) => [n, withDefaults[n] ?? null]);
  return createHash('sha256').update(JSON.stringify(pairs)).digest('base64url').slice(0, 32);
}
