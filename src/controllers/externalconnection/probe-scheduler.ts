import type { ProbeOutcome } from '../../integrations/probe-types.js';

export interface ProbeRecord {
  tag: string;
  outcome: ProbeOutcome;
  finishedAt: number;
}

/**
 * Runs probes outside the reconcile loop, with bounded concurrency, so a
 * slow service never holds a reconcile worker. A reconcile asks for a probe
 * tagged with what it depends on (settings, credential fingerprints, the
 * test-request annotation); when it finishes, the key is enqueued again and
 * the next reconcile writes the outcome into status. Level-triggered: a
 * restart simply probes again.
 */
export class ProbeScheduler {
  private readonly results = new Map<string, ProbeRecord>();
  private readonly inFlight = new Map<string, string>();
  private readonly waiting: Array<() => void> = [];
  private running = 0;

  constructor(private readonly concurrency: number, private readonly onDone: (key: string) => void) {}

  result(key: string): ProbeRecord | undefined {
    return this.results.get(key);
  }

  isRunning(key: string, tag: string): boolean {
    return this.inFlight.get(key) === tag;
  }

  forget(key: string): void {
    this.results.delete(key);
  }

  /** Starts `run` for `key` unless the same tag is already in flight. */
  request(key: string, tag: string, run: () => Promise<ProbeOutcome>): void {
    if (this.inFlight.get(key) === tag) return;
    this.inFlight.set(key, tag);
    void this.slot().then(async () => {
      try {
        const outcome = await run();
        if (this.inFlight.get(key) === tag) this.results.set(key, { tag, outcome, finishedAt: Date.now() });
      } finally {
        if (this.inFlight.get(key) === tag) this.inFlight.delete(key);
        this.running--;
        this.waiting.shift()?.();
        this.onDone(key);
      }
    });
  }

  get active(): number {
    return this.running;
  }

  private slot(): Promise<void> {
    if (this.running < this.concurrency) {
      this.running++;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.waiting.push(() => {
      this.running++;
      resolve();
    }));
  }
}
