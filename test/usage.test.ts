import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConnectionUsage, ExternalConnection } from '../src/api/v1alpha1/index.js';
import { ALLOW_DELETE_ANNOTATION } from '../src/api/v1alpha1/index.js';
import { KubeClient, type KubeObject } from '../src/kube/client.js';
import { KubeApiError } from '../src/kube/errors.js';
import {
  CoreEvents,
  ExternalConnections,
  Namespaces,
  RoleBindings,
  ServiceAccounts,
  Workspaces,
} from '../src/kube/resources.js';
import { packageRoot } from '../src/dev/binaries.js';
import { UsageRecorder } from '../src/gateway/usage-recorder.js';
import { createLogger } from '../src/runtime/logger.js';
import { freePort } from '../src/dev/ports.js';
import { OPERATOR_NAMESPACE } from '../src/dev/embedded.js';
import {
  admin,
  condition,
  createWorkspace,
  devState,
  eventually,
  kubectl,
  randomSecret,
  uniqueName,
  userClient,
} from './support/cluster.js';

type Conn = ExternalConnection & KubeObject;
interface CoreEvent extends KubeObject {
  reason?: string;
  message?: string;
  count?: number;
  involvedObject?: { kind?: string; name?: string; namespace?: string };
}

const FLUSH_INTERVAL_MS = 2000;

/** A loopback upstream that answers 200 and counts requests. */
async function upstream() {
  let requests = 0;
  const server = http.createServer((req, res) => {
    requests++;
    req.resume();
    req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}'));
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests: () => requests,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

/**
 * `atoll gateway` as its own process (from dist/, as in a pod), against the
 * shared dev API server, with the shipped gateway ServiceAccount's RBAC and
 * a short flush interval. The shared dev gateway keeps the 60 s default.
 */
class GatewayProcess {
  proc: ChildProcess | undefined;
  url = '';
  logs = '';
  constructor(
    private readonly kubeconfig: string,
    private readonly replica: string,
  ) {}

  async start(): Promise<void> {
    const port = await freePort();
    this.logs = '';
    this.proc = spawn(process.execPath, [path.join(packageRoot(), 'dist', 'main.js'), 'gateway'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        PATH: process.env.PATH,
        KUBECONFIG: this.kubeconfig,
        ATOLL_NAMESPACE: OPERATOR_NAMESPACE,
        ATOLL_GATEWAY_HOST: '127.0.0.1',
        ATOLL_GATEWAY_PORT: String(port),
        ATOLL_HEALTH_HOST: '127.0.0.1',
        ATOLL_HEALTH_PORT: '0',
        ATOLL_USAGE_FLUSH_INTERVAL: `${FLUSH_INTERVAL_MS}ms`,
        POD_NAME: this.replica,
        // Loopback only, in the test: plain HTTP by the explicit opt-out (in a cluster the gateway serves HTTPS).
        ATOLL_GATEWAY_INSECURE_PLAINTEXT: 'true',
      },
    });
    this.proc.stdout?.on('data', (c: Buffer) => (this.logs += c.toString()));
    this.proc.stderr?.on('data', (c: Buffer) => (this.logs += c.toString()));
    this.url = `http://127.0.0.1:${port}`;
    await eventually(
      'own gateway ready',
      async () => this.logs.includes('gateway started'),
      (v) => v,
      60_000,
    );
  }

  /** SIGTERM, as Kubernetes stops a pod: the gateway flushes what it counted before it exits. */
  async stop(): Promise<void> {
    const proc = this.proc;
    if (proc === undefined || proc.exitCode !== null) return;
    const exited = new Promise((r) => proc.once('exit', r));
    proc.kill('SIGTERM');
    await exited;
  }
}

describe('usage, delete protection and the audit trail', () => {
  let client: KubeClient;
  let up: Awaited<ReturnType<typeof upstream>>;
  let gateway: GatewayProcess;
  const ns = uniqueName('usage');
  const conn = 'billing-api';
  const tokens: Record<string, string> = {};
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

  async function saToken(namespace: string, sa: string, audiences?: string[]): Promise<string> {
    const review = await client.request<{ status: { token: string } }>(
      'POST',
      `/api/v1/namespaces/${namespace}/serviceaccounts/${sa}/token`,
      {
        apiVersion: 'authentication.k8s.io/v1',
        kind: 'TokenRequest',
        spec: { expirationSeconds: 3600, ...(audiences ? { audiences } : {}) },
      },
    );
    return review.status.token;
  }

  function call(sa: string, name = conn): Promise<number> {
    return new Promise((resolve, reject) => {
      const req = http.request(
        `${gateway.url}/v1/connections/${name}/proxy/items`,
        { agent, headers: { authorization: `Bearer ${tokens[sa]}` } },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        },
      );
      req.on('error', reject);
      req.end();
    });
  }

  async function usageOf(name = conn): Promise<ConnectionUsage | undefined> {
    return (await client.get<Conn>(ExternalConnections, name, ns)).status?.usage;
  }

  function consumer(usage: ConnectionUsage | undefined, sa: string) {
    return usage?.consumers?.find((c) => c.serviceAccount === sa && c.via === 'proxy');
  }

  async function createConnection(name: string, baseURL: string): Promise<void> {
    await client.create(ExternalConnections, {
      metadata: { name, namespace: ns },
      spec: {
        type: 'http-api',
        settings: { baseURL, auth: 'bearer' },
        credentials: { token: { value: randomSecret('tok') } },
      },
    } as never);
    await eventually(
      `${name} sealed`,
      () => client.get<Conn>(ExternalConnections, name, ns),
      (c) => condition(c, 'CredentialsSealed')?.status === 'True',
      30_000,
    );
  }

  beforeAll(async () => {
    client = admin();
    up = await upstream();
    await createWorkspace(ns, {
      members: [{ kind: 'User', name: 'alice', role: 'editor' }],
      policy: { egress: { allowCIDRs: ['127.0.0.1/32'] } },
    });
    for (const sa of ['billing-worker', 'report-job', 'stranger']) {
      await client.create(ServiceAccounts, { metadata: { name: sa, namespace: ns } });
    }
    await client.create(RoleBindings, {
      metadata: { name: 'use-connections', namespace: ns },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'atoll-connection-user' },
      subjects: ['billing-worker', 'report-job'].map((name) => ({ kind: 'ServiceAccount', name, namespace: ns })),
    } as never);
    for (const sa of ['billing-worker', 'report-job', 'stranger'])
      tokens[sa] = await saToken(ns, sa, ['atoll-gateway']);
    await createConnection(conn, up.url);

    // The gateway process authenticates as the shipped atoll-gateway ServiceAccount (least privilege is exercised).
    const kubeconfig = path.join(mkdtempSync(path.join(tmpdir(), 'atoll-usage-')), 'kubeconfig');
    const ca = Buffer.from((await client.access.requestOptions()).ca as Buffer).toString('base64');
    writeFileSync(
      kubeconfig,
      stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [{ name: 'dev', cluster: { server: devState().server, 'certificate-authority-data': ca } }],
        users: [{ name: 'gw', user: { token: await saToken(OPERATOR_NAMESPACE, 'atoll-gateway') } }],
        contexts: [{ name: 'dev', context: { cluster: 'dev', user: 'gw' } }],
        'current-context': 'dev',
      }),
      { mode: 0o600 },
    );
    gateway = new GatewayProcess(kubeconfig, 'usage-gw');
    await gateway.start();
  }, 120_000);

  afterAll(async () => {
    await gateway?.stop();
    agent.destroy();
    await up?.close();
  });

  it('two ServiceAccounts calling through the gateway appear as consumers with their counts; a stranger does not', async () => {
    for (let i = 0; i < 3; i++) expect(await call('billing-worker')).toBe(200);
    for (let i = 0; i < 2; i++) expect(await call('report-job')).toBe(200);
    expect(await call('stranger')).toBe(403);

    const usage = await eventually(
      'usage flushed',
      () => usageOf(),
      (u) => consumer(u, 'billing-worker')?.requests24h === 3 && consumer(u, 'report-job')?.requests24h === 2,
      4 * FLUSH_INTERVAL_MS + 5000,
    );
    expect(usage?.consumers?.map((c) => c.serviceAccount).sort()).toEqual(['billing-worker', 'report-job']);
    expect(usage?.totals).toMatchObject({ requests: 5, requests24h: 5, consumers: 2 });
    expect(Date.parse(usage!.lastUsedAt!)).toBeGreaterThan(Date.now() - 60_000);
    // kubectl's LAST USED column reads the same field.
    const table = await kubectl(['get', 'externalconnections', conn, '-n', ns]);
    expect(table.stdout.split('\n')[0]).toContain('LAST USED');
    expect(table.stdout.split('\n')[1]).toMatch(/\d+s\s+\S+\s*$/);
  });

  it('a gateway restart keeps the figures: counts flushed at shutdown, the new process adds to them', async () => {
    expect(await call('billing-worker')).toBe(200);
    // Stop before the next flush is due: the shutdown flush must carry this request.
    await gateway.stop();
    const afterStop = await usageOf();
    expect(consumer(afterStop, 'billing-worker')?.requests24h).toBe(4);
    await gateway.start();
    expect(await call('report-job')).toBe(200);
    const usage = await eventually(
      'usage after restart',
      () => usageOf(),
      (u) => consumer(u, 'report-job')?.requests24h === 3,
      4 * FLUSH_INTERVAL_MS + 5000,
    );
    expect(consumer(usage, 'billing-worker')?.requests24h).toBe(4);
    expect(usage?.totals?.requests).toBe(7);
    // Two gateway processes wrote: each under its own replica identity, so neither overwrote the other.
    expect(usage?.replicas?.filter((r) => r.name.startsWith('usage-gw-'))).toHaveLength(2);
  });

  it('the controller does not clobber status.usage when it writes status', async () => {
    const before = await client.get<Conn>(ExternalConnections, conn, ns);
    await new Promise((r) => setTimeout(r, 1100)); // probe times have second precision
    await client.mergePatch(ExternalConnections, conn, ns, {
      metadata: { annotations: { 'atoll.dev/test-requested-at': new Date().toISOString() } },
    });
    const after = await eventually(
      'probe after test request',
      () => client.get<Conn>(ExternalConnections, conn, ns),
      (c) => c.status?.lastProbe?.time !== before.status?.lastProbe?.time,
      30_000,
    );
    expect(after.status?.usage).toEqual(before.status?.usage);
    const testEvent = (await events(conn)).find((e) => e.reason === 'TestRequested');
    expect(testEvent?.message).toMatch(
      /^test requested by atoll-admin at .+: metadata\.annotations\.atoll\.dev\/test-requested-at$/,
    );
  });

  it('rotation by alice produces one aggregated Event naming alice and the field, never the value', async () => {
    const alice = userClient('alice');
    const values = [randomSecret('rot'), randomSecret('rot')];
    for (const value of values) {
      await alice.mergePatch(ExternalConnections, conn, ns, {
        spec: { credentials: { token: { value, sealed: null } } },
      });
      await eventually(
        'rotation event',
        () => events(conn),
        (evs) =>
          evs.some(
            (e) =>
              e.reason === 'CredentialsRotated' &&
              e.message?.includes('by alice') &&
              e.count === values.indexOf(value) + 1,
          ),
        30_000,
      );
    }
    const rotated = (await events(conn)).filter((e) => e.reason === 'CredentialsRotated');
    expect(rotated).toHaveLength(1);
    expect(rotated[0]!.count).toBe(2);
    expect(rotated[0]!.message).toMatch(/^credentials rotated by alice at .+: spec\.credentials\.token$/);
    const all = JSON.stringify(await events(conn));
    for (const v of values) expect(all).not.toContain(v);
  });

  it('usage writes stay at most one per flush interval under a burst of requests (counted with a watch)', async () => {
    const burstConn = 'burst-api';
    await createConnection(burstConn, up.url);
    const start = await client.get<Conn>(ExternalConnections, burstConn, ns);
    const writes: number[] = [];
    const stop = new AbortController();
    let lastFlush = '';
    const watching = client
      .watch<Conn>(
        ExternalConnections,
        {
          namespace: ns,
          fieldSelector: `metadata.name=${burstConn}`,
          resourceVersion: start.metadata.resourceVersion!,
          signal: stop.signal,
        },
        (ev) => {
          // A gateway write is one that moved a replica's sequence; its own flushedAt says when (watch delivery can batch).
          const replicas = ev.object.status?.usage?.replicas ?? [];
          const mine = JSON.stringify(replicas);
          if (ev.type === 'MODIFIED' && mine !== lastFlush) {
            lastFlush = mine;
            writes.push(Math.max(...replicas.map((r) => Date.parse(r.flushedAt ?? ''))));
          }
        },
      )
      .catch(() => undefined);

    const total = 3000;
    const began = Date.now();
    let sent = 0;
    await Promise.all(
      Array.from({ length: 50 }, async (_, w) => {
        while (sent < total) {
          sent++;
          expect(await call(w % 2 === 0 ? 'billing-worker' : 'report-job', burstConn)).toBe(200);
        }
      }),
    );
    const sentIn = Date.now() - began;
    const usage = await eventually(
      'burst counted',
      () => usageOf(burstConn),
      (u) => u?.totals?.requests === total,
      4 * FLUSH_INTERVAL_MS + 10_000,
    );
    const elapsed = Date.now() - began;
    console.log(
      `burst: ${total} requests in ${sentIn} ms (${Math.round((total / sentIn) * 1000)}/s); ${writes.length} usage writes in ${elapsed} ms`,
    );
    stop.abort();
    await watching;
    // Every request counted exactly once, in at most one write per interval (plus the first one, which is not
    // delayed, and one for the jitter between the API server's write and the watch event that the test times).
    expect(usage?.totals?.requests).toBe(total);
    expect(writes.length).toBeGreaterThan(0);
    expect(writes.length).toBeLessThanOrEqual(Math.floor(elapsed / FLUSH_INTERVAL_MS) + 2);
    for (let i = 1; i < writes.length; i++) expect(writes[i]! - writes[i - 1]!).toBeGreaterThan(FLUSH_INTERVAL_MS / 2);
  }, 120_000);

  it('deleting a connection in use is refused naming its consumers; the annotation lets it through; both are recorded', async () => {
    const refusal = await client.delete(ExternalConnections, conn, ns).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(refusal).toBeInstanceOf(KubeApiError);
    expect((refusal as KubeApiError).status).toBe(403);
    expect((refusal as KubeApiError).message).toContain('billing-worker');
    expect((refusal as KubeApiError).message).toContain('report-job');
    expect((refusal as KubeApiError).message).toContain(`${ALLOW_DELETE_ANNOTATION}=true`);
    expect(await client.tryGet(ExternalConnections, conn, ns)).toBeDefined();

    await userClient('alice').mergePatch(ExternalConnections, conn, ns, {
      metadata: { annotations: { [ALLOW_DELETE_ANNOTATION]: 'true' } },
    });
    await userClient('alice').delete(ExternalConnections, conn, ns);
    await eventually(
      'connection gone',
      () => client.tryGet(ExternalConnections, conn, ns),
      (c) => c === undefined,
      30_000,
    );
    const evs = await events(conn);
    const refused = evs.find((e) => e.reason === 'DeleteRefused')?.message ?? '';
    expect(refused).toMatch(/^delete by atoll-admin refused: in use by serviceaccounts /);
    expect(refused).toContain('billing-worker (proxy, last used');
    expect(refused).toContain('report-job (proxy, last used');
    expect(evs.find((e) => e.reason === 'ConnectionDeleted')?.message).toMatch(
      /^deleted by alice with atoll.dev\/allow-delete while in use by/,
    );
  });

  it('an open agent stream protects the connection while it lasts (the recorder the gateway uses, against the API server)', async () => {
    const streamed = 'orders-db';
    await createConnection(streamed, up.url);
    const recorder = new UsageRecorder({
      client,
      log: createLogger({ level: 'silent' }),
      flushIntervalMs: 500,
      replica: 'stream-test',
    });
    recorder.start();
    try {
      const uid = (await client.get<Conn>(ExternalConnections, streamed, ns)).metadata?.uid;
      const closeStream = recorder.streamOpened(ns, streamed, uid, 'db-agent');
      const open = await eventually(
        'stream recorded',
        () => usageOf(streamed),
        (u) => (u?.activeStreams ?? []).some((s) => s.serviceAccount === 'db-agent' && s.streams === 1),
        10_000,
      );
      expect(open?.consumers?.find((c) => c.serviceAccount === 'db-agent')?.via).toBe('files');
      const refusal = await client.delete(ExternalConnections, streamed, ns).then(
        () => undefined,
        (err: unknown) => err as KubeApiError,
      );
      expect(refusal?.message).toContain('db-agent (files, last used');
      expect(refusal?.message).toContain('agent streaming now');
      closeStream();
      await eventually(
        'stream entry removed',
        () => usageOf(streamed),
        (u) => (u?.activeStreams ?? []).length === 0,
        10_000,
      );
    } finally {
      await recorder.close();
    }
  });

  it('a flush whose answer was lost is not counted twice (the write landed; the sequence number says so)', async () => {
    const lossy = 'lossy-api';
    await createConnection(lossy, up.url);
    /** The real API server, but the first status write's answer never arrives (as on a timeout after the write). */
    class LosingClient extends KubeClient {
      lose = 1;
      override async replace<T extends KubeObject>(...args: Parameters<KubeClient['replace']>): Promise<T> {
        const written = await super.replace<T>(args[0], args[1] as T, args[2]);
        if (this.lose-- > 0) throw new Error('socket hang up');
        return written;
      }
    }
    const recorder = new UsageRecorder({
      client: new LosingClient(client.access),
      log: createLogger({ level: 'silent' }),
      flushIntervalMs: 300,
      replica: 'lossy-test',
    });
    recorder.start();
    try {
      const uid = (await client.get<Conn>(ExternalConnections, lossy, ns)).metadata?.uid;
      for (let i = 0; i < 5; i++) recorder.record(ns, lossy, uid, 'billing-worker', 'proxy');
      await eventually(
        'first write landed',
        () => usageOf(lossy),
        (u) => u?.totals?.requests === 5,
        10_000,
      );
      for (let i = 0; i < 2; i++) recorder.record(ns, lossy, uid, 'billing-worker', 'proxy');
      const usage = await eventually(
        'second write landed',
        () => usageOf(lossy),
        (u) => (u?.replicas?.find((r) => r.name === 'lossy-test')?.sequence ?? 0) >= 2,
        10_000,
      );
      expect(usage?.totals?.requests).toBe(7);
      expect(consumer(usage, 'billing-worker')?.requests24h).toBe(7);
    } finally {
      await recorder.close();
    }
    expect((await usageOf(lossy))?.totals?.requests).toBe(7);
  });

  it('deleting the namespace is never blocked by connections in use, and is recorded', async () => {
    const other = uniqueName('usage-ns');
    await createWorkspace(other, {});
    await client.create(ExternalConnections, {
      metadata: { name: 'busy', namespace: other },
      spec: {
        type: 'http-api',
        settings: { baseURL: up.url, auth: 'bearer' },
        credentials: { token: { value: randomSecret('tok') } },
      },
    } as never);
    const recent = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    await client.mergePatch(
      ExternalConnections,
      'busy',
      other,
      {
        status: {
          usage: {
            lastUsedAt: recent,
            consumers: [{ serviceAccount: 'worker', via: 'proxy', lastUsedAt: recent, requests24h: 1 }],
          },
        },
      },
      { subresource: 'status' },
    );
    // In use: a direct delete is refused…
    await expect(client.delete(ExternalConnections, 'busy', other)).rejects.toMatchObject({ status: 403 });
    // Deleting the Workspace is the platform's decision: allowed, and recorded with the connections in use.
    await client.delete(Workspaces, other, other);
    const wsEvents = await eventually(
      'workspace deletion recorded',
      () => client.list<CoreEvent>(CoreEvents, { namespace: other }),
      (l) => l.items.some((e) => e.reason === 'WorkspaceDeleted'),
      30_000,
    );
    expect(wsEvents.items.find((e) => e.reason === 'WorkspaceDeleted')?.message).toBe(
      `workspace ${other} deleted by atoll-admin; connections in use: busy`,
    );
    // …and the namespace goes, with everything in it.
    await client.delete(Namespaces, other);
    await eventually(
      'namespace deleted',
      () => client.tryGet(Namespaces, other),
      (n) => n === undefined,
      90_000,
    );
    const recorded = await client.list<CoreEvent>(CoreEvents, { namespace: 'default' });
    expect(
      recorded.items.find((e) => e.reason === 'DeletedWithNamespace' && e.involvedObject?.name === other)?.message,
    ).toContain('it was in use by serviceaccount worker');
  }, 120_000);

  async function events(name: string): Promise<CoreEvent[]> {
    const list = await client.list<CoreEvent>(CoreEvents, { namespace: ns });
    return list.items.filter((e) => e.involvedObject?.kind === 'ExternalConnection' && e.involvedObject.name === name);
  }
});
