/**
 * Issue 12.4 (ADR 0028): a periodic probe that finds what the last one found
 * writes nothing; a changed outcome writes at once, with Ready's
 * lastTransitionTime moved by that write and by no other. Against the
 * operator of `atoll dev` and a loopback HTTP service whose answer the test
 * switches, judged by every version of the object the API server stored (a
 * watch from the connection's resourceVersion) and by the probes the service
 * received.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ExternalConnection } from '../src/api/v1alpha1/index.js';
import type { KubeObject } from '../src/kube/client.js';
import { ExternalConnections } from '../src/kube/resources.js';
import { startHttpFixture, type HttpFixture } from './support/services.js';
import { admin, condition, createWorkspace, eventually, randomSecret, uniqueName } from './support/cluster.js';

type Conn = ExternalConnection & KubeObject;

/** When Ready last flipped (ms since epoch). */
const readySince = (c: Conn) =>
  Date.parse(c.status?.conditions?.find((x) => x.type === 'Ready')?.lastTransitionTime ?? '');

/** The CRD's shortest probe interval. */
const INTERVAL = '5s';

describe('status writes of periodic probes', () => {
  let service: HttpFixture;
  let accept = true;
  let ns: string;
  const name = 'periodic';
  const token = randomSecret('writes');
  /** Every version of the connection the API server stored after the watch started. */
  const versions: Conn[] = [];
  const stopWatch = new AbortController();
  let watching: Promise<unknown> | undefined;

  beforeAll(async () => {
    service = await startHttpFixture((_req, res) => {
      res.statusCode = accept ? 200 : 401;
      res.end();
    });
    ns = uniqueName('probe-writes');
    await createWorkspace(ns, { policy: { egress: { allowCIDRs: ['127.0.0.0/8'] } } });
  }, 60_000);
  afterAll(async () => {
    stopWatch.abort();
    await watching;
    await service?.stop();
  });

  const get = () => admin().get<Conn>(ExternalConnections, name, ns);
  const probes = () => service.requests.filter((r) => r.headers.authorization === `Bearer ${token}`).length;
  const moreProbes = (n: number, what: string) => {
    const target = probes() + n;
    return eventually(
      what,
      async () => probes(),
      (p) => p >= target,
      60_000,
    );
  };
  /** Waits until everything the operator does after a probe (a reconcile, a write or none) has had time to land. */
  const settle = () => new Promise((r) => setTimeout(r, 2_000));

  it('a connection probed every interval and finding the same outcome is not written again', async () => {
    await admin().create(ExternalConnections, {
      metadata: { name, namespace: ns },
      spec: {
        type: 'http-api',
        settings: { baseURL: service.url, auth: 'bearer' },
        credentials: { token: { value: token } },
        probe: { interval: INTERVAL },
      },
    } as never);
    const ready = await eventually(
      'Ready',
      get,
      (c) => condition(c, 'Ready')?.status === 'True' && c.status?.observedGeneration === c.metadata.generation,
      60_000,
    );
    watching = admin()
      .watch<Conn>(
        ExternalConnections,
        {
          namespace: ns,
          fieldSelector: `metadata.name=${name}`,
          resourceVersion: ready.metadata.resourceVersion!,
          signal: stopWatch.signal,
          timeoutSeconds: 600,
        },
        (ev) => {
          if (ev.type === 'MODIFIED') versions.push(ev.object);
        },
      )
      .catch(() => undefined);

    await moreProbes(3, 'three periodic probes');
    await settle();
    const now = await get();
    expect(versions, 'status writes after three unchanged probes').toEqual([]);
    expect(now.metadata.resourceVersion).toBe(ready.metadata.resourceVersion);
    expect(now.status).toEqual(ready.status);
  }, 120_000);

  it('a changed outcome is written at the next probe, once, and moves lastTransitionTime; unchanged ones after it are not', async () => {
    const before = await get();
    const switched = Date.now();
    accept = false;
    const failed = await eventually(
      'AuthenticationFailed written',
      get,
      (c) => condition(c, 'Authenticated')?.reason === 'AuthenticationFailed',
      60_000,
    );
    expect(condition(failed, 'Ready')).toMatchObject({ status: 'False', reason: 'AuthenticationFailed' });
    expect(readySince(failed)).toBeGreaterThanOrEqual(Math.floor(switched / 1000) * 1000);
    expect(Date.parse(failed.status!.lastProbe!.time!)).toBeGreaterThan(Date.parse(before.status!.lastProbe!.time!));
    expect(failed.status?.lastProbe?.result).toBe('AuthenticationFailed');

    // The failing outcome repeats: nothing more is written.
    await moreProbes(2, 'two more probes, still refused');
    await settle();
    expect(versions.map((v) => v.metadata.resourceVersion)).toEqual([failed.metadata.resourceVersion]);
    expect((await get()).status).toEqual(failed.status);

    // And back: one more write, Ready True again with a new lastTransitionTime.
    accept = true;
    const recovered = await eventually('Ready again', get, (c) => condition(c, 'Ready')?.status === 'True', 60_000);
    expect(readySince(recovered)).toBeGreaterThan(readySince(failed));
    await moreProbes(2, 'two more probes, accepted');
    await settle();
    expect(versions.map((v) => v.metadata.resourceVersion)).toEqual([
      failed.metadata.resourceVersion,
      recovered.metadata.resourceVersion,
    ]);
  }, 180_000);
});
