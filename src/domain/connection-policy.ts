import type { ExternalConnection, IntegrationType, Workspace } from '../api/v1alpha1/index.js';
import { Reason } from '../api/v1alpha1/index.js';
import { looksSealed } from '../crypto/envelope-format.js';
import { validateSettings } from '../integrations/settings.js';

/** Largest plaintext credential accepted (bytes of UTF-8). */
export const MAX_CREDENTIAL_BYTES = 8192;

export interface PolicyProblem {
  reason: string;
  field: string;
  message: string;
}

/**
 * Checks a connection against its workspace and type. Admission runs this to
 * refuse bad input; the reconciler runs it again in case admission was
 * bypassed. Messages name the field and the fix and never echo a value.
 */
export function checkConnection(
  conn: Pick<ExternalConnection, 'spec' | 'metadata'>,
  ws: Workspace | undefined,
  type: IntegrationType | undefined,
): PolicyProblem[] {
  const ns = conn.metadata.namespace;
  if (!ws) {
    return [
      {
        reason: Reason.WorkspaceNotFound,
        field: 'metadata.namespace',
        message: `namespace ${ns} has no Workspace, so it cannot hold connections; ask your platform team to create a Workspace in it`,
      },
    ];
  }
  const typeName = conn.spec?.type;
  if (!type) {
    return [
      {
        reason: Reason.TypeNotFound,
        field: 'spec.type',
        message: `IntegrationType "${typeName}" does not exist; list the available ones with kubectl get integrationtypes`,
      },
    ];
  }
  const problems: PolicyProblem[] = [];
  const allowed = ws.spec?.policy?.allowedTypes ?? [];
  if (allowed.length > 0 && !allowed.includes(typeName)) {
    problems.push({
      reason: Reason.TypeNotAllowed,
      field: 'spec.type',
      message: `type "${typeName}" is not allowed in workspace ${ws.metadata.name} (its spec.policy.allowedTypes lists: ${allowed.join(', ')}); use one of those or ask your platform team to add it`,
    });
  }
  // spec.policy.maxConnections is not counted here: a count from a cache lets a
  // parallel burst through. The Workspace reconciler keeps ResourceQuota
  // atoll-connections, which the API server enforces exactly.
  const settings = validateSettings(type, conn.spec?.settings ?? {});
  if (!settings.ok) {
    for (const e of settings.errors)
      problems.push({ reason: Reason.InvalidSettings, field: e.field, message: `${e.field}: ${e.message}` });
  }
  for (const [path, value] of stringLeaves(conn.spec?.settings ?? {}, 'spec.settings')) {
    if (CONTROL_CHARS.test(value))
      problems.push({
        reason: Reason.InvalidSettings,
        field: path,
        message: `${path} contains control characters; remove them`,
      });
  }
  const declared = new Map((type.spec.credentialFields ?? []).map((f) => [f.name, f]));
  const given = conn.spec?.credentials ?? {};
  for (const [field, source] of Object.entries(given)) {
    const path = `spec.credentials.${field}`;
    if (!declared.has(field)) {
      problems.push({
        reason: Reason.InvalidSettings,
        field: path,
        message: `${path}: type "${typeName}" has no credential field "${field}"; its fields are: ${[...declared.keys()].join(', ')}`,
      });
      continue;
    }
    if (source.sealed !== undefined && !looksSealed(source.sealed)) {
      problems.push({
        reason: Reason.CiphertextRejected,
        field: `${path}.sealed`,
        message: `${path}.sealed is not an atoll:v1 sealed value; produce one with atoll seal`,
      });
    }
  }
  for (const [name, f] of declared) {
    if (f.required && !(name in given)) {
      problems.push({
        reason: Reason.CredentialsMissing,
        field: `spec.credentials.${name}`,
        message: `spec.credentials.${name} is required by type "${typeName}"; supply it as value, sealed or secretKeyRef`,
      });
    }
  }
  return problems;
}

export type CredentialFormat = 'multiline' | 'pem' | 'json';

/**
 * Rejects empty, whitespace-only and oversize plaintext, and values that do not
 * have the shape the type's credential field declares (`format`), without
 * echoing the value. Unset format: one line, no control characters.
 */
export function checkPlaintext(field: string, value: string, format?: CredentialFormat): string | undefined {
  const path = `spec.credentials.${field}.value`;
  if (value.length === 0) return `${path} is empty; supply the credential or remove the field`;
  if (value.trim().length === 0) return `${path} is only whitespace; supply the credential or remove the field`;
  if (Buffer.byteLength(value, 'utf8') > MAX_CREDENTIAL_BYTES)
    return `${path} is longer than ${MAX_CREDENTIAL_BYTES} bytes`;
  if (format === undefined) {
    if (CONTROL_CHARS.test(value))
      return `${path} contains control characters (such as a trailing newline); remove them (this field is one line; types declare multi-line fields with format)`;
    return undefined;
  }
  if (CONTROL_CHARS_EXCEPT_LINES.test(value))
    return `${path} contains control characters other than newlines and tabs; remove them`;
  if (format === 'pem') return checkPem(path, value);
  if (format === 'json') return checkJson(path, value);
  return undefined;
}

// C0 controls (including tab/newline) and DEL: never part of a real token, often a copy-paste accident.
const CONTROL_CHARS = /[\u0000-\u001f\u007f]/;
const CONTROL_CHARS_EXCEPT_LINES = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/;

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([\s\S]*?)-----END ([A-Z0-9 ]+)-----/g;

/** One or more well-formed PEM blocks and nothing else (messages describe the shape, never the content). */
function checkPem(path: string, value: string): string | undefined {
  const hint =
    'expected PEM: "-----BEGIN <LABEL>-----", base64 lines, "-----END <LABEL>-----" (paste the whole file, for example with --field f < key.pem)';
  let blocks = 0;
  let rest = value;
  for (const m of value.matchAll(PEM_BLOCK)) {
    if (m[1] !== m[3]) return `${path}: a PEM block begins with one label and ends with another; ${hint}`;
    const body = m[2]!
      .split(/\r?\n/)
      .filter((l) => l.trim() !== '' && !l.includes(':'))
      .join('');
    if (body.replace(/\s/g, '').length === 0 || !/^[A-Za-z0-9+/]+={0,2}$/.test(body.replace(/\s/g, '')))
      return `${path}: a PEM block's body is not base64; ${hint}`;
    blocks++;
    rest = rest.replace(m[0], '');
  }
  if (blocks === 0) return `${path} is not PEM; ${hint}`;
  if (rest.trim() !== '') return `${path} has text outside its PEM blocks; ${hint}`;
  return undefined;
}

function checkJson(path: string, value: string): string | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    // JSON.parse's message quotes the input: say where instead.
    return `${path} is not valid JSON; paste the whole key file (for example with --field f < key.json)`;
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return `${path} must be a JSON object`;
  return undefined;
}

function* stringLeaves(v: unknown, path: string): Generator<[string, string]> {
  if (typeof v === 'string') yield [path, v];
  else if (Array.isArray(v)) for (let i = 0; i < v.length; i++) yield* stringLeaves(v[i], `${path}[${i}]`);
  else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) yield* stringLeaves(x, `${path}.${k}`);
}
