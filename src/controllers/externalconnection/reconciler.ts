import { createHash } from 'node:crypto';
import {
  CONNECTION_LABEL,
  ConditionType,
  MANAGED_BY_LABEL,
  MANAGED_BY_VALUE,
  OFFER_PINS_ANNOTATION,
  REBIND_REQUESTED_ANNOTATION,
  REBIND_REQUESTED_BY_ANNOTATION,
  Reason,
  SEALED_SECRET_TYPE,
  TEST_REQUESTED_AT_ANNOTATION,
  WORKSPACE_LABEL,
  findCondition,
  managedSecretName,
  setCondition,
  summarizeReady,
  type Condition,
  type ExternalConnection,
  type ExternalConnectionStatus,
  type IntegrationType,
  type Workspace,
} from '../../api/v1alpha1/index.js';
import { CryptoError } from '../../crypto/errors.js';
import type { KubeObject } from '../../kube/client.js';
import { isNotFound } from '../../kube/errors.js';
import { ownerReference } from '../../kube/owner.js';
import { ExternalConnections, Secrets } from '../../kube/resources.js';
import { runProbe } from '../../integrations/run-probe.js';
import type { ProbeContext, ProbeOutcome } from '../../integrations/probe-types.js';
import type { ReconcileRequest, ReconcileResult } from '../../runtime/controller.js';
import type { Logger } from '../../runtime/logger.js';
import { workspaceIdentity } from '../../domain/workspace-identity.js';
import { workspaceOf, type OperatorContext, type Secret } from '../context.js';
import { CredentialProblem, STATE_ANNOTATION, readState, resolveField, type FieldContext, type FieldState, type ResolvedField } from './credentials.js';
import { parseDuration } from '../../domain/duration.js';
import { checkConnection } from '../../domain/connection-policy.js';
import { ProbeScheduler } from './probe-scheduler.js';
import { destinationDigest, legacyDestinationDigest, settingsDigest } from '../../integrations/destination.js';
import { AuditEvents } from './audit-events.js';
import { deepEqual } from '../../util/deep-equal.js';

type Conn = ExternalConnection & KubeObject;

const DEFAULT_INTERVAL_MS = 10 * 60_000;
const DEFAULT_TIMEOUT_MS = 10_000;

/** Test seams (trusted CAs, dial override, fault injection); never set in production. */
export interface ReconcilerHooks {
  trustedCAs?: string[];
  dial?: ProbeContext['dial'];
  /** Runs after the KMS calls and before the managed Secret write: lets tests crash the controller there. */
  beforeSecretWrite?: (namespace: string, name: string) => Promise<void>;
}


/**
 * Reconciles an ExternalConnection: re-checks it against workspace and type,
 * verifies every sealed value under this connection's binding, keeps the
 * managed Secret (ciphertext only), schedules probes, and reports conditions.
 */
export class ExternalConnectionReconciler {
  readonly probes: ProbeScheduler;
  /** The last credential Warning recorded per connection (uid/generation/reason). */
  private readonly warned = new Map<string, string>();
  readonly #audit: AuditEvents;
  constructor(private readonly ctx: OperatorContext, enqueue: (key: string) => void, private readonly hooks: ReconcilerHooks = {}) {
    this.probes = new ProbeScheduler(ctx.config.probes.concurrency, enqueue, Date.now, ctx.config.probes.perWorkspace);
    this.#audit = new AuditEvents(ctx);
  }

  reconcile = async (req: ReconcileRequest, log: Logger): Promise<ReconcileResult | void> => {
    const { client } = this.ctx;
    const ns = req.namespace!;
    const key = `${ns}/${req.name}`;
    // Read from the caches (writes carry resourceVersion, so a stale read ends in a 409 and a quick requeue).
    const conn = this.ctx.connections.get(key) ?? (await client.tryGet<Conn>(ExternalConnections, req.name, ns));
    if (!conn || conn.metadata.deletionTimestamp) {
      this.probes.forget(key);
      this.warned.delete(key);
      return; // the managed Secret is owned by the connection: garbage collection removes it
    }
    await this.#audit.record(conn);
    const gen = conn.metadata.generation;
    const now = new Date();
    let conditions: Condition[] = conn.status?.conditions ?? [];
    const ws = workspaceOf(this.ctx, ns);
    const type = this.ctx.types.get(conn.spec.type);

    // Admission checked all of this; check again in case it was bypassed.
    const problems = checkConnection(conn, ws, type);
    if (problems.length) {
      const p = problems[0]!;
      conditions = setCondition(conditions, { type: ConditionType.Ready, status: 'False', reason: p.reason, message: problems.map((x) => x.message).join('; '), observedGeneration: gen }, now);
      await this.writeStatus(conn, { ...conn.status, observedGeneration: gen, conditions });
      return;
    }

    const identity = workspaceIdentity(ws!);
    const keyRef = this.ctx.crypto.keyFor(ws!.spec?.encryption?.keyId);
    const secretName = managedSecretName(conn.metadata.name!);
    const existing = await this.readSecret(ns, secretName);
    if (existing && existing.metadata?.labels?.[MANAGED_BY_LABEL] !== MANAGED_BY_VALUE) {
      // Someone else's Secret has the name we need: never overwrite it.
      await this.failSealed(conn, conditions, Reason.PolicyViolation, `Secret ${secretName} already exists and is not managed by atoll; rename that Secret or this connection`, now);
      return;
    }
    // A managed Secret left by a deleted namesake (orphaned) carries nothing over: its state is ignored and it is rewritten.
    const ours = existing?.metadata?.ownerReferences?.some((o) => o.uid === conn.metadata.uid) ?? false;
    const previous = ours ? readState(existing) : {};
    const fields: FieldContext = {
      crypto: this.ctx.crypto,
      namespace: ns,
      workspace: identity,
      connection: conn.metadata.name!,
      uid: conn.metadata.uid!,
      destination: destinationDigest(type!, conn.spec.settings),
      legacyDestination: legacyDestinationDigest(type!, conn.spec.settings),
      settings: settingsDigest(conn.spec.settings),
      typeName: conn.spec.type,
      ...(type!.metadata?.generation !== undefined ? { typeGeneration: type!.metadata.generation } : {}),
      key: keyRef,
      ...(conn.metadata.annotations?.[REBIND_REQUESTED_ANNOTATION] !== undefined ? { rebind: conn.metadata.annotations[REBIND_REQUESTED_ANNOTATION] } : {}),
      readSource: (name) => this.readSecret(ns, name),
      writePins: async (name, pins) => {
        await client.mergePatch(Secrets, name, ns, { metadata: { annotations: { [OFFER_PINS_ANNOTATION]: JSON.stringify(pins) } } });
      },
      now,
    };
    const resolved: ResolvedField[] = [];
    const fieldProblems: Array<{ field: string; problem: CredentialProblem }> = [];
    try {
      for (const [field, source] of Object.entries(conn.spec.credentials ?? {})) {
        const ct = ours && existing?.data?.[field] ? Buffer.from(existing.data[field], 'base64').toString('utf8') : undefined;
        try {
          resolved.push(await resolveField(fields, field, source, { state: previous[field], ciphertext: ct, statusVersion: conn.status?.credentials?.[field]?.version }));
        } catch (err) {
          if (!(err instanceof CredentialProblem)) throw err;
          fieldProblems.push({ field, problem: err });
        }
      }
    } catch (err) {
      // Only a KMS that does not answer (or refuses the operator) gets here: problems of a ciphertext are CredentialProblems.
      if (err instanceof CryptoError) {
        this.ctx.metrics.kmsFailures.inc({ provider: keyRef.provider, reason: err.reason });
        await this.failSealed(conn, conditions, Reason.KMSUnavailable, `the KMS (${keyRef.provider}) could not be reached or refused the request; the stored credentials are unchanged and atoll retries with backoff`, now);
      }
      throw err;
    }

    await this.hooks.beforeSecretWrite?.(ns, req.name);
    // A field waiting for a rebind keeps its copy (nothing deleted, nothing served: it no longer opens for the
    // current destination); any other problem removes the field, so the gateway and agent stop serving it.
    const kept = fieldProblems.filter((p) => p.problem.keep && previous[p.field] && existing?.data?.[p.field] !== undefined).map((p) => p.field);
    // A new connection with a problem gets no managed Secret yet; an existing one loses what may no longer be served.
    if (ours || (resolved.length > 0 && fieldProblems.length === 0)) await this.writeSecret(conn, ws!, secretName, ours ? existing : undefined, existing, resolved, kept, previous, log);
    for (const r of resolved.filter((x) => x.rotated && previous[x.field])) {
      await this.ctx.events.record(ExternalConnections, conn, 'Normal', 'CredentialRotated', `credential ${r.field} rotated to version ${r.state.version}`);
    }
    const rebound = resolved.filter((r) => r.rebound).map((r) => r.field);
    if (rebound.length > 0) {
      const by = conn.metadata.annotations?.[REBIND_REQUESTED_BY_ANNOTATION] ?? 'an unknown user';
      await this.ctx.events.record(ExternalConnections, conn, 'Normal', 'CredentialsRebound', `credential(s) ${rebound.join(', ')} re-sealed for the current destination of IntegrationType ${conn.spec.type}; confirmed by ${by}`);
    }
    const credentialStatus = (list: ResolvedField[]) => ({
      ...Object.fromEntries(kept.map((f) => [f, conn.status?.credentials?.[f] ?? {}])),
      ...Object.fromEntries(list.map((r) => [r.field, { hint: r.state.hint, version: r.state.version, updatedAt: r.state.updatedAt, keyId: r.state.keyId, ...(r.state.sealed ? { sealed: r.state.sealed } : {}) }])),
    });
    if (fieldProblems.length > 0) {
      const first = fieldProblems[0]!.problem;
      // One Event per change of reason: a terminal problem is not retried, so there is no storm to report.
      // The memo covers a reconcile that runs before the watch delivers the status just written (our own Secret write triggers it).
      const said = `${conn.metadata.uid}/${gen}/${first.reason}`;
      if (findCondition(conn.status?.conditions, ConditionType.CredentialsSealed)?.reason !== first.reason && this.warned.get(key) !== said) {
        await this.ctx.events.record(ExternalConnections, conn, 'Warning', first.reason, first.message);
      }
      this.warned.set(key, said);
      await this.failSealed(conn, conditions, first.reason, fieldProblems.map((p) => p.problem.message).join('; '), now, credentialStatus(resolved));
      return;
    }
    this.warned.delete(key);
    conditions = setCondition(conditions, { type: ConditionType.CredentialsSealed, status: 'True', reason: Reason.Sealed, message: `${resolved.length} credential(s) sealed with ${keyRef.keyId}`, observedGeneration: gen }, now);

    // Probes: on every change of settings or credentials, on request, and every interval.
    const intervalMs = parseDuration(conn.spec.probe?.interval, DEFAULT_INTERVAL_MS);
    const timeoutMs = Math.min(60_000, parseDuration(conn.spec.probe?.timeout, DEFAULT_TIMEOUT_MS));
    const subject = probeSubject(conn, type!, resolved, ws!.spec?.policy?.egress?.allowCIDRs ?? []);
    const tag = probeTag(subject, conn);
    const last = this.probes.result(key);
    const stale = !last || last.subject !== subject || (intervalMs > 0 && Date.now() - last.finishedAt >= intervalMs);
    // Every probe sends the stored credential to a third party: at most one per connection per window,
    // whether a test request asked for it (only the annotation differs from the probe queued, running
    // or last run of the same subject) or the subject changed. Toggling spec.probe.timeout or a setting
    // back and forth would otherwise send one credentialed request per write. The first probe (none
    // started under this name within the window: a connection deleted and created again keeps its
    // window) and a probe due by spec.probe.interval run at once.
    const pending = this.probes.pendingProbe(key);
    const testOnly = pending ? pending.subject === subject : !stale && last.tag !== tag;
    const subjectChanged = pending ? pending.subject !== subject : last !== undefined && last.subject !== subject;
    const coalesceMs = pending?.tag !== tag && (testOnly || subjectChanged || !last) ? this.onDemandWait(key) : 0;
    if (coalesceMs > 0 && testOnly && this.probes.noticeCoalesced(key)) {
      await this.ctx.events.record(ExternalConnections, conn, 'Normal', Reason.TestRequestCoalesced, `on-demand tests are coalesced to at most one probe every ${this.ctx.config.probes.testMinIntervalMs / 1000}s per connection; the latest request runs in about ${Math.ceil(coalesceMs / 1000)}s`);
    }
    const start = pending?.tag !== tag && (testOnly || stale) && coalesceMs === 0;
    if (start) {
      const credentials = Object.fromEntries(resolved.map((r) => [r.field, r.plaintext]));
      const probeCtx: ProbeContext = {
        settings: (conn.spec.settings ?? {}),
        credentials,
        timeoutMs,
        egress: { allowCIDRs: ws!.spec?.policy?.egress?.allowCIDRs ?? [] },
        maxResponseBytes: this.ctx.config.probes.maxResponseBytes,
        ...(this.hooks.trustedCAs ? { trustedCAs: this.hooks.trustedCAs } : {}),
        ...(this.hooks.dial ? { dial: this.hooks.dial } : {}),
      };
      const typeName = conn.spec.type;
      const previousReason = last?.outcome.reason ?? conn.status?.lastProbe?.result;
      this.probes.request(key, { tag, subject }, async (signal) => {
        const outcome = await runProbe(type!, { ...probeCtx, signal });
        // Changes only: a steady state does not fill the log every interval.
        if (outcome.reason !== previousReason) log.info({ type: typeName, reason: outcome.reason, previous: previousReason ?? null, reachable: outcome.reachable, authenticated: outcome.authenticated }, `probe outcome changed: ${outcome.message}`);
        this.ctx.metrics.probeTotal.inc({ type: typeName, reason: outcome.reason });
        this.ctx.metrics.probeDuration.observe({ type: typeName }, outcome.durationMs / 1000);
        return outcome;
      });
    }
    // An on-demand test does not invalidate what the last probe of the same settings and credentials found.
    const current = last && last.subject === subject ? last.outcome : undefined;
    conditions = applyProbe(conditions, current, gen, now);
    conditions = setCondition(conditions, summarizeReady(conditions, [ConditionType.CredentialsSealed, ConditionType.Reachable, ConditionType.Authenticated], gen), now);

    const wasReady = findCondition(conn.status?.conditions, ConditionType.Ready);
    const isReady = findCondition(conditions, ConditionType.Ready)!;
    if (current && wasReady?.status !== isReady.status) {
      await this.ctx.events.record(ExternalConnections, conn, isReady.status === 'True' ? 'Normal' : 'Warning', current.reason, current.message);
    }
    const order = (type!.spec.credentialFields ?? []).map((f) => f.name);
    const first = [...resolved].sort((a, b) => order.indexOf(a.field) - order.indexOf(b.field))[0];
    const status: ExternalConnectionStatus = {
      observedGeneration: gen,
      conditions,
      credentials: credentialStatus(resolved),
      credentialHint: first?.state.hint ?? '',
      secretName,
      ...(current && last ? { lastProbe: { time: new Date(last.finishedAt).toISOString(), durationMs: current.durationMs, result: current.reason, message: current.message } } : conn.status?.lastProbe ? { lastProbe: conn.status.lastProbe } : {}),
    };
    await this.writeStatus(conn, status);
    // A coalesced test request runs when its window ends.
    if (coalesceMs > 0) return { requeueAfterMs: coalesceMs };
    // While a probe is due it is starting or in flight, and its completion enqueues the key: no timer.
    if (intervalMs > 0 && current && last && !stale && !testOnly) {
      const remaining = Math.max(1000, intervalMs - (Date.now() - last.finishedAt));
      return { requeueAfterMs: remaining + Math.random() * Math.min(30_000, intervalMs * 0.1) };
    }
  };

  /**
   * How long an on-demand test must wait: until the probe in flight ends
   * (its completion enqueues the key; the wait is re-computed then) or the
   * window since the last probe started has passed. 0 when it may run now.
   */
  private onDemandWait(key: string): number {
    const window = this.ctx.config.probes.testMinIntervalMs;
    if (this.probes.pendingProbe(key)) return window;
    const started = this.probes.lastStartedAt(key);
    return started === undefined ? 0 : Math.max(0, started + window - Date.now());
  }

  /** A Secret of a workspace namespace: from its watch cache once synced, else from the API server. */
  private async readSecret(ns: string, name: string): Promise<Secret | undefined> {
    if (this.ctx.secrets.synced(ns)) return this.ctx.secrets.get(ns, name);
    return this.ctx.client.tryGet<Secret>(Secrets, name, ns);
  }

  /** CredentialsSealed=False (and Ready with it); the managed Secret stays as it was. */
  private async failSealed(conn: Conn, conditions: Condition[], reason: string, message: string, now: Date, credentials?: ExternalConnectionStatus['credentials']): Promise<void> {
    const gen = conn.metadata.generation;
    conditions = setCondition(conditions, { type: ConditionType.CredentialsSealed, status: 'False', reason, message, observedGeneration: gen }, now);
    conditions = setCondition(conditions, summarizeReady(conditions, [ConditionType.CredentialsSealed], gen), now);
    await this.writeStatus(conn, { ...conn.status, observedGeneration: gen, conditions, ...(credentials ? { credentials } : {}) });
  }

  /** `owned` is the existing Secret when it belongs to this connection object; `existing` is whatever has the name. */
  private async writeSecret(conn: Conn, ws: Workspace & KubeObject, name: string, owned: Secret | undefined, existing: Secret | undefined, resolved: ResolvedField[], kept: string[], previous: Record<string, FieldState>, log: Logger): Promise<void> {
    const ns = conn.metadata.namespace!;
    const data: Record<string, string> = Object.fromEntries(kept.map((f) => [f, owned!.data![f]!]));
    for (const r of resolved) data[r.field] = Buffer.from(r.ciphertext).toString('base64');
    // Removed fields keep their state (not their data): versions never restart, so an old copy never fits again.
    const state: Record<string, FieldState> = { ...previous };
    for (const r of resolved) state[r.field] = r.state;
    const annotation = JSON.stringify(state);
    if (owned && sameData(owned.data, data) && owned.metadata?.annotations?.[STATE_ANNOTATION] === annotation) return;
    const body: Secret = {
      metadata: {
        name,
        namespace: ns,
        labels: { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE, [CONNECTION_LABEL]: conn.metadata.name!, [WORKSPACE_LABEL]: ws.metadata.name! },
        annotations: { [STATE_ANNOTATION]: annotation },
        ownerReferences: [ownerReference(conn)],
        ...(existing ? { resourceVersion: existing.metadata?.resourceVersion } : {}),
      },
      type: SEALED_SECRET_TYPE,
      data,
    };
    if (existing) await this.ctx.client.replace(Secrets, body);
    else await this.ctx.client.create(Secrets, body);
    log.info({ fields: resolved.length, secret: body.metadata!.name }, 'managed secret written');
  }

  private async writeStatus(conn: Conn, computed: ExternalConnectionStatus): Promise<void> {
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
function applyProbe(conditions: Condition[], outcome: ProbeOutcome | undefined, gen: number | undefined, now: Date): Condition[] {
  if (!outcome) {
    const pending = { status: 'Unknown' as const, reason: Reason.ProbePending, message: 'A probe is scheduled', observedGeneration: gen };
    conditions = setCondition(conditions, { type: ConditionType.Reachable, ...pending }, now);
    return setCondition(conditions, { type: ConditionType.Authenticated, ...pending }, now);
  }
  conditions = setCondition(conditions, { type: ConditionType.Reachable, status: outcome.reachable, reason: outcome.reachable === 'True' ? Reason.Succeeded : outcome.reason, message: outcome.message, observedGeneration: gen }, now);
  return setCondition(conditions, { type: ConditionType.Authenticated, status: outcome.authenticated, reason: outcome.reason, message: outcome.message, observedGeneration: gen }, now);
}

/**
 * What a probe result is about: settings, the Workspace's egress allow-list (a change re-probes at once),
 * credential fingerprints, the type and the timeout.
 */
function probeSubject(conn: Conn, type: IntegrationType, resolved: ResolvedField[], allowCIDRs: readonly string[]): string {
  const h = createHash('sha256');
  h.update(JSON.stringify(conn.spec.settings ?? {}));
  h.update(JSON.stringify(allowCIDRs));
  for (const r of resolved) h.update(`${r.field}:${r.state.fingerprint}`);
  h.update(`${type.metadata?.resourceVersion ?? ''}|${conn.spec.probe?.timeout ?? ''}`);
  return h.digest('base64url');
}

/** What a probe request depends on: its subject and the test request. */
function probeTag(subject: string, conn: Conn): string {
  return `${subject}|${conn.metadata.annotations?.[TEST_REQUESTED_AT_ANNOTATION] ?? ''}`;
}

function sameData(a: Record<string, string> | undefined, b: Record<string, string>): boolean {
  const ka = Object.keys(a ?? {}).sort();
  const kb = Object.keys(b).sort();
  return ka.length === kb.length && ka.every((k, i) => k === kb[i] && a![k] === b[k]);
}
