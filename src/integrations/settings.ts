/**
 * Validates ExternalConnection settings against their IntegrationType's
 * settingsSchema (JSON Schema 2020-12 via ajv). Used by admission and again by
 * the reconciler and runProbe, so schemas are compiled once per type version
 * and cached. Errors name the field (`spec.settings.port`) and what is wrong,
 * in a form admission can return verbatim.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { Ajv2020 } from 'ajv/dist/2020.js';
import type { ErrorObject, ValidateFunction } from 'ajv/dist/2020.js';
import type { IntegrationTypeObject, IntegrationTypeSpec } from './probe-types.js';

export interface SettingsError {
  /** Path of the offending field, e.g. "spec.settings.port". */
  field: string;
  message: string;
}

export type SettingsValidation =
  | { ok: true; settings: Record<string, unknown>; errors: [] }
  | { ok: false; settings: Record<string, unknown>; errors: SettingsError[] };

export const SETTINGS_PATH = 'spec.settings';
export const ERROR_INVALID_SCHEMA = 'the IntegrationType has an invalid settingsSchema';
export const ERROR_SETTINGS_NOT_OBJECT = 'must be an object';

const MAX_CACHED_VALIDATORS = 256;
const UNKNOWN_SETTING = 'is not a known setting of this type';

/** RFC 1123 host names; IP literals are accepted too, as database and API hosts are often IPs. */
export function isHostname(value: string): boolean {
  if (isIPv4(value) || isIPv6(value)) return true;
  if (value.length === 0 || value.length > 253) return false;
  const name = value.endsWith('.') ? value.slice(0, -1) : value;
  return name.split('.').every((label) => /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/.test(label));
}

/** An absolute URI: a scheme and something WHATWG URL accepts. */
export function isAbsoluteUri(value: string): boolean {
  if (!/^[A-Za-z][A-Za-z0-9+.-]*:/.test(value) || /[\s\u0000-\u001f\u007f]/.test(value)) return false;
  try {
    new URL(value);
    return true;
  } catch {
    return false;
  }
}

function createAjv(): Ajv2020 {
  const ajv = new Ajv2020({ strict: false, useDefaults: true, allErrors: true, logger: false, verbose: true });
  ajv.addFormat('hostname', { type: 'string', validate: isHostname });
  ajv.addFormat('uri', { type: 'string', validate: isAbsoluteUri });
  ajv.addFormat('ipv4', { type: 'string', validate: (v: string) => isIPv4(v) });
  ajv.addFormat('ipv6', { type: 'string', validate: (v: string) => isIPv6(v) });
  return ajv;
}

type CompiledSchema = { validate: ValidateFunction } | { invalid: unknown };

let ajv = createAjv();
/** Keyed by type name + generation (or resourceVersion): each reconcile re-reads the object. */
const byVersion = new Map<string, CompiledSchema>();
/** Keyed by schema object identity, for callers holding a spec without metadata. */
const bySchema = new WeakMap<object, CompiledSchema>();

function compile(schema: Record<string, unknown>): CompiledSchema {
  try {
    // Compile without registering the schema's $id, so two versions of one type never clash.
    const { $id: _ignored, ...anonymous } = schema;
    return { validate: ajv.compile(anonymous) };
  } catch (err) {
    return { invalid: err };
  }
}

function versionKey(type: IntegrationTypeObject): string | undefined {
  const m = type.metadata;
  if (m?.name === undefined) return undefined;
  if (m.generation !== undefined) return `${m.name}@g${m.generation}`;
  if (m.resourceVersion !== undefined) return `${m.name}@rv${m.resourceVersion}`;
  return undefined;
}

function compiledFor(type: IntegrationTypeObject, schema: Record<string, unknown>): CompiledSchema {
  const key = versionKey(type);
  const cached = key !== undefined ? byVersion.get(key) : bySchema.get(schema);
  if (cached !== undefined) return cached;
  const compiled = compile(schema);
  if (key === undefined) {
    bySchema.set(schema, compiled);
  } else {
    if (byVersion.size >= MAX_CACHED_VALIDATORS) {
      // Old type versions pile up in ajv's own cache too: start both afresh.
      byVersion.clear();
      ajv = createAjv();
    }
    byVersion.set(key, compiled);
  }
  return compiled;
}

function fieldPath(instancePath: string, child?: string): string {
  const segments = instancePath
    .split('/')
    .slice(1)
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
  if (child !== undefined) segments.push(child);
  return segments.reduce((path, s) => (/^\d+$/.test(s) ? `${path}[${s}]` : `${path}.${s}`), SETTINGS_PATH);
}

/** Turns one ajv error into "spec.settings.port must be <= 65535"-style text. */
function describe(error: ErrorObject): SettingsError {
  const params = error.params as Record<string, unknown>;
  switch (error.keyword) {
    case 'required': {
      const field = fieldPath(error.instancePath, String(params['missingProperty']));
      return { field, message: `${field} is required` };
    }
    case 'additionalProperties': {
      const field = fieldPath(error.instancePath, String(params['additionalProperty']));
      return { field, message: `${field} ${UNKNOWN_SETTING}` };
    }
    case 'enum': {
      const field = fieldPath(error.instancePath);
      const allowed = Array.isArray(params['allowedValues'])
        ? params['allowedValues'].map((v) => JSON.stringify(v)).join(', ')
        : '';
      return { field, message: `${field} must be one of: ${allowed}` };
    }
    case 'pattern': {
      // A regular expression is no help to a person: say what the setting looks like instead.
      const field = fieldPath(error.instancePath);
      const parent = error.parentSchema as { title?: string; description?: string } | undefined;
      return {
        field,
        message: `${field} is not in the form this setting expects${parent?.description ? `: ${parent.description}` : parent?.title ? ` (${parent.title})` : ''}`,
      };
    }
    case 'format': {
      const field = fieldPath(error.instancePath);
      return { field, message: `${field} must be a valid ${String(params['format'])}` };
    }
    default: {
      const field = fieldPath(error.instancePath);
      return { field, message: `${field} ${error.message ?? 'is invalid'}` };
    }
  }
}

/**
 * Validates settings against the type's schema. Returns a copy with schema
 * defaults applied; the input is never modified.
 */
export function validateSettings(
  type: IntegrationTypeObject | IntegrationTypeSpec,
  settings: unknown,
): SettingsValidation {
  const object: IntegrationTypeObject =
    'spec' in type && typeof type.spec === 'object' && type.spec !== null
      ? type
      : { spec: type as IntegrationTypeSpec };
  const input = settings === undefined || settings === null ? {} : settings;
  if (typeof input !== 'object' || Array.isArray(input)) {
    return {
      ok: false,
      settings: {},
      errors: [{ field: SETTINGS_PATH, message: `${SETTINGS_PATH} ${ERROR_SETTINGS_NOT_OBJECT}` }],
    };
  }
  const copy = structuredClone(input) as Record<string, unknown>;
  const schema = object.spec.settingsSchema;
  if (schema === undefined) return { ok: true, settings: copy, errors: [] };

  const compiled = compiledFor(object, schema);
  if ('invalid' in compiled) {
    return { ok: false, settings: copy, errors: [{ field: 'spec.settingsSchema', message: ERROR_INVALID_SCHEMA }] };
  }
  if (compiled.validate(copy)) return { ok: true, settings: copy, errors: [] };
  const known = Object.keys((schema as { properties?: Record<string, unknown> }).properties ?? {});
  const errors = (compiled.validate.errors ?? []).map(describe).map((e) =>
    // A typo is the usual cause: list the names that would have been accepted.
    e.message.endsWith(UNKNOWN_SETTING) && known.length > 0 && e.field.split('.').length === 3
      ? { ...e, message: `${e.message} (known settings: ${known.join(', ')})` }
      : e,
  );
  const unique = errors.filter((e, i) => errors.findIndex((o) => o.message === e.message) === i);
  return { ok: false, settings: copy, errors: unique };
}
