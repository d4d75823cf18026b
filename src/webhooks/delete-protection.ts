import { ALLOW_DELETE_ANNOTATION, type ExternalConnection, type Workspace } from '../api/v1alpha1/index.js';
import { AuditReason } from '../domain/last-change.js';
import { activeUse, inUse, type ActiveUse } from '../domain/usage.js';
import type { KubeObject } from '../kube/client.js';
import { actorOf } from './actor.js';
import { allow, deny, type AdmissionRequest, type AdmissionResponse } from './admission.js';

type Conn = ExternalConnection & KubeObject;

/** What the delete checks need from the operator; tests pass their own. */
export interface DeleteProtectionDeps {
  /** A connection used within this window (ms) is protected; 0 protects only while an agent streams. */
  windowMs: number;
  /** True while the namespace is being deleted: its content goes with it, whatever is in use. */
  namespaceTerminating(namespace: string): Promise<boolean>;
  /** Connections of a namespace (for the Workspace-deletion record). */
  connectionsIn(namespace: string): Conn[];
  /** Records an audit Event (aggregated per object and reason); `about` is the object the Event is attached to. */
  record(
    about: { kind: 'ExternalConnection' | 'Workspace' | 'Namespace'; object: KubeObject },
    type: 'Normal' | 'Warning',
    reason: string,
    message: string,
  ): Promise<void>;
  now?: () => number;
}

/**
 * Validating admission for DELETE of an ExternalConnection: refused while
 * workloads use it (within the window, or an agent streaming), naming them
 * and the ways forward, unless it carries atoll.dev/allow-delete: "true".
 * Deletion of the namespace itself is never blocked (that is the platform's
 * decision; the namespace controller must be able to finish) but recorded.
 * Every decision names the actor in an Event; dry runs record nothing.
 */
export async function checkConnectionDelete(
  req: AdmissionRequest,
  deps: DeleteProtectionDeps,
): Promise<AdmissionResponse> {
  const conn = req.oldObject as Conn | undefined;
  if (conn?.metadata === undefined) return allow(req.uid);
  const ns = req.namespace ?? conn.metadata.namespace ?? '';
  const name = conn.metadata.name ?? req.name ?? '';
  const actor = actorOf(req);
  const use = activeUse(conn.status?.usage, (deps.now ?? Date.now)(), deps.windowMs);
  const record = (type: 'Normal' | 'Warning', reason: string, message: string) =>
    req.dryRun ? Promise.resolve() : deps.record({ kind: 'ExternalConnection', object: conn }, type, reason, message);

  if (await deps.namespaceTerminating(ns)) {
    if (!req.dryRun) {
      await deps.record(
        { kind: 'Namespace', object: { metadata: { name: ns } } },
        'Normal',
        AuditReason.DeletedWithNamespace,
        `connection ${name} deleted with namespace ${ns} by ${actor}${inUse(use) ? `; it was in use by ${describeUse(use)}` : ''}`,
      );
    }
    return allow(req.uid);
  }
  if (inUse(use) && conn.metadata.annotations?.[ALLOW_DELETE_ANNOTATION] !== 'true') {
    await record('Warning', AuditReason.DeleteRefused, `delete by ${actor} refused: in use by ${describeUse(use)}`);
    return deny(
      req.uid,
      `externalconnection ${name} is in use by ${describeUse(use)}. Deleting it would break their calls. ` +
        `Stop those workloads or remove their "use" grant and ${waitText(deps.windowMs)}, ` +
        `or, if you are sure, run: kubectl annotate externalconnection ${name} -n ${ns} ${ALLOW_DELETE_ANNOTATION}=true && kubectl delete externalconnection ${name} -n ${ns}`,
      403,
      'Forbidden',
    );
  }
  const lifted = conn.metadata.annotations?.[ALLOW_DELETE_ANNOTATION] === 'true' && inUse(use);
  await record(
    lifted ? 'Warning' : 'Normal',
    AuditReason.Deleted,
    `deleted by ${actor}${lifted ? ` with ${ALLOW_DELETE_ANNOTATION} while in use by ${describeUse(use)}` : ''}`,
  );
  return allow(req.uid);
}

/** Validating admission for DELETE of a Workspace: always allowed, recorded with the actor and the connections in use. */
export async function recordWorkspaceDelete(
  req: AdmissionRequest,
  deps: DeleteProtectionDeps,
): Promise<AdmissionResponse> {
  const ws = req.oldObject as (Workspace & KubeObject) | undefined;
  if (ws?.metadata === undefined || req.dryRun) return allow(req.uid);
  const ns = req.namespace ?? ws.metadata.namespace ?? '';
  const now = (deps.now ?? Date.now)();
  const used = deps
    .connectionsIn(ns)
    .map((c) => ({ name: c.metadata?.name ?? '', use: activeUse(c.status?.usage, now, deps.windowMs) }))
    .filter((c) => inUse(c.use))
    .map((c) => c.name)
    .sort();
  const message = `workspace ${ws.metadata.name} deleted by ${req.userInfo?.username === undefined ? 'unknown user' : actorOf(req)}${used.length > 0 ? `; connections in use: ${used.join(', ')}` : ''}`;
  const terminating = await deps.namespaceTerminating(ns);
  await deps.record(
    terminating ? { kind: 'Namespace', object: { metadata: { name: ns } } } : { kind: 'Workspace', object: ws },
    'Normal',
    AuditReason.WorkspaceDeleted,
    message,
  );
  return allow(req.uid);
}

const MAX_NAMED = 5;

/** "serviceaccount a (proxy, last used …), b (files, streaming now)"; bounded. */
function describeUse(use: ActiveUse): string {
  const parts = new Map<string, string[]>();
  for (const c of use.recent)
    parts.set(c.serviceAccount, [...(parts.get(c.serviceAccount) ?? []), `${c.via}, last used ${c.lastUsedAt}`]);
  for (const sa of use.streaming) parts.set(sa, [...(parts.get(sa) ?? []), 'agent streaming now']);
  const named = [...parts.entries()].slice(0, MAX_NAMED).map(([sa, what]) => `${sa} (${what.join('; ')})`);
  const more = parts.size > MAX_NAMED ? ` and ${parts.size - MAX_NAMED} more (see status.usage)` : '';
  return `serviceaccount${parts.size === 1 ? '' : 's'} ${named.join(', ')}${more}`;
}

function waitText(ms: number): string {
  if (ms === 0) return 'wait until no agent streams it';
  const window = ms % 3_600_000 === 0 ? `${ms / 3_600_000}h` : `${Math.round(ms / 60_000)}m`;
  return `wait until it has been unused for ${window}`;
}
