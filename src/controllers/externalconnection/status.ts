import {
  ConditionType,
  Reason,
  findCondition,
  setCondition,
  summarizeReady,
  type Condition,
  type ExternalConnection,
  type ExternalConnectionStatus,
} from '../../api/v1alpha1/index.js';
import type { KubeObject } from '../../kube/client.js';
import { isNotFound } from '../../kube/errors.js';
import { ExternalConnections } from '../../kube/resources.js';
import type { ProbeOutcome } from '../../integrations/probe-types.js';
import { deepEqual } from '../../util/deep-equal.js';
import type { OperatorContext } from '../context.js';
import type { ProbeView } from './probing.js';
import type { Sealed } from './sealing.js';

type Conn = ExternalConnection & KubeObject;

/**
 * The connection's status: composed from what sealing and probing found, and
 * written only when it differs from what the object already says (a status
 * write that changes nothing costs the API server a write and every watcher
 * an event).
 */
export class ConnectionStatus {
  constructor(private readonly ctx: Pick<OperatorContext, 'client' | 'events'>) {}

  /** Ready=False for a connection its workspace or type does not allow (admission was bypassed). */
  async refused(conn: Conn, problems: Array<{ reason: string; message: string }>, now: Date): Promise<void> {
    const gen = conn.metadata.generation;
    const conditions = setCondition(
      conn.status?.conditions,
      {
        type: ConditionType.Ready,
        status: 'False',
        reason: problems[0]!.reason,
        message: problems.map((x) => x.message).join('; '),
        observedGeneration: gen,
      },
      now,
    );
    await this.write(conn, { ...conn.status, observedGeneration: gen, conditions });
  }

  /** CredentialsSealed=False (and Ready with it); the managed Secret stays as it was. */
  async failSealed(
    conn: Conn,
    reason: string,
    message: string,
    now: Date,
    credentials?: ExternalConnectionStatus['credentials'],
  ): Promise<void> {
    const gen = conn.metadata.generation;
    let conditions = setCondition(
      conn.status?.conditions,
      { type: ConditionType.CredentialsSealed, status: 'False', reason, message, observedGeneration: gen },
      now,
    );
    conditions = setCondition(conditions, summarizeReady(conditions, [ConditionType.CredentialsSealed], gen), now);
    await this.write(conn, {
      ...conn.status,
      observedGeneration: gen,
      conditions,
      ...(credentials ? { credentials } : {}),
    });
  }

  /**
   * Sealed, with the probe's view of it: conditions, credential bookkeeping and lastProbe; one Event when Ready
   * flips on a probe result.
   */
  async report(conn: Conn, sealed: Sealed, probe: ProbeView, now: Date): Promise<void> {
    const gen = conn.metadata.generation;
    let conditions: Condition[] = setCondition(
      conn.status?.conditions,
      {
        type: ConditionType.CredentialsSealed,
        status: 'True',
        reason: Reason.Sealed,
        message: sealed.message,
        observedGeneration: gen,
      },
      now,
    );
    conditions = applyProbe(conditions, probe.current, gen, now);
    conditions = setCondition(
      conditions,
      summarizeReady(
        conditions,
        [ConditionType.CredentialsSealed, ConditionType.Reachable, ConditionType.Authenticated],
        gen,
      ),
      now,
    );
    const wasReady = findCondition(conn.status?.conditions, ConditionType.Ready);
    const isReady = findCondition(conditions, ConditionType.Ready)!;
    if (probe.current && wasReady?.status !== isReady.status) {
      await this.ctx.events.record(
        ExternalConnections,
        conn,
        isReady.status === 'True' ? 'Normal' : 'Warning',
        probe.current.reason,
        probe.current.message,
      );
    }
    await this.write(conn, {
      observedGeneration: gen,
      conditions,
      credentials: sealed.credentials,
      credentialHint: sealed.credentialHint,
      secretName: sealed.secretName,
      ...(probe.lastProbe ? { lastProbe: probe.lastProbe } : {}),
    });
  }

  private async write(conn: Conn, computed: ExternalConnectionStatus): Promise<void> {
    // status.usage belongs to the gateway: carried over as read (a newer gateway write makes this replace conflict and requeue).
    const status = conn.status?.usage === undefined ? computed : { ...computed, usage: conn.status.usage };
    if (deepEqual(status, conn.status ?? {})) return;
    try {
      // A full replace at the read resourceVersion: stale writes conflict (and requeue) instead of merging.
      await this.ctx.client.replace(ExternalConnections, { ...conn, status }, { subresource: 'status' });
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }
}

/** Maps a probe outcome onto Reachable/Authenticated; pending while none has run yet. */
function applyProbe(
  conditions: Condition[],
  outcome: ProbeOutcome | undefined,
  gen: number | undefined,
  now: Date,
): Condition[] {
  if (!outcome) {
    const pending = {
      status: 'Unknown' as const,
      reason: Reason.ProbePending,
      message: 'A probe is scheduled',
      observedGeneration: gen,
    };
    conditions = setCondition(conditions, { type: ConditionType.Reachable, ...pending }, now);
    return setCondition(conditions, { type: ConditionType.Authenticated, ...pending }, now);
  }
  conditions = setCondition(
    conditions,
    {
      type: ConditionType.Reachable,
      status: outcome.reachable,
      reason: outcome.reachable === 'True' ? Reason.Succeeded : outcome.reason,
      message: outcome.message,
      observedGeneration: gen,
    },
    now,
  );
  return setCondition(
    conditions,
    {
      type: ConditionType.Authenticated,
      status: outcome.authenticated,
      reason: outcome.reason,
      message: outcome.message,
      observedGeneration: gen,
    },
    now,
  );
}
