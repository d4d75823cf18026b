import type { KubeClient, KubeObject } from '../../../src/kube/client.js';
import { Leases } from '../../../src/kube/resources.js';
import { Informer } from '../../../src/runtime/informer.js';
import { createLogger } from '../../../src/runtime/logger.js';
import { OPERATOR_NAMESPACE } from '../../../src/dev/embedded.js';
import type { Incarnation, SupervisedProcess } from './processes.js';

type Lease = KubeObject & {
  spec: {
    holderIdentity?: string | null;
    leaseDurationSeconds?: number;
    acquireTime?: string;
    renewTime?: string;
    leaseTransitions?: number;
  };
};

export interface LeaseObservation {
  at: number;
  holder: string | null;
  acquireTime?: number;
  renewTime?: number;
  durationMs: number;
}

export const LEASE_NAME = 'atoll-controller';

/**
 * Watches the controllers' Lease from the test process (directly, not
 * through toxiproxy) and keeps every version it sees: the Lease history the
 * two-leaders check reads, and who leads now (the kill target).
 */
export class LeaseObserver {
  readonly history: LeaseObservation[] = [];
  private readonly informer: Informer<Lease>;

  constructor(admin: KubeClient) {
    const quiet = createLogger({ level: 'fatal', destination: { write: () => undefined } });
    this.informer = new Informer<Lease>(admin, Leases, { log: quiet, namespace: OPERATOR_NAMESPACE });
    this.informer.on((_event, lease) => {
      if (lease.metadata?.name !== LEASE_NAME) return;
      const s = lease.spec;
      this.history.push({
        at: Date.now(),
        holder: s.holderIdentity ?? null,
        ...(s.acquireTime ? { acquireTime: Date.parse(s.acquireTime) } : {}),
        ...(s.renewTime ? { renewTime: Date.parse(s.renewTime) } : {}),
        durationMs: (s.leaseDurationSeconds ?? 15) * 1000,
      });
    });
    this.informer.start();
  }

  /** The holder in the latest version seen. */
  holder(): string | null {
    return this.history.at(-1)?.holder ?? null;
  }

  async stop(): Promise<void> {
    await this.informer.stop();
  }
}

export interface LeadershipInterval {
  inc: Incarnation;
  identity: string;
  from: number;
  to: number;
}

export interface LeadershipReport {
  intervals: LeadershipInterval[];
  /** Two incarnations that both believed they led at the same moment. */
  overlaps: string[];
  /** A write logged by an incarnation while it did not lead. */
  writesOutsideLeadership: string[];
  /** A new holder took the Lease before the previous holder's last renewal had expired. */
  earlyTakeovers: string[];
  writes: number;
}

const LOST = /lost leadership|leadership lost/;

/**
 * No two controllers led at the same moment, judged three ways:
 * - each incarnation leads from its "became leader" log line until it was
 *   killed, exited, or logged the loss; no two such intervals overlap;
 * - every write it logged ("managed secret written") falls inside its interval;
 * - in the Lease history, each change of holder happened only after the
 *   previous holder's last observed renewal plus the lease duration (a
 *   release, holder null, hands over at once).
 */
export function analyseLeadership(
  controllers: SupervisedProcess[],
  history: LeaseObservation[],
  now = Date.now(),
): LeadershipReport {
  const intervals: LeadershipInterval[] = [];
  const writesOutsideLeadership: string[] = [];
  let writes = 0;
  for (const proc of controllers) {
    const lines = proc.logLines();
    for (const inc of proc.incarnations) {
      const own = lines.filter((l) => l.inc === inc);
      const t = (l: { line: Record<string, unknown> }) => Date.parse(String(l.line.time));
      const became = own.find((l) => l.line.msg === 'became leader');
      const mine: LeadershipInterval | undefined = became
        ? (() => {
            const from = t(became);
            const lost = own.find((l) => LOST.test(String(l.line.msg)) && t(l) >= from);
            const to = Math.min(inc.endedAt ?? now, lost ? t(lost) : Infinity);
            return { inc, identity: (became.line.identity as string | undefined) ?? proc.name, from, to };
          })()
        : undefined;
      if (mine) intervals.push(mine);
      for (const w of own.filter((l) => l.line.msg === 'managed secret written')) {
        writes++;
        const at = t(w);
        if (!mine || at < mine.from || at > mine.to)
          writesOutsideLeadership.push(
            `${inc.id} wrote ${(w.line.namespace as string | undefined) ?? ''}/${(w.line.name as string | undefined) ?? (w.line.secret as string | undefined) ?? ''} at ${new Date(at).toISOString()} outside its leadership`,
          );
      }
    }
  }
  const overlaps: string[] = [];
  for (let i = 0; i < intervals.length; i++) {
    for (let j = i + 1; j < intervals.length; j++) {
      const a = intervals[i]!;
      const b = intervals[j]!;
      if (a.from < b.to && b.from < a.to)
        overlaps.push(`${a.inc.id} [${iso(a.from)}, ${iso(a.to)}] and ${b.inc.id} [${iso(b.from)}, ${iso(b.to)}]`);
    }
  }
  const earlyTakeovers: string[] = [];
  let previous: LeaseObservation | undefined;
  for (const obs of history) {
    if (
      previous &&
      obs.holder &&
      previous.holder &&
      obs.holder !== previous.holder &&
      obs.acquireTime !== undefined &&
      previous.renewTime !== undefined
    ) {
      const expiry = previous.renewTime + previous.durationMs;
      if (obs.acquireTime < expiry)
        earlyTakeovers.push(
          `${obs.holder} acquired at ${iso(obs.acquireTime)}, ${expiry - obs.acquireTime}ms before ${previous.holder}'s lease (renewed ${iso(previous.renewTime)}) expired`,
        );
    }
    previous = obs;
  }
  return { intervals, overlaps, writesOutsideLeadership, earlyTakeovers, writes };
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}
