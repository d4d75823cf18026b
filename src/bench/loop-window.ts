/**
 * What a process's event loop went through during a benchmark window, read
 * from its own /metrics (prom-client's process metrics and the work queue's
 * wait histogram): event-loop delay, time in garbage collection by kind, and
 * how long urgent keys waited for a worker. Every scrape of /metrics resets
 * prom-client's event-loop delay histogram: the delay figures cover the time
 * since the last scrape, so nothing else may scrape the process during a
 * window (the counters are not affected).
 */

type Samples = Map<string, number>;

async function scrape(metricsURL: string): Promise<Samples> {
  const text = await (await fetch(metricsURL)).text();
  const samples: Samples = new Map();
  for (const m of text.matchAll(/^([a-zA-Z_:][\w:]*(?:\{[^}]*\})?)\s+(\S+)$/gm)) samples.set(m[1]!, Number(m[2]));
  return samples;
}

export interface LoopWindow {
  seconds: number;
  lag_p50_ms: number;
  lag_p99_ms: number;
  lag_max_ms: number;
  /** Seconds spent in garbage collection during the window, by kind (minor, major, incremental, weakcb). */
  gc_s: Record<string, number>;
  /** The upper bound of the histogram bucket holding the 99th percentile of urgent keys' wait (ms). */
  urgent_wait_p99_ms: number;
  urgent_keys: number;
}

/** Starts a window on the process serving `metricsURL`; the returned function ends it. */
export async function openLoopWindow(metricsURL: string, controller: string): Promise<() => Promise<LoopWindow>> {
  const before = await scrape(metricsURL);
  const started = performance.now();
  return async () => {
    const after = await scrape(metricsURL);
    const delta = (key: string) => (after.get(key) ?? 0) - (before.get(key) ?? 0);
    const gc: Record<string, number> = {};
    for (const key of after.keys()) {
      const kind = /^nodejs_gc_duration_seconds_sum\{kind="(\w+)"\}$/.exec(key)?.[1];
      if (kind) gc[kind] = Math.round(delta(key) * 1000) / 1000;
    }
    const wait = `atoll_workqueue_wait_seconds_bucket{le="%",controller="${controller}",lane="urgent"}`;
    const bounds = [...after.keys()]
      .map((k) => /^atoll_workqueue_wait_seconds_bucket\{le="([^"]+)",controller="([^"]+)",lane="urgent"\}$/.exec(k))
      .filter((m): m is RegExpExecArray => m !== null && m[2] === controller)
      .map((m) => m[1]!);
    const count = (le: string) => delta(wait.replace('%', le));
    const total = count('+Inf');
    const p99 = bounds.filter((le) => le !== '+Inf').find((le) => count(le) >= 0.99 * total);
    const ms = (key: string) => Math.round((after.get(key) ?? NaN) * 1e5) / 100;
    return {
      seconds: Math.round(performance.now() - started) / 1000,
      lag_p50_ms: ms('nodejs_eventloop_lag_p50_seconds'),
      lag_p99_ms: ms('nodejs_eventloop_lag_p99_seconds'),
      lag_max_ms: ms('nodejs_eventloop_lag_max_seconds'),
      gc_s: gc,
      urgent_wait_p99_ms: total === 0 ? NaN : p99 === undefined ? Infinity : Number(p99) * 1000,
      urgent_keys: total,
    };
  };
}
