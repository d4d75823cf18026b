import type { ExternalConnection } from '../api/v1alpha1/index.js';
import { checkPlaintext } from '../domain/connection-policy.js';
import { workspaceIdentity } from '../domain/workspace-identity.js';
import type { CryptoSetup } from '../crypto/setup.js';
import { describeError } from '../runtime/describe-error.js';
import type { KeyedTokenBucket } from '../runtime/keyed-token-bucket.js';
import type { Logger } from '../runtime/logger.js';
import {
  allow,
  deny,
  pointer,
  tooManyRequests,
  type AdmissionRequest,
  type AdmissionResponse,
  type JsonPatchOp,
} from './admission.js';
import type { IntegrationType, Workspace } from '../api/v1alpha1/index.js';
import { destinationDigest } from '../integrations/destination.js';

const LAST_APPLIED = 'kubectl.kubernetes.io/last-applied-configuration';

export interface SealingDeps {
  crypto: CryptoSetup;
  workspaceOf(namespace: string): Promise<Workspace | undefined>;
  integrationType(name: string): Promise<IntegrationType | undefined>;
  log: Logger;
  /** Sealing budget per namespace (dry runs included): each sealed field costs a KMS data key. */
  limiter?: KeyedTokenBucket;
}

/**
 * Mutating admission for ExternalConnections: every `credentials.<f>.value`
 * becomes `sealed` before the object is stored, and the plaintext is scrubbed
 * from kubectl's last-applied annotation.
 *
 * Admission never decrypts (ADR 0012): every value is sealed afresh, even one
 * equal to what is stored. Comparing it with the stored ciphertext would tell
 * anyone who can send a review (or an editor with a server-side dry run)
 * whether a guess is right. The controller recognises a re-applied value by
 * its keyed fingerprint instead, so the version, hint and managed Secret do
 * not change.
 */
export async function sealConnection(req: AdmissionRequest, deps: SealingDeps): Promise<AdmissionResponse> {
  const conn = req.object as ExternalConnection;
  const creds = conn?.spec?.credentials ?? {};
  const plainFields = Object.entries(creds).filter(([, s]) => typeof s?.value === 'string');
  const annotations = conn?.metadata?.annotations ?? {};
  if (plainFields.length === 0 && !lastAppliedHasValue(annotations[LAST_APPLIED])) return allow(req.uid);

  const ns = req.namespace ?? conn.metadata?.namespace ?? '';
  if (!conn.metadata?.name) {
    return deny(
      req.uid,
      'metadata.name is required when a credential value is supplied: the name is part of what the value is sealed to (generateName cannot be used)',
    );
  }
  const ws = await deps.workspaceOf(ns);
  if (!ws)
    return deny(
      req.uid,
      `namespace ${ns} has no Workspace, so credentials cannot be sealed here; ask your platform team to create a Workspace in it`,
    );
  const identity = workspaceIdentity(ws);
  const type = await deps.integrationType(conn.spec?.type);
  if (!type)
    return deny(
      req.uid,
      `spec.type: IntegrationType "${conn.spec?.type}" does not exist; list the available ones with kubectl get integrationtypes`,
    );
  // Credentials are sealed to where they go: settings pointing elsewhere cannot open them.
  const destination = destinationDigest(type, conn.spec?.settings);
  const key = deps.crypto.keyFor(ws.spec?.encryption?.keyId);
  const old = req.operation === 'UPDATE' ? (req.oldObject as ExternalConnection | undefined) : undefined;

  const sealedByField: Record<string, string> = {};
  const ops: JsonPatchOp[] = [];
  // Every field is its own binding and so its own KMS data key, and the CRD schema (at most 16
  // fields) and validation run only after this webhook: an undeclared field is refused here, or one
  // request with hundreds of invented fields would cost hundreds of data keys for one budget charge.
  const declared = new Set((type.spec?.credentialFields ?? []).map((f) => f.name));
  const undeclared = plainFields.find(([field]) => !declared.has(field));
  if (undeclared) {
    return deny(
      req.uid,
      `spec.credentials.${undeclared[0]}: type "${conn.spec?.type}" has no credential field "${undeclared[0]}"; its fields are: ${[...declared].join(', ')}`,
    );
  }
  for (const [field, source] of plainFields) {
    const problem = checkPlaintext(
      field,
      source.value!,
      type.spec.credentialFields?.find((f) => f.name === field)?.format,
    );
    if (problem) return deny(req.uid, problem);
    // On UPDATE a merge (server-side apply, a JSON patch) keeps the stored source beside the new
    // value: the value replaces it. Anything else beside a value is ambiguous input.
    const stored = old?.spec?.credentials?.[field];
    const staleSealed = source.sealed !== undefined && source.sealed === stored?.sealed;
    const staleRef =
      source.secretKeyRef !== undefined && JSON.stringify(source.secretKeyRef) === JSON.stringify(stored?.secretKeyRef);
    if ((source.sealed !== undefined && !staleSealed) || (source.secretKeyRef !== undefined && !staleRef)) {
      return deny(req.uid, `spec.credentials.${field}: set exactly one of value, sealed or secretKeyRef`);
    }
  }

  // Charged only for requests that would reach the KMS, before they do.
  const budget = plainFields.length > 0 ? deps.limiter?.take(ns, plainFields.length) : undefined;
  if (budget && !budget.allowed) {
    deps.log.warn({ namespace: ns, fields: plainFields.length, dryRun: req.dryRun }, 'sealing rate limit reached');
    const { ratePerSecond, burst } = deps.limiter!.limits;
    return tooManyRequests(
      req.uid,
      `too many credential values sealed in namespace ${ns}: the limit is ${formatRate(ratePerSecond)} with bursts of ${burst} (server-side dry runs included); nothing was stored, retry in ${budget.retryAfterSeconds}s`,
      budget.retryAfterSeconds,
    );
  }

  for (const [field, source] of plainFields) {
    const binding = { namespace: ns, workspace: identity, connection: conn.metadata.name, field, destination };
    try {
      sealedByField[field] = await deps.crypto.envelope.seal(source.value!, binding, key);
    } catch (err) {
      deps.log.warn({ field, error: describeError(err) }, 'sealing failed');
      return deny(
        req.uid,
        `spec.credentials.${field}.value could not be sealed: the KMS is unavailable; nothing was stored, try again shortly`,
        503,
        'ServiceUnavailable',
      );
    }
    ops.push({ op: 'replace', path: `/spec/credentials/${pointer(field)}`, value: { sealed: sealedByField[field] } });
  }

  const lastApplied = annotations[LAST_APPLIED];
  if (lastApplied !== undefined) {
    const scrubbed = scrubLastApplied(lastApplied, sealedByField);
    if (scrubbed !== lastApplied) {
      ops.push(
        scrubbed === undefined
          ? { op: 'remove', path: `/metadata/annotations/${pointer(LAST_APPLIED)}` }
          : { op: 'replace', path: `/metadata/annotations/${pointer(LAST_APPLIED)}`, value: scrubbed },
      );
    }
  }
  return allow(req.uid, ops);
}

function formatRate(perSecond: number): string {
  return perSecond >= 1
    ? `${Number(perSecond.toFixed(2))} per second`
    : `${Number((perSecond * 60).toFixed(2))} per minute`;
}

function lastAppliedHasValue(text: string | undefined): boolean {
  return text !== undefined && text.includes('"value"');
}

/**
 * Replaces every credential `value` in kubectl's last-applied JSON with the
 * sealed value (so the next client-side apply computes a sane diff), and
 * drops the annotation entirely if it cannot be parsed: it must never keep a
 * plaintext.
 */
export function scrubLastApplied(text: string, sealedByField: Record<string, string>): string | undefined {
  let doc: { spec?: { credentials?: Record<string, Record<string, unknown>> } };
  try {
    doc = JSON.parse(text) as typeof doc;
  } catch {
    return undefined;
  }
  const creds = doc?.spec?.credentials;
  if (!creds || typeof creds !== 'object') return text;
  let changed = false;
  for (const [field, source] of Object.entries(creds)) {
    if (source && typeof source === 'object' && 'value' in source) {
      delete source.value;
      const sealed = sealedByField[field];
      if (sealed) source.sealed = sealed;
      changed = true;
    }
  }
  return changed ? JSON.stringify(doc) + '\n' : text;
}
