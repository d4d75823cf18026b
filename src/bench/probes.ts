/**
 * Probe scheduling benchmark (a script, not a test): how many periodic probes
 * per second the controller sustains, how late they run, and what that costs
 * the controller in CPU and memory, at a baseline of 100 connections and at N
 * (default 1,000) in the same run.
 *
 *   npm run build && node dist/bench/probes.js [--connections 1000] [--workspaces 10] [--baseline 100] [--window 30]
 *       [--slow 1000] [--quiet 50] [--slow-ms 3000] [--json]
 *
 * Three phases in one run: a baseline (100 connections, one workspace), the
 * throughput phase (N connections over W workspaces), and a fairness phase:
 * one workspace whose `--slow` connections all probe a service that answers
 * after `--slow-ms` (a backlog far beyond its share of the probe pool) beside
 * a quiet workspace of `--quiet` connections, whose lag is what is measured.
 * `--slow 0` skips it. `--json` adds one JSON object with the inputs and
 * figures as the last line of stdout.
 *
 * Everything is real and on loopback: a fresh control plane, CRDs and built-in
 * types, the webhook sealing every credential, and the operator running in
 * this process. Connections use a custom HTTP IntegrationType (header auth)
 * whose service is a fixture in a child process, so the CPU measured here is
 * the controller's, not the fixture's. Scheduling lag is read from the
 * fixture's arrival times: for each connection, the gap between two
 * consecutive probes minus the 10 s interval (since ADR 0028 jitter is drawn
 * once, after a connection's first probe, so gaps in the measuring window
 * carry none; before it, up to 10 % of the interval, 1 s, was in every gap).
 */
import { fork, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { availableParallelism, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import {
  installAtoll,
  loopbackOperatorConfig,
  OPERATOR_NAMESPACE,
  precreateWebhookConfigurations,
} from '../dev/embedded.js';
import type { KubeClient, KubeObject } from '../kube/client.js';
import { ExternalConnections, IntegrationTypes, Namespaces, Workspaces } from '../kube/resources.js';
import { startOperator, type RunningOperator } from '../operator.js';
import { createLogger } from '../runtime/logger.js';
import { packageRoot } from '../dev/binaries.js';
import { ControlPlane } from '../dev/control-plane.js';
import { fmt, helpAndExit, numericFlag, percentile } from './stats.js';

const FIXTURE_FLAG = '--fixture-child';
const TYPE_NAME = 'bench-status-api';
const HEADER = 'x-bench-key';
/** Not a secret: a benchmark credential the fixture accepts. */
const BENCH_KEY = 'bench-probe-key-000000000001';
const INTERVAL_MS = 10_000;
const CREATE_CONCURRENCY = 16;

/** Arrival times (epoch ms) of probes per connection id, as the fixture saw them. */
type Arrivals = Record<string, number[]>;

type FixtureMessage = { kind: 'listening'; port: number } | { kind: 'arrivals'; arrivals: Arrivals };

// ---------------------------------------------------------------- fixture (child process)

/** The probed service: answers 200 to the bench key, 401 otherwise, and remembers when each connection probed. */
function runFixture(): void {
  const arrivals = new Map<string, number[]>();
  const slowMs = Number(process.argv[process.argv.indexOf(FIXTURE_FLAG) + 1]);
  const server = http.createServer((req, res) => {
    const at = Date.now();
    const match = /^(\/slow)?\/probe\/([a-z0-9-]+)$/.exec(req.url ?? '');
    const id = match?.[2];
    if (id !== undefined) {
      const list = arrivals.get(id) ?? [];
      list.push(at);
      arrivals.set(id, list);
    }
    req.resume();
    res.statusCode = req.headers[HEADER] === BENCH_KEY ? 200 : 401;
    // `/slow/...`: a service that takes its time, for the fairness phase.
    if (match?.[1] !== undefined) setTimeout(() => res.end('{}'), slowMs);
    else res.end('{}');
  });
  server.keepAliveTimeout = 30_000;
  process.on('message', (msg: { kind: string }) => {
    if (msg.kind === 'report')
      process.send?.({ kind: 'arrivals', arrivals: Object.fromEntries(arrivals) } satisfies FixtureMessage);
    if (msg.kind === 'stop') server.close(() => process.exit(0));
  });
  process.on('disconnect', () => process.exit(0));
  server.listen(0, '127.0.0.1', () =>
    process.send?.({ kind: 'listening', port: (server.address() as AddressInfo).port } satisfies FixtureMessage),
  );
}

interface Fixture {
  url: string;
  /** Probes of connections pointed here are answered after the slow delay. */
  slowUrl: string;
  arrivals(): Promise<Arrivals>;
  stop(): Promise<void>;
}

async function startFixture(slowMs: number): Promise<Fixture> {
  const child: ChildProcess = fork(fileURLToPath(import.meta.url), [FIXTURE_FLAG, String(slowMs)], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const port = await new Promise<number>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`fixture exited (${code})`)));
    child.once('message', (m: FixtureMessage) =>
      m.kind === 'listening' ? resolve(m.port) : reject(new Error('unexpected fixture message')),
    );
  });
  child.removeAllListeners('exit');
  return {
    url: `http://127.0.0.1:${port}`,
    slowUrl: `http://127.0.0.1:${port}/slow`,
    arrivals: () =>
      new Promise((resolve) => {
        child.once('message', (m: FixtureMessage) => resolve(m.kind === 'arrivals' ? m.arrivals : {}));
        child.send({ kind: 'report' });
      }),
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.send({ kind: 'stop' });
        setTimeout(() => child.kill('SIGKILL'), 3_000).unref();
      }),
  };
}

// ---------------------------------------------------------------- cluster set-up

const integrationType = {
  apiVersion: 'atoll.dev/v1alpha1',
  kind: 'IntegrationType',
  metadata: { name: TYPE_NAME },
  spec: {
    displayName: 'Benchmark status API',
    category: 'api',
    settingsSchema: {
      type: 'object',
      additionalProperties: false,
      required: ['url', 'id'],
      properties: { url: { type: 'string', format: 'uri' }, id: { type: 'string', pattern: '^[a-z0-9-]+$' } },
    },
    credentialFields: [{ name: 'apiKey', displayName: 'API key', required: true }],
    probe: {
      http: {
        method: 'GET',
        url: '{{settings.url}}/probe/{{settings.id}}',
        auth: { type: 'header', headerName: 'X-Bench-Key', credential: 'apiKey' },
        successStatuses: [200],
        authFailureStatuses: [401, 403],
      },
    },
  },
};

async function createWorkspace(client: KubeClient, name: string): Promise<void> {
  await client.create(Namespaces, { metadata: { name } });
  await client.create(Workspaces, {
    metadata: { name, namespace: name },
    spec: { policy: { egress: { allowCIDRs: ['127.0.0.0/8'] } } },
  } as never);
  await until(`workspace ${name} Ready`, 60_000, async () => {
    const ws = await client.get<KubeObject & { status?: { conditions?: Array<{ type: string; status: string }> } }>(
      Workspaces,
      name,
      name,
    );
    return ws.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
  });
}

/** Runs `task` for every item with at most `limit` in flight. */
async function pool<T>(items: T[], limit: number, task: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) await task(items[next++]!);
    }),
  );
}

function connectionNames(prefix: string, n: number): string[] {
  return Array.from({ length: n }, (_, i) => `${prefix}-${String(i).padStart(5, '0')}`);
}

/** Connections of one workspace namespace, all probing `url`. */
interface Group {
  ns: string;
  names: string[];
  url: string;
}

/**
 * Creates the groups' connections interleaved and paced evenly over one
 * interval, so their probe phases are spread the way a long-running
 * cluster's are; created all at once they would probe in lockstep and a
 * window count would be biased.
 */
async function createConnections(client: KubeClient, groups: Group[]): Promise<void> {
  const items: Array<{ ns: string; name: string; url: string }> = [];
  for (let i = 0; items.length < groups.reduce((n, g) => n + g.names.length, 0); i++) {
    for (const g of groups) if (i < g.names.length) items.push({ ns: g.ns, name: g.names[i]!, url: g.url });
  }
  const started = Date.now();
  const spacingMs = INTERVAL_MS / items.length;
  let index = 0;
  await pool(items, CREATE_CONCURRENCY, async ({ ns, name, url }) => {
    const wait = started + index++ * spacingMs - Date.now();
    if (wait > 0) await sleep(wait);
    const connection = {
      metadata: { name, namespace: ns },
      spec: {
        type: TYPE_NAME,
        settings: { url, id: name },
        credentials: { apiKey: { value: BENCH_KEY } },
        probe: { interval: `${INTERVAL_MS / 1000}s`, timeout: '5s' },
      },
    };
    // An earlier attempt may have got through after all.
    await retried(() => client.create(ExternalConnections, connection as never), /already exists/i);
  });
}

async function deleteConnections(client: KubeClient, groups: Group[]): Promise<void> {
  await pool(
    groups.flatMap((g) => g.names.map((name) => ({ ns: g.ns, name }))),
    CREATE_CONCURRENCY,
    ({ ns, name }) => retried(() => client.delete(ExternalConnections, name, ns), /not found/i),
  );
}

/**
 * On a crowded machine the API server's call to the operator's webhooks can
 * fail transiently (a reset keep-alive socket, a timeout): retry like a
 * client would, rather than lose the run. `done` matches the error of a retry
 * whose earlier attempt got through after all.
 */
async function retried(call: () => Promise<unknown>, done: RegExp): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await call();
      return;
    } catch (err) {
      const message = String((err as Error).message);
      if (attempt > 1 && done.test(message)) return;
      if (attempt >= 5 || !/webhook|timeout|reset|broken pipe|EOF/i.test(message)) throw err;
      await sleep(500 * attempt);
    }
  }
}

async function until(what: string, timeoutMs: number, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(250);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// ---------------------------------------------------------------- measurement

interface PhaseResult {
  /** Connections created in the phase, measured or not. */
  connections: number;
  workspaces: number;
  /** The connections the figures below are about. */
  measured: number;
  /** Probes of the other (unmeasured) connections per second during the window. */
  otherProbesPerSecond: number;
  /** Gaps of measured connections longer than two intervals: a probe delayed beyond its interval. */
  late: number;
  /** Probes the fixture received per second during the window. */
  probesPerSecond: number;
  /** Cross-check independent of phase alignment: connections / mean gap between a connection's probes. */
  gapRatePerSecond: number;
  /** What the interval asks for: connections / interval. */
  expectedPerSecond: number;
  lagP50Ms: number;
  lagP99Ms: number;
  lagMaxMs: number;
  /** Connections with no probe at all during the window. */
  missed: number;
  /** Writes to ExternalConnections (status writes: nothing else changes them) per second during the window. */
  writesPerSecond: number;
  /** Controller process CPU (user + system) over the window, in % of one core. */
  cpuPercent: number;
  rssMiB: number;
  peakRssMiB: number;
}

/**
 * One phase: create the groups' connections, wait until each measured one
 * has been probed once and one more interval has passed (steady state), then
 * measure for `windowMs`. `measured` defaults to every connection.
 */
async function measurePhase(
  client: KubeClient,
  fixture: Fixture,
  label: string,
  groups: Group[],
  windowMs: number,
  measured = groups.flatMap((g) => g.names),
): Promise<PhaseResult> {
  const total = groups.reduce((n, g) => n + g.names.length, 0);
  const say = (line: string) => process.stderr.write(`[${label}] ${line}\n`);
  const created = performance.now();
  await createConnections(client, groups);
  say(
    `created ${total} connections in ${groups.length} workspaces (paced over one interval) in ${((performance.now() - created) / 1000).toFixed(1)} s`,
  );
  await until('every measured connection probed once', 300_000, async () => {
    const arrivals = await fixture.arrivals();
    return measured.every((n) => (arrivals[n]?.length ?? 0) > 0);
  });
  say(`all measured connections probed once after ${((performance.now() - created) / 1000).toFixed(1)} s`);
  // Steady state: every measured connection is on its periodic schedule (a create burst the controller has not
  // caught up with yet would otherwise count its backlog as lag), then one more interval.
  await until('every measured connection probed periodically', 300_000, async () => {
    const arrivals = await fixture.arrivals();
    const recent = Date.now() - 1.5 * INTERVAL_MS;
    return measured.every((n) => (arrivals[n]?.length ?? 0) >= 2 && arrivals[n]!.at(-1)! > recent);
  });
  say(
    `every measured connection probed periodically after ${((performance.now() - created) / 1000).toFixed(1)} s; settling for one interval`,
  );
  await sleep(INTERVAL_MS + 2_000);

  // Every write to a connection in the window (from here on only the controller's status writes change them).
  let writes = 0;
  let counting = false;
  const stopWatch = new AbortController();
  const watching = client
    .watch(ExternalConnections, { resourceVersion: '', signal: stopWatch.signal, timeoutSeconds: 3600 }, (ev) => {
      if (counting && ev.type === 'MODIFIED') writes++;
    })
    .catch(() => undefined);
  await sleep(1_000); // the watch's initial ADDED events are not counted either way
  say(`measuring for ${windowMs / 1000} s`);
  const cpuBefore = process.cpuUsage();
  counting = true;
  const start = Date.now();
  let peakRss = process.memoryUsage().rss;
  const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 500);
  await sleep(windowMs);
  const end = Date.now();
  counting = false;
  stopWatch.abort();
  await watching;
  clearInterval(sampler);
  const cpu = process.cpuUsage(cpuBefore);
  const rss = process.memoryUsage().rss;
  peakRss = Math.max(peakRss, rss);
  const arrivals = await fixture.arrivals();

  const seconds = (end - start) / 1000;
  const inWindowOf = (name: string) => (arrivals[name] ?? []).filter((t) => t >= start && t < end).length;
  const measuredSet = new Set(measured);
  let others = 0;
  for (const g of groups) for (const name of g.names) if (!measuredSet.has(name)) others += inWindowOf(name);
  let inWindow = 0;
  let missed = 0;
  let late = 0;
  const lags: number[] = [];
  for (const name of measured) {
    const times = arrivals[name] ?? [];
    const here = inWindowOf(name);
    inWindow += here;
    if (here === 0) missed++;
    for (let i = 1; i < times.length; i++) {
      if (times[i]! < start || times[i]! >= end) continue;
      const lag = times[i]! - times[i - 1]! - INTERVAL_MS;
      lags.push(lag);
      if (lag > INTERVAL_MS) late++;
    }
  }
  const meanGapMs = INTERVAL_MS + lags.reduce((a, b) => a + b, 0) / Math.max(1, lags.length);
  return {
    connections: total,
    workspaces: groups.length,
    measured: measured.length,
    otherProbesPerSecond: others / seconds,
    late,
    probesPerSecond: inWindow / seconds,
    gapRatePerSecond: measured.length / (meanGapMs / 1000),
    expectedPerSecond: measured.length / (INTERVAL_MS / 1000),
    lagP50Ms: percentile(lags, 50),
    lagP99Ms: percentile(lags, 99),
    lagMaxMs: lags.length ? Math.max(...lags) : NaN,
    missed,
    writesPerSecond: writes / seconds,
    cpuPercent: ((cpu.user + cpu.system) / 1000 / (end - start)) * 100,
    rssMiB: rss / 2 ** 20,
    peakRssMiB: peakRss / 2 ** 20,
  };
}

function table(results: Array<[string, PhaseResult]>): string {
  const out = [
    '| phase | workspaces | connections | measured | probes/s | N / mean gap | expected/s | lag p50 ms | lag p99 ms | lag max ms | missed | late | other probes/s | status writes/s | controller CPU % | RSS MiB | peak RSS MiB |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const [label, r] of results) {
    out.push(
      `| ${label} | ${r.workspaces} | ${r.connections} | ${r.measured} | ${fmt(r.probesPerSecond)} | ${fmt(r.gapRatePerSecond)} | ${fmt(r.expectedPerSecond)} | ${fmt(r.lagP50Ms, 0)} | ${fmt(r.lagP99Ms, 0)} | ${fmt(r.lagMaxMs, 0)} | ${r.missed} | ${r.late} | ${fmt(r.otherProbesPerSecond)} | ${fmt(r.writesPerSecond)} | ${fmt(r.cpuPercent)} | ${fmt(r.rssMiB)} | ${fmt(r.peakRssMiB)} |`,
    );
  }
  return out.join('\n');
}

/** A non-negative integer `--name value` flag (0 allowed: turns a phase off). */
function countFlag(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const value = i >= 0 ? Number(process.argv[i + 1]) : fallback;
  if (!Number.isInteger(value) || value < 0) throw new Error(`--${name} must be a whole number, 0 or more`);
  return value;
}

function names(prefix: string, n: number): string[] {
  return connectionNames(prefix, n);
}

/** `n` connections spread evenly over `workspaces` namespaces called `<prefix>-<i>`. */
function spread(prefix: string, n: number, workspaces: number, url: string): Group[] {
  const all = names(prefix, n);
  const per = Math.ceil(n / workspaces);
  return Array.from({ length: workspaces }, (_, w) => ({
    ns: `${prefix}-${w}`,
    names: all.slice(w * per, (w + 1) * per),
    url,
  })).filter((g) => g.names.length > 0);
}

async function main(): Promise<void> {
  helpAndExit(`
Usage: node dist/bench/probes.js [flags]   (docs/benchmarks.md, "Probe scheduling")
  --connections N  connections probed periodically (1000)
  --workspaces N   workspaces they are spread over (10)
  --baseline N     connections of the no-slow baseline phase (100)
  --window S       measuring window of each phase, seconds (30)
  --slow N         slow connections in one workspace for the fairness phase, 0 skips it (1000)
  --quiet N        connections of the quiet workspace beside it (50)
  --slow-ms MS     how long a slow connection's host takes to answer (3000)
  --json           one JSON summary on the last line of stdout
`);
  const connections = Math.round(numericFlag('connections', 1000));
  const workspaces = Math.round(numericFlag('workspaces', 10));
  const baseline = Math.round(numericFlag('baseline', 100));
  const windowMs = numericFlag('window', 30) * 1000;
  const slow = countFlag('slow', 1000);
  const quiet = Math.round(numericFlag('quiet', 50));
  const slowMs = numericFlag('slow-ms', 3000);
  const json = process.argv.includes('--json');
  const log = createLogger({ level: 'silent' });
  const root = packageRoot();

  process.stderr.write('starting control plane…\n');
  const cp = await ControlPlane.start({ controllerManager: false });
  const fixture = await startFixture(slowMs);
  let operator: RunningOperator | undefined;
  try {
    const client = cp.adminClient();
    await installAtoll(client, root);
    await client.create(IntegrationTypes, integrationType as never);

    await precreateWebhookConfigurations(client);
    // The quota controller computes each workspace's connection quota (as in any cluster).
    await cp.startControllerManager(['resourcequota']);
    // Lift the per-namespace sealing budget (ADR 0012): the bench creates connections far faster than a tenant may.
    // The probe pool and each workspace's share of it (ADR 0017) keep their defaults: the fairness phase measures them.
    const config = loopbackOperatorConfig(
      { ATOLL_LOG_LEVEL: 'silent', ATOLL_SEALING_RATE_PER_MINUTE: '1000000', ATOLL_SEALING_BURST: '100000' },
      process.env,
    );
    operator = await startOperator({
      client: await cp.serviceAccountClient(OPERATOR_NAMESPACE, config.serviceAccounts.controller),
      config,
      log,
    });

    const phases: Array<{ label: string; groups: Group[]; measured?: string[] }> = [
      { label: 'baseline', groups: spread('base', baseline, 1, fixture.url) },
      { label: 'throughput', groups: spread('load', connections, workspaces, fixture.url) },
    ];
    if (slow > 0) {
      // One workspace whose services answer slowly, with a backlog far beyond its share of the pool, beside a quiet one.
      const quietGroup = { ns: 'quiet', names: names('quiet', quiet), url: fixture.url };
      phases.push({
        label: 'fairness',
        groups: [{ ns: 'slow', names: names('slow', slow), url: fixture.slowUrl }, quietGroup],
        measured: quietGroup.names,
      });
    }
    const results: Array<[string, PhaseResult]> = [];
    for (const phase of phases) {
      for (const g of phase.groups) await createWorkspace(client, g.ns);
      results.push([
        phase.label,
        await measurePhase(client, fixture, phase.label, phase.groups, windowMs, phase.measured),
      ]);
      process.stderr.write(`${table(results.slice(-1))}\n`); // each phase's row as soon as it is measured
      // The next phase measures its own connections only.
      if (phase !== phases.at(-1)) await deleteConnections(client, phase.groups);
    }

    const base = results[0]![1];
    const full = results[1]![1];
    const fair = results[2]?.[1];
    const lines = [
      `probe scheduling benchmark: interval ${INTERVAL_MS / 1000} s, probe concurrency ${config.probes.concurrency} (${config.probes.perWorkspace} per workspace), window ${windowMs / 1000} s, loopback, Node ${process.version}, ${availableParallelism()} CPUs shared with the control plane`,
      '',
      table(results),
      '',
      `ratio ${full.connections} / ${base.connections} connections (x${fmt(full.connections / base.connections, 0)}):`,
      `  probes/s x${fmt(full.probesPerSecond / base.probesPerSecond, 2)}   lag p99 x${fmt(full.lagP99Ms / base.lagP99Ms, 2)}   CPU x${fmt(full.cpuPercent / base.cpuPercent, 2)}   RSS x${fmt(full.rssMiB / base.rssMiB, 2)}`,
      `  sustained / expected probes/s: ${fmt(base.probesPerSecond / base.expectedPerSecond, 2)} at ${base.connections}, ${fmt(full.probesPerSecond / full.expectedPerSecond, 2)} at ${full.connections}`,
      ...(fair
        ? [
            `fairness: ${quiet} quiet connections beside ${slow} whose service answers after ${slowMs / 1000} s: quiet lag p99 ${fmt(fair.lagP99Ms, 0)} ms, ${fair.late} probes delayed beyond their interval, ${fair.missed} missed`,
          ]
        : []),
      '  lag = gap between consecutive probes of a connection minus the interval (jitter only before the first periodic probe, ADR 0028); late = lag above one interval',
    ];
    if (json) {
      lines.push(
        JSON.stringify({
          bench: 'probes',
          interval_s: INTERVAL_MS / 1000,
          window_s: windowMs / 1000,
          baseline,
          connections,
          workspaces,
          slow,
          quiet,
          slow_ms: slowMs,
          probe_concurrency: config.probes.concurrency,
          probe_concurrency_per_workspace: config.probes.perWorkspace,
          node: process.version,
          cpus: availableParallelism(),
          probes_per_s: round2(full.probesPerSecond),
          expected_per_s: round2(full.expectedPerSecond),
          lag_p50_ms: round2(full.lagP50Ms),
          lag_p99_ms: round2(full.lagP99Ms),
          missed: full.missed,
          status_writes_per_s: round2(full.writesPerSecond),
          load_average: loadavg().map(round2),
          controller_cpu_percent: round2(full.cpuPercent),
          baseline_probes_per_s: round2(base.probesPerSecond),
          baseline_lag_p99_ms: round2(base.lagP99Ms),
          fair_lag_p99_ms: fair ? round2(fair.lagP99Ms) : null,
          fair_late: fair ? fair.late : null,
          fair_missed: fair ? fair.missed : null,
          slow_probes_per_s: fair ? round2(fair.otherProbesPerSecond) : null,
        }),
      );
    }
    process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    await operator?.stop();
    await fixture.stop();
    await cp.stop();
  }
}

function round2(n: number): number {
  return Number.isFinite(n) ? Math.round(n * 100) / 100 : n;
}

if (process.argv.includes(FIXTURE_FLAG)) {
  runFixture();
} else {
  main().then(
    () => process.exit(0),
    (err: unknown) => {
      process.stderr.write(`probe benchmark failed: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    },
  );
}
