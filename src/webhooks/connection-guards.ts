import type { ExternalConnection, IntegrationType } from '../api/v1alpha1/index.js';
import { REBIND_REQUESTED_ANNOTATION, REBIND_REQUESTED_BY_ANNOTATION } from '../api/v1alpha1/index.js';
import { parseEnvelope } from '../crypto/envelope-format.js';
import { changedDestinationParts, destinationParts } from '../integrations/destination.js';
import { pointer, type AdmissionRequest, type AdmissionResponse, type JsonPatchOp } from './admission.js';

/**
 * Admission checks that keep credentials where their owner meant them to go
 * (ADR 0013). Separate from sealing and validation so each stays small; the
 * webhook server calls them beside those.
 */

/** Key ids as each built-in provider records them in an envelope; other providers are not checked. */
const KEY_ID_SHAPES: Record<string, RegExp> = {
  local: /^local\/[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/,
  'aws-kms': /^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key\/[A-Za-z0-9-]{1,128}$/,
  // <mount>/keys/<name>, no `.` or `..` segment (they would name another Vault path).
  'vault-transit': /^(?!.*(?:^|\/)\.{1,2}(?:\/|$))(?:[A-Za-z0-9_.-]+\/)*[A-Za-z0-9_.-]+\/keys\/[A-Za-z0-9_.-]+$/,
};

/**
 * Refuses a `sealed` value that can never open, as far as can be told
 * without decrypting: not an atoll envelope, a provider this operator does
 * not have, or a key id of the wrong shape. Only values new in this request
 * are checked, so an unchanged value (maybe sealed long ago) never blocks an
 * unrelated edit. Never echoes the value.
 */
export function checkSealedValues(req: AdmissionRequest, providers: readonly string[] | undefined): string | undefined {
  const conn = req.object as ExternalConnection;
  const old = req.operation === 'UPDATE' ? (req.oldObject as ExternalConnection | undefined) : undefined;
  for (const [field, source] of Object.entries(conn?.spec?.credentials ?? {})) {
    const sealed = source?.sealed;
    if (sealed === undefined || sealed === old?.spec?.credentials?.[field]?.sealed) continue;
    const at = `spec.credentials.${field}.sealed`;
    let envelope;
    try {
      envelope = parseEnvelope(sealed);
    } catch {
      return `${at} is not a complete atoll ciphertext (atoll:v1:<provider>:<keyId>:<wrappedKey>:<nonce>:<ciphertext>); copy the whole value from atoll seal, or set value instead`;
    }
    if (providers !== undefined && !providers.includes(envelope.provider)) {
      return `${at} names KMS provider "${envelope.provider}", which this atoll is not configured with (it has: ${providers.join(', ')}); seal the value in this cluster with atoll seal`;
    }
    const shape = KEY_ID_SHAPES[envelope.provider];
    if (shape && !shape.test(envelope.keyId)) {
      return `${at} names a key id that is not a ${envelope.provider} key id; seal the value in this cluster with atoll seal`;
    }
  }
  return undefined;
}

export interface DestinationCheck {
  /** Set when the update must be refused. */
  deny?: string;
  /** Said to the user when the update is allowed but will stop a credential. */
  warnings: string[];
}

/**
 * An UPDATE that changes where credentials go (the destination parts of its
 * settings: scheme, host, port, TLS, how the credential is presented, and
 * whatever the type declares) without supplying the sealed credentials again
 * is refused: they are sealed for the old destination and would stop
 * working. A `secretKeyRef` credential is allowed with a warning, because
 * only the Secret's owner can approve the new destination.
 */
export function checkDestinationChange(req: AdmissionRequest, type: IntegrationType | undefined): DestinationCheck {
  const conn = req.object as ExternalConnection;
  const old = req.operation === 'UPDATE' ? (req.oldObject as ExternalConnection | undefined) : undefined;
  if (!old || !type || old.spec?.type !== conn.spec?.type) return { warnings: [] };
  const changed = changedDestinationParts(
    destinationParts(type, old.spec?.settings),
    destinationParts(type, conn.spec?.settings),
  );
  if (changed.length === 0) return { warnings: [] };
  const settings = changedSettings(old.spec?.settings, conn.spec?.settings);
  const what = `${settings.length ? settings.map((s) => `spec.settings.${s}`).join(', ') : 'spec.settings'} changes where this connection sends its credentials (${changed.join(', ')})`;
  const unchanged = (field: string) =>
    JSON.stringify(conn.spec?.credentials?.[field]) === JSON.stringify(old.spec?.credentials?.[field]);
  const fields = Object.keys(conn.spec?.credentials ?? {}).filter(unchanged);
  const sealed = fields.filter((f) => conn.spec.credentials![f]!.sealed !== undefined);
  const referenced = fields.filter((f) => conn.spec.credentials![f]!.secretKeyRef !== undefined);
  const warnings = referenced.map(
    (f) =>
      `${what}: spec.credentials.${f}.secretKeyRef stops being used until the owner of Secret ${conn.spec.credentials![f]!.secretKeyRef!.name} approves the new destination (the connection's status says how)`,
  );
  if (sealed.length === 0) return { warnings };
  const name = conn.metadata?.name ?? '<connection>';
  const list = sealed.map((f) => `spec.credentials.${f}`).join(', ');
  return {
    warnings,
    deny: `${what}, but ${list} ${sealed.length === 1 ? 'is' : 'are'} sealed for the previous destination and would stop working. Supply ${sealed.length === 1 ? 'it' : 'them'} again in the same change: set spec.credentials.<field>.value beside the new settings (kubectl apply, edit or patch), or use a sealed value made for the new settings by atoll seal; or keep the previous ${settings.length ? settings.join(', ') : 'settings'} of ${name}`,
  };
}

function changedSettings(
  before: Record<string, unknown> | undefined,
  after: Record<string, unknown> | undefined,
): string[] {
  const keys = new Set([...Object.keys(before ?? {}), ...Object.keys(after ?? {})]);
  return [...keys].filter((k) => JSON.stringify(before?.[k] ?? null) !== JSON.stringify(after?.[k] ?? null)).sort();
}

/**
 * Records who asked for a rebind: when `atoll.dev/rebind-requested` is new or
 * changed, `atoll.dev/rebind-requested-by` is set to the request's
 * authenticated user; any other change to it is put back. The operator names
 * that user in the Event of the rebind, so the record cannot be forged by
 * the one who confirms.
 */
export function stampRebind(req: AdmissionRequest): JsonPatchOp[] {
  const conn = req.object as ExternalConnection;
  const old = req.operation === 'UPDATE' ? (req.oldObject as ExternalConnection | undefined) : undefined;
  const annotations = conn?.metadata?.annotations ?? {};
  const before = old?.metadata?.annotations ?? {};
  const path = `/metadata/annotations/${pointer(REBIND_REQUESTED_BY_ANNOTATION)}`;
  const requested = annotations[REBIND_REQUESTED_ANNOTATION];
  const by = annotations[REBIND_REQUESTED_BY_ANNOTATION];
  let want: string | undefined;
  if (requested !== undefined && requested !== before[REBIND_REQUESTED_ANNOTATION])
    want = req.userInfo?.username ?? 'unknown';
  else want = requested === undefined ? undefined : before[REBIND_REQUESTED_BY_ANNOTATION];
  if (want === by) return [];
  if (want === undefined) return [{ op: 'remove', path }];
  if (conn.metadata?.annotations === undefined)
    return [{ op: 'add', path: '/metadata/annotations', value: { [REBIND_REQUESTED_BY_ANNOTATION]: want } }];
  return [{ op: by === undefined ? 'add' : 'replace', path, value: want }];
}

/** Adds JSON patch operations to an allowing admission response (a refusal stays as it is). */
export function withPatch(res: AdmissionResponse, ops: JsonPatchOp[]): AdmissionResponse {
  if (!res.allowed || ops.length === 0) return res;
  const existing = res.patch ? (JSON.parse(Buffer.from(res.patch, 'base64').toString('utf8')) as JsonPatchOp[]) : [];
  return {
    ...res,
    patchType: 'JSONPatch',
    patch: Buffer.from(JSON.stringify([...existing, ...ops])).toString('base64'),
  };
}
