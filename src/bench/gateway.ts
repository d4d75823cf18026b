/**
 * Gateway benchmark (a script, not a test): requests/s and latency through
 * `atoll gateway` versus the upstream directly and versus nginx injecting the
 * same header, all on loopback in one run, plus how fast a rotation reaches
 * the next proxied request and the agent's files.
 *
 *   npm run build && node dist/bench/gateway.js [--requests 4000] [--concurrency 16] [--rotations 20]
 *
 * The load generator runs in a worker thread so it does not share the
 * gateway's event loop. nginx (Debian package `nginx`) is optional: without
 * it that row is skipped.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { parseAllDocuments } from 'yaml';
import { CONNECTION_LABEL, MANAGED_BY_LABEL, MANAGED_BY_VALUE, SEALED_SECRET_TYPE } from '../api/v1alpha1/index.js';
import { createProviderRegistry, Envelope, InMemoryKeyRingStore } from '../crypto/index.js';
import { runAgent } from '../gateway/agent.js';
import { checkFraming } from '../gateway/framing.js';
import { destinationDigest } from '../integrations/destination.js';
import { startGateway } from '../gateway/server.js';
import type { KubeClient, KubeObject } from '../kube/client.js';
import { ClusterRoles, CustomResourceDefinitions, ExternalConnections, IntegrationTypes, Namespaces, RoleBindings, Secrets, ServiceAccounts, Workspaces } from '../kube/resources.js';
import { createLogger } from '../runtime/logger.js';
import { createOperatorMetrics } from '../runtime/metrics.js';
import { packageRoot } from '../dev/binaries.js';
import { ControlPlane } from '../dev/control-plane.js';
import { freePort } from '../dev/ports.js';
import { fmt, numericFlag, percentile } from './stats.js';
import { readManifests } from '../cli/install.js';

interface LoadJob {
  url: string;
  headers: Record<string, string>;
  requests: number;
  concurrency: number;
}

interface LoadResult {
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
  await Promise.all(Array.from({ length: job.concurrency }, async () => {
    while (issued < job.requests) {
      issued++;
      await one();
    }
  }));
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

async function upstreamServer(): Promise<{ url: string; lastKey: () => string; close(): Promise<void> }> {
  let last = '';
  const server = http.createServer((req, res) => {
    last = String(req.headers['x-api-key']);
    res.writeHead(last.startsWith('bench-secret') ? 200 : 401, { 'content-type': 'application/json' });
    res.end('{"ok":true}');
  });
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, lastKey: () => last, close: () => new Promise((r) => server.close(() => r())) };
}

async function startNginx(upstream: string, dir: string): Promise<{ url: string; proc: ChildProcess } | undefined> {
  if (spawnSync('nginx', ['-v']).error) return undefined;
  const port = await freePort();
  const upstreamPort = new URL(upstream).port;
  writeFileSync(path.join(dir, 'nginx.conf'), `
worker_processes 1;
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
`);
  const proc = spawn('nginx', ['-p', dir, '-c', path.join(dir, 'nginx.conf')], { stdio: 'ignore' });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 100; i++) {
    const ok = await fetch(url).then((r) => r.ok, () => false);
    if (ok) return { url, proc };
    await new Promise((r) => setTimeout(r, 50));
  }
  proc.kill('SIGKILL');
  return undefined;
}

async function setUpCluster(admin: KubeClient, envelope: Envelope, upstream: string): Promise<{ identity: string; destination: string }> {
  const root = packageRoot();
  for (const file of readdirSync(path.join(root, 'crds'))) {
    for (const doc of parseAllDocuments(readFileSync(path.join(root, 'crds', file), 'utf8'))) {
      const crd = doc.toJS() as KubeObject | null;
      if (crd) await admin.create(CustomResourceDefinitions, crd);
    }
  }
  for (let i = 0; ; i++) {
    if (await admin.list(Workspaces).then(() => true, () => false)) break;
    if (i > 300) throw new Error('CRDs were not established');
    await new Promise((r) => setTimeout(r, 100));
  }
  for (const role of ['atoll-connection-user', 'atoll-connection-reader']) {
    await admin.create(ClusterRoles, readManifests([path.join(root, 'config/rbac/cluster-roles.yaml')]).find((o) => o.metadata?.name === role)!);
  }
  await admin.create(Namespaces, { metadata: { name: 'bench' } });
  const ws = await admin.create(Workspaces, { metadata: { name: 'bench', namespace: 'bench' }, spec: { policy: { egress: { allowCIDRs: ['127.0.0.1/32'] } } } });
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
    displayName: 'Bench API', category: 'api',
    settingsSchema: { type: 'object', properties: { baseURL: { type: 'string' } } },
    credentialFields: [{ name: 'apiKey', required: true }],
    probe: { http: { url: '{{settings.baseURL}}/' } },
    gateway: { baseURL: '{{settings.baseURL}}', auth: { type: 'header', headerName: 'X-API-Key', credential: 'apiKey' } },
    delivery: ['proxy', 'files'],
  };
  await admin.create(IntegrationTypes, { metadata: { name: 'bench-api' }, spec: benchType });
  const destination = destinationDigest(benchType, { baseURL: upstream });
  const sealed = await envelope.seal(SECRET, { namespace: 'bench', workspace: identity, connection: 'api', field: 'apiKey', destination }, { provider: 'local', keyId: 'local/default' });
  const conn = await admin.create<KubeObject & { spec: unknown }>(ExternalConnections, { metadata: { name: 'api', namespace: 'bench' }, spec: { type: 'bench-api', settings: { baseURL: upstream }, credentials: { apiKey: { sealed } } } });
  await admin.create(Secrets, {
    metadata: { name: 'api-credentials', namespace: 'bench', labels: { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE, [CONNECTION_LABEL]: 'api' }, ownerReferences: [{ apiVersion: 'atoll.dev/v1alpha1', kind: 'ExternalConnection', name: 'api', uid: conn.metadata!.uid!, controller: true }] },
    type: SEALED_SECRET_TYPE,
    data: { apiKey: Buffer.from(sealed).toString('base64') },
  });
  return { identity, destination };
}


async function main(): Promise<void> {
  const requests = numericFlag('requests', 4000);
  const concurrency = numericFlag('concurrency', 16);
  const rotations = numericFlag('rotations', 20);
  const dir = mkdtempSync(path.join(tmpdir(), 'atoll-bench-gw-'));
  const log = createLogger({ level: 'silent' });
  process.stderr.write('starting control plane…\n');
  const cp = await ControlPlane.start({ controllerManager: false });
  const upstream = await upstreamServer();
  const nginx = await startNginx(upstream.url, dir);
  const admin = cp.adminClient();
  const envelope = new Envelope({ providers: createProviderRegistry({ local: { store: new InMemoryKeyRingStore() } }) });
  const stopAgent = new AbortController();
  let closeGateway: (() => Promise<void>) | undefined;
  try {
    const { identity, destination } = await setUpCluster(admin, envelope, upstream.url);
    // Plain HTTP like the direct upstream and nginx rows, so the rows compare the proxying alone.
    const gateway = await startGateway({ client: admin, envelope, log, metrics: createOperatorMetrics(), host: '127.0.0.1', port: 0, insecurePlaintext: true });
    closeGateway = () => gateway.close();
    const tokenReq = await admin.request<{ status: { token: string } }>('POST', '/api/v1/namespaces/bench/serviceaccounts/app/token', {
      apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { audiences: ['atoll-gateway'], expirationSeconds: 3600 },
    });
    const token = tokenReq.status.token;

    const targets: Array<[string, LoadJob]> = [
      ['direct upstream', { url: `${upstream.url}/bench`, headers: { 'x-api-key': SECRET }, requests, concurrency }],
      ['atoll gateway', { url: `${gateway.url}/v1/connections/api/proxy/bench`, headers: { authorization: `Bearer ${token}` }, requests, concurrency }],
      ...(nginx ? [['nginx (header injection)', { url: `${nginx.url}/bench`, headers: {}, requests, concurrency }] as [string, LoadJob]] : []),
    ];
    const results = new Map<string, LoadResult>();
    for (const [name, job] of targets) {
      await runLoad({ ...job, requests: Math.min(200, requests) }); // warm-up: pools, caches, JIT
      process.stderr.write(`load: ${name}…\n`);
      results.set(name, await runLoad(job));
    }

    // Rotation propagation: time from the Secret update's response to (a) the first proxied request
    // carrying the new value and (b) the agent's file holding it.
    const tokenFile = path.join(dir, 'token');
    writeFileSync(tokenFile, token);
    const mount = path.join(dir, 'mount');
    const agentDone = runAgent({ gatewayURL: gateway.url, tokenFile, connections: ['api'], dir: mount, log, insecurePlaintext: true, signal: stopAgent.signal });
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
      const sealed = await envelope.seal(value, { namespace: 'bench', workspace: identity, connection: 'api', field: 'apiKey', destination }, { provider: 'local', keyId: 'local/default' });
      await admin.mergePatch(Secrets, 'api-credentials', 'bench', { data: { apiKey: Buffer.from(sealed).toString('base64') } });
      const t0 = performance.now();
      let proxySeen = false;
      let fileSeen = false;
      while (!proxySeen || !fileSeen) {
        if (performance.now() - t0 > 10_000) throw new Error('rotation did not propagate');
        if (!proxySeen) {
          await fetch(`${gateway.url}/v1/connections/api/proxy/rot`, { headers: { authorization: `Bearer ${token}` } }).then((r) => r.arrayBuffer());
          if (upstream.lastKey() === value) {
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
      return { name, rps, p50, p99, added50: p50 - percentile(direct.latenciesMs, 50), added99: p99 - percentile(direct.latenciesMs, 99), errors: r.errors };
    });
    const out: string[] = [];
    out.push(`gateway benchmark: ${requests} requests per target, concurrency ${concurrency}, loopback, Node ${process.version}`);
    out.push('');
    out.push('| target | req/s | p50 ms | p99 ms | added p50 ms | added p99 ms | errors |');
    out.push('| --- | ---: | ---: | ---: | ---: | ---: | ---: |');
    for (const r of rows) out.push(`| ${r.name} | ${fmt(r.rps, 0)} | ${fmt(r.p50, 2)} | ${fmt(r.p99, 2)} | ${fmt(r.added50, 2)} | ${fmt(r.added99, 2)} | ${r.errors} |`);
    const gw = rows.find((r) => r.name === 'atoll gateway')!;
    const ng = rows.find((r) => r.name.startsWith('nginx'));
    out.push('');
    out.push(`gateway / direct throughput: ${fmt(gw.rps / rows[0]!.rps, 2)}`);
    if (ng) out.push(`gateway / nginx throughput: ${fmt(gw.rps / ng.rps, 2)}; gateway / nginx p50 latency: ${fmt(gw.p50 / ng.p50, 2)}`);
    else out.push('nginx not installed (apt-get install nginx): comparison skipped');
    out.push('');
    out.push(`rotation propagation over ${rotations} rotations (from the Secret update's response):`);
    out.push('| path | p50 ms | p99 ms | max ms |');
    out.push('| --- | ---: | ---: | ---: |');
    out.push(`| next proxied request | ${fmt(percentile(proxyMs, 50), 2)} | ${fmt(percentile(proxyMs, 99), 2)} | ${fmt(Math.max(...proxyMs), 2)} |`);
    out.push(`| agent file | ${fmt(percentile(fileMs, 50), 2)} | ${fmt(percentile(fileMs, 99), 2)} | ${fmt(Math.max(...fileMs), 2)} |`);
    const framing = framingCost();
    out.push('');
    out.push(`framing check: ${fmt(framing.microseconds, 2)} µs per request (${framing.headers} header lines), at most ${fmt(framing.microseconds * gw.rps / 1e6 * 100, 3)}% of the gateway's throughput (its share of the ${fmt(1e6 / gw.rps, 0)} µs of event-loop time each proxied request takes)`);
    process.stdout.write(`${out.join('\n')}\n`);
  } finally {
    stopAgent.abort();
    await closeGateway?.();
    nginx?.proc.kill('SIGTERM');
    await upstream.close();
    await cp.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (isMainThread) {
  main().catch((err: unknown) => {
    process.stderr.write(`gateway benchmark failed: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  });
} else {
  void generateLoad(workerData as LoadJob).then((r) => parentPort?.postMessage(r));
}

/** What the framing check (src/gateway/framing.ts) costs on a typical request's raw headers. */
function framingCost(): { microseconds: number; headers: number } {
  const rawHeaders = ['Host', '127.0.0.1:8443', 'Authorization', `Bearer ${'x'.repeat(900)}`, 'User-Agent', 'bench', 'Accept', '*/*', 'Content-Type', 'application/json', 'Content-Length', '512', 'Accept-Encoding', 'gzip'];
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
