/**
 * JSON Schema validators built from the CRDs' openAPIV3Schema at run time, so
 * the schema the API server enforces and the one atoll checks with are the
 * same bytes. They are the typed boundary for objects that have not (yet)
 * been through the API server: manifests read by the CLI, objects inside
 * admission reviews (mutating webhooks run before schema validation), and
 * anything a reconciler re-checks when a webhook was bypassed.
 *
 * Only the OpenAPI part is checked here. The CEL rules
 * (`x-kubernetes-validations`) are enforced by the API server on every write
 * and cannot be bypassed, so they are not duplicated.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv, type AnySchemaObject, type ErrorObject, type ValidateFunction } from 'ajv';
import { parse } from 'yaml';
import type { ExternalConnection, IntegrationType, Workspace } from './generated.js';

/** The kinds atoll defines, mapped to their TypeScript types. */
export interface ApiKinds {
  Workspace: Workspace;
  ExternalConnection: ExternalConnection;
  IntegrationType: IntegrationType;
}
export type ApiKind = keyof ApiKinds;

/** CRD file of each kind, relative to the package root. */
export const CRD_FILES: Readonly<Record<ApiKind, string>> = Object.freeze({
  Workspace: 'crds/atoll.dev_workspaces.yaml',
  ExternalConnection: 'crds/atoll.dev_externalconnections.yaml',
  IntegrationType: 'crds/atoll.dev_integrationtypes.yaml',
});

/**
 * Outcome of a validation. Problems name the field and the rule, never the
 * value: an object under validation may hold a plaintext credential.
 */
export type ValidationResult<T> = { ok: true; value: T } | { ok: false; problems: string[] };

export type ApiValidator<T> = (obj: unknown) => ValidationResult<T>;

export type ApiValidators = { readonly [K in ApiKind]: ApiValidator<ApiKinds[K]> };

const PACKAGE_ROOT_NOT_FOUND = 'package root not found: no package.json above this module';
const CRD_UNREADABLE = 'cannot read CRD schema';

/** The keywords Kubernetes adds to OpenAPI; structural meaning only, nothing for ajv to check. */
const KUBERNETES_KEYWORDS = [
  'x-kubernetes-validations',
  'x-kubernetes-preserve-unknown-fields',
  'x-kubernetes-list-type',
  'x-kubernetes-list-map-keys',
  'x-kubernetes-map-type',
  'x-kubernetes-int-or-string',
  'x-kubernetes-embedded-resource',
];

/** RFC 3339 date-time, as metav1.Time accepts it. */
const DATE_TIME = /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;

/**
 * Directory holding the nearest package.json above `from`. Lets the same code
 * find `crds/` from `src/` under vitest and from `dist/` when compiled.
 */
export function findPackageRoot(from: string | URL = import.meta.url): string {
  let dir = path.dirname(
    typeof from === 'string' && !from.startsWith('file:') ? path.resolve(from) : fileURLToPath(from),
  );
  for (;;) {
    if (existsSync(path.join(dir, 'package.json'))) return dir;
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(PACKAGE_ROOT_NOT_FOUND);
    dir = parent;
  }
}

/** The openAPIV3Schema of a kind's storage version, read from its CRD file. */
export function loadCrdSchema(kind: ApiKind, root: string = findPackageRoot()): AnySchemaObject {
  const file = path.join(root, CRD_FILES[kind]);
  let crd: { spec?: { versions?: { storage?: boolean; schema?: { openAPIV3Schema?: AnySchemaObject } }[] } };
  try {
    crd = parse(readFileSync(file, 'utf8')) as typeof crd;
  } catch (err) {
    throw new Error(`${CRD_UNREADABLE}: ${CRD_FILES[kind]}`, { cause: err });
  }
  const schema = crd.spec?.versions?.find((v) => v.storage)?.schema?.openAPIV3Schema;
  if (!schema) throw new Error(`${CRD_UNREADABLE}: ${CRD_FILES[kind]} has no openAPIV3Schema`);
  return schema;
}

/** Compiles a validator per kind from the CRDs below `root` (the package root by default). */
export function createApiValidators(root: string = findPackageRoot()): ApiValidators {
  const ajv = new Ajv({ allErrors: true, strict: true, strictRequired: false });
  for (const keyword of KUBERNETES_KEYWORDS) ajv.addKeyword({ keyword });
  ajv.addFormat('date-time', DATE_TIME);
  ajv.addFormat('int32', {
    type: 'number',
    validate: (n: number) => Number.isInteger(n) && n >= -(2 ** 31) && n < 2 ** 31,
  });
  ajv.addFormat('int64', { type: 'number', validate: (n: number) => Number.isSafeInteger(n) });
  const make = <K extends ApiKind>(kind: K): ApiValidator<ApiKinds[K]> => {
    const validate: ValidateFunction = ajv.compile(loadCrdSchema(kind, root));
    return (obj) =>
      validate(obj)
        ? { ok: true, value: obj as ApiKinds[K] }
        : { ok: false, problems: describe(validate.errors ?? []) };
  };
  return Object.freeze({
    Workspace: make('Workspace'),
    ExternalConnection: make('ExternalConnection'),
    IntegrationType: make('IntegrationType'),
  });
}

let defaultValidators: ApiValidators | undefined;

/** Validators for the CRDs shipped with this package, compiled on first use. */
export function apiValidators(): ApiValidators {
  defaultValidators ??= createApiValidators();
  return defaultValidators;
}

/** Turns ajv errors into `field.path: rule` lines without echoing any value. */
function describe(errors: readonly ErrorObject[]): string[] {
  const lines = errors.map((e) => {
    const field = toFieldPath(
      e.instancePath,
      e.keyword === 'required' ? String(e.params['missingProperty']) : undefined,
    );
    const allowed = e.keyword === 'enum' ? ` (${(e.params['allowedValues'] as unknown[]).join(', ')})` : '';
    return `${field || '(root)'}: ${e.message ?? e.keyword}${allowed}`;
  });
  return [...new Set(lines)];
}

/** `/spec/members/0/role` becomes `spec.members[0].role`, as kubectl names fields. */
function toFieldPath(instancePath: string, child?: string): string {
  const segments = instancePath
    .split('/')
    .slice(1)
    .map((s) => s.replaceAll('~1', '/').replaceAll('~0', '~'));
  if (child !== undefined) segments.push(child);
  return segments.reduce((acc, s) => (/^\d+$/.test(s) ? `${acc}[${s}]` : acc ? `${acc}.${s}` : s), '');
}
