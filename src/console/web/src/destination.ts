import type { IntegrationType } from './types';

/** Mirrors src/integrations/destination.ts (binding format 2): the driver default when a type declares no list. */
const DRIVER_DESTINATION_SETTINGS = [
  'host',
  'port',
  'endpoint',
  'url',
  'bucket',
  'region',
  'forcePathStyle',
  'tls',
  'sslmode',
  'auth',
];
const REFERENCE = /\{\{\s*settings\.([A-Za-z_][A-Za-z0-9_-]*)\s*\}\}/g;

type Spec = IntegrationType['spec'] & {
  probe?: { http?: { headers?: unknown; body?: unknown; auth?: unknown } };
  gateway?: { headers?: unknown; auth?: unknown };
  destination?: { settings?: string[]; includePath?: boolean };
};

function references(value: unknown, into: Set<string>): void {
  if (typeof value === 'string') for (const m of value.matchAll(REFERENCE)) into.add(m[1]!);
  else if (value && typeof value === 'object') for (const v of Object.values(value)) references(v, into);
}

/**
 * The settings that decide where a type's credentials are sent and how they
 * are presented. Stored ciphertext is bound to them, so changing one needs
 * the credentials again (the server enforces this at admission; the form only
 * explains it in advance). URL-valued settings count by scheme, host and port.
 */
export function destinationSettings(type: IntegrationType): string[] {
  const spec = type.spec as Spec;
  const names = new Set<string>();
  references(
    [
      spec.probe?.http?.url,
      spec.probe?.http?.auth,
      spec.probe?.http?.headers,
      spec.probe?.http?.body,
      spec.gateway?.baseURL,
      spec.gateway?.auth,
      spec.gateway?.headers,
    ],
    names,
  );
  const declared = Object.keys(spec.settingsSchema?.properties ?? {});
  if (spec.destination?.settings) for (const n of spec.destination.settings) names.add(n);
  else if (spec.probe?.driver) for (const n of DRIVER_DESTINATION_SETTINGS) if (declared.includes(n)) names.add(n);
  return [...names].sort();
}

function withDefaults(type: IntegrationType, settings: Record<string, unknown> | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, p] of Object.entries(type.spec.settingsSchema?.properties ?? {}))
    if (p.default !== undefined) out[k] = p.default;
  return { ...out, ...(settings ?? {}) };
}

/** A URL counts by scheme, host and port (and path where the type declares it); anything else as it is. */
function target(value: unknown, includePath: boolean): string {
  if (typeof value === 'string' && /^https?:\/\//i.test(value)) {
    try {
      const url = new URL(value);
      const port = url.port || (url.protocol === 'https:' ? '443' : '80');
      return `${url.protocol}//${url.hostname}:${port}${includePath ? url.pathname : ''}`;
    } catch {
      return value;
    }
  }
  return JSON.stringify(value ?? null);
}

/** The destination settings whose value differs between two settings objects. */
export function changedDestination(
  type: IntegrationType,
  before: Record<string, unknown> | undefined,
  after: Record<string, unknown> | undefined,
): string[] {
  const a = withDefaults(type, before);
  const b = withDefaults(type, after);
  const includePath = (type.spec as Spec).destination?.includePath === true;
  return destinationSettings(type).filter((n) => target(a[n], includePath) !== target(b[n], includePath));
}
