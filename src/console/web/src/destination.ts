import type { IntegrationType } from './types';

/** Mirrors src/integrations/destination.ts: settings a protocol driver sends credentials to. */
const DRIVER_DESTINATION_SETTINGS = ['host', 'port', 'endpoint', 'url', 'bucket', 'region', 'forcePathStyle', 'tls', 'sslmode', 'auth'];
const REFERENCE = /\{\{\s*settings\.([A-Za-z_][A-Za-z0-9_-]*)\s*\}\}/g;

/**
 * The settings that decide where a type's credentials are sent. Stored
 * ciphertext is bound to them, so changing one needs the credentials again
 * (the server enforces this; the form only explains it in advance).
 */
export function destinationSettings(type: IntegrationType): string[] {
  const spec = type.spec;
  const names = new Set<string>();
  for (const t of [spec.probe?.http?.url, spec.probe?.http?.auth?.type, spec.gateway?.baseURL, spec.gateway?.auth?.type]) {
    for (const m of (t ?? '').matchAll(REFERENCE)) names.add(m[1]!);
  }
  if (spec.probe?.driver) {
    const declared = Object.keys(spec.settingsSchema?.properties ?? {});
    for (const n of DRIVER_DESTINATION_SETTINGS) if (declared.includes(n)) names.add(n);
  }
  return [...names].sort();
}

function withDefaults(type: IntegrationType, settings: Record<string, unknown> | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, p] of Object.entries(type.spec.settingsSchema?.properties ?? {})) if (p.default !== undefined) out[k] = p.default;
  return { ...out, ...(settings ?? {}) };
}

/** The destination settings whose value differs between two settings objects. */
export function changedDestination(type: IntegrationType, before: Record<string, unknown> | undefined, after: Record<string, unknown> | undefined): string[] {
  const a = withDefaults(type, before);
  const b = withDefaults(type, after);
  return destinationSettings(type).filter((n) => JSON.stringify(a[n] ?? null) !== JSON.stringify(b[n] ?? null));
}
