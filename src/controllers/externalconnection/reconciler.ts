import type { ExternalConnection, IntegrationType, Workspace } from '../../api/v1alpha1/index.js';
import type { KubeObject } from '../../kube/client.js';
import { ExternalConnections } from '../../kube/resources.js';
import type { ReconcileRequest, ReconcileResult } from '../../runtime/controller.js';
import type { Logger } from '../../runtime/logger.js';
import { workspaceOf } from '../../domain/governing-workspace.js';
import type { OperatorContext } from '../context.js';
import { AuditEvents } from './audit-events.js';
import { checkConnection } from '../../domain/connection-policy.js';
import { ConnectionProber, type Enqueue, type ProbeHooks, type ProbeView } from './probing.js';
import { CredentialSealer, type BeforeSecretWrite } from './sealing.js';
import { ConnectionStatus } from './status.js';

type Conn = ExternalConnection & KubeObject;

/** Test seams (trusted CAs, dial override, fault injection); never set in production. */
export interface ReconcilerHooks extends ProbeHooks {
  beforeSecretWrite?: BeforeSecretWrite;
}

/**
 * Reconciles an ExternalConnection in five steps: load it, re-check it
 * against its workspace and type, seal (verify every credential under this
 * connection's binding and keep the managed Secret), probe (schedule or
 * resume from the persisted result), and write status when it changed.
 */
export class ExternalConnectionReconciler {
  readonly #audit: AuditEvents;
  readonly #status: ConnectionStatus;
  readonly #sealer: CredentialSealer;
  readonly #prober: ConnectionProber;

  constructor(
    private readonly ctx: OperatorContext,
    enqueue: Enqueue,
    hooks: ReconcilerHooks = {},
  ) {
    this.#audit = new AuditEvents(ctx);
    this.#status = new ConnectionStatus(ctx);
    this.#sealer = new CredentialSealer(ctx, this.#status, hooks.beforeSecretWrite);
    this.#prober = new ConnectionProber(ctx, enqueue, hooks);
  }

  reconcile = async (req: ReconcileRequest, log: Logger): Promise<ReconcileResult | void> => {
    const ns = req.namespace!;
    const key = `${ns}/${req.name}`;
    const conn = await this.load(key, ns, req.name);
    if (!conn) {
      this.#prober.forget(key);
      this.#sealer.forget(key, ns, req.name);
      return; // the managed Secret is owned by the connection: garbage collection removes it
    }
    await this.#audit.record(conn);
    const now = new Date();
    const scope = this.scope(conn);
    if ('problems' in scope) return this.#status.refused(conn, scope.problems, now);
    const sealed = await this.#sealer.seal(key, conn, scope.ws, scope.type, now, log);
    if (!sealed) return;
    const probe = await this.#prober.plan(
      { key, conn, ws: scope.ws, type: scope.type, resolved: sealed.resolved },
      log,
    );
    const waitMs = firstProbeWait(probe, this.ctx.config.probes.statusGraceMs);
    // Waiting for the first probe of new inputs continues the user's change: it stays urgent.
    if (waitMs > 0) return { requeueAfterMs: Math.min(waitMs, probe.requeueAfterMs ?? waitMs), urgent: true };
    await this.#status.report(conn, sealed, probe, now);
    if (probe.requeueAfterMs !== undefined)
      return { requeueAfterMs: probe.requeueAfterMs, ...(probe.requeueUrgent ? { urgent: true } : {}) };
  };

  /** From the cache (writes carry resourceVersion, so a stale read ends in a 409 and a quick requeue); undefined when gone or going. */
  private async load(key: string, ns: string, name: string): Promise<Conn | undefined> {
    const conn = this.ctx.connections.get(key) ?? (await this.ctx.client.tryGet<Conn>(ExternalConnections, name, ns));
    return conn && !conn.metadata.deletionTimestamp ? conn : undefined;
  }

  /** The connection's Workspace and IntegrationType; admission checked them, checked again in case it was bypassed. */
  private scope(
    conn: Conn,
  ):
    | { ws: Workspace & KubeObject; type: IntegrationType & KubeObject }
    | { problems: ReturnType<typeof checkConnection> } {
    const ws = workspaceOf(this.ctx, conn.metadata.namespace!);
    const type = this.ctx.types.get(conn.spec.type);
    const problems = checkConnection(conn, ws, type);
    return problems.length > 0 || !ws || !type ? { problems } : { ws, type };
  }
}

/**
 * How much longer the status write waits for the first probe of the current inputs (0: write now): a probe
 * that answers within the grace lands in the same status write (one write from create to Ready instead of
 * two, and no Ready True → Unknown → True on a rotation); a slower one finds the pending status written.
 */
function firstProbeWait(probe: ProbeView, graceMs: number): number {
  return probe.awaitingSince === undefined ? 0 : Math.max(0, graceMs - (Date.now() - probe.awaitingSince));
}
