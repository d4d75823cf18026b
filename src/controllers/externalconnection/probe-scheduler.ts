import type { ProbeOutcome } from '../../integrations/probe-types.js';

export interface ProbeRecord {
  /** Everything the probe was asked for, the test-request annotation included. */
  tag: string;
  /** What the outcome is about (settings, credential fingerprints, type): an on-demand test does not change it. */
  subject: string;
  outcome: ProbeOutcome;
  finishedAt: number;
}

export interface ProbeRequest {
  tag: string;
  subject: string;
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
  /** Keys waiting for a slot, oldest first (a Set keeps insertion order). */
  private readonly queue = new Set<string>();
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
    private readonly onDone: (key: string) => void,
    private readonly now: () => number = Date.now,
    private readonly perWorkspace: number = concurrency,
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
    this.queue.add(key);
    this.pump();
  }

  /** Probes running now (queued ones excluded). */
  get active(): number {
    return this.running;
  }

  /** Probes waiting for a slot. */
  get queued(): number {
    return this.queue.size;
  }

  private cancel(key: string): void {
    const p = this.pending.get(key);
    if (!p) return;
    this.pending.delete(key);
    this.queue.delete(key);
    p.run = undefined;
    if (p.started) p.abort.abort(new Error('probe cancelled: its connection was deleted or changed'));
  }

  /** Starts queued probes, oldest first, skipping those whose workspace already holds its share. */
  private pump(): void {
    for (const key of this.queue) {
      if (this.running >= this.concurrency) return;
      if ((this.runningIn.get(namespaceOf(key)) ?? 0) >= this.perWorkspace) continue;
      this.queue.delete(key);
      const p = this.pending.get(key);
      if (p?.run) this.start(key, p, p.run);
    }
  }

  private start(key: string, p: Pending, run: ProbeRun): void {
    this.running++;
    const ns = namespaceOf(key);
    this.runningIn.set(ns, (this.runningIn.get(ns) ?? 0) + 1);
    p.started = true;
    p.run = undefined;
    this.startedAt.set(key, this.now());
    void (async () => {
      let outcome: ProbeOutcome | undefined;
      try {
        outcome = await run(p.abort.signal);
      } catch {
        // runProbe never rejects; a cancelled probe's result is not wanted anyway.
      }
      const current = this.pending.get(key) === p;
      if (current) {
        this.pending.delete(key);
        if (outcome) this.results.set(key, { tag: p.tag, subject: p.subject, outcome, finishedAt: this.now() });
      }
      this.running--;
      const left = (this.runningIn.get(ns) ?? 1) - 1;
      if (left > 0) this.runningIn.set(ns, left);
      else this.runningIn.delete(ns);
      this.pump();
      if (current) this.onDone(key);
    })();
  }
}

function namespaceOf(key: string): string {
  const slash = key.indexOf('/');
  return slash < 0 ? key : key.slice(0, slash);
}
