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
 * the next reconcile writes the outcome into status. Level-triggered: a
 * restart simply probes again.
 *
 * At most one probe per connection is queued or running. A newer request
 * replaces a queued one and aborts a running one; `forget` (the connection is
 * gone) does the same and keeps nothing: no queued closure, and with it no
 * plaintext, outlives the connection.
 */
export class ProbeScheduler {
  private readonly results = new Map<string, ProbeRecord>();
  private readonly pending = new Map<string, Pending>();
  /** Keys waiting for a slot, oldest first (a Set keeps insertion order). */
  private readonly queue = new Set<string>();
  private readonly startedAt = new Map<string, number>();
  private readonly coalesceNoticed = new Map<string, number>();
  private running = 0;

  constructor(private readonly concurrency: number, private readonly onDone: (key: string) => void, private readonly now: () => number = Date.now) {}

  result(key: string): ProbeRecord | undefined {
    return this.results.get(key);
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

  /** The connection is gone: drop its result, its queued probe, and abort its running one. */
  forget(key: string): void {
    this.results.delete(key);
    this.startedAt.delete(key);
    this.coalesceNoticed.delete(key);
    this.cancel(key);
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

  private pump(): void {
    while (this.running < this.concurrency && this.queue.size > 0) {
      const key = this.queue.values().next().value as string;
      this.queue.delete(key);
      const p = this.pending.get(key);
      if (p?.run) this.start(key, p, p.run);
    }
  }

  private start(key: string, p: Pending, run: ProbeRun): void {
    this.running++;
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
      this.pump();
      if (current) this.onDone(key);
    })();
  }
}
