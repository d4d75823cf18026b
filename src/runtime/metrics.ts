/**
 * A small Prometheus registry (counters, gauges, histograms with labels) and
 * the text exposition format. Label values are for bounded, non-secret facts
 * only (controller, type, reason): never names of credentials, never values.
 */
type Labels = Record<string, string>;

abstract class Metric {
  protected readonly series = new Map<string, { labels: Labels; value: number }>();
  constructor(readonly name: string, readonly help: string, readonly type: 'counter' | 'gauge') {}
  protected key(labels: Labels): string {
    return JSON.stringify(Object.entries(labels).sort());
  }
  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} ${this.type}`];
    for (const { labels, value } of this.series.values()) lines.push(`${this.name}${fmt(labels)} ${value}`);
    return lines.join('\n');
  }
  get(labels: Labels = {}): number {
    return this.series.get(this.key(labels))?.value ?? 0;
  }
}

export class Counter extends Metric {
  constructor(name: string, help: string) {
    super(name, help, 'counter');
  }
  inc(labels: Labels = {}, by = 1): void {
    const k = this.key(labels);
    const s = this.series.get(k) ?? { labels, value: 0 };
    s.value += by;
    this.series.set(k, s);
  }
}

export class Gauge extends Metric {
  private readonly collectors: Array<() => void> = [];
  constructor(name: string, help: string, collect?: (g: Gauge) => void) {
    super(name, help, 'gauge');
    if (collect) this.collectors.push(() => collect(this));
  }
  set(labels: Labels, value: number): void {
    this.series.set(this.key(labels), { labels, value });
  }
  override render(): string {
    for (const c of this.collectors) c();
    return super.render();
  }
}

export class Histogram {
  private readonly series = new Map<string, { labels: Labels; counts: number[]; sum: number; count: number }>();
  constructor(readonly name: string, readonly help: string, readonly buckets: number[] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]) {}
  observe(labels: Labels, seconds: number): void {
    const k = JSON.stringify(Object.entries(labels).sort());
    const s = this.series.get(k) ?? { labels, counts: this.buckets.map(() => 0), sum: 0, count: 0 };
    this.buckets.forEach((b, i) => {
      if (seconds <= b) s.counts[i] = (s.counts[i] ?? 0) + 1;
    });
    s.sum += seconds;
    s.count += 1;
    this.series.set(k, s);
  }
  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`];
    for (const s of this.series.values()) {
      this.buckets.forEach((b, i) => lines.push(`${this.name}_bucket${fmt({ ...s.labels, le: String(b) })} ${s.counts[i]}`));
      lines.push(`${this.name}_bucket${fmt({ ...s.labels, le: '+Inf' })} ${s.count}`);
      lines.push(`${this.name}_sum${fmt(s.labels)} ${s.sum}`);
      lines.push(`${this.name}_count${fmt(s.labels)} ${s.count}`);
    }
    return lines.join('\n');
  }
}

function fmt(labels: Labels): string {
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`);
  return parts.length ? `{${parts.join(',')}}` : '';
}

export class Registry {
  private readonly metrics = new Map<string, { render(): string }>();
  register<M extends { name: string; render(): string }>(m: M): M {
    if (this.metrics.has(m.name)) throw new Error(`metric ${m.name} registered twice`);
    this.metrics.set(m.name, m);
    return m;
  }
  render(): string {
    return [...this.metrics.values()].map((m) => m.render()).join('\n') + '\n';
  }
}

/** The operator's metrics, shared by every component in the process. */
export function createOperatorMetrics(registry = new Registry()) {
  return {
    registry,
    reconcileTotal: registry.register(new Counter('atoll_reconcile_total', 'Reconciles by controller and result.')),
    reconcileErrors: registry.register(new Counter('atoll_reconcile_errors_total', 'Reconcile errors by controller.')),
    reconcileDuration: registry.register(new Histogram('atoll_reconcile_duration_seconds', 'Reconcile duration by controller.')),
    queueDepth: registry.register(new Gauge('atoll_workqueue_depth', 'Keys waiting in the work queue by controller.')),
    kmsFailures: registry.register(new Counter('atoll_kms_failures_total', 'KMS failures by provider and reason.')),
    probeDuration: registry.register(new Histogram('atoll_probe_duration_seconds', 'Probe duration by type and reason.')),
    probeTotal: registry.register(new Counter('atoll_probe_total', 'Probe outcomes by type and reason.')),
    connectionsReady: registry.register(new Gauge('atoll_connections', 'Connections by readiness (ready=true|false).')),
    gatewayRequests: registry.register(new Counter('atoll_gateway_requests_total', 'Gateway requests by outcome code.')),
    gatewayDuration: registry.register(new Histogram('atoll_gateway_request_duration_seconds', 'Gateway request duration by outcome code.')),
  };
}
export type OperatorMetrics = ReturnType<typeof createOperatorMetrics>;
