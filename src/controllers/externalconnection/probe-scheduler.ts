import { sharedText } from '../../runtime/shared-strings.js';
import type { ProbeOutcome } from '../../integrations/probe-types.js';
import type { Lane } from '../../runtime/workqueue.js';

export interface ProbeRecord {
  /** Everything the probe was asked for, the test-request annotation included. */
  tag: string;
  /** What the outcome is about (settings, credential fingerprints, type): an on-demand test does not change it. */
  subject: string;
  outcome: ProbeOutcome;
  finishedAt: number;
  /** When this process started the probe (absent for a result adopted from status). */
  startedAt?: number;
  /** When the next periodic probe is due, if not one interval after the probe: an overdue result adopted after a restart. */
  dueAt?: number;
  /**
   * A fraction in [0, 1) of the jitter window added to the next periodic probe's time: drawn after a probe a
   * user caused (a first probe, new inputs, a test), 0 after a periodic one, so connections created together
   * drift apart once and then keep their spacing (spec section 6: periodic probes run with jitter).
   */
  jitter?: number;
}

export interface ProbeRequest {
  tag: string;
  subject: string;
  /** Asked for by a user's change (new inputs, a test request, a first probe), not by the interval. */
  urgent?: boolean;
}

/** A probe receives the signal that cancels it when its connection is deleted or changed. */
export type ProbeRun = (signal: AbortSignal) => Promise<ProbeOutcome>;

interface Pending extends ProbeRequest {
  abort: AbortController;
  /** Held only while queued: dropping it releases the credentials it closes over. */
  run: ProbeRun | undefined;
  started: boolean;
}

/**
 * Runs probes outside the reconcile loop, with bounded concurrency, so a
 * slow service never holds a reconcile worker. A reconcile asks for a probe
 * tagged with what it depends on (settings, credential fingerprints, the
 * test-request annotation); when it finishes, the key is enqueued again and
 * the next reconcile writes the outcome into status. The outcome persists in
 * status with a digest of its inputs; a restarted process seeds itself from
 * there (`seed`) and probes only what is due or changed.
 *
 * At most one probe per connection is queued or running. A newer request
 * replaces a queued one and aborts a running one; `forget` (the connection is
 * gone) does the same and keeps nothing: no queued closure, and with it no
 * plaintext, outlives the connection.
 */
/** Start times of forgotten connections are kept this long (longer than any probe window), pruned every PRUNE_EVERY forgets. */
const FORGOTTEN_START_TTL_MS = 3_600_000;
const PRUNE_EVERY = 256;

export class ProbeScheduler {
  private readonly results = new Map<string, ProbeRecord>();
  private readonly pending = new Map<string, Pending>();
  /** Keys waiting for a slot, per workspace namespace, oldest first (a Set keeps insertion order). */
  private readonly queues = new Map<string, Set<string>>();
  /**
   * Namespaces whose turn may come: exactly those with a queued key and
   * fewer running probes than their share, in round-robin order (a namespace
   * goes to the back after each start). Starting a probe is O(1) however
   * many keys a namespace at its share has queued, and a workspace with
   * thousands of due probes delays another's next probe by at most one turn.
   */
  private readonly turns = new Set<string>();
  private queuedCount = 0;
  private readonly startedAt = new Map<string, number>();
  private readonly coalesceNoticed = new Map<string, number>();
  private running = 0;
  private forgotten = 0;
  /** Running probes per workspace namespace (keys are `namespace/name`). */
  private readonly runningIn = new Map<string, number>();

  /**
   * `perWorkspace` bounds the slots one namespace holds at once: probes of
   * every workspace share the pool, and a workspace aiming its connections at
   * a host that never answers would otherwise hold all of them for the probe
   * timeout, batch after batch, while no other workspace is probed.
   */
  constructor(
    private readonly concurrency: number,
    /** Called when a probe finished: urgent when a user asked for it or its outcome differs from the last one. */
    private readonly onDone: (key: string, lane: Lane) => void,
    private readonly now: () => number = Date.now,
    private readonly perWorkspace: number = concurrency,
    private readonly random: () => number = Math.random,
  ) {}

  result(key: string): ProbeRecord | undefined {
    return this.results.get(key);
  }

  /**
   * Adopts a result persisted in status (a restarted process, a new leader)
   * while this process has none of its own, so the next probe is due from the
   * persisted time and an on-demand window from when that probe started.
   */
  seed(key: string, record: ProbeRecord): void {
    if (this.results.has(key) || this.pending.has(key)) return;
    this.results.set(key, record);
    if (!this.startedAt.has(key)) this.startedAt.set(key, record.finishedAt - record.outcome.durationMs);
  }

  /** True while a probe with exactly this tag is queued or running. */
  isRunning(key: string, tag: string): boolean {
    return this.pending.get(key)?.tag === tag;
  }

  /** The probe of this key that is queued or running, if any. */
  pendingProbe(key: string): ProbeRequest | undefined {
    const p = this.pending.get(key);
    return p ? { tag: p.tag, subject: p.subject } : undefined;
  }

  /** When the key's last probe started (ms since epoch), if one did since it was last forgotten. */
  lastStartedAt(key: string): number | undefined {
    return this.startedAt.get(key);
  }

  /**
   * Records that a coalesced test request was reported; true the first time
   * since the key's last probe started, so the report is made once per window.
   */
  noticeCoalesced(key: string): boolean {
    const since = this.startedAt.get(key) ?? 0;
    if ((this.coalesceNoticed.get(key) ?? -1) >= since) return false;
    this.coalesceNoticed.set(key, since);
    return true;
  }

  /**
   * The connection is gone: drop its result, its queued probe, and abort its
   * running one. When its last probe started is kept for a while: a
   * connection deleted and created again under the same name (its `sealed`
   * copied, so it opens) must not get a fresh probe window on every cycle.
   */
  forget(key: string): void {
    this.results.delete(key);
    this.coalesceNoticed.delete(key);
    this.cancel(key);
    if (++this.forgotten % PRUNE_EVERY === 0) this.pruneStarts();
  }

  private pruneStarts(): void {
    const before = this.now() - FORGOTTEN_START_TTL_MS;
    for (const [key, at] of this.startedAt) {
      if (at < before && !this.results.has(key) && !this.pending.has(key)) this.startedAt.delete(key);
    }
  }

  /** Queues `run` for `key` unless the same tag is already queued or running; replaces any other. */
  request(key: string, req: ProbeRequest, run: ProbeRun): void {
    if (this.pending.get(key)?.tag === req.tag) return;
    this.cancel(key);
    this.pending.set(key, { ...req, abort: new AbortController(), run, started: false });
    this.enqueue(key);
    this.pump();
  }

  /** Probes running now (queued ones excluded). */
  get active(): number {
    return this.running;
  }

  /** Probes waiting for a slot. */
  get queued(): number {
    return this.queuedCount;
  }

  private cancel(key: string): void {
    const p = this.pending.get(key);
    if (!p) return;
    this.pending.delete(key);
    if (!p.started) this.dequeue(key);
    p.run = undefined;
    if (p.started) p.abort.abort(new Error('probe cancelled: its connection was deleted or changed'));
  }

  private enqueue(key: string): void {
    const ns = namespaceOf(key);
    let queue = this.queues.get(ns);
    if (queue === undefined) this.queues.set(ns, (queue = new Set()));
    queue.add(key);
    this.queuedCount++;
    this.offerTurn(ns);
  }

  private dequeue(key: string): void {
    const ns = namespaceOf(key);
    const queue = this.queues.get(ns);
    if (queue?.delete(key) !== true) return;
    this.queuedCount--;
    if (queue.size === 0) {
      this.queues.delete(ns);
      this.turns.delete(ns);
    }
  }

  /** Puts `ns` in line (at the back, if not in line already) when it has queued keys and a free share. */
  private offerTurn(ns: string): void {
    if (this.queues.has(ns) && (this.runningIn.get(ns) ?? 0) < this.perWorkspace) this.turns.add(ns);
  }

  /** Starts queued probes while slots are free: one per namespace in turn, each namespace's oldest first. */
  private pump(): void {
    while (this.running < this.concurrency) {
      const ns = this.turns.values().next().value;
      if (ns === undefined) return;
      this.turns.delete(ns);
      const key = this.queues.get(ns)!.values().next().value as string;
      this.dequeue(key);
      const p = this.pending.get(key);
      if (p?.run) this.start(key, p, p.run);
      this.offerTurn(ns);
    }
  }

  private start(key: string, p: Pending, run: ProbeRun): void {
    this.running++;
    const ns = namespaceOf(key);
    this.runningIn.set(ns, (this.runningIn.get(ns) ?? 0) + 1);
    p.started = true;
    p.run = undefined;
    const startedAt = this.now();
    this.startedAt.set(key, startedAt);
    void (async () => {
      let outcome: ProbeOutcome | undefined;
      try {
        outcome = await run(p.abort.signal);
      } catch {
        // runProbe never rejects; a cancelled probe's result is not wanted anyway.
      }
      const current = this.pending.get(key) === p;
      let lane: Lane = p.urgent ? 'urgent' : 'routine';
      if (current) {
        this.pending.delete(key);
        if (outcome && !sameOutcome(this.results.get(key)?.outcome, outcome)) lane = 'urgent';
        if (outcome)
          this.results.set(key, {
            tag: p.tag,
            subject: p.subject,
            // Kept for every connection: its reason and message are the same text for many (ADR 0035).
            outcome: { ...outcome, message: sharedText(outcome.message) },
            startedAt,
            finishedAt: this.now(),
            jitter: p.urgent ? this.random() : 0,
          });
      }
      this.running--;
      const left = (this.runningIn.get(ns) ?? 1) - 1;
      if (left > 0) this.runningIn.set(ns, left);
      else this.runningIn.delete(ns);
      this.offerTurn(ns);
      this.pump();
      if (current) this.onDone(key, lane);
    })();
  }
}

/** Whether a probe found what the one before it found (its duration aside). */
export function sameOutcome(a: ProbeOutcome | undefined, b: ProbeOutcome): boolean {
  return (
    a !== undefined &&
    a.reason === b.reason &&
    a.message === b.message &&
    a.reachable === b.reachable &&
    a.authenticated === b.authenticated
  );
}

function namespaceOf(key: string): string {
  const slash = key.indexOf('/');
  return slash < 0 ? key : key.slice(0, slash);
}
