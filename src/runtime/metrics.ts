/**
 * The operator's Prometheus metrics, on prom-client. Label values are for
 * bounded, non-secret facts only (controller, type, reason, route, code):
 * never names of credentials, never values. Each metric declares its label
 * names, so a call with an unexpected label fails loudly instead of exporting
 * a series nobody queries.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { DekCacheStats } from '../crypto/dek-cache.js';

/** Seconds; reconciles and probes range from milliseconds to the 30 s probe ceiling. */
const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/** Seconds a key waits for a worker: an urgent key should start within milliseconds, a routine one may wait. */
const WAIT_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/** The operator's metrics, shared by every component in the process. */
export function createOperatorMetrics(registry = new Registry()) {
  const registers = [registry];
  return {
    registry,
    reconcileTotal: new Counter({
      name: 'atoll_reconcile_total',
      help: 'Reconciles by controller and result.',
      labelNames: ['controller', 'result'] as const,
      registers,
    }),
    reconcileErrors: new Counter({
      name: 'atoll_reconcile_errors_total',
      help: 'Reconcile errors by controller.',
      labelNames: ['controller'] as const,
      registers,
    }),
    reconcileDuration: new Histogram({
      name: 'atoll_reconcile_duration_seconds',
      help: 'Reconcile duration by controller.',
      labelNames: ['controller'] as const,
      buckets: DURATION_BUCKETS,
      registers,
    }),
    queueWait: new Histogram({
      name: 'atoll_workqueue_wait_seconds',
      help: 'Time a key waited in the work queue before a worker took it, by controller and lane (urgent: a user change).',
      labelNames: ['controller', 'lane'] as const,
      buckets: WAIT_BUCKETS,
      registers,
    }),
    queueDepth: new Gauge({
      name: 'atoll_workqueue_depth',
      help: 'Keys waiting in the work queue by controller.',
      labelNames: ['controller'] as const,
      registers,
    }),
    kmsFailures: new Counter({
      name: 'atoll_kms_failures_total',
      help: 'KMS failures by provider and reason.',
      labelNames: ['provider', 'reason'] as const,
      registers,
    }),
    probeDuration: new Histogram({
      name: 'atoll_probe_duration_seconds',
      help: 'Probe duration by type and reason.',
      labelNames: ['type', 'reason'] as const,
      buckets: DURATION_BUCKETS,
      registers,
    }),
    probeTotal: new Counter({
      name: 'atoll_probe_total',
      help: 'Probe outcomes by type and reason.',
      labelNames: ['type', 'reason'] as const,
      registers,
    }),
    connectionsReady: new Gauge({
      name: 'atoll_connections',
      help: 'Connections by readiness (ready=true|false).',
      labelNames: ['ready'] as const,
      registers,
    }),
    gatewayRequests: new Counter({
      name: 'atoll_gateway_requests_total',
      help: 'Gateway requests by outcome code.',
      labelNames: ['route', 'code'] as const,
      registers,
    }),
    gatewayDuration: new Histogram({
      name: 'atoll_gateway_request_duration_seconds',
      help: 'Gateway request duration by outcome code.',
      labelNames: ['route', 'code'] as const,
      buckets: DURATION_BUCKETS,
      registers,
    }),
  };
}
export type OperatorMetrics = ReturnType<typeof createOperatorMetrics>;

/**
 * The process's own figures (resident memory, CPU, heap, garbage collection
 * pauses, event-loop delay), as every Node service exports them: called once
 * per process by the commands that serve /metrics, not per operator, since
 * tests start many operators in one process.
 */
export function collectProcessMetrics(registry: Registry): void {
  collectDefaultMetrics({ register: registry });
}

/**
 * Counters read from the envelope's data-key cache at scrape time: the cache
 * keeps its own tallies (it is shared by the operator and the gateway), so
 * each scrape copies them instead of counting twice.
 */
export function registerKmsStats(registry: Registry, stats: () => DekCacheStats): void {
  new Counter({
    name: 'atoll_kms_requests',
    help: 'KMS requests made by the envelope, by operation (cache misses only).',
    labelNames: ['operation'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const [operation, n] of Object.entries(stats().kmsCalls)) this.inc({ operation }, n);
    },
  });
  new Counter({
    name: 'atoll_dek_cache_hits',
    help: 'Data-key cache hits by direction.',
    labelNames: ['direction'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const [direction, n] of Object.entries(stats().hits)) this.inc({ direction }, n);
    },
  });
  new Counter({
    name: 'atoll_dek_cache_misses',
    help: 'Data-key cache misses by direction.',
    labelNames: ['direction'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const [direction, n] of Object.entries(stats().misses)) this.inc({ direction }, n);
    },
  });
  new Gauge({
    name: 'atoll_dek_cache_entries',
    help: 'Data keys held in the cache by direction.',
    labelNames: ['direction'] as const,
    registers: [registry],
    collect() {
      for (const [direction, n] of Object.entries(stats().entries)) this.set({ direction }, n);
    },
  });
}
