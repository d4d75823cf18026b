/**
 * Condition types and reasons of atoll's resources, declared in one place, and
 * the pure helpers that keep conditions as the Kubernetes API conventions want
 * them: `lastTransitionTime` moves only when `status` flips, and setting an
 * identical condition changes nothing.
 */
import type { Condition } from './generated.js';

export type { Condition } from './generated.js';

/** Condition types (`status.conditions[].type`). */
export const ConditionType = {
  /** Summary of the specific conditions of a resource; what printer columns and Argo CD read. */
  Ready: 'Ready',
  /** Workspace: the tenant Roles and RoleBindings match spec.members. */
  RBACReady: 'RBACReady',
  /** Workspace: the KMS key can wrap and unwrap data keys. */
  EncryptionReady: 'EncryptionReady',
  /** Workspace: ResourceQuota atoll-connections holds the connection limit and the API server enforces it. */
  QuotaReady: 'QuotaReady',
  /** ExternalConnection: every credential is stored as ciphertext that decrypts in this workspace. */
  CredentialsSealed: 'CredentialsSealed',
  /** ExternalConnection: the service answered the last probe. */
  Reachable: 'Reachable',
  /** ExternalConnection: the service accepted the credentials in the last probe. */
  Authenticated: 'Authenticated',
} as const;
export type ConditionType = (typeof ConditionType)[keyof typeof ConditionType];

/** Condition reasons (CamelCase, stable: tools and alerts match on them). */
export const Reason = {
  Succeeded: 'Succeeded',
  // probe outcomes
  AuthenticationFailed: 'AuthenticationFailed',
  Unreachable: 'Unreachable',
  Timeout: 'Timeout',
  TLSError: 'TLSError',
  DNSError: 'DNSError',
  UnexpectedResponse: 'UnexpectedResponse',
  EgressDenied: 'EgressDenied',
  InvalidSettings: 'InvalidSettings',
  CredentialsMissing: 'CredentialsMissing',
  ProbePending: 'ProbePending',
  /** An Event reason: extra on-demand test requests were folded into one probe. */
  TestRequestCoalesced: 'TestRequestCoalesced',
  // credentials and encryption
  Sealed: 'Sealed',
  CiphertextRejected: 'CiphertextRejected',
  DestinationChanged: 'DestinationChanged',
  KMSUnavailable: 'KMSUnavailable',
  SecretNotFound: 'SecretNotFound',
  SecretKeyNotFound: 'SecretKeyNotFound',
  // types, workspaces and policy
  TypeNotFound: 'TypeNotFound',
  TypeNotAllowed: 'TypeNotAllowed',
  WorkspaceNotFound: 'WorkspaceNotFound',
  DuplicateWorkspace: 'DuplicateWorkspace',
  PolicyViolation: 'PolicyViolation',
  RBACFailed: 'RBACFailed',
  QuotaPending: 'QuotaPending',
  QuotaFailed: 'QuotaFailed',
  /** EncryptionReady=True, but the key-encryption key sits in the cluster (provider `local`). */
  LocalKeyRing: 'LocalKeyRing',
  // lifecycle
  Reconciling: 'Reconciling',
} as const;
export type Reason = (typeof Reason)[keyof typeof Reason];

/** A condition as a reconciler states it; `setCondition` decides the transition time. */
export type ConditionInput = Omit<Condition, 'lastTransitionTime'>;

/** The CRDs' bound on `message`; longer messages would make the whole status write fail. */
export const MAX_CONDITION_MESSAGE_LENGTH = 32768;

/**
 * Formats a time the way metav1.Time serialises (RFC 3339, whole seconds, UTC),
 * so values written by atoll compare equal to what the API server returns.
 */
export function toMetaTime(date: Date): string {
  return `${date.toISOString().slice(0, 19)}Z`;
}

/** The condition of the given type, if present. */
export function findCondition(conditions: readonly Condition[] | undefined, type: string): Condition | undefined {
  return conditions?.find((c) => c.type === type);
}

/** Whether the condition of the given type is present with status True. */
export function isConditionTrue(conditions: readonly Condition[] | undefined, type: string): boolean {
  return findCondition(conditions, type)?.status === 'True';
}

/**
 * Returns `conditions` with `next` set. `lastTransitionTime` is `now` when the
 * condition is new or its status changed, and kept otherwise. When nothing
 * changes, the very same array is returned, so callers can skip the status
 * write with `result === conditions`. The input array is never mutated.
 */
export function setCondition(conditions: Condition[] | undefined, next: ConditionInput, now: Date): Condition[] {
  const current = conditions ?? [];
  const message =
    next.message.length > MAX_CONDITION_MESSAGE_LENGTH
      ? `${next.message.slice(0, MAX_CONDITION_MESSAGE_LENGTH - 1)}…`
      : next.message;
  const index = current.findIndex((c) => c.type === next.type);
  const previous = index === -1 ? undefined : current[index];
  const lastTransitionTime =
    previous && previous.status === next.status ? previous.lastTransitionTime : toMetaTime(now);
  const updated: Condition = {
    type: next.type,
    status: next.status,
    reason: next.reason,
    message,
    ...(next.observedGeneration === undefined ? {} : { observedGeneration: next.observedGeneration }),
    lastTransitionTime,
  };
  if (previous && sameCondition(previous, updated)) return current;
  if (index === -1) return [...current, updated];
  return current.map((c, i) => (i === index ? updated : c));
}

/** Removes the condition of the given type; returns the same array when it is absent. */
export function removeCondition(conditions: Condition[] | undefined, type: string): Condition[] {
  const current = conditions ?? [];
  return current.some((c) => c.type === type) ? current.filter((c) => c.type !== type) : current;
}

/**
 * The Ready condition that summarises `dependsOn`: True with reason Succeeded
 * when all of them are True; otherwise the first one that is not True lends
 * its status, reason and message (False wins over Unknown, so a known failure
 * is never hidden behind something still pending). A dependency that is not
 * set yet counts as Unknown/Reconciling.
 */
export function summarizeReady(
  conditions: readonly Condition[] | undefined,
  dependsOn: readonly string[],
  observedGeneration?: number,
): ConditionInput {
  const generation = observedGeneration === undefined ? {} : { observedGeneration };
  const states = dependsOn.map(
    (type): Pick<Condition, 'status' | 'reason' | 'message'> =>
      findCondition(conditions, type) ?? {
        status: 'Unknown',
        reason: Reason.Reconciling,
        message: `${type} has not been determined yet`,
      },
  );
  const blocking = states.find((s) => s.status === 'False') ?? states.find((s) => s.status !== 'True');
  if (!blocking)
    return {
      type: ConditionType.Ready,
      status: 'True',
      reason: Reason.Succeeded,
      message: 'All checks passed',
      ...generation,
    };
  return {
    type: ConditionType.Ready,
    status: blocking.status,
    reason: blocking.reason,
    message: blocking.message,
    ...generation,
  };
}

function sameCondition(a: Condition, b: Condition): boolean {
  return (
    a.type === b.type &&
    a.status === b.status &&
    a.reason === b.reason &&
    a.message === b.message &&
    a.observedGeneration === b.observedGeneration &&
    a.lastTransitionTime === b.lastTransitionTime
  );
}
