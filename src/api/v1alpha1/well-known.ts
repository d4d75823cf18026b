/**
 * Names that other systems and users match on (labels, annotations, the
 * finalizer, the managed Secret), declared once so the controllers, webhooks,
 * gateway and docs cannot drift apart.
 */

/** Label on a workspace's Namespace: `atoll.dev/workspace=<Workspace name>`. */
export const WORKSPACE_LABEL = 'atoll.dev/workspace';

/** Label on a managed Secret: `atoll.dev/connection=<ExternalConnection name>`. */
export const CONNECTION_LABEL = 'atoll.dev/connection';

/** Standard label that marks objects atoll creates and owns. */
export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';
export const MANAGED_BY_VALUE = 'atoll';

/** Annotation whose every new value asks for an immediate probe of a connection. */
export const TEST_REQUESTED_AT_ANNOTATION = 'atoll.dev/test-requested-at';

/** Finalizer on Workspaces and ExternalConnections, removed once cleanup succeeded. */
export const FINALIZER = 'atoll.dev/finalizer';

/** `type` of the Secrets that hold a connection's ciphertexts (never plaintext). */
export const SEALED_SECRET_TYPE = 'atoll.dev/sealed';

/** ClusterRole granting the verb `use` on externalconnections; tenant admins bind it for their workloads. */
export const CONNECTION_USER_CLUSTER_ROLE = 'atoll-connection-user';

/** ClusterRole granting `read-credentials` on externalconnections; tenant admins bind it for workloads that need files. */
export const CONNECTION_READER_CLUSTER_ROLE = 'atoll-connection-reader';

/** Annotation on a managed Secret: per-field {fingerprint, version, updatedAt, keyId, hint} (JSON). */
export const CREDENTIALS_STATE_ANNOTATION = 'atoll.dev/credentials';

/** Name of the managed Secret of a connection. Deterministic, so it is never looked up. */
export function managedSecretName(connectionName: string): string {
  return `${connectionName}-credentials`;
}

/**
 * Annotation on an ExternalConnection whose every new value confirms that its
 * credentials may follow a changed destination (`atoll rebind`). Editors set it.
 */
export const REBIND_REQUESTED_ANNOTATION = 'atoll.dev/rebind-requested';

/**
 * Who set the rebind annotation: written by the mutating webhook from the
 * request's authenticated user, never taken from the user (ADR 0013).
 */
export const REBIND_REQUESTED_BY_ANNOTATION = 'atoll.dev/rebind-requested-by';

/**
 * Annotation on a `secretKeyRef` source Secret, written by the operator: the
 * destination digest each connection was first allowed to send it to
 * (JSON `{connection: digest}`). It outlives the connection, so deleting and
 * re-creating a connection pointed elsewhere does not re-pin the offer.
 */
export const OFFER_PINS_ANNOTATION = 'atoll.dev/offer-pins';

/** Annotation that lets a delete of a connection in use through: `atoll.dev/allow-delete: "true"`. */
export const ALLOW_DELETE_ANNOTATION = 'atoll.dev/allow-delete';

/**
 * Annotation the mutating webhook stamps on every change of a connection: who
 * made it (from the admission request's userInfo) and which fields changed
 * (names only, never values), as JSON. The controller turns it into Events.
 */
export const LAST_CHANGE_ANNOTATION = 'atoll.dev/last-change-by';
