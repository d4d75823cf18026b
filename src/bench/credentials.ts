/**
 * Credential sealing benchmark (a script, not a test), issue 12: how close the
 * operator comes to the API server's own write floor, its memory in a process
 * of its own, its KMS calls in steady state, and rotation end to end.
 *
 *   npm run build && node dist/bench/credentials.js [--connections 1000] [--workspaces 100]
 *       [--concurrency 16] [--reconcile-period 60] [--rotations 50] [--json]
 *
 * Everything is real and on loopback: a fresh control plane (etcd +
 * kube-apiserver), the CRDs, RBAC and built-in types, and the operator
 * (controller + webhook, local KMS provider) forked into a process of its own
 * (src/bench/controller-process.ts) so its RSS is measured apart from this
 * script. In order:
 *
 * 1. Write floor: before the operator starts, this script's client (same
 *    connection pool, same concurrency) performs the writes the design needs
 *    per connection - the connection create, one Secret create, one status
 *    write - for N connections: `floor_s`. The API server's RSS with those
 *    objects and no operator is recorded, then they are deleted.
 * 2. Ready: N `http-api` connections in W workspaces, each with a distinct
 *    random `token` `value` (sealed by the webhook) and a probe against a
 *    loopback fixture every `--reconcile-period` seconds; `ready_s` runs from
 *    the first create sent to the last connection seen `Ready`, `ratio` =
 *    ready_s / floor_s.
 * 3. Steady state: KMS calls (the operator's `atoll_kms_requests`) over two
 *    reconcile periods plus a margin, with every connection reconciled at
 *    least twice by its periodic probe; the data-key cache's idle expiry is
 *    scaled with the period as the defaults set it (three probe intervals,
 *    ATOLL_DEK_CACHE_IDLE), so the window shows what a day of reconciles costs
 *    (ADR 0029: one Decrypt per key per 24 h lifetime).
 *    The API server's watches and RSS with the operator are recorded here.
 * 4. Rotation: the gateway (forked too, src/bench/gateway-process.ts, with
 *    --gateway-node-options as the chart's gateway.nodeOptions; its RSS
 *    is taken once it caches every connection and, one watch per workspace,
 *    every managed Secret) and an agent serve one more
 *    connection of a bench IntegrationType; each rotation is a merge patch of
 *    its `value`, timed from the API's response to the first proxied request
 *    that carries the new value upstream, and to the agent's file holding it,
 *    while the N connections exist. The client asks every --rotation-poll-ms
 *    (5): a busy loop would take a core of the two from what it measures.
 *    The controller's event-loop delay, GC time and urgent-key wait, and each
 *    process's CPU, are reported for the steady window and the rotations.
 *
 * Every wait is bounded: if the operator stalls, the run fails with what it
 * was waiting for instead of hanging. With `--json` the last line of stdout is
 * one JSON object with the inputs and figures (names as in issue 12).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, stringify } from 'yaml';
import {
  CONNECTION_LABEL,
  CREDENTIALS_STATE_ANNOTATION,
  MANAGED_BY_LABEL,
  MANAGED_BY_VALUE,
  managedSecretName,
  SEALED_SECRET_TYPE,
  type ExternalConnection,
} from '../api/v1alpha1/index.js';
import { runAgent } from '../gateway/agent.js';
import type { KubeClient, KubeObject } from '../kube/client.js';
import {
  ExternalConnections,
  IntegrationTypes,
  Namespaces,
  RoleBindings,
  Secrets,
  ServiceAccounts,
  Workspaces,
} from '../kube/resources.js';
import { createLogger } from '../runtime/logger.js';
import { packageRoot } from '../dev/binaries.js';
import { ControlPlane } from '../dev/control-plane.js';
import {
  installAtoll,
  loopbackOperatorConfig,
  OPERATOR_NAMESPACE,
  precreateWebhookConfigurations,
} from '../dev/embedded.js';
import { measurePhase, type PhaseCost, type Pids } from './phase-cost.js';
import { openLoopWindow, type LoopWindow } from './loop-window.js';
import { fmt, helpAndExit, numericFlag, percentile } from './stats.js';

type Conn = ExternalConnection & KubeObject;
type Conditioned = KubeObject & {
  status?: { conditions?: Array<{ type: string; status: string }>; observedGeneration?: number };
};

const PHASE_LABEL = 'bench.atoll.dev/phase';
const say = (line: string) => process.stderr.write(`${line}\n`);

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

async function until(what: string, timeoutMs: number, check: () => Promise<boolean>, everyMs = 200): Promise<void> {
  await within(
    what,
    timeoutMs,
    (async () => {
      while (!(await check())) await sleep(everyMs);
    })(),
  );
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

function isTrue(obj: Conditioned, type: string): boolean {
  return obj.status?.conditions?.some((c) => c.type === type && c.status === 'True') ?? false;
}

/** Current and peak resident memory of a process, from /proc (MiB). */
function memoryOf(pid: number): { rssMiB: number; peakMiB: number } {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? 0);
    return { rssMiB: kib('VmRSS') / 1024, peakMiB: kib('VmHWM') / 1024 };
  } catch {
    return { rssMiB: NaN, peakMiB: NaN };
  }
}

/** The pid of this process's child named `name` (etcd, kube-apiserver). */
function childPid(name: string): number | undefined {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const status = readFileSync(path.join('/proc', entry, 'status'), 'utf8');
      if (Number(/^PPid:\s+(\d+)/m.exec(status)?.[1]) === process.pid && /^Name:\s+(\S+)/m.exec(status)?.[1] === name)
        return Number(entry);
    } catch {
      // The process went away while we looked.
    }
  }
  return undefined;
}

/** Sum of `atoll_kms_requests` per operation, scraped from the operator's /metrics. */
async function kmsRequests(healthURL: string): Promise<Record<string, number>> {
  const text = await (await fetch(`${healthURL}/metrics`)).text();
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^atoll_kms_requests(?:_total)?\{operation="([^"]+)"\}\s+(\S+)$/gm))
    out[m[1]!] = (out[m[1]!] ?? 0) + Number(m[2]);
  return out;
}

function diff(after: Record<string, number>, before: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(after).map(([k, v]) => [k, v - (before[k] ?? 0)]));
}

const total = (r: Record<string, number>) => Object.values(r).reduce((a, b) => a + b, 0);

/** Watches the API server holds open, by resource (its `apiserver_longrunning_requests` gauge). */
async function apiserverWatches(admin: KubeClient): Promise<Record<string, number>> {
  const text = await admin.requestText('GET', '/metrics');
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^apiserver_longrunning_requests\{([^}]*)\}\s+(\S+)$/gm)) {
    if (!/verb="WATCH"/.test(m[1]!)) continue;
    const resource = /resource="([^"]*)"/.exec(m[1]!)?.[1] ?? '?';
    out[resource] = (out[resource] ?? 0) + Number(m[2]);
  }
  return out;
}

// ---------------------------------------------------------------- the probed and proxied service

interface Fixture {
  url: string;
  /** Requests answered (probes and proxied requests). */
  requests(): number;
  /** The X-API-Key of the last request that had one (what the gateway injected). */
  lastKey(): string | undefined;
  close(): Promise<void>;
}

/** The loopback service every probe and proxied request reaches: 200 to anything, recording the injected API key. */
async function startFixture(): Promise<Fixture> {
  let requests = 0;
  let lastKey: string | undefined;
  const server = http.createServer((req, res) => {
    requests++;
    req.resume();
    const key = req.headers['x-api-key'];
    if (typeof key === 'string') lastKey = key;
    res.statusCode = 200;
    res.end('{}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests: () => requests,
    lastKey: () => lastKey,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

// ---------------------------------------------------------------- the controller in its own process

/** The gateway's RSS (MiB) once it caches every connection and managed Secret, after the rotations, and its VmHWM. */
interface GatewayMemory {
  cachedMiB: number;
  endMiB: number;
  peakMiB: number;
}

interface RotationResult {
  proxyMs: number[];
  fileMs: number[];
  controllerMs: number[];
  gatewayMemory?: GatewayMemory;
  /** The controller's event loop and every process's CPU during the rotations. */
  controllerLoop?: LoopWindow;
  cost?: PhaseCost;
  error?: string;
}

interface BenchProcess {
  pid: number;
  /** What the process reported once started (`healthURL` of the controller, `url` of the gateway). */
  started: Record<string, string>;
  memory(): { rssMiB: number; peakMiB: number };
  stop(): Promise<void>;
}

/**
 * Forks src/bench/<kind>-process.ts (the controller, or the gateway) with its
 * ServiceAccount's token in a kubeconfig file of the run's temporary
 * directory: its memory and CPU are its own, as in a cluster.
 */
async function startBenchProcess(
  kind: 'controller' | 'gateway',
  cp: ControlPlane,
  admin: KubeClient,
  serviceAccount: string,
  dir: string,
  env: Record<string, string>,
  nodeOptions: string[],
): Promise<BenchProcess> {
  const review = await admin.request<{ status: { token: string } }>(
    'POST',
    `/api/v1/namespaces/${OPERATOR_NAMESPACE}/serviceaccounts/${serviceAccount}/token`,
    {
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenRequest',
      spec: { expirationSeconds: 24 * 3600 },
    },
  );
  const kubeconfig = parse(readFileSync(cp.adminKubeconfigPath, 'utf8')) as {
    users: Array<{ name: string; user: Record<string, string> }>;
    contexts: Array<{ context: { user: string } }>;
  };
  kubeconfig.users = [{ name: serviceAccount, user: { token: review.status.token } }];
  for (const c of kubeconfig.contexts) c.context.user = serviceAccount;
  const file = path.join(dir, `${kind}.kubeconfig`);
  writeFileSync(file, stringify(kubeconfig), { mode: 0o600 });

  const script = path.join(path.dirname(fileURLToPath(import.meta.url)), `${kind}-process.js`);
  const child: ChildProcess = fork(script, [], {
    execArgv: nodeOptions,
    env: { ...process.env, ...env, ATOLL_BENCH_KUBECONFIG: file },
    stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
  });
  // Its log lines go to stderr: stdout ends with the --json summary.
  child.stdout?.pipe(process.stderr);
  const started = await within(
    `the ${kind} process to start`,
    120_000,
    new Promise<Record<string, string>>((resolve, reject) => {
      child.once('message', (m) => resolve(m as Record<string, string>));
      child.once('exit', (code) => reject(new Error(`${kind} process exited with ${code}`)));
    }),
  );
  const pid = child.pid!;
  let stopping = false;
  child.on('exit', (code, signal) => {
    if (!stopping)
      say(
        `${kind} process ${pid} exited unexpectedly (code ${code}, signal ${signal}): the figures that follow are not valid`,
      );
  });
  return {
    pid,
    started,
    memory: () => memoryOf(pid),
    async stop() {
      stopping = true;
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.send('stop');
      await within(`the ${kind} process to stop`, 20_000, exited).catch(() => child.kill('SIGKILL'));
    },
  };
}

// ---------------------------------------------------------------- watching for Ready

/**
 * Records, per connection name, when a watch first saw it sealed and Ready
 * for its current generation. Re-establishes the watch from the last
 * resourceVersion if the server ends it.
 */
class ReadyWatch {
  readonly sealedAt = new Map<string, number>();
  readonly readyAt = new Map<string, number>();
  readonly #abort = new AbortController();
  #done: Promise<void> | undefined;

  constructor(
    private readonly client: KubeClient,
    private readonly phase: string,
  ) {}

  async start(): Promise<void> {
    const selector = `${PHASE_LABEL}=${this.phase}`;
    const list = await this.client.list<Conn>(ExternalConnections, { labelSelector: selector });
    let rv = list.metadata.resourceVersion;
    this.#done = (async () => {
      while (!this.#abort.signal.aborted) {
        try {
          await this.client.watch<Conn>(
            ExternalConnections,
            { labelSelector: selector, resourceVersion: rv, signal: this.#abort.signal },
            (ev) => {
              rv = ev.object.metadata?.resourceVersion ?? rv;
              if (ev.type !== 'ADDED' && ev.type !== 'MODIFIED') return;
              const now = performance.now();
              const key = `${ev.object.metadata?.namespace}/${ev.object.metadata?.name}`;
              const current = ev.object.status?.observedGeneration === ev.object.metadata?.generation;
              if (current && isTrue(ev.object, 'CredentialsSealed') && !this.sealedAt.has(key))
                this.sealedAt.set(key, now);
              if (current && isTrue(ev.object, 'Ready') && !this.readyAt.has(key)) this.readyAt.set(key, now);
            },
          );
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

// ---------------------------------------------------------------- phases

interface Cluster {
  /** The bench's own client (its own connection pool), as a separate kubectl or Argo CD would be. */
  client: KubeClient;
  fixture: Fixture;
  concurrency: number;
  /** Probe interval of every connection: what drives a steady-state reconcile. */
  periodSeconds: number;
  /** The processes whose CPU each phase reports (those not running are NaN). */
  pids: () => Pids;
}

function workspaceName(phase: string, i: number): string {
  return `bench-${phase}-ws-${String(i).padStart(4, '0')}`;
}

function connectionItems(namespaces: string[], n: number): Array<{ ns: string; name: string }> {
  return Array.from({ length: n }, (_, i) => ({
    ns: namespaces[i % namespaces.length]!,
    name: `conn-${String(i).padStart(5, '0')}`,
  }));
}

function connectionSpec(cluster: Cluster, token: Record<string, string>): Record<string, unknown> {
  return {
    type: 'http-api',
    settings: { baseURL: cluster.fixture.url, auth: 'bearer' },
    credentials: { token },
    probe: { interval: `${cluster.periodSeconds}s`, timeout: '5s' },
  };
}

/**
 * The write floor: what the API server itself takes for the writes the
 * design needs per connection (create, managed Secret create, one status
 * write), through the same client and concurrency, with no webhook and no
 * operator. Returns seconds and the API server's RSS holding those objects.
 */
async function writeFloor(
  cluster: Cluster,
  apiserverPid: number | undefined,
  workspaceCount: number,
  connectionCount: number,
): Promise<{ floorSeconds: number; apiserverRssMiB: number; cost: PhaseCost }> {
  const { client } = cluster;
  const namespaces = Array.from({ length: workspaceCount }, (_, i) => workspaceName('floor', i));
  await within(
    'floor namespaces',
    180_000,
    pool(namespaces, cluster.concurrency, async (name) => {
      await client.create(Namespaces, { metadata: { name } });
    }),
  );
  const items = connectionItems(namespaces, connectionCount);
  const labels = { [PHASE_LABEL]: 'floor' };
  const endCost = await measurePhase(client, cluster.pids);
  const start = performance.now();
  await within(
    'floor writes',
    600_000,
    pool(items, cluster.concurrency, async ({ ns, name }) => {
      // A ciphertext-sized value: the bytes the API server stores are what costs.
      const sealed = `atoll:v1:${randomBytes(300).toString('base64')}`;
      const conn = await client.create<Conn>(ExternalConnections, {
        metadata: { name, namespace: ns, labels },
        spec: connectionSpec(cluster, { sealed }),
      } as never);
      await client.create(Secrets, {
        metadata: {
          name: managedSecretName(name),
          namespace: ns,
          labels: { ...labels, [MANAGED_BY_LABEL]: MANAGED_BY_VALUE, [CONNECTION_LABEL]: name },
          annotations: {
            [CREDENTIALS_STATE_ANNOTATION]: JSON.stringify({
              token: { version: 1, hint: '…abcd', keyId: 'local/default' },
            }),
          },
          ownerReferences: [
            {
              apiVersion: 'atoll.dev/v1alpha1',
              kind: 'ExternalConnection',
              name,
              uid: conn.metadata.uid!,
              controller: true,
            },
          ],
        },
        type: SEALED_SECRET_TYPE,
        data: { token: Buffer.from(`atoll:v1:${randomBytes(300).toString('base64')}`).toString('base64') },
      });
      const at = new Date().toISOString();
      const condition = (type: string, reason: string) => ({
        type,
        status: 'True',
        reason,
        message: 'bench write floor',
        lastTransitionTime: at,
        observedGeneration: 1,
      });
      await client.replace(
        ExternalConnections,
        {
          ...conn,
          status: {
            observedGeneration: 1,
            conditions: [
              condition('CredentialsSealed', 'Sealed'),
              condition('Reachable', 'ProbeSucceeded'),
              condition('Ready', 'Ready'),
            ],
          },
        } as never,
        { subresource: 'status' },
      );
    }),
  );
  const floorSeconds = (performance.now() - start) / 1000;
  const cost = await endCost();
  const apiserverRssMiB = apiserverPid ? memoryOf(apiserverPid).rssMiB : NaN;
  say(`[floor] ${connectionCount} × (create, Secret create, status write) in ${floorSeconds.toFixed(1)} s`);
  // Gone before the operator starts, so that it neither caches nor reconciles them.
  await pool(namespaces, cluster.concurrency, async (ns) => {
    await client.request('DELETE', `/apis/atoll.dev/v1alpha1/namespaces/${ns}/externalconnections`);
    await client.request(
      'DELETE',
      `/api/v1/namespaces/${ns}/secrets?labelSelector=${encodeURIComponent(`${PHASE_LABEL}=floor`)}`,
    );
  });
  return { floorSeconds, apiserverRssMiB, cost };
}

async function createWorkspaces(cluster: Cluster, names: string[]): Promise<void> {
  const { client } = cluster;
  await within(
    'workspace creates',
    300_000,
    pool(names, cluster.concurrency, async (name) => {
      await client.create(Namespaces, { metadata: { name } });
      await client.create(Workspaces, {
        metadata: { name, namespace: name },
        spec: { policy: { egress: { allowCIDRs: ['127.0.0.0/8'] } } },
      } as never);
    }),
  );
  // Set-up, not a measured phase: bounded generously (a workspace takes about a dozen API round trips).
  const wanted = new Set(names);
  let lastSaid = 0;
  await until(
    'every workspace Ready',
    Math.max(300_000, names.length * 600),
    async () => {
      const ready = (await client.list<Conditioned>(Workspaces)).items.filter(
        (w) => wanted.has(w.metadata?.namespace ?? '') && isTrue(w, 'Ready'),
      ).length;
      if (performance.now() - lastSaid > 30_000) {
        lastSaid = performance.now();
        say(`[setup] ${ready}/${names.length} workspaces Ready`);
      }
      return ready === names.length;
    },
    // A list of every Workspace is itself API server work: not five times a second while it sets them up.
    2000,
  );
}

interface ReadyResult {
  workspacesReadySeconds: number;
  readySeconds: number;
  sealedSeconds: number;
  createsSeconds: number;
  createP50Ms: number;
  createP99Ms: number;
  sealedP50Ms: number;
  sealedP99Ms: number;
  readyP50Ms: number;
  readyP99Ms: number;
  kmsByOperation: Record<string, number>;
  kmsForWorkspaces: number;
  namespaces: string[];
  /** First create sent to last Ready seen. */
  cost: PhaseCost;
}

async function readyPhase(
  cluster: Cluster,
  controller: BenchProcess,
  workspaceCount: number,
  connectionCount: number,
): Promise<ReadyResult> {
  const { client } = cluster;
  const kmsAtStart = await kmsRequests(controller.started.healthURL!);
  const namespaces = Array.from({ length: workspaceCount }, (_, i) => workspaceName('full', i));
  const wsStart = performance.now();
  await createWorkspaces(cluster, namespaces);
  const workspacesReadySeconds = (performance.now() - wsStart) / 1000;
  say(`[ready] ${workspaceCount} workspaces Ready in ${workspacesReadySeconds.toFixed(1)} s`);

  const kmsBefore = await kmsRequests(controller.started.healthURL!);
  const watch = new ReadyWatch(client, 'full');
  await watch.start();
  const items = connectionItems(namespaces, connectionCount);
  const sentAt = new Map<string, number>();
  const createMs: number[] = [];
  const endCost = await measurePhase(client, cluster.pids);
  const start = performance.now();
  await within(
    'connection creates',
    900_000,
    pool(items, cluster.concurrency, async ({ ns, name }) => {
      const t0 = performance.now();
      sentAt.set(`${ns}/${name}`, t0);
      // A distinct random credential per connection, as in real life; never printed.
      await client.create(ExternalConnections, {
        metadata: { name, namespace: ns, labels: { [PHASE_LABEL]: 'full' } },
        spec: connectionSpec(cluster, { value: `bench-${randomBytes(16).toString('hex')}` }),
      } as never);
      createMs.push(performance.now() - t0);
    }),
  );
  const createsSeconds = (performance.now() - start) / 1000;
  say(`[ready] ${connectionCount} creates returned in ${createsSeconds.toFixed(1)} s`);
  await until('every connection Ready', 900_000, async () => watch.readyAt.size >= connectionCount);
  const cost = await endCost();
  await watch.stop();
  const kmsAfter = await kmsRequests(controller.started.healthURL!);
  const sealedEnd = Math.max(...watch.sealedAt.values());
  const readyEnd = Math.max(...watch.readyAt.values());
  say(`[ready] all Ready after ${((readyEnd - start) / 1000).toFixed(1)} s`);
  const sealedLatency = [...watch.sealedAt].map(([k, t]) => t - sentAt.get(k)!);
  const readyLatency = [...watch.readyAt].map(([k, t]) => t - sentAt.get(k)!);
  return {
    workspacesReadySeconds,
    readySeconds: (readyEnd - start) / 1000,
    sealedSeconds: (sealedEnd - start) / 1000,
    createsSeconds,
    createP50Ms: percentile(createMs, 50),
    createP99Ms: percentile(createMs, 99),
    sealedP50Ms: percentile(sealedLatency, 50),
    sealedP99Ms: percentile(sealedLatency, 99),
    readyP50Ms: percentile(readyLatency, 50),
    readyP99Ms: percentile(readyLatency, 99),
    kmsByOperation: diff(kmsAfter, kmsBefore),
    kmsForWorkspaces: total(diff(kmsBefore, kmsAtStart)),
    namespaces,
    cost,
  };
}

/** KMS calls and probes over `seconds` of steady state (nothing created or changed). */
async function steadyWindow(
  cluster: Cluster,
  controller: BenchProcess,
  seconds: number,
): Promise<{ kms: Record<string, number>; probes: number; cost: PhaseCost; loop: LoopWindow }> {
  const kmsBefore = await kmsRequests(controller.started.healthURL!);
  const requestsBefore = cluster.fixture.requests();
  const endLoop = await openLoopWindow(`${controller.started.healthURL}/metrics`, 'externalconnection');
  const endCost = await measurePhase(cluster.client, cluster.pids);
  say(`[steady] ${seconds} s window (reconcile period ${cluster.periodSeconds} s)…`);
  await sleep(seconds * 1000);
  // The loop window first: any scrape of /metrics resets the event-loop delay histogram it reads.
  const loop = await endLoop();
  const cost = await endCost();
  return {
    kms: diff(await kmsRequests(controller.started.healthURL!), kmsBefore),
    probes: cluster.fixture.requests() - requestsBefore,
    loop,
    cost,
  };
}

/** An IntegrationType delivered by proxy and files, so one rotation reaches both. */
const ROTATION_TYPE = {
  displayName: 'Bench rotation API',
  category: 'api',
  settingsSchema: { type: 'object', properties: { baseURL: { type: 'string' } } },
  credentialFields: [{ name: 'apiKey', required: true }],
  probe: { http: { url: '{{settings.baseURL}}/' } },
  gateway: { baseURL: '{{settings.baseURL}}', auth: { type: 'header', headerName: 'X-API-Key', credential: 'apiKey' } },
  delivery: ['proxy', 'files'],
};

/**
 * Rotation end to end while the N connections exist: a merge patch of the
 * connection's `value` (sealed by the webhook, copied by the controller into
 * its managed Secret, seen by the gateway's watch), timed from the patch's
 * response to the first proxied request carrying the new value upstream and
 * to the agent's file holding it.
 */
async function rotationPhase(
  cluster: Cluster,
  controller: BenchProcess,
  startGatewayProcess: () => Promise<BenchProcess>,
  ns: string,
  rotations: number,
  pollMs: number,
  dir: string,
): Promise<RotationResult> {
  const { client, fixture } = cluster;
  const log = createLogger({ level: 'silent' });
  await client.create(IntegrationTypes, { metadata: { name: 'bench-rotation' }, spec: ROTATION_TYPE } as never);
  await client.create(ServiceAccounts, { metadata: { name: 'app', namespace: ns } });
  for (const role of ['atoll-connection-user', 'atoll-connection-reader']) {
    await client.create(RoleBindings, {
      metadata: { name: `app-${role}`, namespace: ns },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role },
      subjects: [{ kind: 'ServiceAccount', name: 'app', namespace: ns }],
    });
  }
  const first = `bench-rotation-${randomBytes(8).toString('hex')}`;
  await client.create(ExternalConnections, {
    metadata: { name: 'rotated', namespace: ns },
    spec: {
      type: 'bench-rotation',
      settings: { baseURL: fixture.url },
      credentials: { apiKey: { value: first } },
      probe: { interval: '0' },
    },
  } as never);
  // Sealed is what the gateway needs; its first probe may wait behind the N others' periodic probes.
  await until('the rotated connection sealed', 300_000, async () =>
    isTrue(await client.get<Conditioned>(ExternalConnections, 'rotated', ns), 'CredentialsSealed'),
  );

  // The gateway in its own process, holding every connection and (one watch per workspace) every managed Secret.
  const secretWatchesBefore = (await apiserverWatches(client)).secrets ?? 0;
  const gateway = await startGatewayProcess();
  const gatewayURL = gateway.started.url!;
  const stopAgent = new AbortController();
  let agentDone: Promise<void> | undefined;
  try {
    const review = await client.request<{ status: { token: string } }>(
      'POST',
      `/api/v1/namespaces/${ns}/serviceaccounts/app/token`,
      {
        apiVersion: 'authentication.k8s.io/v1',
        kind: 'TokenRequest',
        spec: { audiences: ['atoll-gateway'], expirationSeconds: 3600 },
      },
    );
    const token = review.status.token;
    const tokenFile = path.join(dir, 'token');
    writeFileSync(tokenFile, token, { mode: 0o600 });
    const mount = path.join(dir, 'mount');
    agentDone = runAgent({
      gatewayURL,
      tokenFile,
      connections: ['rotated'],
      dir: mount,
      log,
      insecurePlaintext: true,
      signal: stopAgent.signal,
    });
    const file = path.join(mount, 'rotated', 'apiKey');
    const inFile = (): string => {
      try {
        return readFileSync(file, 'utf8');
      } catch {
        return '';
      }
    };
    const proxied = async (): Promise<string | undefined> => {
      await fetch(`${gatewayURL}/v1/connections/rotated/proxy/rotation`, {
        headers: { authorization: `Bearer ${token}` },
      }).then((r) => r.arrayBuffer());
      return fixture.lastKey();
    };
    await until(
      'the gateway and agent to serve the first value',
      60_000,
      async () => (await proxied()) === first && inFile() === first,
    );
    const workspaceCount = (await client.list(Workspaces)).items.length;
    await until(
      "the gateway to watch every workspace's managed Secrets",
      300_000,
      async () => ((await apiserverWatches(client)).secrets ?? 0) - secretWatchesBefore >= workspaceCount,
      1000,
    );
    const cached = gateway.memory();
    // When the controller's write of the managed Secret reaches a watcher: splits each rotation into controller and gateway time.
    let secretWrittenAt = 0;
    const secretWatchAbort = new AbortController();
    const secretName = managedSecretName('rotated');
    const listed = await client.list(Secrets, { namespace: ns, fieldSelector: `metadata.name=${secretName}` });
    const secretWatch = client
      .watch(
        Secrets,
        {
          namespace: ns,
          fieldSelector: `metadata.name=${secretName}`,
          resourceVersion: listed.metadata.resourceVersion,
          signal: secretWatchAbort.signal,
        },
        (ev) => {
          if (ev.type === 'MODIFIED' && secretWrittenAt === 0) secretWrittenAt = performance.now();
        },
      )
      .catch(() => undefined);
    const proxyMs: number[] = [];
    const fileMs: number[] = [];
    const controllerMs: number[] = [];
    const endLoop = await openLoopWindow(`${controller.started.healthURL}/metrics`, 'externalconnection');
    const endCost = await measurePhase(client, () => ({ ...cluster.pids(), gateway: gateway.pid }));
    for (let i = 0; i < rotations; i++) {
      const value = `bench-rotation-${i}-${randomBytes(8).toString('hex')}`;
      await client.mergePatch(ExternalConnections, 'rotated', ns, {
        spec: { credentials: { apiKey: { value, sealed: null } } },
      });
      const t0 = performance.now();
      secretWrittenAt = 0;
      let proxySeen = false;
      let fileSeen = false;
      while (!proxySeen || !fileSeen) {
        if (performance.now() - t0 > 30_000)
          throw new Error(`rotation ${i} did not propagate within 30 s (proxied ${proxySeen}, file ${fileSeen})`);
        if (!proxySeen && (await proxied()) === value) {
          proxySeen = true;
          proxyMs.push(performance.now() - t0);
        }
        if (!fileSeen && inFile() === value) {
          fileSeen = true;
          fileMs.push(performance.now() - t0);
        }
        if (!proxySeen || !fileSeen) await (pollMs > 0 ? sleep(pollMs) : new Promise((r) => setImmediate(r)));
      }
      if (secretWrittenAt > t0) controllerMs.push(secretWrittenAt - t0);
    }
    const controllerLoop = await endLoop();
    const cost = await endCost();
    secretWatchAbort.abort();
    await secretWatch;
    const end = gateway.memory();
    return {
      proxyMs,
      fileMs,
      controllerMs,
      controllerLoop,
      cost,
      gatewayMemory: { cachedMiB: cached.rssMiB, endMiB: end.rssMiB, peakMiB: end.peakMiB },
    };
  } finally {
    stopAgent.abort();
    await agentDone?.catch(() => undefined);
    await gateway.stop();
  }
}

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  helpAndExit(`
Usage: node dist/bench/credentials.js [flags]   (docs/benchmarks.md, "Credential sealing")
  --connections N              connections to create (1000)
  --workspaces N               workspaces they are spread over (100)
  --concurrency N              client requests in flight (16)
  --reconcile-period S         probe interval of every connection, seconds (60)
  --rotations N                end-to-end rotations timed (50)
  --rotation-poll-ms N         how often the rotation client asks the gateway and reads the agent's file (5);
                               0 asks in a busy loop, which on 2 cores takes CPU from what it measures
  --controller-node-options S  V8 flags for the controller process, e.g. the chart's
                               "--max-semi-space-size=2 --max-old-space-size=256"
  --gateway-node-options S     V8 flags for the gateway process, e.g. the chart's "--max-old-space-size=256"
  --json                       one JSON summary on the last line of stdout
`);
  const connections = Math.round(numericFlag('connections', 1000));
  const workspaces = Math.round(numericFlag('workspaces', 100));
  const concurrency = Math.round(numericFlag('concurrency', 16));
  const periodSeconds = numericFlag('reconcile-period', 60);
  const rotations = Math.round(numericFlag('rotations', 50));
  const rotationPollMs = numericFlag('rotation-poll-ms', 5);
  const json = process.argv.includes('--json');
  // e.g. --controller-node-options "--max-semi-space-size=2": V8 flags for the controller process alone.
  const nodeOptionsFlag = (name: string): string[] => {
    const at = process.argv.indexOf(name);
    return at >= 0 ? (process.argv[at + 1] ?? '').split(/\s+/).filter(Boolean) : [];
  };
  const controllerNodeOptions = nodeOptionsFlag('--controller-node-options');
  const gatewayNodeOptions = nodeOptionsFlag('--gateway-node-options');
  const steadySeconds = 2 * periodSeconds + 5;
  const runStart = performance.now();
  const root = packageRoot();
  const dir = mkdtempSync(path.join(tmpdir(), 'atoll-bench-cred-'));

  say('starting control plane…');
  const cp = await ControlPlane.start({ controllerManager: false });
  const fixture = await startFixture();
  let controller: BenchProcess | undefined;
  try {
    const client = cp.adminClient();
    await installAtoll(client, root);
    await precreateWebhookConfigurations(client);
    // The quota controller computes each workspace's connection quota (as in any cluster).
    await cp.startControllerManager(['resourcequota']);
    const apiserverPid = childPid('kube-apiserver');
    const etcdPid = childPid('etcd');
    // /proc truncates names to 15 characters.
    const controllerManagerPid = childPid('kube-controller');
    // The local KMS provider runs inside the controller process: its CPU is the controller's.
    const pids = (): Pids => ({
      'kube-apiserver': apiserverPid,
      etcd: etcdPid,
      'kube-controller-manager': controllerManagerPid,
      controller: controller?.pid,
      bench: process.pid,
    });
    const cluster: Cluster = { client, fixture, concurrency, periodSeconds, pids };

    const floor = await writeFloor(cluster, apiserverPid, workspaces, connections);
    const watchesBefore = await apiserverWatches(client);

    // Throughput is what is measured: lift the per-namespace sealing budget (ADR 0012). The data-key
    // cache's idle expiry is three probe periods, as the defaults (30 min for 10 min probes, ADR 0029).
    const settings = {
      ATOLL_SEALING_RATE_PER_MINUTE: '1000000',
      ATOLL_SEALING_BURST: '100000',
      ATOLL_DEFAULT_MAX_CONNECTIONS: '10000',
      ATOLL_DEK_CACHE_IDLE: `${periodSeconds * 3}s`,
      ATOLL_LOG_LEVEL: 'warn',
    };
    const config = loopbackOperatorConfig(settings);
    controller = await startBenchProcess(
      'controller',
      cp,
      client,
      config.serviceAccounts.controller,
      dir,
      settings,
      controllerNodeOptions,
    );
    const idle = controller.memory();
    say(`controller process ${controller.pid} started, RSS ${fmt(idle.rssMiB)} MiB`);

    const ready = await readyPhase(cluster, controller, workspaces, connections);
    const readyMemory = controller.memory();
    const steady = await steadyWindow(cluster, controller, steadySeconds);
    const watchesAfter = await apiserverWatches(client);
    const apiserverWithOperator = apiserverPid ? memoryOf(apiserverPid) : { rssMiB: NaN, peakMiB: NaN };
    const controllerMemory = controller.memory();

    const startGatewayProcess = () =>
      startBenchProcess('gateway', cp, client, config.serviceAccounts.gateway, dir, settings, gatewayNodeOptions);
    // A rotation phase that fails still leaves the figures measured so far worth printing.
    const rotation = await rotationPhase(
      cluster,
      controller,
      startGatewayProcess,
      ready.namespaces[0]!,
      rotations,
      rotationPollMs,
      dir,
    ).catch((err: Error): RotationResult => {
      say(`[rotation] failed: ${err.message}`);
      return { proxyMs: [], fileMs: [], controllerMs: [], error: err.message };
    });
    const endToEnd = rotation.proxyMs.map((p, i) => Math.max(p, rotation.fileMs[i] ?? p));

    const operatorWatches = total(watchesAfter) - total(watchesBefore);
    const kmsCreate = total(ready.kmsByOperation);
    const summary = {
      connections,
      workspaces,
      concurrency,
      reconcile_period_s: periodSeconds,
      ready_s: round(ready.readySeconds, 2),
      floor_s: round(floor.floorSeconds, 2),
      ratio: round(ready.readySeconds / floor.floorSeconds, 3),
      sealed_s: round(ready.sealedSeconds, 2),
      creates_s: round(ready.createsSeconds, 2),
      create_p99_ms: round(ready.createP99Ms, 0),
      ready_p50_ms: round(ready.readyP50Ms, 0),
      ready_p99_ms: round(ready.readyP99Ms, 0),
      controller_rss_mib: round(controllerMemory.peakMiB, 1),
      controller_rss_idle_mib: round(idle.rssMiB, 1),
      controller_rss_ready_mib: round(readyMemory.rssMiB, 1),
      controller_rss_steady_mib: round(controllerMemory.rssMiB, 1),
      apiserver_rss_without_operator_mib: round(floor.apiserverRssMiB, 1),
      apiserver_rss_with_operator_mib: round(apiserverWithOperator.rssMiB, 1),
      apiserver_peak_rss_mib: round(apiserverWithOperator.peakMiB, 1),
      etcd_peak_rss_mib: round(etcdPid ? memoryOf(etcdPid).peakMiB : NaN, 1),
      operator_watches: operatorWatches,
      watches_by_resource: Object.fromEntries(
        Object.entries(diff(watchesAfter, watchesBefore)).filter(([, v]) => v !== 0),
      ),
      kms_calls_per_connection: round(kmsCreate / connections, 3),
      kms_calls_create: ready.kmsByOperation,
      kms_calls_workspaces: ready.kmsForWorkspaces,
      steady_window_s: steadySeconds,
      steady_probes: steady.probes,
      steady_kms_calls: total(steady.kms),
      steady_kms_by_operation: steady.kms,
      rotations,
      rotation_error: rotation.error ?? null,
      rotation_p50_ms: round(percentile(endToEnd, 50), 1),
      rotation_p99_ms: round(percentile(endToEnd, 99), 1),
      rotation_proxy_p99_ms: round(percentile(rotation.proxyMs, 99), 1),
      rotation_file_p99_ms: round(percentile(rotation.fileMs, 99), 1),
      rotation_secret_p50_ms: round(percentile(rotation.controllerMs, 50), 1),
      rotation_secret_p99_ms: round(percentile(rotation.controllerMs, 99), 1),
      gateway_rss_mib: round(rotation.gatewayMemory?.peakMiB ?? NaN, 1),
      gateway_rss_cached_mib: round(rotation.gatewayMemory?.cachedMiB ?? NaN, 1),
      gateway_rss_end_mib: round(rotation.gatewayMemory?.endMiB ?? NaN, 1),
      rotation_poll_ms: rotationPollMs,
      rotation_controller_loop: rotation.controllerLoop ?? null,
      rotation_cpu_s: rotation.cost?.cpuS ?? null,
      rotation_api_requests: rotation.cost?.apiRequests ?? null,
      steady_controller_loop: steady.loop,
      steady_cpu_s: steady.cost.cpuS,
      steady_api_requests: steady.cost.apiRequests,
      kms_provider: 'local (in the controller process)',
      cpu_s: { floor: floor.cost.cpuS, ready: ready.cost.cpuS },
      cpu_ms_per_connection: {
        floor: perConnection(floor.cost.cpuS, connections, 1000),
        ready: perConnection(ready.cost.cpuS, connections, 1000),
      },
      api_requests: { floor: floor.cost.apiRequests, ready: ready.cost.apiRequests },
      total_s: round((performance.now() - runStart) / 1000, 0),
      controller_node_options: controllerNodeOptions.join(' '),
      gateway_node_options: gatewayNodeOptions.join(' '),
      node: process.version,
    };
    const lines = [
      `credential benchmark: ${connections} connections in ${workspaces} workspaces, client concurrency ${concurrency}, reconcile (probe) period ${periodSeconds} s, local KMS provider, loopback, Node ${process.version}, total ${summary.total_s} s`,
      '',
      '| figure | value |',
      '| --- | ---: |',
      `| write floor (create + Secret create + status write) s | ${fmt(floor.floorSeconds, 2)} |`,
      `| first create → last Ready s (ready_s) | ${fmt(ready.readySeconds, 2)} |`,
      `| ratio ready_s / floor_s | ${fmt(summary.ratio ?? NaN, 2)} |`,
      `| first create → last sealed s | ${fmt(ready.sealedSeconds, 2)} |`,
      `| creates returned s (webhooks included) | ${fmt(ready.createsSeconds, 2)} |`,
      `| create p50 / p99 ms | ${fmt(ready.createP50Ms, 0)} / ${fmt(ready.createP99Ms, 0)} |`,
      `| create → sealed p50 / p99 ms | ${fmt(ready.sealedP50Ms, 0)} / ${fmt(ready.sealedP99Ms, 0)} |`,
      `| create → Ready p50 / p99 ms | ${fmt(ready.readyP50Ms, 0)} / ${fmt(ready.readyP99Ms, 0)} |`,
      `| workspaces Ready s | ${fmt(ready.workspacesReadySeconds, 1)} |`,
      `| controller RSS MiB: idle / all Ready / end of steady / peak (VmHWM) | ${fmt(idle.rssMiB)} / ${fmt(readyMemory.rssMiB)} / ${fmt(controllerMemory.rssMiB)} / ${fmt(controllerMemory.peakMiB)} |`,
      `| gateway RSS MiB: every connection and managed Secret cached / after the rotations / peak (VmHWM) | ${fmt(rotation.gatewayMemory?.cachedMiB ?? NaN)} / ${fmt(rotation.gatewayMemory?.endMiB ?? NaN)} / ${fmt(rotation.gatewayMemory?.peakMiB ?? NaN)} |`,
      `| kube-apiserver RSS MiB: N objects without operator / with operator / peak | ${fmt(floor.apiserverRssMiB)} / ${fmt(apiserverWithOperator.rssMiB)} / ${fmt(apiserverWithOperator.peakMiB)} |`,
      `| watches the operator holds (API server's count) | ${operatorWatches} (${Object.entries(
        summary.watches_by_resource,
      )
        .map(([k, v]) => `${k} ${v}`)
        .join(', ')}) |`,
      `| KMS calls per new connection | ${fmt(summary.kms_calls_per_connection ?? NaN, 2)} (${
        Object.entries(ready.kmsByOperation)
          .map(([k, v]) => `${k} ${v}`)
          .join(', ') || 'none'
      }; workspaces ${ready.kmsForWorkspaces}) |`,
      `| KMS calls in steady state (${steadySeconds} s, ${steady.probes} probes) | ${summary.steady_kms_calls} |`,
      `| rotation p50 / p99 ms (patch response → proxied and agent file) | ${fmt(summary.rotation_p50_ms ?? NaN)} / ${fmt(summary.rotation_p99_ms ?? NaN)} |`,
      `| rotation p99 ms: proxied / agent file | ${fmt(summary.rotation_proxy_p99_ms ?? NaN)} / ${fmt(summary.rotation_file_p99_ms ?? NaN)} |`,
      `| of which patch response → managed Secret rewritten (controller) p50 / p99 ms | ${fmt(summary.rotation_secret_p50_ms ?? NaN)} / ${fmt(summary.rotation_secret_p99_ms ?? NaN)} |`,
      '',
      ...costTable(floor.cost, ready.cost, connections),
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
    if (json) process.stdout.write(`${JSON.stringify(summary)}\n`);
  } finally {
    await controller?.stop();
    await within('the fixture to close', 5_000, fixture.close()).catch(() => undefined);
    await cp.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Per-connection figures of a phase's totals (CPU ms with scale 1000, requests with scale 1). */
function perConnection(totals: Record<string, number>, n: number, scale: number): Record<string, number | null> {
  return Object.fromEntries(Object.entries(totals).map(([k, v]) => [k, round((v * scale) / n, 2)]));
}

/** Where the time goes: CPU per process and API requests per connection, floor beside ready. */
function costTable(floor: PhaseCost, ready: PhaseCost, n: number): string[] {
  const cpuTotal = (c: Record<string, number>) =>
    Object.values(c).reduce((a, b) => a + (Number.isFinite(b) ? b : 0), 0);
  const cpuRow = (name: string, f: number, r: number) =>
    `| ${name} | ${fmt(f, 2)} | ${fmt(r, 2)} | ${fmt((f * 1000) / n, 2)} | ${fmt((r * 1000) / n, 2)} | ${fmt(r / f, 2)} |`;
  const requestKeys = [...new Set([...Object.keys(floor.apiRequests), ...Object.keys(ready.apiRequests)])].sort(
    (a, b) => (ready.apiRequests[b] ?? 0) - (ready.apiRequests[a] ?? 0),
  );
  return [
    '| process | floor CPU s | ready CPU s | floor CPU ms/conn | ready CPU ms/conn | ready / floor |',
    '| --- | ---: | ---: | ---: | ---: | ---: |',
    ...Object.keys({ ...floor.cpuS, ...ready.cpuS }).map((name) =>
      cpuRow(name, floor.cpuS[name] ?? NaN, ready.cpuS[name] ?? NaN),
    ),
    cpuRow('all', cpuTotal(floor.cpuS), cpuTotal(ready.cpuS)),
    '',
    '| API request (apiserver_request_total; webhook = admission calls) | floor | ready | floor /conn | ready /conn |',
    '| --- | ---: | ---: | ---: | ---: |',
    ...requestKeys.map((k) => {
      const f = floor.apiRequests[k] ?? 0;
      const r = ready.apiRequests[k] ?? 0;
      return `| ${k} | ${f} | ${r} | ${fmt(f / n, 2)} | ${fmt(r / n, 2)} |`;
    }),
  ];
}

function round(n: number, digits: number): number | null {
  return Number.isFinite(n) ? Number(n.toFixed(digits)) : null;
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`credential benchmark failed: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
