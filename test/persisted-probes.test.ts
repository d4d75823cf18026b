/**
 * Issues #13 (probe results persist; a restart writes nothing) and #12.1/#12.3
 * (the write budget of a connection; no KMS call in steady state), against a
 * control plane of this file's own, real moto KMS and a loopback HTTP service
 * that records every probe it receives. Judged by what the API server stored
 * (resourceVersions seen on a watch, status, Events) and by the operator's
 * own `atoll_kms_requests` counter.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ExternalConnection } from '../src/api/v1alpha1/index.js';
import type { KubeObject } from '../src/kube/client.js';
import type { Workspace } from '../src/api/v1alpha1/index.js';
import { CoreEvents, ExternalConnections, IntegrationTypes, RoleBindings, Workspaces } from '../src/kube/resources.js';
import { tenantRoleName } from '../src/controllers/workspace/tenant-rbac.js';
import { createKmsKey, startMoto, type MotoServer } from './support/moto.js';
import { startHttpFixture, type HttpFixture } from './support/services.js';
import { condition, createWorkspace, eventually, randomSecret, uniqueName } from './support/cluster.js';
import { scrapeCounter, startIsolatedAtoll, type IsolatedAtoll } from './support/operator-fixture.js';

type Conn = ExternalConnection & KubeObject;
type Event = KubeObject & { involvedObject: { name: string }; reason: string; count?: number };
type Type = KubeObject & { spec: Record<string, unknown> };
/** A copy of http-api used by one connection only: editing it changes that connection's probe inputs alone. */
const OWN_TYPE = 'persist-http';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** This file's Workspace resync period (ATOLL_WORKSPACE_RESYNC): short, so the resync happens within a test. */
const RESYNC_MS = 40_000;
const readySince = (c: Conn) => c.status?.conditions?.find((x) => x.type === 'Ready')?.lastTransitionTime;

describe('persisted probe results, write budget and steady-state KMS calls', () => {
  let moto: MotoServer;
  let upstream: HttpFixture;
  let atoll: IsolatedAtoll;
  let ns: string;
  const tokens = new Map<string, string>();

  beforeAll(async () => {
    [moto, upstream] = await Promise.all([startMoto(), startHttpFixture()]);
    const keyId = await createKmsKey(moto.endpoint);
    // A data-key cache far shorter than the windows below: only skipping the open can keep KMS quiet.
    // A short probe window: the re-probe after the restart is not held back by the window of the probe before it.
    atoll = await startIsolatedAtoll({
      controllerManager: false,
      kms: { provider: 'aws-kms', endpoint: moto.endpoint, keyId },
      env: {
        ATOLL_DEK_CACHE_MAX_AGE: '1s',
        ATOLL_PROBE_TEST_MIN_INTERVAL_SECONDS: '1',
        // A loaded machine may take longer than the default 3 s for a loopback probe; what is proven is the single write.
        ATOLL_PROBE_STATUS_GRACE: '30s',
        ATOLL_WORKSPACE_RESYNC: `${RESYNC_MS / 1000}s`,
      },
    });
    ns = uniqueName('persist');
    await createWorkspace(
      ns,
      { encryption: { keyId }, policy: { egress: { allowCIDRs: ['127.0.0.0/8'] } } },
      atoll.client,
    );
  }, 180_000);
  afterAll(async () => {
    await atoll?.stop();
    await Promise.all([moto?.stop(), upstream?.stop()]);
  });

  const get = (name: string) => atoll.client.get<Conn>(ExternalConnections, name, ns);
  const probesOf = (name: string) =>
    upstream.requests.filter((r) => r.headers.authorization === `Bearer ${tokens.get(name)}`).length;
  const isReady = (c: Conn) =>
    condition(c, 'Ready')?.status === 'True' && c.status?.observedGeneration === c.metadata.generation;
  const kmsCalls = async () => scrapeCounter(atoll.operator().healthURL, 'atoll_kms_requests');
  const drained = () =>
    eventually(
      'work queue drained',
      () => scrapeCounter(atoll.operator().healthURL, 'atoll_workqueue_depth', { controller: 'externalconnection' }),
      (n) => n === 0,
      30_000,
    );
  const reconciles = async () =>
    (await scrapeCounter(atoll.operator().healthURL, 'atoll_reconcile_total', {
      controller: 'externalconnection',
      result: 'success',
    })) +
    (await scrapeCounter(atoll.operator().healthURL, 'atoll_reconcile_total', {
      controller: 'externalconnection',
      result: 'requeue_after',
    }));
  const eventsOf = async (name: string) =>
    (await atoll.client.list<Event>(CoreEvents, { namespace: ns })).items
      .filter((e) => e.involvedObject.name === name)
      .map((e) => `${e.metadata?.name}@${e.metadata?.resourceVersion}`)
      .sort();

  async function create(name: string, type = 'http-api'): Promise<void> {
    const token = randomSecret('persist');
    tokens.set(name, token);
    await atoll.client.create(ExternalConnections, {
      metadata: { name, namespace: ns },
      spec: {
        type,
        settings: { baseURL: upstream.url, auth: 'bearer' },
        credentials: { token: { value: token } },
        probe: { interval: '1h' },
      },
    } as never);
  }

  it('a new connection against a fast service reaches Ready with one status write', async () => {
    const list = await atoll.client.list<Conn>(ExternalConnections, { namespace: ns });
    const seen: Conn[] = [];
    const stop = new AbortController();
    const watching = atoll.client
      .watch<Conn>(
        ExternalConnections,
        { namespace: ns, resourceVersion: list.metadata.resourceVersion, signal: stop.signal },
        (ev) => {
          if (ev.type === 'ADDED' || ev.type === 'MODIFIED') seen.push(ev.object);
        },
      )
      .catch(() => undefined);
    await create('fresh');
    await eventually('fresh Ready', () => get('fresh'), isReady);
    await drained();
    await sleep(2_000); // anything still queued (a requeue, a late duplicate) would write now
    stop.abort();
    await watching;

    const versions = seen.filter((c) => c.metadata.name === 'fresh');
    // The create, then exactly one status write carrying the seal and the first probe result together.
    expect(versions.map((c) => c.metadata.resourceVersion)).toHaveLength(2);
    expect(versions[0]!.status).toBeUndefined();
    const written = versions[1]!;
    expect(condition(written, 'CredentialsSealed')?.status).toBe('True');
    expect(condition(written, 'Ready')).toMatchObject({ status: 'True', reason: 'Succeeded' });
    expect(written.status?.lastProbe).toMatchObject({
      result: 'Succeeded',
      inputs: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/),
    });
    expect(probesOf('fresh')).toBe(1);
    console.log(`write budget: ${versions.length - 1} status write(s) from create to Ready`);
  }, 120_000);

  it('a restarted operator resumes from persisted results: nothing written for unchanged connections, a changed one re-probed', async () => {
    const names = ['keep-0', 'keep-1', 'keep-2', 'keep-3', 'changed'];
    const httpApi = await atoll.client.get<Type>(IntegrationTypes, 'http-api');
    await atoll.client.create(IntegrationTypes, {
      apiVersion: httpApi.apiVersion,
      kind: httpApi.kind,
      metadata: { name: OWN_TYPE },
      spec: httpApi.spec,
    } as never);
    for (const name of names) await create(name, name === 'changed' ? OWN_TYPE : 'http-api');
    for (const name of names) await eventually(`${name} Ready`, () => get(name), isReady);
    await drained();

    await atoll.stopOperator();
    const before = new Map<string, { conn: Conn; events: string[]; probes: number }>();
    for (const name of [...names, 'fresh'])
      before.set(name, { conn: await get(name), events: await eventsOf(name), probes: probesOf(name) });
    // While no operator (and so no admission webhook for connections) runs, one connection's probe inputs
    // change: its IntegrationType's spec (a new generation; the description is not part of the destination).
    await atoll.client.mergePatch(IntegrationTypes, OWN_TYPE, undefined, {
      spec: { description: 'A copy of http-api whose edits reach one connection only.' },
    });

    const restartedAt = Date.now();
    await atoll.start();
    await eventually(
      'the fresh operator reconciled every connection',
      reconciles,
      (n) => n >= names.length + 1,
      60_000,
    );
    const reprobed = await eventually(
      'changed re-probed',
      () => get('changed'),
      (c) => isReady(c) && Date.parse(c.status?.lastProbe?.time ?? '') >= restartedAt,
    );
    await drained();
    await sleep(2_000);

    for (const name of [...names.filter((n) => n !== 'changed'), 'fresh']) {
      const was = before.get(name)!;
      const now = await get(name);
      // Not one write: same resourceVersion, same managedFields, same status (Ready's lastTransitionTime included).
      expect(now.metadata.resourceVersion, name).toBe(was.conn.metadata.resourceVersion);
      expect(now.metadata.managedFields, name).toEqual(was.conn.metadata.managedFields);
      expect(now.status, name).toEqual(was.conn.status);
      expect(await eventsOf(name), name).toEqual(was.events);
      expect(probesOf(name), name).toBe(was.probes);
    }
    // The changed one: probed once more, its new inputs recorded, Ready True throughout (no flip: same lastTransitionTime).
    const was = before.get('changed')!.conn;
    expect(probesOf('changed')).toBe(before.get('changed')!.probes + 1);
    expect(reprobed.status?.lastProbe?.inputs).not.toBe(was.status?.lastProbe?.inputs);
    expect(readySince(reprobed)).toBe(readySince(was));
    // What the restart cost in KMS calls: each managed copy opened once by the new process (and the Workspace's key check).
    const restartKms = await kmsCalls();
    console.log(`restart: ${restartKms} KMS call(s) for ${names.length + 1} connections`);
    expect(restartKms).toBeLessThanOrEqual(names.length + 2);
  }, 240_000);

  it('steady-state reconciles make no KMS call, with a data-key cache shorter than the window', async () => {
    const names = ['keep-0', 'keep-1', 'keep-2', 'keep-3', 'changed', 'fresh'];
    await drained();
    const start = await kmsCalls();
    const rounds = 3;
    for (let round = 0; round < rounds; round++) {
      await sleep(1_500); // every cached data key has expired
      const done = await reconciles();
      // An annotation nobody reads: each write makes the controller reconcile the connection.
      for (const name of names)
        await atoll.client.mergePatch(ExternalConnections, name, ns, {
          metadata: { annotations: { 'example.com/touched': String(round) } },
        });
      await eventually(
        `round ${round}: every connection reconciled`,
        reconciles,
        (n) => n >= done + names.length,
        30_000,
      );
      await drained();
    }
    const steady = (await kmsCalls()) - start;
    console.log(`steady state: ${steady} KMS call(s) over ${rounds * names.length} forced reconciles`);
    expect(steady).toBe(0);
    for (const name of names) expect(isReady(await get(name)), name).toBe(true);
  }, 120_000);

  it('a periodic probe that finds what status records costs one reconcile, not two', async () => {
    // ADR 0034: the reconcile after such a probe would write nothing; its only job, the next timer, is done without it.
    const name = 'periodic';
    const token = randomSecret('periodic');
    tokens.set(name, token);
    await atoll.client.create(ExternalConnections, {
      metadata: { name, namespace: ns },
      spec: {
        type: 'http-api',
        settings: { baseURL: upstream.url, auth: 'bearer' },
        credentials: { token: { value: token } },
        probe: { interval: '5s' },
      },
    } as never);
    await eventually('periodic Ready', () => get(name), isReady);
    await eventually(
      'a first periodic probe',
      async () => probesOf(name),
      (n) => n >= 2,
      30_000,
    );
    await drained();
    const [probesBefore, reconcilesBefore] = [probesOf(name), await reconciles()];
    await eventually(
      'four more periodic probes',
      async () => probesOf(name),
      (n) => n >= probesBefore + 4,
      60_000,
    );
    await sleep(1_000); // what follows the last probe has landed
    const probes = probesOf(name) - probesBefore;
    const spent = (await reconciles()) - reconcilesBefore;
    console.log(`steady probes: ${spent} reconcile(s) for ${probes} probe(s)`);
    // One per probe (the timer's, which starts it); the previous code spent two. Other connections here probe hourly.
    expect(spent).toBeLessThanOrEqual(probes + 1);
    expect(spent).toBeGreaterThanOrEqual(probes - 1);
    expect(isReady(await get(name))).toBe(true);
    await atoll.client.delete(ExternalConnections, name, ns);
  }, 120_000);

  it('recounts a Workspace on connection changes without applying its RBAC again; the resync puts back what was edited', async () => {
    // ADR 0034: at 10,000 connections, recounts that applied a dozen objects each were the API server's main load.
    const wsNs = uniqueName('resync');
    const createdAt = Date.now();
    await createWorkspace(wsNs, { policy: { egress: { allowCIDRs: ['127.0.0.1/32'] } } }, atoll.client);
    // Its RBAC was applied between createdAt and now; recounts used to apply again once half the period had passed.
    await sleep(RESYNC_MS / 2 + 2_000);
    const binding = tenantRoleName('viewer');
    await atoll.client.delete(RoleBindings, binding, wsNs); // a tenant admin's edit
    await atoll.client.create(ExternalConnections, {
      metadata: { name: 'counted', namespace: wsNs },
      spec: {
        type: 'http-api',
        settings: { baseURL: upstream.url, auth: 'bearer' },
        credentials: { token: { value: randomSecret('resync') } },
        probe: { interval: '1h' },
      },
    } as never);
    // The connection's changes (created, sealed, Ready) each recount the workspace.
    await eventually(
      'the workspace counts its Ready connection',
      () => atoll.client.get<Workspace & KubeObject>(Workspaces, wsNs, wsNs),
      (w) => w.status?.connections?.ready === 1,
      30_000,
    );
    const recountedAfter = Date.now() - createdAt;
    expect(
      recountedAfter,
      'the recount must come before the resync is due for this check to mean anything',
    ).toBeLessThan(RESYNC_MS - 2_000);
    expect(await atoll.client.tryGet(RoleBindings, binding, wsNs)).toBeUndefined();
    // The resync (due within the period plus its jitter of a fifth) applies again and puts it back.
    await eventually(
      'the resync restores the deleted RoleBinding',
      () => atoll.client.tryGet(RoleBindings, binding, wsNs),
      (b) => b !== undefined,
      RESYNC_MS * 1.2 + 15_000,
    );
  }, 150_000);
});
