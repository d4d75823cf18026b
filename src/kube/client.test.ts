import { afterEach, describe, expect, it } from 'vitest';
import { capturedLogger, FakeKubeApi, reply, silentWatch, until } from '../../test/support/fake-kube-api.js';
import { Informer } from '../runtime/informer.js';
import { KubeApiError } from './errors.js';
import { Leases, Secrets } from './resources.js';

const lease = (name: string) => ({ metadata: { name, namespace: 'ns' }, spec: { holderIdentity: 'x' } });
/** Node timers may fire a millisecond early; lower bounds allow for it. */
const SLACK_MS = 5;

let api: FakeKubeApi | undefined;
afterEach(async () => {
  await api?.close();
  api = undefined;
});

describe('KubeClient honours Retry-After', () => {
  it('retries a 429 after the wait it names, then succeeds', async () => {
    api = await FakeKubeApi.start();
    api.upsert(Leases, lease('l1'));
    api.script((r) => r.method === 'GET', reply(429, 'TooManyRequests', { 'retry-after': '1' }), 2);
    const got = await api.client().get(Leases, 'l1', 'ns');
    expect(got.metadata?.name).toBe('l1');
    const gets = api.requests.filter((r) => r.method === 'GET');
    expect(gets).toHaveLength(3);
    expect(gets[1]!.at - gets[0]!.at).toBeGreaterThanOrEqual(1000 - SLACK_MS);
    expect(gets[2]!.at - gets[1]!.at).toBeGreaterThanOrEqual(1000 - SLACK_MS);
  });

  it('retries a write answered 503 with Retry-After (the server did not act on it)', async () => {
    api = await FakeKubeApi.start();
    const stored = api.upsert(Leases, lease('l2'));
    api.script((r) => r.method === 'PUT', reply(503, 'ServiceUnavailable', { 'retry-after': '0' }), 1);
    const written = await api.client().replace(Leases, { ...stored, spec: { holderIdentity: 'y' } });
    expect(written.spec.holderIdentity).toBe('y');
    expect(api.get<typeof stored>(Leases, 'l2', 'ns')?.spec.holderIdentity).toBe('y');
    expect(api.requests.filter((r) => r.method === 'PUT')).toHaveLength(2);
  });

  it('does not retry a 429 or 500 without Retry-After', async () => {
    api = await FakeKubeApi.start();
    api.upsert(Leases, lease('l3'));
    api.script((r) => r.method === 'GET', reply(429, 'TooManyRequests'), 1);
    api.script((r) => r.method === 'GET', reply(500, 'InternalError'), 1);
    await expect(api.client().get(Leases, 'l3', 'ns')).rejects.toMatchObject({ status: 429 });
    await expect(api.client().get(Leases, 'l3', 'ns')).rejects.toMatchObject({ status: 500 });
    expect(api.requests).toHaveLength(2);
  });

  it('gives up after its retry budget, each wait capped', async () => {
    api = await FakeKubeApi.start();
    api.script(() => true, reply(429, 'TooManyRequests', { 'retry-after': '3600' }));
    const err = await api
      .client({ retry: { maxRetries: 2, maxWaitMs: 20 } })
      .get(Leases, 'l4', 'ns')
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KubeApiError);
    expect((err as KubeApiError).status).toBe(429);
    expect(api.requests).toHaveLength(3);
  });

  it('stops waiting when the caller aborts', async () => {
    api = await FakeKubeApi.start();
    api.script(() => true, reply(429, 'TooManyRequests', { 'retry-after': '3600' }));
    const abort = new AbortController();
    const pending = api.client().get(Leases, 'l5', 'ns', { signal: abort.signal });
    await until('the first answer arrived', () => api!.requests.length === 1);
    abort.abort();
    await expect(pending).rejects.toBeInstanceOf(KubeApiError);
    expect(api.requests).toHaveLength(1);
  });
});

describe('KubeClient HTTP/2 watch transport', () => {
  const secret = (name: string) => ({ metadata: { name, namespace: 'ns' }, data: {} });

  it('finds a half-open connection by an unanswered PING and watches again on a new one', async () => {
    api = await FakeKubeApi.start({ tls: true });
    const { log, lines } = capturedLogger();
    // The stall watchdog is far away: only the PING can notice the dead connection in time.
    const client = api.client({ http2: { pingIntervalMs: 100, pingTimeoutMs: 300 }, requestTimeoutMs: 1_000 });
    const informer = new Informer(client, Secrets, {
      namespace: 'ns',
      log,
      watchTimeoutSeconds: 600,
      restartBackoff: { initialMs: 10, maxMs: 100 },
    });
    api.upsert(Secrets, secret('before'));
    informer.start();
    await informer.waitForSync();
    await until('a watch is open', () => api!.openWatches === 1);
    const firstWatch = api.watchRequests()[0]!;

    api.blackholeExisting(); // TCP stays up, nothing gets through, no FIN, no RST
    await until(
      'a watch is open on another connection',
      () =>
        api!.watchRequests().some((w) => w.connection !== firstWatch.connection && !w.abandoned) &&
        api!.openWatches >= 1,
    );
    api.upsert(Secrets, secret('after'));
    await until('the informer saw the change through the new watch', () => informer.get('ns/after') !== undefined);
    expect(api.sessions).toBeGreaterThanOrEqual(2);
    await informer.stop();
    expect(lines.join('\n')).not.toContain(api.token);
  });

  it('a stalled watch drops its whole HTTP/2 session: the next watch dials a new connection', async () => {
    api = await FakeKubeApi.start({ tls: true });
    const { log, lines } = capturedLogger();
    const client = api.client();
    // The first connection still answers PINGs, but its watches never say anything.
    let firstSession: number | undefined;
    api.script((r) => r.watch && (firstSession ??= r.connection) === r.connection, silentWatch);
    const informer = new Informer(client, Secrets, {
      namespace: 'ns',
      log,
      watchTimeoutSeconds: 1,
      stallGraceMs: 100,
      restartBackoff: { initialMs: 10, maxMs: 100 },
    });
    informer.start();
    await informer.waitForSync();
    await until(
      'a watch is open on a second connection',
      () => api!.watchRequests().some((w) => w.connection !== firstSession && !w.abandoned) && api!.openWatches >= 1,
    );
    api.upsert(Secrets, secret('seen'));
    await until('the informer saw the change through the new watch', () => informer.get('ns/seen') !== undefined);
    await informer.stop();
    expect(lines.join('\n')).not.toContain(api.token);
  });
});
