import { LAST_CHANGE_ANNOTATION, type ExternalConnection } from '../api/v1alpha1/index.js';
import { auditGroups, formatLastChange } from '../domain/last-change.js';
import { deepEqual } from '../util/deep-equal.js';
import { actorOf } from './actor.js';
import { allow, pointer, type AdmissionRequest, type AdmissionResponse, type JsonPatchOp } from './admission.js';

const IGNORED_ANNOTATIONS = new Set([LAST_CHANGE_ANNOTATION, 'kubectl.kubernetes.io/last-applied-configuration']);

/**
 * Adds the `atoll.dev/last-change-by` annotation to the mutating webhook's
 * answer: the actor from userInfo and the names of the fields that change
 * (credentials compared after sealing, so re-applying the same value is no
 * rotation). An update that changes nothing tracked keeps the stored
 * annotation, also when the client tried to write it or a server-side apply
 * dropped it: only admission sets it.
 */
export function stampLastChange(req: AdmissionRequest, sealed: AdmissionResponse, now = Date.now()): AdmissionResponse {
  // A dry run changes nothing, and its output (atoll seal) goes to Git: a stamp there would fight every sync.
  if (req.dryRun || !sealed.allowed || (req.operation !== 'CREATE' && req.operation !== 'UPDATE')) return sealed;
  const ops: JsonPatchOp[] = sealed.patch
    ? (JSON.parse(Buffer.from(sealed.patch, 'base64').toString('utf8')) as JsonPatchOp[])
    : [];
  const conn = req.object as ExternalConnection;
  const old = req.oldObject as ExternalConnection | undefined;
  const changed = req.operation === 'CREATE' ? createdFields(conn) : changedFields(old, conn, ops);
  // The audit log records these at Metadata level too (as seal.externalconnections.atoll.dev/changed-fields):
  // "who rotated billing-api last week" is then one query over the audit log.
  const stamp = req.operation === 'CREATE' || changed.length > 0;
  const audited: AdmissionResponse = stamp
    ? {
        ...sealed,
        auditAnnotations: {
          ...sealed.auditAnnotations,
          'changed-fields': changed.join(','),
          'audit-reasons': auditGroups({ user: '', at: '', operation: req.operation, changed })
            .map((g) => g.reason)
            .join(','),
        },
      }
    : sealed;
  const annotations = conn.metadata?.annotations;
  const current = annotations?.[LAST_CHANGE_ANNOTATION];
  const wanted = stamp
    ? formatLastChange({ user: actorOf(req), at: new Date(now).toISOString(), operation: req.operation, changed })
    : old?.metadata?.annotations?.[LAST_CHANGE_ANNOTATION];
  if (wanted === current) return audited;
  const path = `/metadata/annotations/${pointer(LAST_CHANGE_ANNOTATION)}`;
  if (wanted === undefined) ops.push({ op: 'remove', path });
  else if (annotations === undefined || annotations === null)
    ops.push({ op: 'add', path: '/metadata/annotations', value: { [LAST_CHANGE_ANNOTATION]: wanted } });
  else ops.push({ op: 'add', path, value: wanted });
  return { ...audited, ...allow(req.uid, ops) };
}

/** A credential source as it will be stored: the sealing patch's value when it replaced one. */
function storedSource(conn: ExternalConnection, ops: JsonPatchOp[], field: string): unknown {
  const op = ops.find((o) => o.path === `/spec/credentials/${pointer(field)}` && o.op !== 'remove');
  return op ? op.value : conn.spec?.credentials?.[field];
}

function createdFields(conn: ExternalConnection): string[] {
  return [
    ...Object.keys(conn.spec?.credentials ?? {}).map((f) => `spec.credentials.${f}`),
    ...Object.keys(conn.spec?.settings ?? {}).map((k) => `spec.settings.${k}`),
  ].sort();
}

function changedFields(old: ExternalConnection | undefined, conn: ExternalConnection, ops: JsonPatchOp[]): string[] {
  const out: string[] = [];
  const oldCreds = old?.spec?.credentials ?? {};
  for (const field of new Set([...Object.keys(oldCreds), ...Object.keys(conn.spec?.credentials ?? {})])) {
    if (!deepEqual(storedSource(conn, ops, field) ?? null, oldCreds[field] ?? null))
      out.push(`spec.credentials.${field}`);
  }
  const oldSettings = old?.spec?.settings ?? {};
  const newSettings = conn.spec?.settings ?? {};
  for (const key of new Set([...Object.keys(oldSettings), ...Object.keys(newSettings)])) {
    if (!deepEqual(oldSettings[key] ?? null, newSettings[key] ?? null)) out.push(`spec.settings.${key}`);
  }
  for (const key of ['type', 'displayName', 'probe'] as const) {
    if (!deepEqual(old?.spec?.[key] ?? null, conn.spec?.[key] ?? null)) out.push(`spec.${key}`);
  }
  const oldAnn = old?.metadata?.annotations ?? {};
  const newAnn = conn.metadata?.annotations ?? {};
  for (const key of new Set([...Object.keys(oldAnn), ...Object.keys(newAnn)])) {
    if (!key.startsWith('atoll.dev/') || IGNORED_ANNOTATIONS.has(key)) continue;
    if (oldAnn[key] !== newAnn[key]) out.push(`metadata.annotations.${key}`);
  }
  return out.sort();
}
