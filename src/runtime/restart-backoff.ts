/**
 * The backoff between restarts of a list/watch loop, as client-go's
 * reflector uses it (wait.NewExponentialBackoffManager(800ms, 30s, 2min,
 * 2.0, 1.0)): the wait doubles from `initialMs` up to `maxMs`, each wait is
 * stretched by up to 100 % so many informers restarting together spread
 * out, and it starts over once no restart was needed for `resetAfterMs`.
 */
export class RestartBackoff {
  private readonly initialMs: number;
  private readonly maxMs: number;
  private readonly resetAfterMs: number;
  private readonly random: () => number;
  private readonly now: () => number;
  private current = 0;
  private lastAt = -Infinity;

  constructor(
    opts: { initialMs?: number; maxMs?: number; resetAfterMs?: number; random?: () => number; now?: () => number } = {},
  ) {
    this.initialMs = opts.initialMs ?? 800;
    this.maxMs = opts.maxMs ?? 30_000;
    this.resetAfterMs = opts.resetAfterMs ?? 120_000;
    this.random = opts.random ?? Math.random;
    this.now = opts.now ?? (() => performance.now());
  }

  /** The wait before the next restart. */
  next(): number {
    const now = this.now();
    this.current = now - this.lastAt > this.resetAfterMs ? this.initialMs : Math.min(this.maxMs, this.current * 2);
    this.lastAt = now;
    return this.current * (1 + this.random());
  }
}
