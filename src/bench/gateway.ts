/**
 * Gateway benchmark (a script, not a test): requests/s and latency through
 * `atoll gateway` versus the upstream directly and versus nginx injecting the
 * same header, all on loopback in one run, plus how fast a rotation reaches
 * the next proxied request and the agent's files.
 *
 *   npm run build && node dist/bench/gateway.js [--requests 4000] [--concurrency 16] [--rotations 20] [--rounds 3] [--json]
 *
 * --json adds one JSON object with the inputs and figures as the last line of stdout.
 *
 * The load generator runs in a worker thread so it does not share the
 * gateway's event loop. nginx (Debian package `nginx`) is optional: without
 * it that row is skipped.
 */
import { fork, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { availableParallelism, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { Pool, type Dispatcher } from 'undici';
import { parseAllDocuments } from 'yaml';
import {
  CONNECTION_LABEL,
  CREDENTIALS_STATE_ANNOTATION,
  MANAGED_BY_LABEL,
  MANAGED_BY_VALUE,
  SEALED_SECRET_TYPE,
} from '../api/v1alpha1/index.js';
import { createProviderRegistry, Envelope, InMemoryKeyRingStore, managedCopy } from '../crypto/index.js';
import { runAgent } from '../gateway/agent.js';
import { checkFraming } from '../gateway/framing.js';
import { destinationDigest } from '../integrations/destination.js';
import { startGateway } from '../gateway/server.js';
import type { KubeClient, KubeObject } from '../kube/client.js';
import {
  ClusterRoles,
  CustomResourceDefinitions,
  ExternalConnections,
  IntegrationTypes,
  Namespaces,
  RoleBindings,
  Secrets,
  ServiceAccounts,
  Workspaces,
} from '../kube/resources.js';
import { createLogger } from '../runtime/logger.js';
import { createOperatorMetrics } from '../runtime/metrics.js';
import { packageRoot } from '../dev/binaries.js';
import { ControlPlane } from '../dev/control-plane.js';
import { freePort } from '../dev/ports.js';
import { fmt, helpAndExit, numericFlag, percentile } from './stats.js';
import { readManifests } from '../cli/install.js';

interface LoadJob {
  url: string;
  headers: Record<string, string>;
  requests: number;
  concurrency: number;
}

interface LoadResult {
  /** CPU time (ms) the proxying process or thread spent during the load, when measured. */
  cpuMs?: number;
  requests: number;
  seconds: number;
  latenciesMs: number[];
  errors: number;
}

/** Worker side: closed-loop load with keep-alive connections. */
async function generateLoad(job: LoadJob): Promise<LoadResult> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: job.concurrency });
  const latencies: number[] = [];
  let errors = 0;
  let issued = 0;
  const one = () =>
    new Promise<void>((resolve) => {
      const started = performance.now();
      const req = http.get(job.url, { agent, headers: job.headers }, (res) => {
        res.resume();
        res.on('end', () => {
          if (res.statusCode !== 200) errors++;
          latencies.push(performance.now() - started);
          resolve();
        });
      });
      req.on('error', () => {
        errors++;
        resolve();
      });
    });
  const started = performance.now();
  await Promise.all(
    Array.from({ length: job.concurrency }, async () => {
      while (issued < job.requests) {
        issued++;
        await one();
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  agent.destroy();
  return { requests: job.requests, seconds, latenciesMs: latencies, errors };
}

function runLoad(job: LoadJob): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(fileURLToPath(import.meta.url), { workerData: job });
    worker.once('message', (r: LoadResult) => resolve(r));
    worker.once('error', reject);
  });
}

const SECRET = 'bench-secret-value-0001';

const UPSTREAM_FLAG = '--upstream-child';

/**
 * The upstream service, in a child process of its own as a real service
 * would be: in the bench's process it would share the gateway's event loop,
 * and every row would measure both. 200 for the bench key (401 otherwise);
 * `/rot` answers with the key it received, so the rotation phase can tell
 * which credential a proxied request carried.
 */
function runUpstream(): void {
  const server = http.createServer((req, res) => {
    const key = String(req.headers['x-api-key']);
    res.writeHead(key.startsWith('bench-secret') ? 200 : 401, { 'content-type': 'application/json' });
    res.end(req.url === '/rot' ? JSON.stringify({ key }) : '{"ok":true}');
  });
  server.keepAliveTimeout = 65_000;
  process.on('disconnect', () => process.exit(0));
  server.listen(0, '127.0.0.1', () => process.send?.({ port: (server.address() as AddressInfo).port }));
}

async function upstreamServer(): Promise<{ url: string; close(): Promise<void> }> {
  const child = fork(fileURLToPath(import.meta.url), [UPSTREAM_FLAG], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const port = await new Promise<number>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`upstream exited (${code})`)));
    child.once('message', (m: { port: number }) => resolve(m.port));
  });
  child.removeAllListeners('exit');
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

/**
 * The floor of a proxy in Node: the same HTTP server and undici pool the
 * gateway uses, injecting the same header, and nothing else (no token, no
 * authorization, no framing or egress check, no plan). Runs in this process's
 * main thread like the gateway, so the two rows split the gateway's cost into
 * Node's HTTP stack and atoll's own per-request work.
 */
async function bareNodeProxy(upstream: string): Promise<{ url: string; close(): Promise<void> }> {
  const pool = new Pool(upstream, { connections: 256, pipelining: 1 });
  const server = http.createServer((req, res) => {
    const headers = { ...req.headers, 'x-api-key': SECRET, host: new URL(upstream).host };
    delete headers.connection;
    pool.request({ method: req.method as Dispatcher.HttpMethod, path: req.url ?? '/', headers, body: null }).then(
      (answer) => {
        const out = { ...answer.headers };
        for (const h of ['connection', 'keep-alive', 'transfer-encoding']) delete out[h];
        res.writeHead(answer.statusCode, out as http.OutgoingHttpHeaders);
        answer.body.pipe(res);
      },
      () => {
        res.statusCode = 502;
        res.end();
      },
    );
  });
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: async () => {
      await new Promise((r) => {
        server.close(r);
        server.closeAllConnections();
      });
      await pool.destroy();
    },
  };
}

async function startNginx(upstream: string, dir: string): Promise<{ url: string; proc: ChildProcess } | undefined> {
  if (spawnSync('nginx', ['-v']).error) return undefined;
  const port = await freePort();
  const upstreamPort = new URL(upstream).port;
  writeFileSync(
    path.join(dir, 'nginx.conf'),
    `
worker_processes 1;
# One process serves (no master): its CPU time is nginx's whole cost.
master_process off;
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/nginx-error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy; fastcgi_temp_path ${dir}/fcgi; uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;
  upstream svc { server 127.0.0.1:${upstreamPort}; keepalive 32; }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://svc;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Authorization "";
      proxy_set_header X-API-Key "${SECRET}";
    }
  }
}
`,
  );
  const proc = spawn('nginx', ['-p', dir, '-c', path.join(dir, 'nginx.conf')], { stdio: 'ignore' });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 100; i++) {
    const ok = await fetch(url).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return { url, proc };
    await new Promise((r) => setTimeout(r, 50));
  }
  proc.kill('SIGKILL');
  return undefined;
}

async function setUpCluster(
  admin: KubeClient,
  envelope: Envelope,
  upstream: string,
): Promise<{ identity: string; destination: string; uid: string }> {
  const root = packageRoot();
  for (const file of readdirSync(path.join(root, 'crds'))) {
    for (const doc of parseAllDocuments(readFileSync(path.join(root, 'crds', file), 'utf8'))) {
      const crd = doc.toJS() as KubeObject | null;
      if (crd) await admin.create(CustomResourceDefinitions, crd);
    }
  }
  for (let i = 0; ; i++) {
    if (
      await admin.list(Workspaces).then(
        () => true,
        () => false,
      )
    )
      break;
    if (i > 300) throw new Error('CRDs were not established');
    await new Promise((r) => setTimeout(r, 100));
  }
  for (const role of ['atoll-connection-user', 'atoll-connection-reader']) {
    await admin.create(
      ClusterRoles,
      readManifests([path.join(root, 'config/rbac/cluster-roles.yaml')]).find((o) => o.metadata?.name === role)!,
    );
  }
  await admin.create(Namespaces, { metadata: { name: 'bench' } });
  const ws = await admin.create(Workspaces, {
    metadata: { name: 'bench', namespace: 'bench' },
    spec: { policy: { egress: { allowCIDRs: ['127.0.0.1/32'] } } },
  });
  const identity = String((ws as KubeObject).metadata?.uid);
  await admin.mergePatch(Workspaces, 'bench', 'bench', { status: { identity } }, { subresource: 'status' });
  await admin.create(ServiceAccounts, { metadata: { name: 'app', namespace: 'bench' } });
  await admin.create(RoleBindings, {
    metadata: { name: 'app-use', namespace: 'bench' },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'atoll-connection-user' },
    subjects: [{ kind: 'ServiceAccount', name: 'app', namespace: 'bench' }],
  });
  await admin.create(RoleBindings, {
    metadata: { name: 'app-read', namespace: 'bench' },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'atoll-connection-reader' },
    subjects: [{ kind: 'ServiceAccount', name: 'app', namespace: 'bench' }],
  });
  const benchType = {
    displayName: 'Bench API',
    category: 'api',
    settingsSchema: { type: 'object', properties: { baseURL: { type: 'string' } } },
    credentialFields: [{ name: 'apiKey', required: true }],
    probe: { http: { url: '{{settings.baseURL}}/' } },
    gateway: {
      baseURL: '{{settings.baseURL}}',
      auth: { type: 'header', headerName: 'X-API-Key', credential: 'apiKey' },
    },
    delivery: ['proxy', 'files'],
  };
  await admin.create(IntegrationTypes, { metadata: { name: 'bench-api' }, spec: benchType });
  const destination = destinationDigest({ metadata: { name: 'bench-api' }, spec: benchType }, { baseURL: upstream });
  const specSealed = await envelope.seal(
    SECRET,
    { namespace: 'bench', workspace: identity, connection: 'api', field: 'apiKey', destination },
    KEY,
  );
  const conn = await admin.create<KubeObject & { spec: unknown }>(ExternalConnections, {
    metadata: { name: 'api', namespace: 'bench' },
    spec: { type: 'bench-api', settings: { baseURL: upstream }, credentials: { apiKey: { sealed: specSealed } } },
  });
  const uid = conn.metadata!.uid!;
  // The managed Secret as the operator writes it (binding format 2, ADR 0013): a copy bound to this connection object and version.
  await admin.create(Secrets, {
    metadata: {
      name: 'api-credentials',
      namespace: 'bench',
      labels: { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE, [CONNECTION_LABEL]: 'api' },
      annotations: { [CREDENTIALS_STATE_ANNOTATION]: stateAnnotation(1) },
      ownerReferences: [
        { apiVersion: 'atoll.dev/v1alpha1', kind: 'ExternalConnection', name: 'api', uid, controller: true },
      ],
    },
    type: SEALED_SECRET_TYPE,
    data: await managedData(envelope, { identity, destination, uid }, SECRET, 1),
  });
  return { identity, destination, uid };
}

const KEY = { provider: 'local', keyId: 'local/default' };

function stateAnnotation(version: number): string {
  return JSON.stringify({ apiKey: { version, hint: '…0001', keyId: KEY.keyId, format: 2 } });
}

/** The managed Secret's data: the value sealed as the operator's copy for this connection object (uid) at `version`. */
async function managedData(
  envelope: Envelope,
  at: { identity: string; destination: string; uid: string },
  value: string,
  version: number,
): Promise<Record<string, string>> {
  const sealed = await envelope.seal(
    value,
    {
      namespace: 'bench',
      workspace: at.identity,
      connection: 'api',
      field: 'apiKey',
      destination: at.destination,
      copy: managedCopy(at.uid, version),
    },
    KEY,
  );
  return { apiKey: Buffer.from(sealed).toString('base64') };
}

async function main(): Promise<void> {
  helpAndExit(`
Usage: node dist/bench/gateway.js [flags]   (docs/benchmarks.md, "Gateway")
  --requests N     requests per target and round (4000)
  --concurrency N  requests in flight (16)
  --rotations N    rotations timed to the next proxied request (20)
  --rounds N       rounds alternating the targets (3)
  --json           one JSON summary on the last line of stdout
`);
  const requests = numericFlag('requests', 4000);
  const concurrency = numericFlag('concurrency', 16);
  const rotations = numericFlag('rotations', 20);
  const rounds = Math.round(numericFlag('rounds', 3));
  const json = process.argv.includes('--json');
  const dir = mkdtempSync(path.join(tmpdir(), 'atoll-bench-gw-'));
  const log = createLogger({ level: 'silent' });
  process.stderr.write('starting control plane…\n');
  const cp = await ControlPlane.start({ controllerManager: false });
  const upstream = await upstreamServer();
  const nginx = await startNginx(upstream.url, dir);
  const bare = await bareNodeProxy(upstream.url);
  const admin = cp.adminClient();
  const envelope = new Envelope({
    providers: createProviderRegistry({ local: { store: new InMemoryKeyRingStore() } }),
  });
  const stopAgent = new AbortController();
  let closeGateway: (() => Promise<void>) | undefined;
  try {
    const cluster = await setUpCluster(admin, envelope, upstream.url);
    // Plain HTTP like the direct upstream and nginx rows, so the rows compare the proxying alone.
    const gateway = await startGateway({
      client: admin,
      envelope,
      log,
      metrics: createOperatorMetrics(),
      host: '127.0.0.1',
      port: 0,
      insecurePlaintext: true,
    });
    closeGateway = () => gateway.close();
    const tokenReq = await admin.request<{ status: { token: string } }>(
      'POST',
      '/api/v1/namespaces/bench/serviceaccounts/app/token',
      {
        apiVersion: 'authentication.k8s.io/v1',
        kind: 'TokenRequest',
        spec: { audiences: ['atoll-gateway'], expirationSeconds: 3600 },
      },
    );
    const token = tokenReq.status.token;

    const targets: Array<[string, LoadJob]> = [
      ['direct upstream', { url: `${upstream.url}/bench`, headers: { 'x-api-key': SECRET }, requests, concurrency }],
      [
        'atoll gateway',
        {
          url: `${gateway.url}/v1/connections/api/proxy/bench`,
          headers: { authorization: `Bearer ${token}` },
          requests,
          concurrency,
        },
      ],
      ['bare Node proxy (floor)', { url: `${bare.url}/bench`, headers: {}, requests, concurrency }],
      ...(nginx
        ? [
            ['nginx (header injection)', { url: `${nginx.url}/bench`, headers: {}, requests, concurrency }] as [
              string,
              LoadJob,
            ],
          ]
        : []),
    ];
    // CPU time of what does the proxying: the gateway (this process's main thread; the load comes from a worker
    // thread, the upstream from a child process) and nginx's one process. On a crowded machine req/s says how much
    // CPU the kernel gave each; CPU time per request says what each needs, whoever else runs.
    const cpuOf: Record<string, () => number> = {
      'atoll gateway': () => cpuMsOf('/proc/thread-self/stat'),
      'bare Node proxy (floor)': () => cpuMsOf('/proc/thread-self/stat'),
      ...(nginx?.proc.pid !== undefined
        ? { 'nginx (header injection)': () => cpuMsOf(`/proc/${nginx.proc.pid}/stat`) }
        : {}),
    };
    for (const [, job] of targets) await runLoad({ ...job, requests: Math.min(200, requests) }); // warm-up: pools, caches, JIT
    // The machine is shared: targets take turns in rounds, so a burst of someone else's load hits all of them alike.
    const results = new Map<string, LoadResult>();
    for (let round = 0; round < rounds; round++) {
      for (const [name, job] of targets) {
        process.stderr.write(`load: ${name}, round ${round + 1}/${rounds}…\n`);
        const cpu = cpuOf[name];
        const before = cpu?.();
        const r = await runLoad({ ...job, requests: Math.ceil(requests / rounds) });
        if (cpu !== undefined) r.cpuMs = cpu() - before!;
        const sum = results.get(name);
        results.set(
          name,
          sum === undefined
            ? r
            : {
                requests: sum.requests + r.requests,
                seconds: sum.seconds + r.seconds,
                latenciesMs: sum.latenciesMs.concat(r.latenciesMs),
                errors: sum.errors + r.errors,
                cpuMs: (sum.cpuMs ?? 0) + (r.cpuMs ?? 0),
              },
        );
      }
    }
    for (const [name, r] of results) {
      // A target answering errors measures its error path, not proxying (how a broken set-up once went unnoticed).
      if (r.errors > 0)
        throw new Error(
          `${name} answered ${r.errors} of ${r.requests} requests with an error: the figures would not measure proxying`,
        );
    }

    // Rotation propagation: time from the Secret update's response to (a) the first proxied request
    // carrying the new value and (b) the agent's file holding it.
    const tokenFile = path.join(dir, 'token');
    writeFileSync(tokenFile, token);
    const mount = path.join(dir, 'mount');
    const agentDone = runAgent({
      gatewayURL: gateway.url,
      tokenFile,
      connections: ['api'],
      dir: mount,
      log,
      insecurePlaintext: true,
      signal: stopAgent.signal,
    });
    const proxyMs: number[] = [];
    const fileMs: number[] = [];
    const file = path.join(mount, 'api', 'apiKey');
    const current = (): string => {
      try {
        return readFileSync(file, 'utf8');
      } catch {
        return '';
      }
    };
    for (let deadline = Date.now() + 10_000; current() !== SECRET;) {
      if (Date.now() > deadline) throw new Error('agent did not write the credential');
      await new Promise((r) => setTimeout(r, 10));
    }
    for (let i = 0; i < rotations; i++) {
      const value = `bench-secret-rotated-${i}-${Date.now()}`;
      const version = i + 2;
      const data = await managedData(envelope, cluster, value, version);
      await admin.mergePatch(Secrets, 'api-credentials', 'bench', {
        metadata: { annotations: { [CREDENTIALS_STATE_ANNOTATION]: stateAnnotation(version) } },
        data,
      });
      const t0 = performance.now();
      let proxySeen = false;
      let fileSeen = false;
      while (!proxySeen || !fileSeen) {
        if (performance.now() - t0 > 10_000) throw new Error('rotation did not propagate');
        if (!proxySeen) {
          const seen = await fetch(`${gateway.url}/v1/connections/api/proxy/rot`, {
            headers: { authorization: `Bearer ${token}` },
          }).then(
            (r) => r.json() as Promise<{ key?: string }>,
            () => ({ key: undefined }),
          );
          if (seen.key === value) {
            proxySeen = true;
            proxyMs.push(performance.now() - t0);
          }
        }
        if (!fileSeen && current() === value) {
          fileSeen = true;
          fileMs.push(performance.now() - t0);
        }
        if (!proxySeen || !fileSeen) await new Promise((r) => setImmediate(r));
      }
    }
    stopAgent.abort();
    await agentDone;

    const direct = results.get('direct upstream')!;
    const rows = [...results].map(([name, r]) => {
      const rps = r.requests / r.seconds;
      const p50 = percentile(r.latenciesMs, 50);
      const p99 = percentile(r.latenciesMs, 99);
      const cpuUs = r.cpuMs === undefined ? NaN : (r.cpuMs * 1000) / r.requests;
      return {
        name,
        rps,
        p50,
        p99,
        added50: p50 - percentile(direct.latenciesMs, 50),
        added99: p99 - percentile(direct.latenciesMs, 99),
        errors: r.errors,
        cpuUs,
      };
    });
    const out: string[] = [];
    out.push(
      `gateway benchmark: ${requests} requests per target in ${rounds} alternating rounds, concurrency ${concurrency}, loopback, Node ${process.version}, ${availableParallelism()} CPUs (load generator, gateway, upstream and nginx share them)`,
    );
    out.push('');
    out.push('| target | req/s | p50 ms | p99 ms | added p50 ms | added p99 ms | errors | proxy CPU µs/req |');
    out.push('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
    for (const r of rows)
      out.push(
        `| ${r.name} | ${fmt(r.rps, 0)} | ${fmt(r.p50, 2)} | ${fmt(r.p99, 2)} | ${fmt(r.added50, 2)} | ${fmt(r.added99, 2)} | ${r.errors} | ${fmt(r.cpuUs, 0)} |`,
      );
    const gw = rows.find((r) => r.name === 'atoll gateway')!;
    const ng = rows.find((r) => r.name.startsWith('nginx'));
    const floor = rows.find((r) => r.name.startsWith('bare Node'))!;
    out.push('');
    out.push(`gateway / direct throughput: ${fmt(gw.rps / rows[0]!.rps, 2)}`);
    out.push(
      `gateway / bare Node proxy: throughput ${fmt(gw.rps / floor.rps, 2)}, CPU per request ${fmt(gw.cpuUs / floor.cpuUs, 2)} (atoll's own checks cost ${fmt(gw.cpuUs - floor.cpuUs, 0)} µs of the gateway's ${fmt(gw.cpuUs, 0)})`,
    );
    if (ng)
      out.push(
        `gateway / nginx throughput: ${fmt(gw.rps / ng.rps, 2)}; gateway / nginx p50 latency: ${fmt(gw.p50 / ng.p50, 2)}; nginx / gateway CPU per request (the throughput ratio on equal cores): ${fmt(ng.cpuUs / gw.cpuUs, 2)}`,
      );
    else out.push('nginx not installed (apt-get install nginx): comparison skipped');
    out.push('');
    out.push(`rotation propagation over ${rotations} rotations (from the Secret update's response):`);
    out.push('| path | p50 ms | p99 ms | max ms |');
    out.push('| --- | ---: | ---: | ---: |');
    out.push(
      `| next proxied request | ${fmt(percentile(proxyMs, 50), 2)} | ${fmt(percentile(proxyMs, 99), 2)} | ${fmt(Math.max(...proxyMs), 2)} |`,
    );
    out.push(
      `| agent file | ${fmt(percentile(fileMs, 50), 2)} | ${fmt(percentile(fileMs, 99), 2)} | ${fmt(Math.max(...fileMs), 2)} |`,
    );
    const framing = framingCost();
    out.push('');
    out.push(
      `framing check: ${fmt(framing.microseconds, 2)} µs per request (${framing.headers} header lines), at most ${fmt(((framing.microseconds * gw.rps) / 1e6) * 100, 3)}% of the gateway's throughput (its share of the ${fmt(1e6 / gw.rps, 0)} µs of event-loop time each proxied request takes)`,
    );
    if (json) {
      const summary = {
        bench: 'gateway',
        requests,
        concurrency,
        rounds,
        rotations,
        node: process.version,
        cpus: availableParallelism(),
        direct_rps: round2(rows[0]!.rps),
        gateway_rps: round2(gw.rps),
        nginx_rps: ng ? round2(ng.rps) : null,
        ratio_vs_nginx: ng ? round2(gw.rps / ng.rps) : null,
        ratio_vs_direct: round2(gw.rps / rows[0]!.rps),
        gateway_p50_ms: round2(gw.p50),
        gateway_p99_ms: round2(gw.p99),
        added_p50_ms: round2(gw.added50),
        added_p99_ms: round2(gw.added99),
        nginx_added_p99_ms: ng ? round2(ng.added99) : null,
        gateway_cpu_us_per_req: round2(gw.cpuUs),
        floor_rps: round2(floor.rps),
        floor_cpu_us_per_req: round2(floor.cpuUs),
        ratio_vs_floor: round2(gw.rps / floor.rps),
        // atoll's own per-request work: the gateway's CPU per request above the bare Node proxy's (ADR 0030).
        own_cpu_us_per_req: round2(gw.cpuUs - floor.cpuUs),
        cpu_ratio_vs_floor: round2(gw.cpuUs / floor.cpuUs),
        nginx_cpu_us_per_req: ng ? round2(ng.cpuUs) : null,
        cpu_ratio_vs_nginx: ng ? round2(ng.cpuUs / gw.cpuUs) : null,
        rotation_proxy_p99_ms: round2(percentile(proxyMs, 99)),
        rotation_file_p99_ms: round2(percentile(fileMs, 99)),
        framing_us: round2(framing.microseconds),
      };
      out.push(JSON.stringify(summary));
    }
    process.stdout.write(`${out.join('\n')}\n`);
  } finally {
    stopAgent.abort();
    await closeGateway?.();
    nginx?.proc.kill('SIGTERM');
    await bare.close();
    await upstream.close();
    await cp.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv.includes(UPSTREAM_FLAG)) {
  runUpstream();
} else if (isMainThread) {
  main().catch((err: unknown) => {
    process.stderr.write(`gateway benchmark failed: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  });
} else {
  void generateLoad(workerData as LoadJob).then((r) => parentPort?.postMessage(r));
}

/** User + system CPU time (ms) of a process or thread, from its /proc stat line (Linux). */
function cpuMsOf(statPath: string): number {
  const stat = readFileSync(statPath, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // Fields 14 and 15 of stat(5) (utime, stime), in clock ticks; the list here starts at field 3.
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
}

const CLOCK_TICKS = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

function round2(n: number): number {
  return Math.round(n * 100) / 100;
}

/** What the framing check (src/gateway/framing.ts) costs on a typical request's raw headers. */
function framingCost(): { microseconds: number; headers: number } {
  const rawHeaders = [
    'Host',
    '127.0.0.1:8443',
    'Authorization',
    `Bearer ${'x'.repeat(900)}`,
    'User-Agent',
    'bench',
    'Accept',
    '*/*',
    'Content-Type',
    'application/json',
    'Content-Length',
    '512',
    'Accept-Encoding',
    'gzip',
  ];
  const req = { method: 'POST', httpVersion: '1.1', rawHeaders };
  const rounds = 200_000;
  let ok = 0;
  for (let i = 0; i < 10_000; i++) ok += checkFraming(req).ok ? 1 : 0;
  const started = process.hrtime.bigint();
  for (let i = 0; i < rounds; i++) ok += checkFraming(req).ok ? 1 : 0;
  const elapsed = Number(process.hrtime.bigint() - started) / 1000;
  if (ok !== rounds + 10_000) throw new Error('framing check refused the benchmark request');
  return { microseconds: elapsed / rounds, headers: rawHeaders.length / 2 };
}
