/**
 * Probe scheduling benchmark (a script, not a test): how many periodic probes
 * per second the controller sustains, how late they run, and what that costs
 * the controller in CPU and memory, at a baseline of 100 connections and at N
 * (default 1,000) in the same run.
 *
 *   npm run build && node dist/bench/probes.js [--connections 1000] [--baseline 100] [--window 30]
 *
 * Everything is real and on loopback: a fresh control plane, CRDs and built-in
 * types, the webhook sealing every credential, and the operator running in
 * this process. Connections use a custom HTTP IntegrationType (header auth)
 * whose service is a fixture in a child process, so the CPU measured here is
 * the controller's, not the fixture's. Scheduling lag is read from the
 * fixture's arrival times: for each connection, the gap between two
 * consecutive probes minus the 10 s interval (this includes the reconciler's
 * designed jitter of up to 10 % of the interval, i.e. up to 1 s).
 */
import { fork, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { installAtoll, loopbackOperatorConfig, OPERATOR_NAMESPACE, precreateWebhookConfigurations } from '../dev/embedded.js';
import type { KubeClient, KubeObject } from '../kube/client.js';
import { ExternalConnections, IntegrationTypes, Namespaces, Workspaces } from '../kube/resources.js';
import { startOperator, type RunningOperator } from '../operator.js';
import { createLogger } from '../runtime/logger.js';
import { packageRoot } from '../dev/binaries.js';
import { ControlPlane } from '../dev/control-plane.js';
import { fmt, numericFlag, percentile } from './stats.js';

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
  const server = http.createServer((req, res) => {
    const at = Date.now();
    const id = /^\/probe\/([a-z0-9-]+)$/.exec(req.url ?? '')?.[1];
    if (id !== undefined) {
      const list = arrivals.get(id) ?? [];
      list.push(at);
      arrivals.set(id, list);
    }
    req.resume();
    res.statusCode = req.headers[HEADER] === BENCH_KEY ? 200 : 401;
    res.end('{}');
  });
  server.keepAliveTimeout = 30_000;
  process.on('message', (msg: { kind: string }) => {
    if (msg.kind === 'report') process.send?.({ kind: 'arrivals', arrivals: Object.fromEntries(arrivals) } satisfies FixtureMessage);
    if (msg.kind === 'stop') server.close(() => process.exit(0));
  });
  process.on('disconnect', () => process.exit(0));
  server.listen(0, '127.0.0.1', () => process.send?.({ kind: 'listening', port: (server.address() as AddressInfo).port } satisfies FixtureMessage));
}

interface Fixture {
  url: string;
  arrivals(): Promise<Arrivals>;
  stop(): Promise<void>;
}

async function startFixture(): Promise<Fixture> {
  const child: ChildProcess = fork(fileURLToPath(import.meta.url), [FIXTURE_FLAG], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const port = await new Promise<number>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`fixture exited (${code})`)));
    child.once('message', (m: FixtureMessage) => (m.kind === 'listening' ? resolve(m.port) : reject(new Error('unexpected fixture message'))));
  });
  child.removeAllListeners('exit');
  return {
    url: `http://127.0.0.1:${port}`,
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
  await client.create(Workspaces, { metadata: { name, namespace: name }, spec: { policy: { egress: { allowCIDRs: ['127.0.0.0/8'] } } } } as never);
  await until(`workspace ${name} Ready`, 60_000, async () => {
    const ws = await client.get<KubeObject & { status?: { conditions?: Array<{ type: string; status: string }> } }>(Workspaces, name, name);
    return ws.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
  });
}

/** Runs `task` for every item with at most `limit` in flight. */
async function pool<T>(items: T[], limit: number, task: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) await task(items[next++]!);
  }));
}

function connectionNames(prefix: string, n: number): string[] {
  return Array.from({ length: n }, (_, i) => `${prefix}-${String(i).padStart(5, '0')}`);
}

/**
 * Creates the connections paced evenly over one interval, so their probe
 * phases are spread the way a long-running cluster's are; created all at
 * once they would probe in lockstep and a window count would be biased.
 */
async function createConnections(client: KubeClient, ns: string, names: string[], fixtureUrl: string): Promise<void> {
  const started = Date.now();
  const spacingMs = INTERVAL_MS / names.length;
  let index = 0;
  await pool(names, CREATE_CONCURRENCY, async (name) => {
    const wait = started + index++ * spacingMs - Date.now();
    if (wait > 0) await sleep(wait);
    await client.create(ExternalConnections, {
      metadata: { name, namespace: ns },
      spec: {
        type: TYPE_NAME,
        settings: { url: fixtureUrl, id: name },
        credentials: { apiKey: { value: BENCH_KEY } },
        probe: { interval: `${INTERVAL_MS / 1000}s`, timeout: '5s' },
      },
    } as never);
  });
}

async function deleteConnections(client: KubeClient, ns: string, names: string[]): Promise<void> {
  await pool(names, CREATE_CONCURRENCY, (name) => client.delete(ExternalConnections, name, ns));
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
  connections: number;
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
  /** Controller process CPU (user + system) over the window, in % of one core. */
  cpuPercent: number;
  rssMiB: number;
  peakRssMiB: number;
}


/**
 * One phase: create `names`, wait until each has been probed once and one
 * more interval has passed (steady state), then measure for `windowMs`.
 */
async function measurePhase(client: KubeClient, fixture: Fixture, ns: string, names: string[], windowMs: number): Promise<PhaseResult> {
  const say = (line: string) => process.stderr.write(`[${names.length}] ${line}\n`);
  const created = performance.now();
  await createConnections(client, ns, names, fixture.url);
  say(`created ${names.length} connections (paced over one interval) in ${((performance.now() - created) / 1000).toFixed(1)} s`);
  await until('every connection probed once', 120_000, async () => {
    const arrivals = await fixture.arrivals();
    return names.every((n) => (arrivals[n]?.length ?? 0) > 0);
  });
  say(`all probed once after ${((performance.now() - created) / 1000).toFixed(1)} s; settling for one interval`);
  await sleep(INTERVAL_MS + 2_000);

  say(`measuring for ${windowMs / 1000} s`);
  const cpuBefore = process.cpuUsage();
  const start = Date.now();
  let peakRss = process.memoryUsage().rss;
  const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 500);
  await sleep(windowMs);
  const end = Date.now();
  clearInterval(sampler);
  const cpu = process.cpuUsage(cpuBefore);
  const rss = process.memoryUsage().rss;
  peakRss = Math.max(peakRss, rss);
  const arrivals = await fixture.arrivals();

  let inWindow = 0;
  let missed = 0;
  const lags: number[] = [];
  for (const name of names) {
    const times = arrivals[name] ?? [];
    const here = times.filter((t) => t >= start && t < end);
    inWindow += here.length;
    if (here.length === 0) missed++;
    for (let i = 1; i < times.length; i++) {
      if (times[i]! >= start && times[i]! < end) lags.push(times[i]! - times[i - 1]! - INTERVAL_MS);
    }
  }
  const seconds = (end - start) / 1000;
  const meanGapMs = INTERVAL_MS + lags.reduce((a, b) => a + b, 0) / Math.max(1, lags.length);
  return {
    connections: names.length,
    probesPerSecond: inWindow / seconds,
    gapRatePerSecond: names.length / (meanGapMs / 1000),
    expectedPerSecond: names.length / (INTERVAL_MS / 1000),
    lagP50Ms: percentile(lags, 50),
    lagP99Ms: percentile(lags, 99),
    lagMaxMs: lags.length ? Math.max(...lags) : NaN,
    missed,
    cpuPercent: ((cpu.user + cpu.system) / 1000 / (end - start)) * 100,
    rssMiB: rss / 2 ** 20,
    peakRssMiB: peakRss / 2 ** 20,
  };
}



function table(results: PhaseResult[]): string {
  const out = [
    '| connections | probes/s | N / mean gap | expected/s | lag p50 ms | lag p99 ms | lag max ms | missed | controller CPU % | RSS MiB | peak RSS MiB |',
    '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const r of results) {
    out.push(`| ${r.connections} | ${fmt(r.probesPerSecond)} | ${fmt(r.gapRatePerSecond)} | ${fmt(r.expectedPerSecond)} | ${fmt(r.lagP50Ms, 0)} | ${fmt(r.lagP99Ms, 0)} | ${fmt(r.lagMaxMs, 0)} | ${r.missed} | ${fmt(r.cpuPercent)} | ${fmt(r.rssMiB)} | ${fmt(r.peakRssMiB)} |`);
  }
  return out.join('\n');
}

async function main(): Promise<void> {
  const connections = Math.round(numericFlag('connections', 1000));
  const baseline = Math.round(numericFlag('baseline', 100));
  const windowMs = numericFlag('window', 30) * 1000;
  const log = createLogger({ level: 'silent' });
  const root = packageRoot();

  process.stderr.write('starting control plane…\n');
  const cp = await ControlPlane.start({ controllerManager: false });
  const fixture = await startFixture();
  let operator: RunningOperator | undefined;
  try {
    const client = cp.adminClient();
    await installAtoll(client, root);
    await client.create(IntegrationTypes, integrationType as never);

    await precreateWebhookConfigurations(client);
    // The quota controller computes each workspace's connection quota (as in any cluster).
    await cp.startControllerManager(['resourcequota']);
    // One namespace receives every connection: lift the per-namespace sealing budget (ADR 0012) and
    // let it use the whole probe pool (ADR 0017), so the figures measure the pool, not one share.
    const defaults = loopbackOperatorConfig({}, process.env);
    const config = loopbackOperatorConfig({ ATOLL_LOG_LEVEL: 'silent', ATOLL_SEALING_RATE_PER_MINUTE: '1000000', ATOLL_SEALING_BURST: '100000', ATOLL_PROBE_CONCURRENCY_PER_WORKSPACE: String(defaults.probes.concurrency) }, process.env);
    operator = await startOperator({ client: await cp.serviceAccountClient(OPERATOR_NAMESPACE, config.serviceAccounts.controller), config, log });

    const results: PhaseResult[] = [];
    for (const [i, n] of [baseline, connections].entries()) {
      const ns = `bench-${i}-${n}`;
      await createWorkspace(client, ns);
      const names = connectionNames(`c${i}`, n);
      results.push(await measurePhase(client, fixture, ns, names, windowMs));
      // The next phase measures its own connections only.
      if (i === 0) await deleteConnections(client, ns, names);
    }

    const [base, full] = results as [PhaseResult, PhaseResult];
    const lines = [
      `probe scheduling benchmark: interval ${INTERVAL_MS / 1000} s, probe concurrency ${config.probes.concurrency}, window ${windowMs / 1000} s, loopback, Node ${process.version}`,
      '',
      table(results),
      '',
      `ratio ${full.connections} / ${base.connections} connections (x${fmt(full.connections / base.connections, 0)}):`,
      `  probes/s x${fmt(full.probesPerSecond / base.probesPerSecond, 2)}   lag p99 x${fmt(full.lagP99Ms / base.lagP99Ms, 2)}   CPU x${fmt(full.cpuPercent / base.cpuPercent, 2)}   RSS x${fmt(full.rssMiB / base.rssMiB, 2)}`,
      `  sustained / expected probes/s: ${fmt(base.probesPerSecond / base.expectedPerSecond, 2)} at ${base.connections}, ${fmt(full.probesPerSecond / full.expectedPerSecond, 2)} at ${full.connections}`,
      '  lag = gap between consecutive probes of a connection minus the interval (includes up to 1 s of designed jitter)',
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    await operator?.stop();
    await fixture.stop();
    await cp.stop();
  }
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
