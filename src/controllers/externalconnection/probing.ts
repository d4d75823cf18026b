import { createHash } from 'node:crypto';
import {
  ConditionType,
  Reason,
  TEST_REQUESTED_AT_ANNOTATION,
  findCondition,
  type ExternalConnection,
  type IntegrationType,
  type ProbeResult,
  type Workspace,
} from '../../api/v1alpha1/index.js';
import type { KubeObject } from '../../kube/client.js';
import { ExternalConnections } from '../../kube/resources.js';
import { runProbe } from '../../integrations/run-probe.js';
import type { ProbeContext, ProbeOutcome, ProbeReason } from '../../integrations/probe-types.js';
import type { Logger } from '../../runtime/logger.js';
import type { OperatorContext } from '../context.js';
import type { ResolvedField } from './credentials.js';
import { parseDuration } from '../../domain/duration.js';
import type { Lane } from '../../runtime/workqueue.js';
import { ProbeScheduler, sameOutcome, type ProbeRecord } from './probe-scheduler.js';

type Conn = ExternalConnection & KubeObject;

const DEFAULT_INTERVAL_MS = 10 * 60_000;
const DEFAULT_TIMEOUT_MS = 10_000;
/** Longest test-request value kept as is in status.lastProbe.testRequest (longer ones are kept as a digest). */
const MAX_TEST_REQUEST_CHARS = 64;
/**
 * How old status.lastProbe.time may grow while probes keep finding the same outcome for the same inputs
 * before a probe writes its time again (ADR 0028). Below it a periodic probe that changes nothing writes
 * nothing: one status write per connection per max(interval, 5 min) at most, as the kubelet reports an
 * unchanged node status every 5 minutes and not on every heartbeat.
 */
const LAST_PROBE_REFRESH_MS = 5 * 60_000;
/**
 * Refreshes of unchanged results, all connections together, per second at most (ADR 0034): beyond 3,000
 * connections the refresh period grows with their number (17 minutes at 10,000), so the steady state costs
 * the API server 10 writes a second however many connections there are, not 33 at 10,000.
 */
const REFRESH_WRITES_PER_SECOND = 10;

/** How old status.lastProbe.time may grow, unchanged, with this many connections in the cache. */
export function lastProbeRefreshMs(connections: number): number {
  return Math.max(LAST_PROBE_REFRESH_MS, (connections / REFRESH_WRITES_PER_SECOND) * 1000);
}
/**
 * A periodic probe is due this much before its time: a requeue timer can fire a little early (Node measures
 * it from the event loop's cached clock), and a probe found not quite due would wait a whole extra second.
 */
const DUE_SLACK_MS = 250;

/** Test seams of probing (trusted CAs, dial override); never set in production. */
export interface ProbeHooks {
  trustedCAs?: string[];
  dial?: ProbeContext['dial'];
}

/** What a connection's probing looks like now, for its status and its next reconcile. */
export interface ProbeView {
  /** The outcome for the current inputs, if one is known (an on-demand test does not unknow it). */
  current?: ProbeOutcome;
  /** status.lastProbe to publish. */
  lastProbe?: ProbeResult;
  /** When to look again: a coalesced test request, or the next interval. */
  requeueAfterMs?: number;
  /** The requeue is a user's test request held back by its window (urgent), not the interval. */
  requeueUrgent?: boolean;
  /** While the first probe of the current inputs is queued or running: when it was requested (ms since epoch). */
  awaitingSince?: number;
}

/** Queues a reconcile of the key, after `afterMs` when given. */
export type Enqueue = (key: string, lane: Lane, afterMs?: number) => void;

/** The parts of a connection a probe depends on. */
interface ProbeInputs {
  key: string;
  conn: Conn;
  type: IntegrationType & KubeObject;
  ws: Workspace & KubeObject;
  resolved: ResolvedField[];
}

/**
 * Decides when a connection is probed and what its status says about it.
 * Probes run on every change of their inputs, on request (coalesced) and every
 * interval; the outcome persists in status.lastProbe with a digest of its
 * inputs, so a restarted process or a new leader resumes from it instead of
 * probing (and flipping Ready) again.
 */
export class ConnectionProber {
  private readonly scheduler: ProbeScheduler;
  /** When the probe of each key's current inputs was requested (see ProbeView.awaitingSince). */
  readonly #requested = new Map<string, { subject: string; at: number }>();
  /** Keys whose test request or new inputs wait for the probe in flight to end (see `finished`). */
  readonly #waitingOnProbe = new Set<string>();

  constructor(
    private readonly ctx: Pick<OperatorContext, 'config' | 'events' | 'metrics' | 'connections'>,
    private readonly enqueue: Enqueue,
    private readonly hooks: ProbeHooks = {},
  ) {
    this.scheduler = new ProbeScheduler(
      ctx.config.probes.concurrency,
      (key, lane) => this.finished(key, lane),
      Date.now,
      ctx.config.probes.perWorkspace,
    );
  }

  /**
   * A probe finished: the next reconcile writes its result into status. A periodic probe that found what
   * status already records, within the refresh period, is the exception: that reconcile would write
   * nothing and only set the timer of the next probe, so the timer is set here and the reconcile skipped,
   * half the reconciles of the steady state (ADR 0034). A change meanwhile enqueued its own reconcile; one
   * held back until this probe ended (a test request, new inputs: `#waitingOnProbe`) gets it now.
   */
  private finished(key: string, lane: Lane): void {
    const waited = this.#waitingOnProbe.delete(key);
    const conn = lane === 'routine' && !waited ? this.ctx.connections.get(key) : undefined;
    const last = this.scheduler.result(key);
    const intervalMs = conn ? parseDuration(conn.spec.probe?.interval, DEFAULT_INTERVAL_MS) : 0;
    if (
      conn &&
      last &&
      intervalMs > 0 &&
      conn.status?.lastProbe !== undefined &&
      publishedProbe(conn, last, lastProbeRefreshMs(this.ctx.connections.size)) === conn.status.lastProbe
    )
      return this.enqueue(key, 'routine', Math.max(DUE_SLACK_MS, dueAt(last, intervalMs) - Date.now()));
    this.enqueue(key, lane);
  }

  forget(key: string): void {
    this.scheduler.forget(key);
    this.#requested.delete(key);
    this.#waitingOnProbe.delete(key);
  }

  async plan(inputs: ProbeInputs, log: Logger): Promise<ProbeView> {
    const { key, conn } = inputs;
    const intervalMs = parseDuration(conn.spec.probe?.interval, DEFAULT_INTERVAL_MS);
    const subject = probeSubject(inputs);
    const tag = probeTag(subject, conn);
    const persisted = persistedProbe(conn);
    const refreshMs = lastProbeRefreshMs(this.ctx.connections.size);
    if (persisted && !this.scheduler.result(key))
      this.scheduler.seed(key, resumed(persisted, intervalMs, Date.now(), refreshMs));
    const last = this.scheduler.result(key);
    const stale =
      !last || last.subject !== subject || (intervalMs > 0 && Date.now() + DUE_SLACK_MS >= dueAt(last, intervalMs));
    // Every probe sends the stored credential to a third party: at most one per connection per window,
    // whether a test request asked for it (only the annotation differs from the probe queued, running
    // or last run of the same subject) or the subject changed. Toggling spec.probe.timeout or a setting
    // back and forth would otherwise send one credentialed request per write. The first probe (none
    // started under this name within the window: a connection deleted and created again keeps its
    // window) and a probe due by spec.probe.interval run at once.
    const pending = this.scheduler.pendingProbe(key);
    const testOnly = pending ? pending.subject === subject : !stale && last.tag !== tag;
    const subjectChanged = pending ? pending.subject !== subject : last !== undefined && last.subject !== subject;
    const coalesceMs = pending?.tag !== tag && (testOnly || subjectChanged || !last) ? this.onDemandWait(key) : 0;
    // Held back by the probe in flight: its completion must reconcile, whatever it finds (see `finished`).
    if (coalesceMs > 0 && pending) this.#waitingOnProbe.add(key);
    if (coalesceMs > 0 && testOnly && this.scheduler.noticeCoalesced(key)) {
      await this.ctx.events.record(
        ExternalConnections,
        conn,
        'Normal',
        Reason.TestRequestCoalesced,
        `on-demand tests are coalesced to at most one probe every ${this.ctx.config.probes.testMinIntervalMs / 1000}s per connection; the latest request runs in about ${Math.ceil(coalesceMs / 1000)}s`,
      );
    }
    if (pending?.tag !== tag && (testOnly || stale) && coalesceMs === 0)
      await this.start(inputs, { tag, subject }, last, log);

    const current = last && last.subject === subject ? last.outcome : undefined;
    // Answered: the request time matters only while awaited (one entry per connection was 2 MiB at 10,000).
    if (current && !pending) this.#requested.delete(key);
    // New inputs held back by the window still count as awaited: their probe starts when the window ends,
    // and the status write waits for it within the grace (a restart with changed inputs keeps Ready as is).
    const heldBack = !current && subjectChanged && coalesceMs > 0;
    if (heldBack && this.#requested.get(key)?.subject !== subject)
      this.#requested.set(key, { subject, at: Date.now() });
    const requested = this.#requested.get(key);
    const view: ProbeView = {
      ...(current ? { current } : {}),
      ...(current && last
        ? { lastProbe: publishedProbe(conn, last, refreshMs) }
        : conn.status?.lastProbe
          ? { lastProbe: conn.status.lastProbe }
          : {}),
    };
    if (
      !current &&
      requested?.subject === subject &&
      (heldBack || this.scheduler.pendingProbe(key)?.subject === subject)
    )
      view.awaitingSince = requested.at;
    // A coalesced test request runs when its window ends.
    if (coalesceMs > 0) {
      view.requeueAfterMs = coalesceMs;
      view.requeueUrgent = true;
    }
    // While a probe is due it is starting or in flight, and its completion enqueues the key or sets its timer.
    else if (intervalMs > 0 && current && last && !stale && !testOnly) {
      // Jitter is drawn once, after a probe a user caused (ProbeRecord.jitter): periodic probes then keep the
      // spread it gave them at exactly one interval apart, and a restart spreads overdue ones (`resumed`).
      view.requeueAfterMs = Math.max(DUE_SLACK_MS, dueAt(last, intervalMs) - Date.now());
    }
    return view;
  }

  /** Queues the probe; the credentials are opened here, only when a probe is to run. */
  private async start(
    { key, conn, type, ws, resolved }: ProbeInputs,
    request: { tag: string; subject: string },
    last: ProbeRecord | undefined,
    log: Logger,
  ): Promise<void> {
    const credentials = Object.fromEntries(
      await Promise.all(resolved.map(async (r) => [r.field, await r.reveal()] as const)),
    );
    const probeCtx: ProbeContext = {
      settings: conn.spec.settings ?? {},
      credentials,
      timeoutMs: Math.min(60_000, parseDuration(conn.spec.probe?.timeout, DEFAULT_TIMEOUT_MS)),
      egress: { allowCIDRs: ws.spec?.policy?.egress?.allowCIDRs ?? [] },
      maxResponseBytes: this.ctx.config.probes.maxResponseBytes,
      ...(this.hooks.trustedCAs ? { trustedCAs: this.hooks.trustedCAs } : {}),
      ...(this.hooks.dial ? { dial: this.hooks.dial } : {}),
    };
    const typeName = conn.spec.type;
    const previousReason = last?.outcome.reason ?? conn.status?.lastProbe?.result;
    if (this.#requested.get(key)?.subject !== request.subject)
      this.#requested.set(key, { subject: request.subject, at: Date.now() });
    // A periodic probe repeats the last one's request; anything else (first probe, new inputs, a test) a user caused.
    const urgent = last?.tag !== request.tag;
    this.scheduler.request(key, { ...request, urgent }, async (signal) => {
      const outcome = await runProbe(type, { ...probeCtx, signal });
      // Changes only: a steady state does not fill the log every interval.
      if (outcome.reason !== previousReason)
        log.info(
          {
            type: typeName,
            reason: outcome.reason,
            previous: previousReason ?? null,
            reachable: outcome.reachable,
            authenticated: outcome.authenticated,
          },
          `probe outcome changed: ${outcome.message}`,
        );
      this.ctx.metrics.probeTotal.inc({ type: typeName, reason: outcome.reason });
      this.ctx.metrics.probeDuration.observe({ type: typeName }, outcome.durationMs / 1000);
      return outcome;
    });
  }

  /**
   * How long an on-demand test must wait: until the probe in flight ends
   * (its completion enqueues the key; the wait is re-computed then) or the
   * window since the last probe started has passed. 0 when it may run now.
   */
  private onDemandWait(key: string): number {
    const window = this.ctx.config.probes.testMinIntervalMs;
    if (this.scheduler.pendingProbe(key)) return window;
    const started = this.scheduler.lastStartedAt(key);
    return started === undefined ? 0 : Math.max(0, started + window - Date.now());
  }
}

/**
 * What a probe result is about: settings, the Workspace's egress allow-list (a change re-probes at once),
 * the credentials' keyed fingerprints, the IntegrationType's spec and the timeout. Published in status as
 * lastProbe.inputs: a SHA-256 over keyed fingerprints tells nobody anything about a credential.
 */
function probeSubject({ conn, type, ws, resolved }: Pick<ProbeInputs, 'conn' | 'type' | 'ws' | 'resolved'>): string {
  const h = createHash('sha256');
  h.update(JSON.stringify(conn.spec.settings ?? {}));
  h.update(JSON.stringify(ws.spec?.policy?.egress?.allowCIDRs ?? []));
  for (const r of resolved) h.update(`${r.field}:${r.state.fingerprint}`);
  // The type's uid and generation, not its resourceVersion: a label or status change of the type is not a new probe.
  h.update(`${type.metadata?.uid ?? ''}/${type.metadata?.generation ?? ''}|${conn.spec.probe?.timeout ?? ''}`);
  return h.digest('base64url');
}

/** The test request a probe answers, as status.lastProbe.testRequest holds it (bounded in length). */
function testRequestOf(conn: Conn): string {
  const raw = conn.metadata.annotations?.[TEST_REQUESTED_AT_ANNOTATION] ?? '';
  return raw.length <= MAX_TEST_REQUEST_CHARS ? raw : `sha256:${createHash('sha256').update(raw).digest('base64url')}`;
}

/** What a probe request depends on: its subject and the test request. */
function probeTag(subject: string, conn: Conn): string {
  return `${subject}|${testRequestOf(conn)}`;
}

/**
 * status.lastProbe for the key's latest result: the persisted one as it is while the latest probe found the
 * same outcome for the same request and the persisted time is younger than `refreshMs` (a periodic probe
 * that changes nothing writes nothing), else the latest result with its own time.
 */
export function publishedProbe(conn: Conn, last: ProbeRecord, refreshMs: number): ProbeResult {
  const persisted = persistedProbe(conn);
  if (
    persisted &&
    persisted.tag === last.tag &&
    sameOutcome(persisted.outcome, last.outcome) &&
    last.finishedAt - persisted.finishedAt < refreshMs
  )
    return conn.status!.lastProbe!;
  return lastProbeStatus(last);
}

/**
 * When the key's next periodic probe is due: one interval after the last one started (its duration, the
 * reconcile after it and the timer do not add up from one probe to the next), or after a persisted one's time.
 */
function dueAt(last: ProbeRecord, intervalMs: number): number {
  return last.dueAt ?? (last.startedAt ?? last.finishedAt) + intervalMs + (last.jitter ?? 0) * jitterWindow(intervalMs);
}

/** Up to a tenth of the interval, at most 30 s (what the periodic requeue added before ADR 0028). */
function jitterWindow(intervalMs: number): number {
  return Math.min(30_000, intervalMs * 0.1);
}

/**
 * A persisted result adopted by a process that has none of its own (a restart, a new leader). Its time can
 * be up to `refreshMs` (lastProbeRefreshMs) older than the probe that last confirmed it, and after an outage every
 * connection is overdue: probing them all at once would be a storm of credentialed requests, and of status
 * writes for those whose time has aged past the bound. An overdue probe is due at a random point within the
 * next min(interval, refreshMs) instead, so a restart probes at the steady-state rate; one not
 * yet due keeps its time (ADR 0021).
 */
function resumed(record: ProbeRecord, intervalMs: number, now: number, refreshMs: number): ProbeRecord {
  if (intervalMs <= 0 || now < record.finishedAt + intervalMs) return record;
  return { ...record, dueAt: now + Math.random() * Math.min(intervalMs, refreshMs) };
}

function lastProbeStatus(last: ProbeRecord): ProbeResult {
  const testRequest = last.tag.slice(last.subject.length + 1);
  return {
    time: new Date(last.finishedAt).toISOString(),
    durationMs: last.outcome.durationMs,
    result: last.outcome.reason,
    message: last.outcome.message,
    inputs: last.subject,
    ...(testRequest ? { testRequest } : {}),
  };
}

/**
 * The probe result this status records, as the scheduler keeps it: only when
 * it names its inputs (written by an operator that persists them) and the
 * Reachable/Authenticated conditions still say what it found.
 */
export function persistedProbe(conn: Conn): ProbeRecord | undefined {
  const p = conn.status?.lastProbe;
  if (!p?.inputs || !p.time || !p.result) return undefined;
  const finishedAt = Date.parse(p.time);
  const reachable = findCondition(conn.status?.conditions, ConditionType.Reachable);
  const authenticated = findCondition(conn.status?.conditions, ConditionType.Authenticated);
  if (!Number.isFinite(finishedAt) || !reachable || !authenticated || authenticated.reason !== p.result)
    return undefined;
  return {
    subject: p.inputs,
    tag: `${p.inputs}|${p.testRequest ?? ''}`,
    outcome: {
      reachable: reachable.status,
      authenticated: authenticated.status,
      reason: p.result as ProbeReason,
      message: p.message ?? '',
      durationMs: p.durationMs ?? 0,
    },
    finishedAt,
  };
}
