import { describe, expect, it } from 'vitest';
import { collectProcessMetrics, createOperatorMetrics, registerKmsStats } from './metrics.js';

describe('operator metrics on prom-client', () => {
  it('exposes the metric names, label sets and buckets dashboards and alerts query', async () => {
    const metrics = createOperatorMetrics();
    metrics.reconcileTotal.inc({ controller: 'workspace', result: 'success' });
    metrics.probeTotal.inc({ type: 'redis', reason: 'Succeeded' });
    metrics.probeDuration.observe({ type: 'redis' }, 0.02);
    metrics.connectionsReady.set({ ready: 'false' }, 2);
    metrics.gatewayRequests.inc({ route: 'proxy', code: '200' });
    metrics.queueWait.observe({ controller: 'externalconnection', lane: 'urgent' }, 0.003);
    const text = await metrics.registry.metrics();
    expect(text).toContain('# TYPE atoll_reconcile_total counter');
    expect(text).toMatch(/^atoll_reconcile_total\{controller="workspace",result="success"\} 1$/m);
    expect(text).toMatch(/^atoll_probe_total\{type="redis",reason="Succeeded"\} 1$/m);
    expect(text).toMatch(/^atoll_probe_duration_seconds_bucket\{le="0.025",type="redis"\} 1$/m);
    expect(text).toMatch(/^atoll_probe_duration_seconds_bucket\{le="30",type="redis"\} 1$/m);
    expect(text).toMatch(/^atoll_connections\{ready="false"\} 2$/m);
    expect(text).toMatch(/^atoll_gateway_requests_total\{route="proxy",code="200"\} 1$/m);
    expect(text).toMatch(
      /^atoll_workqueue_wait_seconds_bucket\{le="0.005",controller="externalconnection",lane="urgent"\} 1$/m,
    );
  });

  it('adds the process figures (memory, garbage collection, event-loop delay) when asked, once per process', async () => {
    const metrics = createOperatorMetrics();
    collectProcessMetrics(metrics.registry);
    const text = await metrics.registry.metrics();
    expect(text).toMatch(/^process_resident_memory_bytes \d+/m);
    expect(text).toMatch(/^nodejs_eventloop_lag_p99_seconds /m);
    expect(text).toContain('# TYPE nodejs_gc_duration_seconds histogram');
    expect(await createOperatorMetrics().registry.metrics()).not.toContain('process_resident_memory_bytes');
  });

  it('refuses a label the metric does not declare, so no unbounded series can appear', () => {
    const metrics = createOperatorMetrics();
    expect(() => metrics.probeTotal.inc({ type: 'redis', connection: 'db-password' } as never)).toThrow(/connection/);
  });

  it('copies the data-key cache tallies at scrape time', async () => {
    const metrics = createOperatorMetrics();
    let generated = 1;
    registerKmsStats(metrics.registry, () => ({
      kmsCalls: { generateDataKey: generated, decryptDataKey: 0 },
      hits: { encrypt: 4, decrypt: 0 },
      misses: { encrypt: 1, decrypt: 2 },
      entries: { encrypt: 1, decrypt: 5 },
    }));
    expect(await metrics.registry.metrics()).toMatch(/^atoll_kms_requests\{operation="generateDataKey"\} 1$/m);
    generated = 3;
    const text = await metrics.registry.metrics();
    expect(text).toMatch(/^atoll_kms_requests\{operation="generateDataKey"\} 3$/m);
    expect(text).toMatch(/^atoll_dek_cache_hits\{direction="encrypt"\} 4$/m);
    expect(text).toMatch(/^atoll_dek_cache_misses\{direction="decrypt"\} 2$/m);
    expect(text).toMatch(/^atoll_dek_cache_entries\{direction="decrypt"\} 5$/m);
  });
});
