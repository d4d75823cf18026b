import {
  ConditionType,
  FINALIZER,
  MANAGED_BY_LABEL,
  MANAGED_BY_VALUE,
  Reason,
  WORKSPACE_LABEL,
  findCondition,
  isConditionTrue,
  setCondition,
  summarizeReady,
  type Condition,
  type Workspace,
  type WorkspaceStatus,
} from '../../api/v1alpha1/index.js';
import type { KubeObject } from '../../kube/client.js';
import { isNotFound, KubeApiError } from '../../kube/errors.js';
import { hasFinalizer, ownerReference } from '../../kube/owner.js';
import { Namespaces, ResourceQuotas, RoleBindings, Roles, Workspaces } from '../../kube/resources.js';
import type { ReconcileRequest, ReconcileResult } from '../../runtime/controller.js';
import { describeError } from '../../runtime/describe-error.js';
import type { Logger } from '../../runtime/logger.js';
import { governingWorkspace } from '../../domain/governing-workspace.js';
import type { OperatorContext } from '../context.js';
import { deepEqual } from '../../util/deep-equal.js';
import {
  CONNECTION_QUOTA,
  connectionLimit,
  connectionQuota,
  quotaEnforcing,
  quotaInForce,
  type ResourceQuota,
} from './connection-quota.js';
import { workspaceIdentity } from '../../domain/workspace-identity.js';
import { TENANT_ROLES, subjectsFor, tenantRoleName, tenantRules } from './tenant-rbac.js';

type Ws = Workspace & KubeObject;

/** ClusterRoles bound per workspace namespace to the operator's own ServiceAccounts. */
export const OPERATOR_SECRETS_ROLE = 'atoll-operator-secrets';
export const GATEWAY_SECRETS_ROLE = 'atoll-gateway-secrets';
/** ClusterRole bound per workspace namespace so the controller can keep the connection quota. */
export const OPERATOR_QUOTA_ROLE = 'atoll-operator-quota';

/** QuotaReady, and whether quota admission limits connections now (perhaps at a previous limit). */
interface QuotaOutcome {
  enforced: boolean;
  condition: Pick<Condition, 'status' | 'reason' | 'message'>;
}

const KEY_CHECK_TTL_MS = 10 * 60_000;
/** A resync timer may fire a little early (Node measures it from the loop's cached clock): it still counts as due. */
const RESYNC_SLACK_MS = 1000;
/** Resyncs of Workspaces set up together drift apart by up to this fraction of the period. */
const RESYNC_JITTER = 0.2;

/**
 * Makes a namespace a workspace: labels it, keeps one Role and RoleBinding
 * per tenant role, grants the operator and gateway Secret access in this
 * namespace only, checks the encryption key, and reports counts. Deletion
 * removes all of it before the finalizer goes.
 */
export class WorkspaceReconciler {
  /** When each (namespace, identity, key) last proved usable. */
  private readonly keyChecks = new Map<string, number>();
  /**
   * Per workspace (namespace/name): the object (uid, generation, labels, annotations) its namespace label
   * and operator bindings were last applied for, when, and - once its quota is in force at its current
   * limit and tenant RBAC applied - the quota's outcome then.
   */
  private readonly applied = new Map<string, { of: string; dueAt: number; quota?: QuotaOutcome }>();

  constructor(
    private readonly ctx: OperatorContext,
    private readonly random: () => number = Math.random,
  ) {}

  reconcile = async (req: ReconcileRequest, log: Logger): Promise<ReconcileResult | void> => {
    const { client } = this.ctx;
    const ns = req.namespace!;
    // From the cache (writes are guarded by resourceVersion, so a stale read only costs a retry).
    const ws = this.ctx.workspaces.get(`${ns}/${req.name}`) ?? (await client.tryGet<Ws>(Workspaces, req.name, ns));
    if (!ws) return;
    if (ws.metadata.deletionTimestamp) return this.finalize(ws, log);
    if (!hasFinalizer(ws, FINALIZER)) {
      await client.jsonPatch(Workspaces, req.name, ns, [
        { op: 'test', path: '/metadata/resourceVersion', value: ws.metadata.resourceVersion },
        ws.metadata.finalizers
          ? { op: 'add', path: '/metadata/finalizers/-', value: FINALIZER }
          : { op: 'add', path: '/metadata/finalizers', value: [FINALIZER] },
      ]);
      return; // the update event brings us back
    }

    const now = new Date();
    const gen = ws.metadata.generation;
    let conditions: Condition[] = ws.status?.conditions ?? [];

    // Admission refuses a second Workspace; this catches a bypassed webhook.
    const first = governingWorkspace(this.ctx.workspaces.list(ns));
    if (first && first.metadata?.name !== ws.metadata.name) {
      conditions = setCondition(
        conditions,
        {
          type: ConditionType.Ready,
          status: 'False',
          reason: Reason.DuplicateWorkspace,
          message: `namespace ${ns} already has Workspace ${first.metadata?.name}; a namespace holds at most one Workspace. Delete this one.`,
          observedGeneration: gen,
        },
        now,
      );
      await this.writeStatus(ws, { ...ws.status, observedGeneration: gen, conditions });
      return;
    }

    // Label first, then RoleBindings: the admission policy atoll-operator-fence
    // lets the operator write RBAC only in namespaces labelled as workspaces.
    // Tenants get their roles only once the connection quota is in force: quota
    // admission limits nothing until kube-controller-manager has filled in the
    // quota's status, so tenant access before that would let a burst through.
    let labelled = false;
    let quota: QuotaOutcome;
    // Connection changes enqueue the workspace for its counts: applying the same RBAC and quota again for
    // each is about a dozen server-side applies per connection change (ADR 0031), and at 10,000 connections
    // their periodic status writes made that the API server's largest load (ADR 0034). What was applied for
    // this object stays current until its resync is due; any change to the Workspace (spec, labels,
    // annotations) applies again, and the resync still puts back what a tenant admin edited.
    const memoKey = `${ns}/${req.name}`;
    const memo = this.applied.get(memoKey);
    const of = JSON.stringify([ws.metadata.uid, gen, ws.metadata.labels ?? {}, ws.metadata.annotations ?? {}]);
    const current = memo !== undefined && memo.of === of && Date.now() < memo.dueAt - RESYNC_SLACK_MS;
    try {
      if (current && memo.quota) {
        quota = memo.quota;
      } else {
        // A new workspace comes back every second until its quota is in force: the label and the
        // operator's bindings applied on its first pass need not be applied again each time.
        const dueAt = current ? memo.dueAt : this.nextResync();
        if (!current) {
          labelled = await this.labelNamespace(ns, ws.metadata.name!);
          await this.applyOperatorBindings(ws);
          this.applied.set(memoKey, { of, dueAt });
        }
        // Our Secret access in this namespace exists from here on: cache its managed Secrets.
        this.ctx.secrets.watch(ns);
        quota = await this.applyConnectionQuota(ws);
        if (quota.enforced) await this.applyTenantRbac(ws);
        if (quota.enforced && quota.condition.status === 'True') this.applied.set(memoKey, { of, dueAt, quota });
      }
    } catch (err) {
      this.applied.delete(memoKey);
      // The policies read the label and the Workspace from the API server's caches, which may lag by a moment.
      if (labelled && fencedByPolicy(err)) return { requeueAfterMs: 1000 };
      conditions = setCondition(
        conditions,
        {
          type: ConditionType.RBACReady,
          status: 'False',
          reason: Reason.RBACFailed,
          message: rbacFailure(err),
          observedGeneration: gen,
        },
        now,
      );
      conditions = setCondition(conditions, summarizeReady(conditions, [ConditionType.RBACReady], gen), now);
      await this.writeStatus(ws, { ...ws.status, observedGeneration: gen, conditions });
      throw err;
    }
    conditions = setCondition(
      conditions,
      quota.enforced
        ? {
            type: ConditionType.RBACReady,
            status: 'True',
            reason: Reason.Succeeded,
            message: 'Tenant Roles and RoleBindings are in place',
            observedGeneration: gen,
          }
        : {
            type: ConditionType.RBACReady,
            status: 'False',
            reason: quota.condition.reason,
            message: `tenant Roles and RoleBindings wait for ResourceQuota ${CONNECTION_QUOTA} to be in force: ${quota.condition.message}`,
            observedGeneration: gen,
          },
      now,
    );
    conditions = setCondition(
      conditions,
      { ...quota.condition, type: ConditionType.QuotaReady, observedGeneration: gen },
      now,
    );

    const key = this.ctx.crypto.keyFor(ws.spec?.encryption?.keyId);
    const identity = workspaceIdentity(ws);
    const keyOk = await this.checkKey(ns, identity, key, log);
    const wasLocal = findCondition(conditions, ConditionType.EncryptionReady)?.reason === Reason.LocalKeyRing;
    conditions = setCondition(
      conditions,
      !keyOk
        ? {
            type: ConditionType.EncryptionReady,
            status: 'False',
            reason: Reason.KMSUnavailable,
            message: `Key ${key.keyId} could not be used; check the KMS and the operator's access to the key`,
            observedGeneration: gen,
          }
        : key.provider === 'local'
          ? {
              type: ConditionType.EncryptionReady,
              status: 'True',
              reason: Reason.LocalKeyRing,
              message: localKeyRingMessage(key.keyId, this.ctx.config.namespace),
              observedGeneration: gen,
            }
          : {
              type: ConditionType.EncryptionReady,
              status: 'True',
              reason: Reason.Succeeded,
              message: `Key ${key.keyId} is usable`,
              observedGeneration: gen,
            },
      now,
    );
    if (keyOk && key.provider === 'local' && !wasLocal) {
      await this.ctx.events.record(
        Workspaces,
        ws,
        'Warning',
        Reason.LocalKeyRing,
        localKeyRingMessage(key.keyId, this.ctx.config.namespace),
      );
    }
    conditions = setCondition(
      conditions,
      summarizeReady(
        conditions,
        [ConditionType.RBACReady, ConditionType.QuotaReady, ConditionType.EncryptionReady],
        gen,
      ),
      now,
    );

    const connections = this.ctx.connections.list(ns).filter((c) => !c.metadata?.deletionTimestamp);
    const ready = connections.filter((c) => isConditionTrue(c.status?.conditions, ConditionType.Ready)).length;
    const wrapped = connections.filter((c) =>
      Object.values(c.status?.credentials ?? {}).every((s) => s.keyId === undefined || sameKey(s.keyId, key.keyId)),
    ).length;
    // What still needs another key: managed copies not yet re-wrapped (the operator's), and spec values (Git's).
    const managedOld = connections.reduce(
      (n, c) =>
        n +
        Object.values(c.status?.credentials ?? {}).filter((s) => s.keyId !== undefined && !sameKey(s.keyId, key.keyId))
          .length,
      0,
    );
    const specOld = connections.reduce(
      (n, c) =>
        n +
        Object.values(c.spec?.credentials ?? {}).filter(
          (src) => src.sealed !== undefined && !this.wrappedWith(src.sealed, key),
        ).length,
      0,
    );
    const status: WorkspaceStatus = {
      ...ws.status,
      observedGeneration: gen,
      conditions,
      connections: { total: connections.length, ready, summary: `${ready}/${connections.length}` },
      keyId: key.keyId,
      identity,
      keyRotation: {
        targetKeyId: key.keyId,
        rewrapped: wrapped,
        total: connections.length,
        phase: wrapped === connections.length ? 'Completed' : 'Rewrapping',
        retirable: managedOld === 0,
        managedCopiesOnOldKeys: managedOld,
        specValuesOnOldKeys: specOld,
      },
    };
    await this.writeStatus(ws, status);
    if (!keyOk) return { requeueAfterMs: 15_000 };
    // The quota controller fills in the quota's status within moments; the RoleBinding takes effect as fast.
    if (quota.condition.status !== 'True') return { requeueAfterMs: 1000 };
    if (findCondition(conditions, ConditionType.Ready)?.status !== 'True') return { requeueAfterMs: 30_000 };
    // Tenant admins may edit RoleBindings in their namespace: put ours back when the resync is due.
    const dueAt = this.applied.get(memoKey)?.dueAt ?? this.nextResync();
    return { requeueAfterMs: Math.max(RESYNC_SLACK_MS, dueAt - Date.now()) };
  };

  /** When what is applied now is next applied again if nothing changes. */
  private nextResync(): number {
    return Date.now() + this.ctx.config.workspaceResyncMs * (1 + RESYNC_JITTER * this.random());
  }

  /** Whether a spec value is wrapped by `key` (a value that does not parse needs no key at all). */
  private wrappedWith(sealed: string, key: { provider: string; keyId: string }): boolean {
    try {
      const named = this.ctx.crypto.envelope.describe(sealed);
      return (
        this.ctx.crypto.envelope.isWrappedWith(sealed, key) ||
        (named.provider === key.provider && sameKey(named.keyId, key.keyId))
      );
    } catch {
      return true;
    }
  }

  private async finalize(ws: Ws, log: Logger): Promise<void> {
    const { client } = this.ctx;
    const ns = ws.metadata.namespace!;
    this.applied.delete(`${ns}/${ws.metadata.name}`);
    if (!hasFinalizer(ws, FINALIZER)) return;
    for (const name of TENANT_ROLES.map(tenantRoleName)) {
      await ignoreNotFound(client.delete(RoleBindings, name, ns));
      await ignoreNotFound(client.delete(Roles, name, ns));
    }
    // The owner reference lets the garbage collector remove the quota too; this is only quicker.
    await ignoreNotFoundOrForbidden(client.delete(ResourceQuotas, CONNECTION_QUOTA, ns));
    // These bind ClusterRoles: there is no Role of that name to delete.
    for (const name of [OPERATOR_SECRETS_ROLE, GATEWAY_SECRETS_ROLE, OPERATOR_QUOTA_ROLE])
      await ignoreNotFound(client.delete(RoleBindings, name, ns));
    for (const k of [...this.keyChecks.keys()]) if (k.startsWith(`${ns}|`)) this.keyChecks.delete(k);
    const namespace = await client.tryGet<KubeObject>(Namespaces, ns);
    if (namespace?.metadata?.labels?.[WORKSPACE_LABEL] === ws.metadata.name) {
      await client.mergePatch(Namespaces, ns, undefined, { metadata: { labels: { [WORKSPACE_LABEL]: null } } });
    }
    const finalizers = (ws.metadata.finalizers ?? []).filter((f) => f !== FINALIZER);
    await client.jsonPatch(Workspaces, ws.metadata.name!, ns, [
      { op: 'test', path: '/metadata/resourceVersion', value: ws.metadata.resourceVersion },
      { op: 'replace', path: '/metadata/finalizers', value: finalizers },
    ]);
    log.info('workspace cleaned up');
  }

  /** True when it had to label the namespace now. */
  private async labelNamespace(ns: string, name: string): Promise<boolean> {
    const namespace = await this.ctx.client.get<KubeObject>(Namespaces, ns);
    if (namespace.metadata?.labels?.[WORKSPACE_LABEL] === name) return false;
    await this.ctx.client.mergePatch(Namespaces, ns, undefined, { metadata: { labels: { [WORKSPACE_LABEL]: name } } });
    return true;
  }

  /**
   * Keeps ResourceQuota atoll-connections at the workspace's connection limit:
   * the API server then refuses the connection over the limit however many
   * creates race, with a message that names the quota.
   */
  private async applyConnectionQuota(ws: Ws): Promise<QuotaOutcome> {
    const ns = ws.metadata.namespace!;
    const { limit, source } = connectionLimit(ws, this.ctx.config.defaultMaxConnections);
    const labels = { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE, [WORKSPACE_LABEL]: ws.metadata.name! };
    let quota: ResourceQuota;
    try {
      quota = await this.ctx.client.apply(
        ResourceQuotas,
        connectionQuota(ns, limit, { labels, ownerReferences: [ownerReference(ws)] }),
      );
    } catch (err) {
      const status = (err as { status?: number }).status;
      // A quota written earlier may still be in force (tenants keep their roles then); a new workspace waits.
      const existing = await this.ctx.client
        .tryGet<ResourceQuota>(ResourceQuotas, CONNECTION_QUOTA, ns)
        .catch(() => undefined);
      return {
        enforced: quotaEnforcing(existing),
        condition: {
          status: 'False',
          reason: Reason.QuotaFailed,
          message: `ResourceQuota ${CONNECTION_QUOTA} could not be written (API status ${status ?? 'unknown'}); the RoleBinding ${OPERATOR_QUOTA_ROLE} grants it, check the operator's RBAC if this persists`,
        },
      };
    }
    if (!quotaInForce(quota, limit)) {
      return {
        enforced: quotaEnforcing(quota),
        condition: {
          status: 'False',
          reason: Reason.QuotaPending,
          message: `waiting for kube-controller-manager to take up ResourceQuota ${CONNECTION_QUOTA} (limit ${limit})`,
        },
      };
    }
    return {
      enforced: true,
      condition: {
        status: 'True',
        reason: Reason.Succeeded,
        message: `ResourceQuota ${CONNECTION_QUOTA} limits the workspace to ${limit} connections (${source})`,
      },
    };
  }

  private async applyTenantRbac(ws: Ws): Promise<void> {
    const ns = ws.metadata.namespace!;
    const owner = [ownerReference(ws)];
    const labels = { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE, [WORKSPACE_LABEL]: ws.metadata.name! };
    // Each Role before its binding (the API server checks a binding against its Role's rules); the roles side by side.
    await Promise.all(
      TENANT_ROLES.map(async (role) => {
        const name = tenantRoleName(role);
        await this.ctx.client.apply(Roles, {
          metadata: { name, namespace: ns, labels, ownerReferences: owner },
          rules: tenantRules(role),
        });
        await this.ctx.client.apply(RoleBindings, {
          metadata: { name, namespace: ns, labels, ownerReferences: owner },
          roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name },
          subjects: subjectsFor(ws.spec?.members, role, ns),
        });
      }),
    );
  }

  private async applyOperatorBindings(ws: Ws): Promise<void> {
    const ns = ws.metadata.namespace!;
    const owner = [ownerReference(ws)];
    const labels = { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE, [WORKSPACE_LABEL]: ws.metadata.name! };
    // Secret access for the operator and gateway, and the operator's hold on the quota, exist only in workspace namespaces.
    const { controller, gateway } = this.ctx.config.serviceAccounts;
    const bindings = [
      [OPERATOR_SECRETS_ROLE, controller],
      [GATEWAY_SECRETS_ROLE, gateway],
      [OPERATOR_QUOTA_ROLE, controller],
    ] as const;
    await Promise.all(
      bindings.map(([name, sa]) =>
        this.ctx.client.apply(RoleBindings, {
          metadata: { name, namespace: ns, labels, ownerReferences: owner },
          roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name },
          subjects: [{ kind: 'ServiceAccount', name: sa, namespace: this.ctx.config.namespace }],
        }),
      ),
    );
  }

  /** Seals a throwaway value under the workspace binding: proves the key works, at most every 10 minutes. */
  private async checkKey(
    ns: string,
    identity: string,
    key: { provider: string; keyId: string },
    log: Logger,
  ): Promise<boolean> {
    const cacheKey = `${ns}|${identity}|${key.provider}|${key.keyId}`;
    const lastOk = this.keyChecks.get(cacheKey);
    if (lastOk !== undefined && Date.now() - lastOk < KEY_CHECK_TTL_MS) return true;
    try {
      const binding = {
        namespace: ns,
        workspace: identity,
        connection: 'atoll-key-check',
        field: 'check',
        destination: 'key-check',
      };
      const sealed = await this.ctx.crypto.envelope.seal('atoll-key-check', binding, key);
      await this.ctx.crypto.envelope.open(sealed, binding);
      this.keyChecks.set(cacheKey, Date.now());
      return true;
    } catch (err) {
      log.warn({ keyId: key.keyId, error: describeError(err) }, 'workspace key check failed');
      this.keyChecks.delete(cacheKey);
      return false;
    }
  }

  private async writeStatus(ws: Ws, status: WorkspaceStatus): Promise<void> {
    if (deepEqual(status, ws.status ?? {})) return;
    await this.ctx.client.mergePatch(
      Workspaces,
      ws.metadata.name!,
      ws.metadata.namespace,
      { status },
      { subresource: 'status' },
    );
  }
}

/**
 * A denial by the admission policies that fence the operator carries our own
 * constant message (no object content), so the condition may show it.
 */
function fencedByPolicy(err: unknown): err is KubeApiError {
  return (
    err instanceof KubeApiError &&
    (err.status === 403 || err.status === 422) &&
    err.message.includes('ValidatingAdmissionPolicy')
  );
}

function rbacFailure(err: unknown): string {
  const status = (err as { status?: number }).status;
  if (fencedByPolicy(err)) {
    return `tenant Roles and RoleBindings were refused by atoll's admission policy: ${err.message.slice(err.message.indexOf('ValidatingAdmissionPolicy'))}`;
  }
  return `tenant Roles and RoleBindings could not be written (API status ${status ?? 'unknown'}); check the operator's RBAC`;
}

function localKeyRingMessage(keyId: string, operatorNamespace: string): string {
  return `Key ${keyId} is usable, but it is a local key: its key-encryption key sits in Secret atoll-local-kms of namespace ${operatorNamespace}, so anyone who can read that Secret, or holds an etcd snapshot or backup of the cluster, can decrypt this workspace's credentials. Use a KMS provider (aws-kms) in production; see docs/threat-model.md`;
}

function sameKey(a: string, b: string): boolean {
  return a === b || a.endsWith(`/${b}`) || a.endsWith(`:${b}`);
}

async function ignoreNotFoundOrForbidden(p: Promise<unknown>): Promise<void> {
  try {
    await p;
  } catch (err) {
    if (!isNotFound(err) && !(err instanceof KubeApiError && err.status === 403)) throw err;
  }
}

async function ignoreNotFound(p: Promise<unknown>): Promise<void> {
  try {
    await p;
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
}
