import type { Condition, ExternalConnection, ExternalConnectionSpec } from '../api/v1alpha1/index.js';
import { CONNECTION_LABEL, managedSecretName, SEALED_SECRET_TYPE } from '../api/v1alpha1/index.js';
import { readState } from '../domain/credentials-state.js';
import type { KubeObject, SecretObject as Secret } from '../kube/client.js';
import { sharedText } from '../runtime/shared-strings.js';

/*
 * What the gateway caches of the objects it watches. It holds every connection
 * and every managed Secret of every workspace, so each view keeps only the
 * fields the gateway reads, and its type names them (ADR 0035, ADR 0036).
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
  // hidden class of their own (10,000 of them, ~1.6 MiB at 10,000 connections).
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

/** One field of a managed Secret, as the gateway may open it. */
export interface ManagedCopy {
  field: string;
  /** The sealed copy: base64 of the envelope text, as the API server serves `data`. */
  data: string;
  /** From the state annotation, kept only when a number (opening also requires a safe integer). */
  version?: number;
  /** From the state annotation: 2 for a managed copy (binding format 2); nothing else opens. */
  format?: 2;
}

/**
 * A managed Secret: what decides whether it may be served for a connection
 * (type, the connection label, the owners' uids) and its sealed copies with
 * the version and binding format of each. The state annotation it replaces
 * also carries fingerprints, digests, hints and a spec-form copy of each
 * value for Git: most of the Secret, read by the controller only.
 *
 * Anyone who may write Secrets in a workspace namespace can label one as
 * atoll's, so this never throws, and of a Secret not typed and named as the
 * managed copy of the connection its label names it keeps only names and
 * type: no owners, no copies, whatever its data or annotation hold. (Owner
 * and label are checked again where a copy is served.)
 */
export interface ManagedSecretObject extends KubeObject {
  type?: string;
  /** uids of the owners: only a Secret owned by the connection object asking counts. */
  owners: string[];
  /** One per `data` field, in its order. */
  copies: ManagedCopy[];
}

export function managedSecretView(secret: Secret): ManagedSecretObject {
  const { name, namespace, resourceVersion, labels, ownerReferences } = secret.metadata ?? {};
  const connection = labels?.[CONNECTION_LABEL];
  const view: ManagedSecretObject = {
    metadata: { name, namespace: namespace === undefined ? undefined : sharedText(namespace), resourceVersion },
    owners: [],
    copies: [],
  };
  if (connection !== undefined) view.metadata!.labels = { [CONNECTION_LABEL]: connection };
  if (secret.type !== undefined) view.type = sharedText(secret.type);
  if (secret.type !== SEALED_SECRET_TYPE || connection === undefined || name !== managedSecretName(connection))
    return view;
  view.owners = (ownerReferences ?? []).map((o) => o.uid);
  const state = readState(secret);
  for (const [field, data] of Object.entries(secret.data ?? {})) {
    const copy: ManagedCopy = { field, data };
    // Own entries only: a field named like a property of Object.prototype has no state unless written.
    const fieldState: unknown = Object.hasOwn(state, field) ? state[field] : undefined;
    if (fieldState !== null && typeof fieldState === 'object') {
      const { version, format } = fieldState as { version?: unknown; format?: unknown };
      if (typeof version === 'number') copy.version = version;
      if (format === 2) copy.format = 2;
    }
    view.copies.push(copy);
  }
  return view;
}
