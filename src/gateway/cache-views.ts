import type { Condition, ExternalConnection, ExternalConnectionSpec } from '../api/v1alpha1/index.js';
import { CONNECTION_LABEL } from '../api/v1alpha1/index.js';
import type { Secret } from '../controllers/context.js';
import { readState } from '../domain/credentials-state.js';
import type { KubeObject } from '../kube/client.js';
import { sharedText } from '../runtime/shared-strings.js';

/*
 * What the gateway caches of the objects it watches. It holds every connection
 * and every managed Secret of every workspace, so each view keeps only the
 * fields the gateway reads; its type makes any other read a compile error
 * (ADR 0035, ADR 0036).
 */

/**
 * A connection: names, uid, type, settings, display name, Ready, the hint and
 * each field's version floor. The whole object with its status (conditions,
 * last probe, sealed values for Git) is about 2 KiB.
 */
export interface ConnectionObject extends KubeObject {
  spec: Pick<ExternalConnectionSpec, 'type' | 'settings' | 'displayName'>;
  status?: {
    /** Ready only, type and status only. */
    conditions?: Array<Pick<Condition, 'type' | 'status'>>;
    credentialHint?: string;
    /** The floor of each field's version (ADR 0013): a managed copy below it is a rolled-back Secret. */
    credentials?: Record<string, { version?: number }>;
  };
}

export function connectionView(conn: ExternalConnection & KubeObject): ConnectionObject {
  const { name, namespace, uid, resourceVersion } = conn.metadata ?? {};
  const { type, settings, displayName } = conn.spec ?? {};
  const view: ConnectionObject = { metadata: { name, namespace, uid, resourceVersion }, spec: { type } };
  if (settings !== undefined) view.spec.settings = settings;
  if (displayName !== undefined) view.spec.displayName = displayName;
  const status = conn.status;
  if (status === undefined) return view;
  // Built a property at a time, never from spreads alone: objects made only of spreads each got a
  // hidden class of their own (10,000 of them, ~2 MiB at 10,000 connections).
  const kept: NonNullable<ConnectionObject['status']> = {};
  const ready = status.conditions?.find((c) => c.type === 'Ready');
  if (ready) kept.conditions = [{ type: ready.type, status: ready.status }];
  if (status.credentialHint !== undefined) kept.credentialHint = status.credentialHint;
  if (status.credentials) {
    kept.credentials = {};
    for (const [field, c] of Object.entries(status.credentials))
      kept.credentials[field] = c.version !== undefined ? { version: c.version } : {};
  }
  view.status = kept;
  return view;
}

/**
 * A managed Secret: what decides whether its data may be served for a
 * connection (type, the connection label, the owners' uids) and opened (each
 * field's version and binding format), and the sealed data. The state
 * annotation it replaces also carries fingerprints, digests, hints and a
 * spec-form copy of each value for Git: most of the Secret, read by the
 * controller only.
 */
export interface ManagedSecretObject extends KubeObject {
  type?: string;
  /** Sealed copies by field (base64 of the envelope text, as the API server serves `data`). */
  data?: Record<string, string>;
  /** uids of the owners: only a Secret owned by the connection object asking counts. */
  owners: string[];
  /** Each field's version and binding format, from the state annotation; unreadable state reads as none. */
  fields: Record<string, { version?: number; format?: 2 }>;
}

export function managedSecretView(secret: Secret): ManagedSecretObject {
  const { name, namespace, resourceVersion, labels, ownerReferences } = secret.metadata ?? {};
  const connection = labels?.[CONNECTION_LABEL];
  const fields: ManagedSecretObject['fields'] = {};
  for (const [field, state] of Object.entries(readState(secret))) {
    // Kept only as read (a number, the literal 2): anything else is checked and refused where it is used.
    const kept: ManagedSecretObject['fields'][string] = {};
    if (typeof state?.version === 'number') kept.version = state.version;
    if (state?.format === 2) kept.format = 2;
    fields[field] = kept;
  }
  const view: ManagedSecretObject = {
    metadata: { name, namespace: namespace === undefined ? undefined : sharedText(namespace), resourceVersion },
    owners: (ownerReferences ?? []).map((o) => o.uid),
    fields,
  };
  if (connection !== undefined) view.metadata!.labels = { [CONNECTION_LABEL]: connection };
  if (secret.type !== undefined) view.type = sharedText(secret.type);
  if (secret.data !== undefined) view.data = secret.data;
  return view;
}
