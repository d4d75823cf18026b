import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ExternalConnection } from '../../src/api/v1alpha1/index.js';
import { loadOperatorConfig } from '../../src/config/operator-config.js';
import type { KubeObject } from '../../src/kube/client.js';
import { ExternalConnections } from '../../src/kube/resources.js';
import { startHttpFixture, type HttpFixture } from '../support/services.js';
import { admin, condition, createWorkspace, eventually, randomSecret, uniqueName } from '../support/cluster.js';

/**
 * Attack (issue 9): probes queued for a deleted connection still ran, and
 * held its plaintext until they did: deleting a connection (say, after a
 * credential leaked, or to stop it being sent somewhere) did not stop the
 * next request carrying it. Now deletion drops a queued probe (and the
 * closure holding the plaintext) and aborts a running one.
 */

type Conn = ExternalConnection & KubeObject;

// One workspace holds at most its share of the probe pool: filling that queues the rest of its probes.
const CONCURRENCY = loadOperatorConfig({}).probes.perWorkspace;

/** An upstream that never answers: each probe to it holds a probe slot until aborted. */
async function startHoldingServer(): Promise<{
  url: string;
  held: () => number;
  abandoned: () => number;
  stop: () => Promise<void>;
}> {
  const open = new Set<ServerResponse<IncomingMessage>>();
  let abandoned = 0;
  const server = createServer((req, res) => {
    open.add(res);
    res.on('close', () => {
      if (open.delete(res)) abandoned++;
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    held: () => open.size,
    abandoned: () => abandoned,
    stop: () =>
      new Promise((resolve) => {
        for (const res of open) res.destroy();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

describe("attack: a deleted connection's queued probe still sends its credential", () => {
  const ns = uniqueName('delprobe');
  let hold: Awaited<ReturnType<typeof startHoldingServer>>;
  let upstream: HttpFixture;

  beforeAll(async () => {
    hold = await startHoldingServer();
    upstream = await startHttpFixture();
    await createWorkspace(ns, { policy: { egress: { allowCIDRs: ['127.0.0.0/8'] } } });
  });
  afterAll(async () => {
    await hold?.stop();
    await upstream?.stop();
  });

  const create = (name: string, baseURL: string, token: string) =>
    admin().create(ExternalConnections, {
      metadata: { name, namespace: ns },
      spec: {
        type: 'http-api',
        settings: { baseURL, auth: 'bearer' },
        credentials: { token: { value: token } },
        probe: { interval: '0', timeout: '60s' },
      },
    } as never);

  it('never runs the probe of a connection deleted while it waited, and aborts the running ones', async () => {
    // Fill every probe slot this workspace may hold with probes that do not finish on their own.
    const holders = Array.from({ length: CONCURRENCY }, (_, i) => `holder-${i}`);
    for (const name of holders) await create(name, hold.url, randomSecret('holder'));
    await eventually(
      'every probe slot held',
      async () => hold.held(),
      (n) => n === CONCURRENCY,
      60_000,
    );

    // The victim's probe is queued behind them, holding its plaintext.
    const victimToken = randomSecret('victim');
    await create('victim', upstream.url, victimToken);
    const queued = await eventually(
      'victim reconciled, probe queued',
      () => admin().get<Conn>(ExternalConnections, 'victim', ns),
      (c) =>
        condition(c, 'CredentialsSealed')?.status === 'True' && c.status?.observedGeneration === c.metadata.generation,
    );
    expect(condition(queued, 'Reachable')).toMatchObject({ status: 'Unknown', reason: 'ProbePending' });

    await admin().delete(ExternalConnections, 'victim', ns);
    await eventually(
      'victim gone',
      () => admin().tryGet(ExternalConnections, 'victim', ns),
      (c) => c === undefined,
    );
    // Deleting the holders aborts their running probes: the upstream sees each request abandoned.
    for (const name of holders) await admin().delete(ExternalConnections, name, ns);
    await eventually(
      'running probes aborted',
      async () => hold.abandoned(),
      (n) => n === CONCURRENCY,
      30_000,
    );

    // The slots are free again; a probe queued now runs, and the victim's never did.
    const canaryToken = randomSecret('canary');
    await create('canary', upstream.url, canaryToken);
    await eventually(
      'canary probed',
      async () => upstream.requests.length,
      (n) => n >= 1,
      30_000,
    );
    expect(upstream.requests.map((r) => r.headers.authorization)).toEqual([`Bearer ${canaryToken}`]);
    expect(JSON.stringify(upstream.requests)).not.toContain(victimToken);
  });
});
