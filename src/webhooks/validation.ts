import type { ExternalConnection, IntegrationType, Workspace } from '../api/v1alpha1/index.js';
import { checkConnection } from '../domain/connection-policy.js';
import { checkWorkspace } from '../domain/workspace-policy.js';
import { oldestFirst } from '../domain/governing-workspace.js';
import { allow, deny, type AdmissionRequest, type AdmissionResponse } from './admission.js';
import { checkDestinationChange, checkSealedValues } from './connection-guards.js';
import { checkConnectionDelete, recordWorkspaceDelete, type DeleteProtectionDeps } from './delete-protection.js';

export interface ValidationDeps {
  workspacesIn(namespace: string): Promise<Workspace[]>;
  integrationType(name: string): IntegrationType | undefined;
  /** KMS providers this operator has: a `sealed` value naming another is refused. Unchecked when absent. */
  kmsProviders?: readonly string[];
  deletes: DeleteProtectionDeps;
}

/** Validating admission for ExternalConnections: workspace, type, policy, settings, fields. */
export async function validateConnection(req: AdmissionRequest, deps: ValidationDeps): Promise<AdmissionResponse> {
  if (req.operation === 'DELETE') return checkConnectionDelete(req, deps.deletes);
  const conn = req.object as ExternalConnection;
  const ns = req.namespace ?? conn.metadata?.namespace ?? '';
  for (const [field, source] of Object.entries(conn.spec?.credentials ?? {})) {
    if (source?.value !== undefined)
      return deny(
        req.uid,
        `spec.credentials.${field}.value reached validation unsealed; the sealing webhook did not run. Seal the value with atoll seal`,
      );
  }
  const ws = oldestFirst(await deps.workspacesIn(ns))[0];
  const type = deps.integrationType(conn.spec?.type);
  const problems = checkConnection(conn, ws, type);
  if (problems.length) return deny(req.uid, problems.map((p) => p.message).join('; '));
  const badSealed = checkSealedValues(req, deps.kmsProviders);
  if (badSealed) return deny(req.uid, badSealed);
  const destination = checkDestinationChange(req, type);
  if (destination.deny) return deny(req.uid, destination.deny);
  return destination.warnings.length ? { ...allow(req.uid), warnings: destination.warnings } : allow(req.uid);
}

/** Validating admission for Workspaces: one per namespace, members, egress policy. */
export async function validateWorkspace(req: AdmissionRequest, deps: ValidationDeps): Promise<AdmissionResponse> {
  if (req.operation === 'DELETE') return recordWorkspaceDelete(req, deps.deletes);
  const ws = req.object as Workspace;
  const ns = req.namespace ?? ws.metadata?.namespace ?? '';
  if (req.operation === 'CREATE') {
    const others = (await deps.workspacesIn(ns)).filter((w) => w.metadata.name !== ws.metadata?.name);
    if (others.length > 0) {
      return deny(
        req.uid,
        `namespace ${ns} already has Workspace ${others[0]!.metadata.name}; a namespace is one workspace and holds at most one Workspace`,
        409,
        'AlreadyExists',
      );
    }
  }
  const problems = checkWorkspace(ws);
  if (problems.length) return deny(req.uid, problems.join('; '));
  return allow(req.uid);
}
