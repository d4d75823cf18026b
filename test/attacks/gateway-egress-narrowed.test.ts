import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Workspaces } from '../../src/kube/resources.js';
import { admin, createWorkspace, eventually, randomSecret, uniqueName } from '../support/cluster.js';
import { startRawUpstream, type RawUpstream } from './support/raw-upstream.js';
import { createConnection, createTestType, gatewayCall, loopbackWorkspace, workload } from './support/tenant.js';

async function proxied(token: string, path: string): Promise<{ status: number; code?: string }> {
  const res = await gatewayCall(`/v1/connections/api/proxy${path}`, token);
  const body = await res.text();
  return {
    status: res.status,
    ...(res.status === 502 ? { code: (JSON.parse(body) as { error: { code: string } }).error.code } : {}),
  };
}

/**
 * The gateway remembers egress decisions per frozen policy object and address
 * (ADR 0030). A platform team narrowing a Workspace's allowCIDRs must cut its
 * workloads off from the next request the gateway plans with the new
 * Workspace, and one Workspace's remembered "allowed" must never answer for
 * another's.
 */
describe('attack: riding a remembered egress decision past a narrowed or foreign policy', () => {
  let upstream: RawUpstream;
  let type: string;
  const secret = randomSecret('egressmemo');

  beforeAll(async () => {
    upstream = await startRawUpstream();
    type = await createTestType(['proxy']);
  });

  afterAll(async () => {
    await upstream?.close();
  });

  it('a narrowed allowCIDRs refuses every later request, and widening it again is honoured', async () => {
    const ns = await loopbackWorkspace('egressnarrow');
    await createConnection(ns, 'api', type, upstream.url, secret);
    const token = await workload(ns, 'app', { use: true });
    expect(await proxied(token, '/before')).toEqual({ status: 200 });

    await admin().mergePatch(Workspaces, ns, ns, { spec: { policy: { egress: { allowCIDRs: ['10.0.0.0/8'] } } } });
    await eventually(
      '/probe refused',
      () => proxied(token, '/probe'),
      (r) => r.status === 502 && r.code === 'EgressDenied',
    );
    const seen = upstream.requests.length;
    for (let i = 0; i < 5; i++)
      expect(await proxied(token, `/after-${i}`)).toEqual({ status: 502, code: 'EgressDenied' });
    expect(upstream.requests.length).toBe(seen);
    expect(upstream.requests.map((r) => r.path)).not.toContain('/after-0');

    await admin().mergePatch(Workspaces, ns, ns, { spec: { policy: { egress: { allowCIDRs: ['127.0.0.1/32'] } } } });
    await eventually(
      '/widened allowed',
      () => proxied(token, '/widened'),
      (r) => r.status === 200,
    );
  });

  it("another Workspace's remembered decision for the same address does not let a closed Workspace through", async () => {
    const open = await loopbackWorkspace('egressopen');
    await createConnection(open, 'api', type, upstream.url, secret);
    const openToken = await workload(open, 'app', { use: true });
    expect(await proxied(openToken, '/open')).toEqual({ status: 200 });

    // Created closed: no request of it may ever reach the upstream.
    const closed = uniqueName('egressclosed');
    await createWorkspace(closed, { policy: { egress: { allowCIDRs: [] } } });
    await createConnection(closed, 'api', type, upstream.url, secret);
    const closedToken = await workload(closed, 'app', { use: true });
    await eventually(
      '/closed-probe refused',
      () => proxied(closedToken, '/closed-probe'),
      (r) => r.status === 502 && r.code === 'EgressDenied',
    );
    expect(await proxied(openToken, '/open-again')).toEqual({ status: 200 });
    expect(await proxied(closedToken, '/closed')).toEqual({ status: 502, code: 'EgressDenied' });
    const paths = upstream.requests.map((r) => r.path);
    expect(paths).toContain('/open-again');
    expect(paths.filter((p) => p.startsWith('/closed'))).toEqual([]);
  });
});
