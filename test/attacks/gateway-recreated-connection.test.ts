import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ExternalConnections } from '../../src/kube/resources.js';
import { admin, eventually, kubectl, randomSecret } from '../support/cluster.js';
import { startRawUpstream, type RawUpstream } from './support/raw-upstream.js';
import { createConnection, createTestType, gatewayCall, loopbackWorkspace, workload } from './support/tenant.js';

/**
 * Red-team pass on issue 9: a connection deleted and created again under the
 * same name (a new uid, a new credential) must not reuse the old object's
 * pool, cached plaintext or orphaned Secret: the first request after the
 * re-creation carries the new key on a fresh upstream socket, and the old key
 * never travels again once the old object is gone.
 */
describe("attack: reusing a deleted connection's pool or credential through a namesake", () => {
  let upstream: RawUpstream;
  let ns: string;
  let type: string;
  let token: string;
  const oldKey = randomSecret('oldkey');
  const newKey = randomSecret('newkey');

  beforeAll(async () => {
    upstream = await startRawUpstream();
    type = await createTestType(['proxy']);
    ns = await loopbackWorkspace('recreate');
    await createConnection(ns, 'api', type, upstream.url, oldKey);
    token = await workload(ns, 'app', { use: true });
  });

  afterAll(async () => {
    await upstream?.close();
  });

  it('the namesake gets a new pool and only its own key; nothing is sent while no connection exists', async () => {
    const before = await gatewayCall('/v1/connections/api/proxy/old', token);
    expect(before.status).toBe(200);
    const oldSocket = ((await before.json()) as { connection: number }).connection;

    // It is in use (delete protection): the owner confirms the deletion.
    expect(
      (await kubectl(['annotate', 'externalconnection', 'api', '-n', ns, 'atoll.dev/allow-delete=true'])).code,
    ).toBe(0);
    await admin().delete(ExternalConnections, 'api', ns);
    // Until the gateway's watch delivers the deletion it may still serve the connection to its own
    // workload; from the first refusal on, nothing may reach the upstream.
    await eventually(
      'connection gone from the gateway',
      async () => (await gatewayCall('/v1/connections/api/proxy/probe-gone', token)).status,
      (s) => s === 404 || s === 503,
    );
    await eventually(
      'old connection object gone',
      () => admin().tryGet(ExternalConnections, 'api', ns),
      (c) => c === undefined,
    );
    const sentAfterDelete = upstream.requests.length;
    expect([404, 503]).toContain((await gatewayCall('/v1/connections/api/proxy/gone', token)).status);
    expect(upstream.requests.length).toBe(sentAfterDelete);

    await createConnection(ns, 'api', type, upstream.url, newKey);
    const after = await eventually(
      'namesake served',
      () => gatewayCall('/v1/connections/api/proxy/new', token),
      (r) => r.status === 200,
    );
    const newSocket = ((await after.json()) as { connection: number }).connection;

    expect(newSocket).not.toBe(oldSocket);
    const fresh = upstream.requests.slice(sentAfterDelete);
    expect(fresh.length).toBeGreaterThan(0);
    for (const r of fresh) {
      expect(r.path).toBe('/new');
      expect(r.headers.filter(([n]) => n === 'x-api-key')).toEqual([['x-api-key', newKey]]);
      expect(r.raw.toString('latin1')).not.toContain(oldKey);
    }
    expect(upstream.requests.filter((r) => r.path === '/gone')).toEqual([]);
  });
});
