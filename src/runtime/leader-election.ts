import type { KubeClient, KubeObject } from '../kube/client.js';
import { isConflict, isNotFound } from '../kube/errors.js';
import { Leases } from '../kube/resources.js';
import { sleep } from './informer.js';
import type { Logger } from './logger.js';
import { describeError } from './describe-error.js';

interface Lease extends KubeObject {
  spec: { holderIdentity?: string | null; leaseDurationSeconds?: number; acquireTime?: string; renewTime?: string; leaseTransitions?: number };
}

export interface LeaderElectionOptions {
  client: KubeClient;
  namespace: string;
  name: string;
  identity: string;
  leaseDurationSeconds?: number;
  retryPeriodMs?: number;
  log: Logger;
}

/**
 * Lease-based leader election (coordination.k8s.io/v1), the client-go
 * algorithm: acquire a free or expired lease with an optimistic update,
 * renew it every retry period, give it up on shutdown so a successor need
 * not wait for expiry, and report loss so the process can stop working.
 */
export class LeaderElector {
  private leading = false;
  private stopped = false;
  private loop: Promise<void> | undefined;
  private readonly duration: number;
  private readonly retryMs: number;

  constructor(private readonly opts: LeaderElectionOptions) {
    this.duration = opts.leaseDurationSeconds ?? 15;
    this.retryMs = opts.retryPeriodMs ?? 2000;
  }

  /** Resolves once this instance leads; then keeps renewing until stop(). */
  async run(onLost: () => void): Promise<void> {
    while (!this.stopped && !(await this.tryAcquireOrRenew())) await sleep(this.retryMs * (0.8 + Math.random() * 0.4));
    if (this.stopped) return;
    this.leading = true;
    this.opts.log.info({ lease: this.opts.name, identity: this.opts.identity }, 'became leader');
    this.loop = (async () => {
      let lastRenew = Date.now();
      while (!this.stopped) {
        await sleep(this.retryMs);
        if (this.stopped) break;
        if (await this.tryAcquireOrRenew()) {
          lastRenew = Date.now();
        } else if (Date.now() - lastRenew > (this.duration * 1000 * 2) / 3) {
          this.leading = false;
          this.opts.log.error({ lease: this.opts.name }, 'lost leadership');
          onLost();
          return;
        }
      }
    })();
  }

  /** Stops renewing and releases the lease so a successor takes over at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
    if (!this.leading) return;
    this.leading = false;
    try {
      const lease = await this.opts.client.get<Lease>(Leases, this.opts.name, this.opts.namespace);
      if (lease.spec.holderIdentity !== this.opts.identity) return;
      await this.opts.client.replace(Leases, { ...lease, spec: { ...lease.spec, holderIdentity: null, leaseDurationSeconds: 1, renewTime: micro(new Date()) } } as never);
    } catch {
      /* best effort: expiry releases it anyway */
    }
  }

  private async tryAcquireOrRenew(): Promise<boolean> {
    const { client, namespace, name, identity } = this.opts;
    const now = new Date();
    try {
      const lease = await client.tryGet<Lease>(Leases, name, namespace);
      if (!lease) {
        await client.create(Leases, {
          metadata: { name, namespace },
          spec: { holderIdentity: identity, leaseDurationSeconds: this.duration, acquireTime: micro(now), renewTime: micro(now), leaseTransitions: 0 },
        } as never);
        return true;
      }
      const holder = lease.spec.holderIdentity;
      const renewed = lease.spec.renewTime ? Date.parse(lease.spec.renewTime) : 0;
      const expired = renewed + (lease.spec.leaseDurationSeconds ?? this.duration) * 1000 < now.getTime();
      if (holder && holder !== identity && !expired) return false;
      const takeover = holder !== identity;
      await client.replace(Leases, {
        ...lease,
        spec: {
          holderIdentity: identity,
          leaseDurationSeconds: this.duration,
          acquireTime: takeover ? micro(now) : lease.spec.acquireTime,
          renewTime: micro(now),
          leaseTransitions: (lease.spec.leaseTransitions ?? 0) + (takeover ? 1 : 0),
        },
      } as never);
      return true;
    } catch (err) {
      if (!isConflict(err) && !isNotFound(err)) this.opts.log.warn({ lease: name, error: describeError(err) }, 'lease update failed');
      return false;
    }
  }
}

/** Lease times are MicroTime: RFC 3339 with microseconds. */
function micro(d: Date): string {
  return d.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}
