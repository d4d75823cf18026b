import { createHash } from 'node:crypto';
import type { IntegrationTypeObject, IntegrationTypeSpec } from './probe-types.js';
import { validateSettings } from './settings.js';
import { renderUrlTemplate, templateReferences } from './templates.js';

/**
 * Settings that decide where a protocol driver sends a credential, and
 * whether it is encrypted on the way: the default when a driver type does
 * not declare `spec.destination.settings`.
 */
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

/** What a type declares about its destination (IntegrationType `spec.destination`). */
export interface DestinationDeclaration {
  /** Settings whose whole value is part of the destination (drivers: replaces the default list). */
  settings?: string[];
  /** Whether the path of the probe and gateway URLs is part of the destination (default: scheme, host and port only). */
  includePath?: boolean;
}

interface TypeShape {
  name: string;
  spec: IntegrationTypeSpec & {
    gateway?: { baseURL?: string; auth?: Record<string, unknown>; headers?: Record<string, string> };
    destination?: DestinationDeclaration;
  };
}

function shape(type: IntegrationTypeSpec | IntegrationTypeObject): TypeShape {
  if ('spec' in type && typeof type.spec === 'object' && type.spec !== null) {
    return { name: type.metadata?.name ?? '', spec: type.spec };
  }
  return { name: '', spec: type as TypeShape['spec'] };
}

/** The parts of a type that decide where its credentials go and how they are presented. */
function typeRules(spec: TypeShape['spec']): Record<string, unknown> {
  const http = spec.probe?.http as
    { url?: string; method?: string; auth?: unknown; headers?: unknown; body?: unknown } | undefined;
  return {
    driver: spec.probe?.driver ?? null,
    probe: http
      ? {
          url: http.url ?? null,
          method: http.method ?? 'GET',
          auth: http.auth ?? null,
          headers: http.headers ?? null,
          body: http.body ?? null,
        }
      : null,
    gateway: spec.gateway
      ? {
          baseURL: spec.gateway.baseURL ?? null,
          auth: spec.gateway.auth ?? null,
          headers: spec.gateway.headers ?? null,
        }
      : null,
    destination: spec.destination ?? null,
  };
}

/** Settings used where a credential is presented (auth placement, headers, body): their whole value counts. */
function presentationSettings(spec: TypeShape['spec']): string[] {
  const http = spec.probe?.http as
    { auth?: Record<string, unknown>; headers?: Record<string, string>; body?: string } | undefined;
  const templates: unknown[] = [http?.auth, http?.headers, http?.body, spec.gateway?.auth, spec.gateway?.headers];
  const names = new Set<string>();
  const visit = (v: unknown): void => {
    if (typeof v === 'string') {
      for (const ref of safeReferences(v)) if (ref.startsWith('settings.')) names.add(ref.slice('settings.'.length));
    } else if (v && typeof v === 'object') for (const x of Object.values(v)) visit(x);
  };
  templates.forEach(visit);
  return [...names];
}

function safeReferences(tpl: string): string[] {
  try {
    return templateReferences(tpl);
  } catch {
    return [];
  }
}

/** Setting names whose whole value is part of the destination (besides the URLs' origins). */
function wholeValueSettings(spec: TypeShape['spec']): string[] {
  const names = new Set(presentationSettings(spec));
  const declared = Object.keys(
    (spec.settingsSchema as { properties?: Record<string, unknown> } | undefined)?.properties ?? {},
  );
  if (spec.destination?.settings) for (const n of spec.destination.settings) names.add(n);
  else if (spec.probe?.driver) for (const n of DRIVER_DESTINATION_SETTINGS) if (declared.includes(n)) names.add(n);
  return [...names].sort();
}

/**
 * Where a URL template sends a request: scheme, host and port (and the path
 * when the type declares it). If it cannot be rendered, every setting it
 * uses counts in full, so nothing is ever left out.
 */
function urlTarget(tpl: string | undefined, settings: Record<string, unknown>, includePath: boolean): unknown {
  if (!tpl) return null;
  try {
    const url = renderUrlTemplate(tpl, { settings, credentials: {} });
    const port = url.port || (url.protocol === 'https:' ? '443' : '80');
    return `${url.protocol}//${url.hostname}:${port}${includePath ? url.pathname : ''}`;
  } catch {
    return Object.fromEntries(
      safeReferences(tpl)
        .filter((r) => r.startsWith('settings.'))
        .map((r) => [r, settings[r.slice('settings.'.length)] ?? null]),
    );
  }
}

/** A URL-valued setting counts by scheme, host and port (and path where declared); anything else as it is. */
function urlOrigin(value: unknown, includePath: boolean): unknown {
  if (typeof value !== 'string' || !/^https?:\/\//i.test(value)) return value ?? null;
  try {
    const url = new URL(value);
    const port = url.port || (url.protocol === 'https:' ? '443' : '80');
    return `${url.protocol}//${url.hostname}:${port}${includePath ? url.pathname : ''}`;
  } catch {
    return value;
  }
}

/**
 * The named parts of a connection's destination (binding format 2): the
 * type's name and its rules for where and how credentials are sent, the
 * scheme, host and port of the probe and gateway URLs, and the settings the
 * type declares (drivers default to host, port, endpoint and TLS settings).
 * Admission compares them part by part to say what an edit changed.
 */
export function destinationParts(
  type: IntegrationTypeSpec | IntegrationTypeObject,
  settings: Record<string, unknown> | undefined,
): Record<string, unknown> {
  const { name, spec } = shape(type);
  const withDefaults = validateSettings(type, settings ?? {}).settings;
  const includePath = spec.destination?.includePath === true;
  const parts: Record<string, unknown> = {
    type: name,
    'type rules': typeRules(spec),
    'probe URL': urlTarget((spec.probe?.http as { url?: string } | undefined)?.url, withDefaults, includePath),
    'gateway URL': urlTarget(spec.gateway?.baseURL, withDefaults, includePath),
  };
  for (const n of wholeValueSettings(spec)) parts[`spec.settings.${n}`] = urlOrigin(withDefaults[n], includePath);
  return parts;
}

/**
 * A digest of where and how a connection's credentials are sent, bound into
 * every ciphertext beside namespace, workspace, connection and field.
 * Pointing a connection elsewhere (another host, a plaintext port), changing
 * its type, or an IntegrationType edit that sends or presents credentials
 * differently makes the stored credentials unusable until someone supplies
 * them again or confirms (`atoll rebind`): whoever may edit a connection or
 * a type cannot send a credential they never saw to a server of their choosing.
 */
export function destinationDigest(
  type: IntegrationTypeSpec | IntegrationTypeObject,
  settings: Record<string, unknown> | undefined,
): string {
  // The gateway asks on every request; types and connections come from informer caches (a new object per
  // change), so object identity is a safe memo key.
  const byType = memo.get(type) ?? new WeakMap<object, string>();
  memo.set(type, byType);
  const key = settings ?? NO_SETTINGS;
  const known = byType.get(key);
  if (known !== undefined) return known;
  const parts = destinationParts(type, settings);
  const digest = createHash('sha256')
    .update(canonicalJson(['atoll.dev/destination/v2', parts]))
    .digest('base64url')
    .slice(0, 32);
  byType.set(key, digest);
  return digest;
}

const memo = new WeakMap<object, WeakMap<object, string>>();
const NO_SETTINGS = {};

/**
 * JSON with object keys sorted at every level: the API server returns an
 * object's keys in its own order, which must not change a digest.
 */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k] ?? null)}`);
    return `{${entries.join(',')}}`;
  }
  return JSON.stringify(value ?? null);
}

/** Names of the destination parts that differ between two part sets (for admission messages). */
export function changedDestinationParts(before: Record<string, unknown>, after: Record<string, unknown>): string[] {
  const keys = new Set([...Object.keys(before), ...Object.keys(after)]);
  return [...keys].filter((k) => canonicalJson(before[k]) !== canonicalJson(after[k])).sort();
}

/** The settings a binding format 1 digest covered (kept only to open values sealed before binding format 2). */
export function legacyDestinationSettings(type: IntegrationTypeSpec | IntegrationTypeObject): string[] {
  const spec = shape(type).spec;
  const names = new Set<string>();
  const templates = [
    spec.probe?.http?.url,
    spec.probe?.http?.auth?.type,
    spec.gateway?.baseURL,
    (spec.gateway?.auth as { type?: string } | undefined)?.type,
  ];
  for (const t of templates) {
    for (const ref of t ? templateReferences(t) : [])
      if (ref.startsWith('settings.')) names.add(ref.slice('settings.'.length));
  }
  if (spec.probe?.driver) {
    const declared = Object.keys(
      (spec.settingsSchema as { properties?: Record<string, unknown> } | undefined)?.properties ?? {},
    );
    for (const n of DRIVER_DESTINATION_SETTINGS) if (declared.includes(n)) names.add(n);
  }
  return [...names].sort();
}

/** The binding format 1 destination digest: the connection's destination settings only. Opening only, never sealing. */
export function legacyDestinationDigest(
  type: IntegrationTypeSpec | IntegrationTypeObject,
  settings: Record<string, unknown> | undefined,
): string {
  const withDefaults = validateSettings(type, settings ?? {}).settings;
  const pairs = legacyDestinationSettings(type).map((n) => [n, withDefaults[n] ?? null]);
  return createHash('sha256').update(JSON.stringify(pairs)).digest('base64url').slice(0, 32);
}

/**
 * Digest of a connection's settings as written (every setting, canonical
 * JSON): tells a move made by the connection itself from one made by its
 * IntegrationType, which only a rebind may confirm (ADR 0013).
 */
export function settingsDigest(settings: Record<string, unknown> | undefined): string {
  return createHash('sha256')
    .update(canonicalJson(settings ?? {}))
    .digest('base64url')
    .slice(0, 32);
}
