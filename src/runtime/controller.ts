import { randomUUID } from 'node:crypto';
import { isConflict } from '../kube/errors.js';
import type { KubeObject } from '../kube/client.js';
import type { Informer } from './informer.js';
import { objectKey } from './informer.js';
import type { Logger } from './logger.js';
import type { OperatorMetrics } from './metrics.js';
import { WorkQueue, type Lane } from './workqueue.js';
import { describeError } from './describe-error.js';

/** What a reconcile asks for next: nothing, or another look after a delay. */
export interface ReconcileResult {
  requeueAfterMs?: number;
  /** The requeue continues work a user caused (e.g. waits for the first probe of new inputs): it stays urgent. */
  urgent?: boolean;
}

export interface ReconcileRequest {
  namespace?: string;
  name: string;
}

export type Reconcile = (req: ReconcileRequest, log: Logger) => Promise<ReconcileResult | void>;

export interface ControllerOptions {
  name: string;
  reconcile: Reconcile;
  log: Logger;
  metrics: OperatorMetrics;
  workers?: number;
  /** Of `workers`, how many take urgent keys only (default: a quarter, none below four workers). */
  urgentWorkers?: number;
  queue?: WorkQueue;
}

/**
 * The controller-runtime contract: level-triggered keys, one reconciler per
 * root kind, a rate-limited queue, conflicts requeued quickly and quietly
 * (with their own per-key backoff, so a 409 storm does not spin), failures
 * retried with per-key backoff; both are forgotten only on success. Keys a
 * user's change enqueued are taken before the controller's own periodic
 * requeues (`Lane`), as a rotation must not wait behind every probe due.
 */
export class Controller {
  readonly queue: WorkQueue;
  private readonly workers: Promise<void>[] = [];
  private running = false;

  constructor(private readonly opts: ControllerOptions) {
    this.queue = opts.queue ?? new WorkQueue();
    opts.metrics.queueDepth.set({ controller: opts.name }, 0);
    this.queue.observeWaits((lane, ms) => opts.metrics.queueWait.observe({ controller: opts.name, lane }, ms / 1000));
  }

  get name(): string {
    return this.opts.name;
  }

  /** Urgent unless told otherwise: see `Lane`. */
  enqueue(key: string, lane: Lane = 'urgent'): void {
    this.queue.add(key, lane);
  }

  /**
   * Route an informer's events to keys; `map` turns a child into its owner's key(s). An event is a change
   * someone made (created, updated, deleted): its keys go in the urgent lane.
   */
  watch<T extends KubeObject>(
    informer: Informer<T>,
    map: (obj: T) => string[] = (o) => [objectKey(o)],
    filter?: (obj: T, old?: T) => boolean,
  ): void {
    informer.on((_event, obj, old) => {
      if (filter && !filter(obj, old)) return;
      for (const key of map(obj)) this.queue.add(key);
    });
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    const n = this.opts.workers ?? 2;
    // Kept free for users' changes: the lanes order what waits, but a change queued while every worker is
    // in a slow routine reconcile (a probe's KMS call) would still wait for one of them to finish.
    const reserved = Math.min(this.opts.urgentWorkers ?? Math.floor(n / 4), n - 1);
    for (let i = 0; i < n; i++) this.workers.push(this.work(i < reserved));
  }

  /** Stops taking keys and waits for in-flight reconciles to finish. */
  async stop(): Promise<void> {
    this.queue.shutDown();
    await Promise.all(this.workers);
    this.running = false;
  }

  private async work(urgentOnly: boolean): Promise<void> {
    for (;;) {
      const key = await this.queue.get({ urgentOnly });
      if (key === undefined) return;
      await this.process(key);
      this.queue.done(key);
      this.opts.metrics.queueDepth.set({ controller: this.opts.name }, this.queue.length);
    }
  }

  private async process(key: string): Promise<void> {
    const [namespace, name] = key.includes('/') ? key.split('/', 2) : [undefined, key];
    const log = this.opts.log.child({ controller: this.opts.name, namespace, name, reconcileID: randomUUID() });
    const started = performance.now();
    const labels = { controller: this.opts.name };
    try {
      const result = await this.opts.reconcile({ namespace, name: name }, log);
      this.queue.forget(key);
      this.opts.metrics.reconcileTotal.inc({ ...labels, result: result?.requeueAfterMs ? 'requeue_after' : 'success' });
      if (result?.requeueAfterMs) this.queue.addAfter(key, result.requeueAfterMs, result.urgent ? 'urgent' : 'routine');
    } catch (err) {
      if (isConflict(err)) {
        this.opts.metrics.reconcileTotal.inc({ ...labels, result: 'conflict' });
        log.debug('conflict, requeueing');
        this.queue.addConflicted(key);
      } else {
        this.opts.metrics.reconcileTotal.inc({ ...labels, result: 'error' });
        this.opts.metrics.reconcileErrors.inc(labels);
        log.warn(
          { error: describeError(err), retries: this.queue.limiter.retries(key) },
          'reconcile failed, retrying with backoff',
        );
        this.queue.addRateLimited(key);
      }
    } finally {
      this.opts.metrics.reconcileDuration.observe(labels, (performance.now() - started) / 1000);
    }
  }
}
