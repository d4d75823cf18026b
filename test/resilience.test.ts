/**
 * Invariant 7 (fail closed, lose nothing, resume by itself) against real
 * failures: the kube-apiserver goes away under a running controller, the
 * controller is replaced by a fresh process, and two replicas compete for the
 * Lease. Each part runs its own control plane and operator (never the shared
 * `atoll dev`), because it breaks them on purpose.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { managedSecretName } from '../src/api/v1alpha1/index.js';
import type { KubeClient, KubeObject } from '../src/kube/client.js';
import { ExternalConnections, Leases, Namespaces, Secrets, Workspaces } from '../src/kube/resources.js';
import { condition, createWorkspace, eventually, randomSecret, uniqueName } from './support/cluster.js';
import {
  OPERATOR_NAMESPACE,
  readyzStatus,
  scrapeCounter,
  startIsolatedAtoll,
  type IsolatedAtoll,
} from './support/operator-fixture.js';

type Conditions = Array<{ type: string; status: string; reason: string; message: string }>;
type Connection = KubeObject & {
  status?: {
    conditions?: Conditions;
    credentials?: Record<string, { version: number; keyId: string; hint: string; updatedAt: string }>;
    lastProbe?: { inputs?: string };
  };
};
type Lease = KubeObject & { spec: { holderIdentity?: string | null } };

/** An http-api connection whose probe target is refused by egress policy, so no probe leaves loopback. */
function connection(namespace: string, name: string) {
  return {
    metadata: { name, namespace },
    spec: {
      type: 'http-api',
      settings: { baseURL: 'https://127.0.0.1:9', auth: 'bearer' },
      credentials: { token: { value: randomSecret() } },
      probe: { interval: '0' },
    },
  };
}

async function waitSealed(
  client: KubeClient,
  namespace: string,
  name: string,
  timeoutMs = 30_000,
): Promise<Connection> {
  return eventually(
    `${namespace}/${name} CredentialsSealed=True`,
    () => client.get<Connection>(ExternalConnections, name, namespace),
    (c) => condition(c, 'CredentialsSealed')?.status === 'True' && c.status?.credentials?.token?.version !== undefined,
    timeoutMs,
  );
}

async function leaseHolder(client: KubeClient): Promise<string | null | undefined> {
  return (await client.tryGet<Lease>(Leases, 'atoll-controller', OPERATOR_NAMESPACE))?.spec.holderIdentity;
}

/** Reconciles the controller finished without error (success or a scheduled requeue). */
async function completedReconciles(healthURL: string, controller?: string): Promise<number> {
  const by: Record<string, string> = controller ? { controller } : {};
  return (
    (await scrapeCounter(healthURL, 'atoll_reconcile_total', { ...by, result: 'success' })) +
    (await scrapeCounter(healthURL, 'atoll_reconcile_total', { ...by, result: 'requeue_after' }))
  );
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('resilience: API-server restart and controller restart', () => {
  let atoll: IsolatedAtoll;
  beforeAll(async () => {
    atoll = await startIsolatedAtoll({ controllerManager: false });
  });
  afterAll(async () => {
    await atoll?.stop();
  });

  it('recovers after the kube-apiserver is down for 5 s and reconciles changes made after its return', async () => {
    const before = uniqueName('res-before');
    await createWorkspace(before, {}, atoll.client);
    const health = atoll.operator().healthURL;
    expect(await readyzStatus(health)).toBe(200);

    await atoll.cp.stopApiServer();
    const seenWhileDown: number[] = [];
    const downUntil = Date.now() + 5_000;
    while (Date.now() < downUntil) {
      seenWhileDown.push(await readyzStatus(health));
      await sleep(250);
    }
    await atoll.cp.startApiServer();

    // The health server itself never went away, and /readyz told the truth:
    // once the informers' list/watch failed it reported 503.
    expect(seenWhileDown.length).toBeGreaterThan(0);
    expect(seenWhileDown).toContain(503);
    // The informers noticed the outage (their watches failed and they retried)...
    const failures = atoll.logLines().filter((l) => l.includes('"list/watch failed, retrying"'));
    expect(failures.length).toBeGreaterThan(0);
    // ...and relisted: ready again once the API server is back.
    await eventually(
      '/readyz 200 after the restart',
      () => readyzStatus(health),
      (s) => s === 200,
      90_000,
    );

    const ns = uniqueName('res-after');
    await atoll.client.create(Namespaces, { metadata: { name: ns } });
    await atoll.client.create(Workspaces, { metadata: { name: ns, namespace: ns }, spec: {} } as never);
    await atoll.client.create(ExternalConnections, connection(ns, 'after-restart') as never);
    const ws = await eventually(
      'Workspace created after the restart is Ready',
      () => atoll.client.get<Connection>(Workspaces, ns, ns),
      (w) => condition(w, 'Ready')?.status === 'True',
      90_000,
    );
    expect(condition(ws, 'Ready')?.status).toBe('True');
    const conn = await waitSealed(atoll.client, ns, 'after-restart', 90_000);
    expect(conn.status?.credentials?.token?.version).toBe(1);
    const secret = await atoll.client.get<KubeObject & { data?: Record<string, string> }>(
      Secrets,
      managedSecretName('after-restart'),
      ns,
    );
    expect(Buffer.from(secret.data?.token ?? '', 'base64').toString('utf8')).toMatch(/^atoll:v1:/);
  }, 240_000);

  it('a fresh controller resumes without rewriting or re-encrypting anything', async () => {
    const N = 10;
    const ns = uniqueName('res-restart');
    await createWorkspace(ns, {}, atoll.client);
    const names = Array.from({ length: N }, (_, i) => `conn-${i}`);
    for (const name of names) await atoll.client.create(ExternalConnections, connection(ns, name) as never);
    for (const name of names) await waitSealed(atoll.client, ns, name, 60_000);

    // Record the state at rest, with no operator running.
    await atoll.stopOperator();
    const snapshot = async () => {
      const out: Record<string, { secretRV?: string; secretData?: string; credentials?: unknown }> = {};
      for (const name of names) {
        const secret = await atoll.client.get<KubeObject & { data?: Record<string, string> }>(
          Secrets,
          managedSecretName(name),
          ns,
        );
        const conn = await atoll.client.get<Connection>(ExternalConnections, name, ns);
        out[name] = {
          secretRV: secret.metadata?.resourceVersion,
          secretData: JSON.stringify(secret.data),
          credentials: conn.status?.credentials,
        };
      }
      return out;
    };
    const before = await snapshot();
    for (const name of names)
      expect((before[name]!.credentials as Record<string, { version: number }>).token?.version).toBe(1);

    const linesBefore = atoll.logLines().length;
    await atoll.start();
    const health = atoll.operator().healthURL;
    await eventually(
      `the fresh controller reconciled all ${N} connections`,
      () => completedReconciles(health, 'externalconnection'),
      (n) => n >= N,
      60_000,
    );
    // Let anything the first pass queued (probe results) run too.
    await eventually(
      'work queue drained',
      () => scrapeCounter(health, 'atoll_workqueue_depth', { controller: 'externalconnection' }),
      (n) => n === 0,
      30_000,
    );
    await sleep(2_000);

    const after = await snapshot();
    expect(after).toEqual(before);
    // Nothing was sealed again: the only data keys the fresh process generated
    // are the Workspaces' EncryptionReady key checks (one seal each), none per connection.
    const workspaces = (await atoll.client.list(Workspaces)).items.length;
    expect(workspaces).toBeLessThan(N);
    expect(await scrapeCounter(health, 'atoll_kms_requests', { operation: 'generateDataKey' })).toBeLessThanOrEqual(
      workspaces,
    );
    const rewrites = atoll
      .logLines()
      .slice(linesBefore)
      .filter((l) => l.includes('"managed secret written"'));
    expect(rewrites).toEqual([]);
  }, 240_000);
});

describe('resilience: leader election', () => {
  let atoll: IsolatedAtoll;
  beforeAll(async () => {
    atoll = await startIsolatedAtoll({ controllerManager: false, leaderElection: true, identity: 'atoll-a' });
  });
  afterAll(async () => {
    await atoll?.stop();
  });

  it('only the Lease holder reconciles, and a graceful leader hands over within 5 s', async () => {
    await eventually(
      'atoll-a leads',
      () => leaseHolder(atoll.client),
      (h) => h === 'atoll-a',
      30_000,
    );
    const leader = atoll.operator();
    const follower = await atoll.startReplica('atoll-b');

    const ns = uniqueName('res-le');
    await createWorkspace(ns, {}, atoll.client);
    await atoll.client.create(ExternalConnections, connection(ns, 'first') as never);
    await waitSealed(atoll.client, ns, 'first');
    await sleep(3_000); // more than a retry period: the follower had every chance to try
    expect(await leaseHolder(atoll.client)).toBe('atoll-a');
    expect(await completedReconciles(leader.healthURL)).toBeGreaterThan(0);
    expect(await scrapeCounter(follower.operator.healthURL, 'atoll_reconcile_total')).toBe(0);
    // The follower is ready (caches synced, serving admission) while it waits.
    expect(await readyzStatus(follower.operator.healthURL)).toBe(200);
    // Both cache the new namespace's managed Secrets - the leader once it applied the bindings, the follower once
    // the Workspace's status says they exist - and neither asked before it was allowed (a 403 starts a backoff).
    for (const url of [leader.healthURL, follower.operator.healthURL])
      await eventually(
        "the namespace's Secrets watched",
        () => scrapeCounter(url, 'atoll_secret_watches', { kind: 'managed' }),
        (n) => n === 1,
      );
    expect(atoll.logLines().filter((l) => l.includes('list/watch of secrets') && l.includes('forbidden'))).toEqual([]);

    // Settled (probe result included), as the new leader will find it.
    await eventually(
      'first probed',
      () => atoll.client.get<Connection>(ExternalConnections, 'first', ns),
      (c) => c.status?.lastProbe?.inputs !== undefined,
    );
    await eventually(
      'leader queue drained',
      () => scrapeCounter(leader.healthURL, 'atoll_workqueue_depth', { controller: 'externalconnection' }),
      (n) => n === 0,
      30_000,
    );
    const settled = await atoll.client.get<Connection>(ExternalConnections, 'first', ns);
    const stoppedAt = Date.now();
    await atoll.stopOperator();
    await eventually(
      'atoll-b takes the Lease',
      () => leaseHolder(atoll.client),
      (h) => h === 'atoll-b',
      5_000,
    );
    expect(Date.now() - stoppedAt).toBeLessThan(5_000);

    await atoll.client.create(ExternalConnections, connection(ns, 'second') as never);
    const second = await waitSealed(atoll.client, ns, 'second');
    expect(second.status?.credentials?.token?.version).toBe(1);
    expect(await completedReconciles(follower.operator.healthURL, 'externalconnection')).toBeGreaterThan(0);
    expect(atoll.logLines().some((l) => l.includes('"became leader"') && l.includes('"instance":"atoll-b"'))).toBe(
      true,
    );
    // The new leader reconciled 'first' too, and resumed from its persisted probe result: not one write (ADR 0021).
    await eventually(
      'atoll-b reconciled both connections',
      () => completedReconciles(follower.operator.healthURL, 'externalconnection'),
      (n) => n >= 2,
      30_000,
    );
    await eventually(
      'atoll-b queue drained',
      () => scrapeCounter(follower.operator.healthURL, 'atoll_workqueue_depth', { controller: 'externalconnection' }),
      (n) => n === 0,
      30_000,
    );
    const after = await atoll.client.get<Connection>(ExternalConnections, 'first', ns);
    expect(after.metadata?.resourceVersion).toBe(settled.metadata?.resourceVersion);
    expect(after.status).toEqual(settled.status);
  }, 180_000);
});
