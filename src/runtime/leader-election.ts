import type { KubeClient, KubeObject } from '../kube/client.js';
import { isConflict, isNotFound } from '../kube/errors.js';
import { Leases } from '../kube/resources.js';
import { sleep } from './informer.js';
import type { Logger } from './logger.js';
import { describeError } from './describe-error.js';

interface LeaseSpec {
  holderIdentity?: string | null;
  leaseDurationSeconds?: number;
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions?: number;
}

interface Lease extends KubeObject {
  spec: LeaseSpec;
}

/** client-go's defaults (and controller-runtime's): 15 s lease, 10 s renew deadline, 2 s retry period. */
export const LEASE_DURATION_MS = 15_000;
export const RENEW_DEADLINE_MS = 10_000;
export const RETRY_PERIOD_MS = 2_000;
/** client-go's JitterFactor: retries wait up to 20 % longer than the retry period. */
const JITTER = 1.2;

/** A monotonic clock in milliseconds; tests replace it to move time. */
export interface Clock {
  now(): number;
}

export interface LeaderElectionOptions {
  client: KubeClient;
  namespace: string;
  name: string;
  identity: string;
  /** How long a candidate waits, after it last saw the Lease change, before taking it over. */
  leaseDurationMs?: number;
  /** How long the leader keeps trying to renew before it stops leading. Must be shorter than the lease. */
  renewDeadlineMs?: number;
  /** Time between attempts to acquire or renew. */
  retryPeriodMs?: number;
  log: Logger;
  clock?: Clock;
}

/**
 * Lease-based leader election (coordination.k8s.io/v1) with client-go's
 * semantics:
 * - expiry is judged from when THIS process last saw the Lease record change
 *   (observedTime on the local monotonic clock), never by comparing the
 *   holder's renewTime with the local clock, so clock skew between nodes
 *   cannot shorten or stretch a lease;
 * - every write is an optimistic update carrying the resourceVersion read,
 *   so two candidates can never both succeed;
 * - the leader must renew within renewDeadline (< leaseDuration) of its last
 *   successful renewal; each attempt is aborted when that deadline passes,
 *   and at the deadline it stops leading - before any other candidate, which
 *   waits a full leaseDuration after seeing that renewal, may take over;
 * - a graceful stop releases the Lease so a successor need not wait.
 */
export class LeaderElector {
  private leading = false;
  private stopped = false;
  private readonly stopSignal = new AbortController();
  private loop: Promise<void> | undefined;
  private readonly leaseDurationMs: number;
  private readonly renewDeadlineMs: number;
  private readonly retryMs: number;
  private readonly clock: Clock;
  /** The Lease as last read or written (its resourceVersion makes the next write optimistic). */
  private lease: Lease | undefined;
  /** The record last seen and when (local monotonic time) it was first seen in that state. */
  private observed: { record: string; at: number } | undefined;

  constructor(private readonly opts: LeaderElectionOptions) {
    this.leaseDurationMs = opts.leaseDurationMs ?? LEASE_DURATION_MS;
    this.renewDeadlineMs = opts.renewDeadlineMs ?? RENEW_DEADLINE_MS;
    this.retryMs = opts.retryPeriodMs ?? RETRY_PERIOD_MS;
    this.clock = opts.clock ?? { now: () => performance.now() };
    checkDurations(this.leaseDurationMs, this.renewDeadlineMs, this.retryMs);
  }

  isLeader(): boolean {
    return this.leading;
  }

  /**
   * Resolves once this instance leads (or stop() was called); then renews in
   * the background. `onStoppedLeading` runs once if leadership is lost - the
   * caller must stop all work at once (the operator exits).
   */
  async run(onStoppedLeading: () => void): Promise<void> {
    while (!this.stopped && !(await this.tryAcquireOrRenew(this.stopSignal.signal))) {
      await sleep(this.retryMs * (1 + Math.random() * (JITTER - 1)), this.stopSignal.signal);
    }
    if (this.stopped) return;
    this.leading = true;
    this.opts.log.info({ lease: this.opts.name, identity: this.opts.identity }, 'became leader');
    this.loop = this.renew(onStoppedLeading);
  }

  /** Stops renewing and releases the lease so a successor takes over at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.stopSignal.abort();
    await this.loop;
    if (!this.leading) return;
    this.leading = false;
    await this.release();
  }

  private async renew(onStoppedLeading: () => void): Promise<void> {
    let renewedAt = this.observed!.at;
    const lose = () => {
      if (!this.leading || this.stopped) return;
      this.leading = false;
      this.opts.log.error(
        { lease: this.opts.name, renewDeadlineMs: this.renewDeadlineMs },
        'lost leadership: lease not renewed in time',
      );
      onStoppedLeading();
    };
    while (this.leading && !this.stopped) {
      await sleep(this.retryMs, this.stopSignal.signal);
      if (!this.leading || this.stopped) return;
      // One bound for this round: at the deadline we stop leading - from a
      // timer, not after a hung request returns - and abort what is in flight.
      const round = new AbortController();
      const onStop = () => round.abort();
      this.stopSignal.signal.addEventListener('abort', onStop, { once: true });
      const deadline = setTimeout(
        () => {
          lose();
          round.abort();
        },
        Math.max(0, renewedAt + this.renewDeadlineMs - this.clock.now()),
      );
      try {
        while (this.leading && !round.signal.aborted) {
          const attemptAt = this.clock.now();
          if (await this.tryAcquireOrRenew(round.signal)) {
            // Measured from the attempt's start: the server stored the renewal no earlier than that.
            renewedAt = attemptAt;
            break;
          }
          await sleep(this.retryMs, round.signal);
        }
      } finally {
        clearTimeout(deadline);
        this.stopSignal.signal.removeEventListener('abort', onStop);
      }
    }
  }

  private async tryAcquireOrRenew(signal: AbortSignal): Promise<boolean> {
    const { client, namespace, name, identity, log } = this.opts;
    // Fast path (as client-go): the leader updates its cached Lease without reading it first.
    if (this.leading && this.lease) {
      try {
        await this.write({ ...this.lease.spec, renewTime: micro(new Date()) }, signal);
        return true;
      } catch (err) {
        if (signal.aborted) return false;
        if (!isConflict(err)) log.warn({ lease: name, error: describeError(err) }, 'lease renewal failed');
        // Someone else wrote the Lease: fall through and look at it.
      }
    }
    try {
      const now = this.clock.now();
      const lease = await client.tryGet<Lease>(Leases, name, namespace, { signal });
      if (!lease) {
        const wall = micro(new Date());
        this.lease = await client.create<Lease>(
          Leases,
          {
            metadata: { name, namespace },
            spec: {
              holderIdentity: identity,
              leaseDurationSeconds: this.leaseSeconds(),
              acquireTime: wall,
              renewTime: wall,
              leaseTransitions: 0,
            },
          },
          { signal },
        );
        this.observe(this.lease.spec, now);
        return true;
      }
      this.lease = lease;
      this.observe(lease.spec, now);
      const holder = lease.spec.holderIdentity;
      const durationMs = (lease.spec.leaseDurationSeconds ?? this.leaseSeconds()) * 1000;
      if (holder && holder !== identity && now < this.observed!.at + durationMs) return false;
      const wall = micro(new Date());
      const takeover = holder !== identity;
      await this.write(
        {
          holderIdentity: identity,
          leaseDurationSeconds: this.leaseSeconds(),
          acquireTime: takeover ? wall : lease.spec.acquireTime,
          renewTime: wall,
          leaseTransitions: (lease.spec.leaseTransitions ?? 0) + (takeover ? 1 : 0),
        },
        signal,
      );
      return true;
    } catch (err) {
      if (!signal.aborted && !isConflict(err) && !isNotFound(err))
        log.warn({ lease: name, error: describeError(err) }, 'lease update failed');
      return false;
    }
  }

  /** An optimistic update: the cached resourceVersion travels with it, so a concurrent writer makes it fail with 409. */
  private async write(spec: LeaseSpec, signal: AbortSignal): Promise<void> {
    const started = this.clock.now();
    this.lease = await this.opts.client.replace<Lease>(Leases, { ...this.lease!, spec }, { signal });
    this.observe(this.lease.spec, started);
  }

  /** The Lease API counts whole seconds. */
  private leaseSeconds(): number {
    return Math.max(1, Math.ceil(this.leaseDurationMs / 1000));
  }

  /** Notes when the record last changed: the start of a lease's validity as this process sees it. */
  private observe(spec: LeaseSpec, at: number): void {
    const record = JSON.stringify([
      spec.holderIdentity ?? '',
      spec.renewTime,
      spec.acquireTime,
      spec.leaseDurationSeconds,
      spec.leaseTransitions,
    ]);
    if (this.observed?.record !== record) this.observed = { record, at };
  }

  /** client-go's release: empty holder, a 1 s lease, so a candidate takes over at its next attempt. */
  private async release(): Promise<void> {
    const signal = AbortSignal.timeout(this.renewDeadlineMs);
    const released = (spec: LeaseSpec): LeaseSpec => ({
      ...spec,
      holderIdentity: '',
      leaseDurationSeconds: 1,
      acquireTime: micro(new Date()),
      renewTime: micro(new Date()),
    });
    try {
      await this.write(released(this.lease!.spec), signal);
    } catch (err) {
      if (!isConflict(err)) return; // expiry releases it anyway
      try {
        // Our cached copy was stale (a renewal we aborted may still have landed): release only if we still hold it.
        const lease = await this.opts.client.get<Lease>(Leases, this.opts.name, this.opts.namespace, { signal });
        if (lease.spec.holderIdentity !== this.opts.identity) return;
        this.lease = lease;
        await this.write(released(lease.spec), signal);
      } catch {
        /* best effort: expiry releases it anyway */
      }
    }
  }
}

/** client-go's checks in NewLeaderElector, as errors that name the setting. */
function checkDurations(leaseMs: number, renewMs: number, retryMs: number): void {
  if (!(retryMs > 0)) throw new Error('leader election: retryPeriod must be greater than zero');
  if (!(renewMs > retryMs * JITTER))
    throw new Error('leader election: renewDeadline must be greater than retryPeriod × 1.2');
  if (!(leaseMs > renewMs))
    throw new Error(
      'leader election: leaseDuration must be greater than renewDeadline, or a leader that stopped renewing could still be leading when another takes over',
    );
}

/** Lease times are MicroTime: RFC 3339 with microseconds. */
function micro(d: Date): string {
  return d.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}
