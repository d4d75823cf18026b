/**
 * Credential sealing benchmark (a script, not a test): how fast connections
 * created with plaintext `value`s become `CredentialsSealed=True`, how many
 * KMS calls each one costs, and how much memory the controller process uses,
 * at a baseline (100 connections in 10 workspaces) and at N (default 1,000 in
 * 100 workspaces) in the same run.
 *
 *   npm run build && node dist/bench/credentials.js [--connections 1000] [--workspaces 100]
 *       [--baseline-connections 100] [--baseline-workspaces 10] [--concurrency 16]
 *
 * Everything is real and on loopback: a fresh control plane (etcd +
 * kube-apiserver), the CRDs, RBAC and built-in types, the mutating webhook
 * sealing every value with the local KMS provider, and the operator running in
 * this process (so the RSS measured is the controller's plus this script's
 * small client side; the baseline before anything starts is reported too).
 * Every connection is an `http-api` whose probe reaches a loopback fixture
 * that the workspaces' egress policy allows, with `probe.interval: 0`, so the
 * probe on create is fast and no periodic probes add load.
 *
 * Latency is measured from just before the create request is sent to the
 * first watch event that shows `CredentialsSealed=True` for the current
 * generation. KMS calls come from the operator's own `atoll_kms_requests`
 * counter on /metrics, read before and after each phase.
 *
 * Every wait is bounded: if the operator stalls (docs/benchmarks.md records
 * one such limit, around 60 workspaces), the run fails with what it was
 * waiting for instead of hanging.
 */
import { readdirSync, readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { ExternalConnection } from '../api/v1alpha1/index.js';
import { installAtoll, loopbackOperatorConfig, OPERATOR_NAMESPACE, precreateWebhookConfigurations } from '../dev/embedded.js';
import type { KubeClient, KubeObject } from '../kube/client.js';
import { ExternalConnections, Namespaces, Workspaces } from '../kube/resources.js';
import { startOperator, type RunningOperator } from '../operator.js';
import { createLogger } from '../runtime/logger.js';
import { packageRoot } from '../dev/binaries.js';
import { ControlPlane } from '../dev/control-plane.js';
import { fmt, MiB, numericFlag, percentile } from './stats.js';

type Conn = ExternalConnection & KubeObject;
type Conditioned = KubeObject & { status?: { conditions?: Array<{ type: string; status: string }>; observedGeneration?: number } };

const PHASE_LABEL = 'bench.atoll.dev/phase';
const RSS_SAMPLE_MS = 100;

// ---------------------------------------------------------------- small helpers

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Rejects after `ms`: a request stuck behind a starved connection pool must end the run, not hang it. */
function within<T>(what: string, ms: number, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms / 1000} s waiting for ${what}`)), ms);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

async function until(what: string, timeoutMs: number, check: () => Promise<boolean>): Promise<void> {
  await within(what, timeoutMs, (async () => {
    while (!(await check())) await sleep(200);
  })());
}

/** Runs `task` for every item with at most `limit` in flight. */
async function pool<T>(items: T[], limit: number, task: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) await task(items[next++]!);
  }));
}


function isTrue(obj: Conditioned, type: string): boolean {
  return obj.status?.conditions?.some((c) => c.type === type && c.status === 'True') ?? false;
}



/** Peak resident memory (VmHWM) of this process's children: etcd and kube-apiserver. */
function childPeakRss(): Array<{ name: string; peakMiB: number }> {
  const out: Array<{ name: string; peakMiB: number }> = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const status = readFileSync(path.join('/proc', entry, 'status'), 'utf8');
      if (Number(/^PPid:\s+(\d+)/m.exec(status)?.[1]) !== process.pid) continue;
      const name = /^Name:\s+(\S+)/m.exec(status)?.[1] ?? entry;
      const kib = Number(/^VmHWM:\s+(\d+)/m.exec(status)?.[1] ?? 0);
      out.push({ name, peakMiB: kib / 1024 });
    } catch {
      // The process went away while we looked.
    }
  }
  return out;
}

/** Samples this process's RSS; `peak()` is the highest sample since `reset()`. */
class RssSampler {
  #peak = 0;
  readonly #timer: NodeJS.Timeout;
  constructor() {
    this.#timer = setInterval(() => this.sample(), RSS_SAMPLE_MS);
    this.#timer.unref();
  }
  sample(): number {
    const rss = process.memoryUsage().rss;
    this.#peak = Math.max(this.#peak, rss);
    return rss;
  }
  reset(): void {
    this.#peak = 0;
    this.sample();
  }
  peak(): number {
    return this.#peak;
  }
  stop(): void {
    clearInterval(this.#timer);
  }
}

/** Sum of `atoll_kms_requests` per operation, scraped from the operator's /metrics. */
async function kmsRequests(healthURL: string): Promise<Record<string, number>> {
  const text = await (await fetch(`${healthURL}/metrics`)).text();
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^atoll_kms_requests\{operation="([^"]+)"\}\s+(\S+)$/gm)) out[m[1]!] = (out[m[1]!] ?? 0) + Number(m[2]);
  return out;
}

function diff(after: Record<string, number>, before: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(after).map(([k, v]) => [k, v - (before[k] ?? 0)]));
}

const total = (r: Record<string, number>) => Object.values(r).reduce((a, b) => a + b, 0);

// ---------------------------------------------------------------- the probed service

/** The loopback service every connection's probe reaches: 200 to any bearer token. */
async function startFixture(): Promise<{ url: string; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    req.resume();
    res.statusCode = req.headers.authorization?.startsWith('Bearer ') ? 200 : 401;
    res.end('{}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}

// ---------------------------------------------------------------- watching for CredentialsSealed

/**
 * Records, per connection name, when a watch first saw it sealed for its
 * current generation. Re-establishes the watch from the last resourceVersion
 * if the server ends it.
 */
class SealedWatch {
  readonly sealedAt = new Map<string, number>();
  readonly readyAt = new Map<string, number>();
  readonly #abort = new AbortController();
  #done: Promise<void> | undefined;

  constructor(private readonly client: KubeClient, private readonly phase: string) {}

  async start(): Promise<void> {
    const selector = `${PHASE_LABEL}=${this.phase}`;
    const list = await this.client.list<Conn>(ExternalConnections, { labelSelector: selector });
    let rv = list.metadata.resourceVersion;
    this.#done = (async () => {
      while (!this.#abort.signal.aborted) {
        try {
          await this.client.watch<Conn>(ExternalConnections, { labelSelector: selector, resourceVersion: rv, signal: this.#abort.signal }, (ev) => {
            rv = ev.object.metadata?.resourceVersion ?? rv;
            if (ev.type !== 'ADDED' && ev.type !== 'MODIFIED') return;
            const now = performance.now();
            const key = `${ev.object.metadata?.namespace}/${ev.object.metadata?.name}`;
            const current = ev.object.status?.observedGeneration === ev.object.metadata?.generation;
            if (current && isTrue(ev.object, 'CredentialsSealed') && !this.sealedAt.has(key)) this.sealedAt.set(key, now);
            if (current && isTrue(ev.object, 'Ready') && !this.readyAt.has(key)) this.readyAt.set(key, now);
          });
        } catch {
          if (!this.#abort.signal.aborted) await sleep(200);
        }
      }
    })();
  }

  async stop(): Promise<void> {
    this.#abort.abort();
    await this.#done;
  }
}

// ---------------------------------------------------------------- one phase

interface PhaseResult {
  workspaces: number;
  connections: number;
  workspacesReadySeconds: number;
  /** Connections sealed per second, first create sent to last one sealed. */
  sealedPerSecond: number;
  /** Create requests (both webhooks, sealing included) completed per second. */
  createsPerSecond: number;
  createP50Ms: number;
  createP99Ms: number;
  sealedP50Ms: number;
  sealedP99Ms: number;
  readyP99Ms: number;
  kmsPerConnection: number;
  kmsByOperation: Record<string, number>;
  kmsForWorkspaces: number;
  peakRssMiB: number;
  endRssMiB: number;
}

interface Cluster {
  /** The bench's own client (its own connection pool), as a separate kubectl or Argo CD would be. */
  client: KubeClient;
  operator: RunningOperator;
  fixtureUrl: string;
  rss: RssSampler;
  concurrency: number;
}

function workspaceName(phase: string, i: number): string {
  return `bench-${phase}-ws-${String(i).padStart(3, '0')}`;
}

/** A predicate for the namespaces of a phase's workspaces. */
function inPhase(phase: string): (ns: string | undefined) => boolean {
  const prefix = `bench-${phase}-ws-`;
  return (ns) => ns?.startsWith(prefix) ?? false;
}

async function createWorkspaces(cluster: Cluster, names: string[]): Promise<void> {
  const { client } = cluster;
  await within('workspace creates', 180_000, pool(names, cluster.concurrency, async (name) => {
    await client.create(Namespaces, { metadata: { name } });
    await client.create(Workspaces, { metadata: { name, namespace: name }, spec: { policy: { egress: { allowCIDRs: ['127.0.0.0/8'] } } } } as never);
  }));
  await until('every workspace Ready', 180_000, async () => {
    const wanted = new Set(names);
    const ready = (await client.list<Conditioned>(Workspaces)).items.filter((w) => wanted.has(w.metadata?.namespace ?? '') && isTrue(w, 'Ready'));
    return ready.length === names.length;
  });
}

async function runPhase(cluster: Cluster, phase: string, workspaceCount: number, connectionCount: number): Promise<PhaseResult> {
  const { client, operator } = cluster;
  const say = (line: string) => process.stderr.write(`[${phase}] ${line}\n`);
  cluster.rss.reset();

  const kmsAtStart = await kmsRequests(operator.healthURL);
  const wsNames = Array.from({ length: workspaceCount }, (_, i) => workspaceName(phase, i));
  const wsStart = performance.now();
  await createWorkspaces(cluster, wsNames);
  const workspacesReadySeconds = (performance.now() - wsStart) / 1000;
  say(`${workspaceCount} workspaces Ready in ${workspacesReadySeconds.toFixed(1)} s`);

  const kmsBefore = await kmsRequests(operator.healthURL);
  const watch = new SealedWatch(client, phase);
  await watch.start();
  const items = Array.from({ length: connectionCount }, (_, i) => ({ ns: wsNames[i % workspaceCount]!, name: `conn-${String(i).padStart(5, '0')}` }));
  const sentAt = new Map<string, number>();
  const createMs: number[] = [];
  const start = performance.now();
  await within('connection creates', 180_000, pool(items, cluster.concurrency, async ({ ns, name }) => {
    const t0 = performance.now();
    sentAt.set(`${ns}/${name}`, t0);
    await client.create(ExternalConnections, {
      metadata: { name, namespace: ns, labels: { [PHASE_LABEL]: phase } },
      spec: {
        type: 'http-api',
        settings: { baseURL: cluster.fixtureUrl, auth: 'bearer' },
        // A distinct random credential per connection, as in real life; never printed.
        credentials: { token: { value: `bench-${randomBytes(16).toString('hex')}` } },
        probe: { interval: '0', timeout: '5s' },
      },
    } as never);
    createMs.push(performance.now() - t0);
  }));
  const createdSeconds = (performance.now() - start) / 1000;
  say(`${connectionCount} creates returned in ${createdSeconds.toFixed(1)} s`);
  await until('every connection sealed', 180_000, async () => watch.sealedAt.size >= connectionCount);
  const sealedEnd = Math.max(...watch.sealedAt.values());
  await until('every connection Ready', 60_000, async () => watch.readyAt.size >= connectionCount).catch(() => say('not every connection became Ready (probe); continuing'));
  await watch.stop();
  const kmsAfter = await kmsRequests(operator.healthURL);
  say(`all sealed after ${((sealedEnd - start) / 1000).toFixed(1)} s`);

  const sealedLatency = [...watch.sealedAt].map(([k, t]) => t - sentAt.get(k)!);
  const readyLatency = [...watch.readyAt].map(([k, t]) => t - sentAt.get(k)!);
  const byOperation = diff(kmsAfter, kmsBefore);
  return {
    workspaces: workspaceCount,
    connections: connectionCount,
    workspacesReadySeconds,
    sealedPerSecond: connectionCount / ((sealedEnd - start) / 1000),
    createsPerSecond: connectionCount / createdSeconds,
    createP50Ms: percentile(createMs, 50),
    createP99Ms: percentile(createMs, 99),
    sealedP50Ms: percentile(sealedLatency, 50),
    sealedP99Ms: percentile(sealedLatency, 99),
    readyP99Ms: percentile(readyLatency, 99),
    kmsPerConnection: total(byOperation) / connectionCount,
    kmsByOperation: byOperation,
    kmsForWorkspaces: total(diff(kmsBefore, kmsAtStart)),
    peakRssMiB: cluster.rss.peak() / MiB,
    endRssMiB: cluster.rss.sample() / MiB,
  };
}

/**
 * Removes a phase's connections and Workspaces so the next phase measures
 * only its own (the operator then stops watching those namespaces' Secrets).
 */
async function deletePhase(cluster: Cluster, phase: string): Promise<void> {
  const { client } = cluster;
  const list = await client.list<Conn>(ExternalConnections, { labelSelector: `${PHASE_LABEL}=${phase}` });
  await pool(list.items, cluster.concurrency, (c) => client.delete(ExternalConnections, c.metadata.name!, c.metadata.namespace));
  await until(`phase ${phase} connections deleted`, 120_000, async () => (await client.list(ExternalConnections, { labelSelector: `${PHASE_LABEL}=${phase}` })).items.length === 0);
  const names = inPhase(phase);
  const mine = (await client.list<KubeObject>(Workspaces)).items.filter((w) => names(w.metadata?.namespace));
  await pool(mine, cluster.concurrency, (w) => client.delete(Workspaces, w.metadata!.name!, w.metadata!.namespace));
  await until(`phase ${phase} workspaces deleted`, 120_000, async () => (await client.list<KubeObject>(Workspaces)).items.filter((w) => names(w.metadata?.namespace)).length === 0);
}

// ---------------------------------------------------------------- report


function table(results: PhaseResult[]): string {
  const out = [
    '| workspaces | connections | workspaces Ready s | sealed/s | creates/s | create p50/p99 ms | create→sealed p50 ms | create→sealed p99 ms | create→Ready p99 ms | KMS calls/conn | KMS calls (by op) | peak RSS MiB | end RSS MiB |',
    '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: |',
  ];
  for (const r of results) {
    const ops = Object.entries(r.kmsByOperation).map(([k, v]) => `${k} ${v}`).join(', ') || 'none';
    out.push(`| ${r.workspaces} | ${r.connections} | ${fmt(r.workspacesReadySeconds)} | ${fmt(r.sealedPerSecond)} | ${fmt(r.createsPerSecond)} | ${fmt(r.createP50Ms, 0)}/${fmt(r.createP99Ms, 0)} | ${fmt(r.sealedP50Ms, 0)} | ${fmt(r.sealedP99Ms, 0)} | ${fmt(r.readyP99Ms, 0)} | ${fmt(r.kmsPerConnection, 2)} | ${ops} | ${fmt(r.peakRssMiB)} | ${fmt(r.endRssMiB)} |`);
  }
  return out.join('\n');
}

async function main(): Promise<void> {
  const connections = Math.round(numericFlag('connections', 1000));
  const workspaces = Math.round(numericFlag('workspaces', 100));
  const baseConnections = Math.round(numericFlag('baseline-connections', 100));
  const baseWorkspaces = Math.round(numericFlag('baseline-workspaces', 10));
  const concurrency = Math.round(numericFlag('concurrency', 16));
  const rss = new RssSampler();
  const baselineRssMiB = rss.sample() / MiB;
  const runStart = performance.now();
  const root = packageRoot();
  const log = createLogger({ level: 'silent' });

  process.stderr.write('starting control plane…\n');
  const cp = await ControlPlane.start({ controllerManager: false });
  const fixture = await startFixture();
  let operator: RunningOperator | undefined;
  try {
    const client = cp.adminClient();
    await installAtoll(client, root);
    await precreateWebhookConfigurations(client);
    // The quota controller computes each workspace's connection quota (as in any cluster).
    await cp.startControllerManager(['resourcequota']);
    // Sealing throughput is what is measured: lift the per-namespace sealing budget (ADR 0012).
    const config = loopbackOperatorConfig({ ATOLL_SEALING_RATE_PER_MINUTE: '1000000', ATOLL_SEALING_BURST: '100000' });
    const operatorClient = await cp.serviceAccountClient(OPERATOR_NAMESPACE, config.serviceAccounts.controller);
    operator = await startOperator({ client: operatorClient, config, log });
    const startedRssMiB = rss.sample() / MiB;
    const cluster: Cluster = { client, operator, fixtureUrl: fixture.url, rss, concurrency };

    const base = await runPhase(cluster, 'base', baseWorkspaces, baseConnections);
    await deletePhase(cluster, 'base');
    const full = await runPhase(cluster, 'full', workspaces, connections);
    const children = childPeakRss();

    const x = (a: number, b: number) => `x${fmt(a / b, 2)}`;
    const lines = [
      `credential sealing benchmark: local KMS provider, client concurrency ${concurrency}, ${config.kms.defaultKeyId}, loopback, Node ${process.version}, total ${fmt((performance.now() - runStart) / 1000, 0)} s`,
      `RSS of this process (bench client + controller + webhook): ${fmt(baselineRssMiB)} MiB before anything started, ${fmt(startedRssMiB)} MiB with the operator started and idle`,
      `control-plane processes, peak RSS: ${children.map((c) => `${c.name} ${fmt(c.peakMiB)} MiB`).join(', ') || 'n/a'}`,
      '',
      table([base, full]),
      '',
      `ratio ${full.connections} / ${base.connections} connections (x${fmt(full.connections / base.connections, 0)}):`,
      `  sealed/s ${x(full.sealedPerSecond, base.sealedPerSecond)}   create→sealed p50 ${x(full.sealedP50Ms, base.sealedP50Ms)}  p99 ${x(full.sealedP99Ms, base.sealedP99Ms)}   KMS calls/conn ${x(full.kmsPerConnection, base.kmsPerConnection)}   peak RSS ${x(full.peakRssMiB, base.peakRssMiB)} (above idle: ${x(full.peakRssMiB - startedRssMiB, base.peakRssMiB - startedRssMiB)})`,
      `  KMS calls for workspace key checks (not per connection): ${base.kmsForWorkspaces} for ${base.workspaces} workspaces, ${full.kmsForWorkspaces} for ${full.workspaces}`,
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    rss.stop();
    // Bounded: after a stall the operator's own requests may never complete.
    await within('the operator to stop', 15_000, operator?.stop() ?? Promise.resolve()).catch((err: Error) => process.stderr.write(`${err.message}\n`));
    await within('the fixture to close', 5_000, fixture.close()).catch(() => undefined);
    await cp.stop();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`credential benchmark failed: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
