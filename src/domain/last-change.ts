import { LAST_CHANGE_ANNOTATION, TEST_REQUESTED_AT_ANNOTATION } from '../api/v1alpha1/index.js';

/**
 * The `atoll.dev/last-change-by` annotation: who changed a connection and
 * which fields, captured by the mutating webhook from the admission
 * request's userInfo (the only place the actor is known), turned into Events
 * by the controller. Field names only: a value never appears here.
 */
export interface LastChange {
  /** The authenticated username of the request. */
  user: string;
  /** When admission saw the change (RFC 3339). */
  at: string;
  operation: 'CREATE' | 'UPDATE';
  /** Changed fields as paths, e.g. spec.credentials.token, spec.settings.baseURL, metadata.annotations.atoll.dev/test-requested-at. */
  changed: string[];
}

const MAX_FIELDS = 32;

export function formatLastChange(change: LastChange): string {
  return JSON.stringify({ ...change, changed: change.changed.slice(0, MAX_FIELDS) });
}

/** The annotation's content, or undefined when absent or not ours. */
export function parseLastChange(annotations: Record<string, string> | undefined): LastChange | undefined {
  const text = annotations?.[LAST_CHANGE_ANNOTATION];
  if (text === undefined) return undefined;
  try {
    const v = JSON.parse(text) as Partial<LastChange>;
    if (
      typeof v.user !== 'string' ||
      typeof v.at !== 'string' ||
      !Array.isArray(v.changed) ||
      (v.operation !== 'CREATE' && v.operation !== 'UPDATE')
    )
      return undefined;
    return {
      user: v.user,
      at: v.at,
      operation: v.operation,
      changed: v.changed.filter((f): f is string => typeof f === 'string').slice(0, MAX_FIELDS),
    };
  } catch {
    return undefined;
  }
}

/** Event reasons of the audit trail, one aggregated Event per connection and reason. */
export const AuditReason = {
  Created: 'ConnectionCreated',
  CredentialsRotated: 'CredentialsRotated',
  SettingsChanged: 'SettingsChanged',
  TestRequested: 'TestRequested',
  Rebound: 'Rebound',
  SpecChanged: 'SpecChanged',
  DeleteAllowed: 'DeleteAllowed',
  Deleted: 'ConnectionDeleted',
  DeleteRefused: 'DeleteRefused',
  WorkspaceDeleted: 'WorkspaceDeleted',
  DeletedWithNamespace: 'DeletedWithNamespace',
} as const;

const ALLOW_DELETE = 'metadata.annotations.atoll.dev/allow-delete';

/** Groups a change's fields by the audit reason they belong to (a rotation and a settings change in one apply give two Events). */
export function auditGroups(change: LastChange): Array<{ reason: string; verb: string; fields: string[] }> {
  if (change.operation === 'CREATE') return [{ reason: AuditReason.Created, verb: 'created', fields: change.changed }];
  const groups = new Map<string, { reason: string; verb: string; fields: string[] }>();
  const add = (reason: string, verb: string, field: string) => {
    const g = groups.get(reason) ?? { reason, verb, fields: [] };
    g.fields.push(field);
    groups.set(reason, g);
  };
  for (const field of change.changed) {
    if (field.startsWith('spec.credentials.')) add(AuditReason.CredentialsRotated, 'credentials rotated', field);
    else if (field.startsWith('spec.settings')) add(AuditReason.SettingsChanged, 'settings changed', field);
    else if (field === `metadata.annotations.${TEST_REQUESTED_AT_ANNOTATION}`)
      add(AuditReason.TestRequested, 'test requested', field);
    else if (field === ALLOW_DELETE) add(AuditReason.DeleteAllowed, 'delete protection lifted', field);
    else if (/rebind|confirm/.test(field)) add(AuditReason.Rebound, 'destination re-confirmed', field);
    else add(AuditReason.SpecChanged, 'changed', field);
  }
  return [...groups.values()];
}

/** The Event message of one group: what changed (names only) and by whom. */
export function auditMessage(group: { verb: string; fields: string[] }, change: LastChange): string {
  return `${group.verb} by ${change.user} at ${change.at}: ${group.fields.join(', ')}`;
}
