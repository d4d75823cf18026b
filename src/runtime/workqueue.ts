import { DueHeap } from './due-heap.js';
import { RateLimiter } from './rate-limiter.js';

/**
 * Which line a key waits in. `urgent`: something a user caused (an object
 * created, changed or deleted, a Secret it names rewritten, a probe of new
 * inputs done). `routine`: the controller's own schedule (a periodic probe
 * due, a resync, a retry after a failure). Workers take every urgent key
 * before any routine one, so a rotation is not queued behind thousands of
 * periodic reconciles.
 */
export type Lane = 'urgent' | 'routine';

/**
 * While both lanes have keys waiting, every this many urgent keys one routine
 * key goes first: a controller kept busy by changes (a burst of creates, a
 * tenant writing in a loop) still runs its periodic work, at a fifth of its
 * throughput, instead of starving it until the burst ends.
 */
export const URGENT_PER_ROUTINE = 4;

/**
 * A first-in first-out line of keys with amortised O(1) push and shift and
 * lazy removal: an entry whose key has since moved to the other lane (or was
 * taken from it) is skipped when reached. A Set would keep insertion order
 * too, but taking its first entry after many deletions walks over the
 * deleted slots.
 */
class Line {
  private items: string[] = [];
  private head = 0;

  push(key: string): void {
    this.items.push(key);
  }

  /** The oldest entry `live` accepts; stale entries before it are dropped. */
  shift(live: (key: string) => boolean): string | undefined {
    while (this.head < this.items.length) {
      const key = this.items[this.head++]!;
      if (this.head > 1024 && this.head * 2 > this.items.length) {
        this.items = this.items.slice(this.head);
        this.head = 0;
      }
      if (live(key)) return key;
    }
    return undefined;
  }
}

/**
 * A de-duplicating work queue with the client-go semantics: a key is queued
 * at most once, is never processed by two workers at once, and a key that is
 * added while being processed is processed again afterwards. Two lanes: an
 * urgent key is handed out before every routine one, and a key already
 * waiting in the routine lane moves to the urgent one when added there.
 * Routine keys get every (URGENT_PER_ROUTINE + 1)th turn while urgent ones
 * wait too, so neither lane starves.
 */
export class WorkQueue {
  private readonly lines: Record<Lane, Line> = { urgent: new Line(), routine: new Line() };
  /** Keys in line, with the lane they wait in. */
  private readonly queued = new Map<string, Lane>();
  /** Keys being processed, with the lane they were taken from. */
  private readonly processing = new Map<string, Lane>();
  /** Keys added while being processed: queued again in this lane when done. */
  private readonly again = new Map<string, Lane>();
  /** Delayed keys: when each is due and in which lane. One timer serves them all (`due`, `arm`). */
  private readonly timers = new Map<string, { at: number; lane: Lane }>();
  private readonly due = new DueHeap();
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Infinity;
  /** Idle workers; an `urgentOnly` one is handed urgent keys only (see `get`). */
  private readonly waiters: Array<{ urgentOnly: boolean; take: (key: string | undefined) => void }> = [];
  private shuttingDown = false;
  /** Urgent keys handed out in a row while routine ones waited. */
  private urgentStreak = 0;
  /** Keys waiting in the routine lane. */
  private routineWaiting = 0;
  /** When each key in line was queued (performance.now()), for `onTake`. */
  private readonly since = new Map<string, number>();
  private onTake: ((lane: Lane, waitedMs: number) => void) | undefined;

  constructor(readonly limiter = new RateLimiter()) {}

  add(key: string, lane: Lane = 'urgent'): void {
    if (this.shuttingDown) return;
    if (this.processing.has(key)) {
      if (this.again.get(key) !== 'urgent') this.again.set(key, lane);
      return;
    }
    const waiting = this.queued.get(key);
    if (waiting === 'urgent' || waiting === lane) return;
    // New, or moving up from routine (its routine entry goes stale).
    const idle = waiting === undefined ? this.waiters.findIndex((w) => lane === 'urgent' || !w.urgentOnly) : -1;
    if (idle >= 0) {
      const [waiter] = this.waiters.splice(idle, 1);
      this.processing.set(key, lane);
      this.onTake?.(lane, 0);
      waiter!.take(key);
      return;
    }
    if (waiting === 'routine') this.routineWaiting--;
    else {
      if (lane === 'routine') this.routineWaiting++;
      this.since.set(key, performance.now());
    }
    this.queued.set(key, lane);
    this.lines[lane].push(key);
  }

  /**
   * Adds after a delay (routine unless told otherwise). An earlier pending
   * delay for the same key wins; the timer that stays takes the more urgent
   * of the two lanes.
   */
  addAfter(key: string, delayMs: number, lane: Lane = 'routine'): void {
    if (this.shuttingDown) return;
    if (delayMs <= 0) return this.add(key, lane);
    // The monotonic clock: a wall clock stepped back would hold every delayed key that much longer.
    const at = performance.now() + delayMs;
    const existing = this.timers.get(key);
    if (existing && existing.at <= at) {
      if (lane === 'urgent') existing.lane = 'urgent';
      return;
    }
    this.timers.set(key, { at, lane: existing?.lane === 'urgent' ? 'urgent' : lane });
    this.due.push(at, key);
    // An earlier delay leaves the later one's heap entry behind: rebuild before they outnumber the live ones.
    if (this.due.size > 2 * this.timers.size + 64) this.due.rebuild(this.timers);
    this.arm();
  }

  /** Sets the one timer for the earliest delayed key, unless it is already set for that or sooner. */
  private arm(): void {
    const next = this.due.peek()?.at;
    if (next === undefined || next >= this.timerAt) return;
    clearTimeout(this.timer);
    this.timerAt = next;
    this.timer = setTimeout(() => this.fire(), Math.max(0, next - performance.now()));
    this.timer.unref();
  }

  /** Adds every delayed key now due; heap entries a later `addAfter` superseded are dropped. */
  private fire(): void {
    this.timer = undefined;
    this.timerAt = Infinity;
    const now = performance.now();
    for (let top = this.due.peek(); top !== undefined && top.at <= now; top = this.due.peek()) {
      this.due.pop();
      const entry = this.timers.get(top.key);
      if (entry?.at !== top.at) continue;
      this.timers.delete(top.key);
      this.add(top.key, entry.lane);
    }
    this.arm();
  }

  /** Requeues after a failure, on the limiter's per-key backoff: routine, a failing key must not crowd out users. */
  addRateLimited(key: string): void {
    this.addAfter(key, this.limiter.when(key));
  }

  /** Requeues after a conflict, on the limiter's per-key conflict backoff, in the lane the key was taken from. */
  addConflicted(key: string): void {
    this.addAfter(key, this.limiter.whenConflict(key), this.processing.get(key) ?? 'routine');
  }

  forget(key: string): void {
    this.limiter.forget(key);
  }

  /**
   * Next key to process (urgent ones first, but see URGENT_PER_ROUTINE), or undefined once the queue shuts
   * down. An `urgentOnly` caller (a worker kept free for users' changes) takes urgent keys only: however
   * many slow routine reconciles the other workers are in, a change starts as soon as it is queued.
   */
  get(opts: { urgentOnly?: boolean } = {}): Promise<string | undefined> {
    const urgentOnly = opts.urgentOnly ?? false;
    const order = urgentOnly
      ? (['urgent'] as const)
      : this.urgentStreak < URGENT_PER_ROUTINE
        ? (['urgent', 'routine'] as const)
        : (['routine', 'urgent'] as const);
    for (const lane of order) {
      const key = this.lines[lane].shift((k) => this.queued.get(k) === lane);
      if (key === undefined) continue;
      this.queued.delete(key);
      this.processing.set(key, lane);
      if (lane === 'routine') this.routineWaiting--;
      const since = this.since.get(key);
      this.since.delete(key);
      if (since !== undefined) this.onTake?.(lane, performance.now() - since);
      // Counts only while routine keys wait: an urgent key alone in line never waits for a turn.
      if (!urgentOnly) this.urgentStreak = lane === 'urgent' && this.routineWaiting > 0 ? this.urgentStreak + 1 : 0;
      return Promise.resolve(key);
    }
    if (this.shuttingDown) return Promise.resolve(undefined);
    return new Promise((take) => this.waiters.push({ urgentOnly, take }));
  }

  /** Reports how long each key waited in line (from its first add to a worker taking it), with its lane. */
  observeWaits(fn: (lane: Lane, waitedMs: number) => void): void {
    this.onTake = fn;
  }

  /** Marks a key finished; if it was re-added meanwhile it goes back in line. */
  done(key: string): void {
    this.processing.delete(key);
    const lane = this.again.get(key);
    if (lane === undefined) return;
    this.again.delete(key);
    this.add(key, lane);
  }

  get length(): number {
    return this.queued.size;
  }

  get inFlight(): number {
    return this.processing.size;
  }

  shutDown(): void {
    this.shuttingDown = true;
    clearTimeout(this.timer);
    this.timers.clear();
    this.due.clear();
    for (const w of this.waiters.splice(0)) w.take(undefined);
  }
}
