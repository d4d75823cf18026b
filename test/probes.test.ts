import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ExternalConnection } from '../src/api/v1alpha1/index.js';
import { TEST_REQUESTED_AT_ANNOTATION } from '../src/api/v1alpha1/index.js';
import type { KubeObject } from '../src/kube/client.js';
import { CoreEvents, ExternalConnections, IntegrationTypes } from '../src/kube/resources.js';
import type { SigV4Credentials } from './support/moto.js';
import { startMariadb, startPostgres, type DatabaseServer } from './support/databases.js';
import { MOTO_CREDENTIALS, MOTO_REGION, startMoto, type MotoServer } from './support/moto.js';
import {
  closedPort,
  startHttpFixture,
  startPrometheus,
  startRedis,
  startSilentServer,
  startTlsMismatchServer,
  type CountingService,
  type HttpFixture,
  type RunningService,
} from './support/services.js';
import { admin, condition, createWorkspace, eventually, kubectl, randomSecret, uniqueName } from './support/cluster.js';
import { signedMotoFetch as signedFetch } from './support/moto.js';

/**
 * Issue 4, end to end: real PostgreSQL, MariaDB, Redis, Prometheus and S3
 * (moto) on loopback, probed by the operator started by `atoll dev`, judged
 * only by what the ExternalConnection status says and what the services saw.
 */

type Conn = ExternalConnection & KubeObject;
type Credentials = Record<string, string>;

const LOOPBACK_ONLY = { egress: { allowCIDRs: ['127.0.0.0/8'] } };
const WAIT_MS = 30_000;
const BUCKET = 'atoll-probes';

/** Every plaintext credential used in this file: none may show up in an Event or a status. */
const plaintexts: string[] = [];
function secret(prefix?: string): string {
  const s = randomSecret(prefix);
  plaintexts.push(s);
  return s;
}

async function createConnection(
  ns: string,
  name: string,
  type: string,
  settings: Record<string, unknown>,
  credentials: Credentials,
  probe?: { interval?: string; timeout?: string },
): Promise<Conn> {
  const spec = {
    type,
    settings,
    credentials: Object.fromEntries(Object.entries(credentials).map(([k, v]) => [k, { value: v }])),
    ...(probe ? { probe } : {}),
  };
  const created = await admin().create<Conn>(ExternalConnections, { metadata: { name, namespace: ns }, spec } as never);
  // Sealed by the webhook: the plaintext never reaches storage.
  for (const field of Object.keys(credentials)) expect(created.spec.credentials?.[field]?.sealed).toMatch(/^atoll:v1:/);
  return created;
}

const get = (ns: string, name: string) => () => admin().get<Conn>(ExternalConnections, name, ns);

/** Waits (bounded) for a connection whose current generation has a probe result matching `predicate`. */
function probed(ns: string, name: string, predicate: (c: Conn) => boolean, what = 'a probe result'): Promise<Conn> {
  return eventually(
    `${ns}/${name}: ${what}`,
    get(ns, name),
    (c) => c.status?.observedGeneration === c.metadata.generation && c.status?.lastProbe !== undefined && predicate(c),
    WAIT_MS,
  );
}

const isReady = (c: Conn) => condition(c, 'Ready')?.status === 'True';
const authFailed = (c: Conn) => condition(c, 'Authenticated')?.status === 'False';

function expectReady(c: Conn): void {
  expect(condition(c, 'Ready')).toMatchObject({ status: 'True', reason: 'Succeeded' });
  expect(condition(c, 'Reachable')).toMatchObject({ status: 'True' });
  expect(condition(c, 'Authenticated')).toMatchObject({ status: 'True', reason: 'Succeeded' });
  expect(c.status?.lastProbe?.result).toBe('Succeeded');
}

function expectAuthenticationFailed(c: Conn): void {
  // The service answered, so it is reachable; it refused the credential.
  expect(condition(c, 'Reachable')).toMatchObject({ status: 'True' });
  expect(condition(c, 'Authenticated')).toMatchObject({ status: 'False', reason: 'AuthenticationFailed' });
  expect(condition(c, 'Ready')).toMatchObject({ status: 'False', reason: 'AuthenticationFailed' });
  expect(c.status?.lastProbe?.result).toBe('AuthenticationFailed');
}

/** An IAM user allowed s3:* with a fresh access key, then a bucket, then moto starts enforcing auth. */
async function prepareS3(endpoint: string): Promise<SigV4Credentials> {
  const iam = async (params: Record<string, string>): Promise<string> => {
    const body = new URLSearchParams({ ...params, Version: '2010-05-08' }).toString();
    const { status, text } = await signedFetch(new URL(endpoint + '/'), 'POST', 'iam', MOTO_CREDENTIALS, body);
    if (status !== 200) throw new Error(`IAM ${params['Action']} failed with HTTP ${status}`);
    return text;
  };
  await iam({ Action: 'CreateUser', UserName: 'prober' });
  await iam({
    Action: 'PutUserPolicy',
    UserName: 'prober',
    PolicyName: 's3',
    PolicyDocument: JSON.stringify({
      Version: '2012-10-17',
      Statement: [{ Effect: 'Allow', Action: 's3:*', Resource: '*' }],
    }),
  });
  const xml = await iam({ Action: 'CreateAccessKey', UserName: 'prober' });
  const accessKeyId = /<AccessKeyId>([^<]+)<\/AccessKeyId>/.exec(xml)?.[1];
  const secretAccessKey = /<SecretAccessKey>([^<]+)<\/SecretAccessKey>/.exec(xml)?.[1];
  if (!accessKeyId || !secretAccessKey) throw new Error('CreateAccessKey returned no key');
  const created = await signedFetch(new URL(`${endpoint}/${BUCKET}`), 'PUT', 's3', { accessKeyId, secretAccessKey });
  if (created.status !== 200) throw new Error(`CreateBucket failed with HTTP ${created.status}`);
  const reset = await fetch(`${endpoint}/moto-api/reset-auth`, { method: 'POST', body: '0' });
  if (reset.status !== 200) throw new Error('moto did not turn on authentication');
  plaintexts.push(secretAccessKey);
  return { accessKeyId, secretAccessKey };
}

describe('ExternalConnection probes against real services, through the operator', () => {
  const ns = uniqueName('probes');
  const closedNs = uniqueName('probes-noegress');
  const pgPassword = secret('pg');
  const mariaPassword = secret('my');
  const redisPassword = secret('rd');
  const promPassword = secret('pm');
  let pg: DatabaseServer;
  let maria: DatabaseServer;
  let redis: RunningService;
  let prom: RunningService & { url: string };
  let moto: MotoServer;
  let s3: SigV4Credentials;
  const stops: Array<() => Promise<void>> = [];

  beforeAll(async () => {
    const started = await Promise.allSettled([
      startPostgres({ user: 'atoll', password: pgPassword, database: 'app' }).then(
        (s) => (stops.push(() => s.stop()), (pg = s)),
      ),
      startMariadb({ user: 'atoll', password: mariaPassword, database: 'app' }).then(
        (s) => (stops.push(() => s.stop()), (maria = s)),
      ),
      startRedis({ password: redisPassword }).then((s) => (stops.push(() => s.stop()), (redis = s))),
      startPrometheus({ username: 'reader', password: promPassword }).then(
        (s) => (stops.push(() => s.stop()), (prom = s)),
      ),
      startMoto().then(async (s) => (stops.push(() => s.stop()), (moto = s), (s3 = await prepareS3(s.endpoint)))),
      createWorkspace(ns, { policy: LOOPBACK_ONLY }),
      createWorkspace(closedNs, {}),
    ]);
    const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  });

  afterAll(async () => {
    await Promise.allSettled(stops.map((stop) => stop()));
  });

  describe('right credentials are Ready, wrong ones AuthenticationFailed', () => {
    async function rightAndWrong(
      type: string,
      settings: Record<string, unknown>,
      right: Credentials,
      wrong: Credentials,
    ): Promise<void> {
      const good = uniqueName(`${type}-good`);
      const bad = uniqueName(`${type}-bad`);
      await createConnection(ns, good, type, settings, right);
      await createConnection(ns, bad, type, settings, wrong);
      const [g, b] = await Promise.all([
        probed(ns, good, isReady, 'Ready'),
        probed(ns, bad, authFailed, 'Authenticated=False'),
      ]);
      expectReady(g);
      expectAuthenticationFailed(b);
    }

    it('postgresql', async () => {
      await rightAndWrong(
        'postgresql',
        { host: pg.host, port: pg.port, database: 'app', user: 'atoll', sslmode: 'disable' },
        { password: pgPassword },
        { password: secret('pgwrong') },
      );
    });

    it('mysql (MariaDB)', async () => {
      await rightAndWrong(
        'mysql',
        { host: maria.host, port: maria.port, database: 'app', user: 'atoll', tls: false },
        { password: mariaPassword },
        { password: secret('mywrong') },
      );
    });

    it('redis', async () => {
      await rightAndWrong(
        'redis',
        { host: redis.host, port: redis.port, tls: false },
        { password: redisPassword },
        { password: secret('rdwrong') },
      );
    });

    it('prometheus (basic auth)', async () => {
      await rightAndWrong(
        'prometheus',
        { url: prom.url, auth: 'basic' },
        { username: 'reader', password: promPassword },
        { username: 'reader', password: secret('pmwrong') },
      );
    });

    it('s3 (moto)', async () => {
      const settings = { endpoint: moto.endpoint, region: MOTO_REGION, bucket: BUCKET, forcePathStyle: true };
      await rightAndWrong(
        's3',
        settings,
        { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
        { accessKeyId: s3.accessKeyId, secretAccessKey: secret('s3wrong') },
      );
    });
  });

  describe('failure modes are classified', () => {
    const fixtures: CountingService[] = [];
    afterAll(async () => {
      await Promise.allSettled(fixtures.map((f) => f.stop()));
    });

    it('a closed port is Reachable=False Unreachable', async () => {
      const closed = await closedPort();
      const name = uniqueName('closed');
      await createConnection(
        ns,
        name,
        'redis',
        { host: closed.host, port: closed.port, tls: false },
        { password: secret() },
      );
      const c = await probed(ns, name, (x) => condition(x, 'Reachable')?.status === 'False');
      expect(condition(c, 'Reachable')).toMatchObject({ status: 'False', reason: 'Unreachable' });
      expect(condition(c, 'Ready')).toMatchObject({ status: 'False', reason: 'Unreachable' });
      expect(c.status?.lastProbe?.result).toBe('Unreachable');
    });

    it('a silent server is a Timeout within probe.timeout', async () => {
      const silent = await startSilentServer();
      fixtures.push(silent);
      const name = uniqueName('silent');
      await createConnection(
        ns,
        name,
        'redis',
        { host: silent.host, port: silent.port, tls: false },
        { password: secret() },
        { timeout: '2s' },
      );
      const c = await probed(ns, name, (x) => x.status?.lastProbe?.result === 'Timeout');
      expect(silent.connections()).toBeGreaterThan(0);
      // Connected but never answered: the service may be up, so Reachable is not False.
      expect(condition(c, 'Reachable')).toMatchObject({ status: 'Unknown', reason: 'Timeout' });
      expect(condition(c, 'Authenticated')).toMatchObject({ status: 'Unknown', reason: 'Timeout' });
      expect(condition(c, 'Ready')?.status).not.toBe('True');
      expect(c.status?.lastProbe?.durationMs).toBeGreaterThanOrEqual(1_900);
      expect(c.status?.lastProbe?.durationMs).toBeLessThan(5_000);
    });

    it('an untrusted TLS certificate is a TLSError', async () => {
      const tls = await startTlsMismatchServer();
      fixtures.push(tls);
      const name = uniqueName('tls');
      await createConnection(ns, name, 'redis', { host: tls.host, port: tls.port, tls: true }, { password: secret() });
      const c = await probed(ns, name, (x) => x.status?.lastProbe?.result === 'TLSError');
      expect(tls.connections()).toBeGreaterThan(0);
      expect(condition(c, 'Reachable')).toMatchObject({ status: 'False', reason: 'TLSError' });
      expect(condition(c, 'Ready')?.status).toBe('False');
    });

    it('a workspace without a loopback allowance is EgressDenied and nothing connects', async () => {
      const fixture = await startHttpFixture();
      fixtures.push(fixture);
      const name = uniqueName('denied');
      await createConnection(closedNs, name, 'http-api', { baseURL: fixture.url, auth: 'bearer' }, { token: secret() });
      const c = await probed(closedNs, name, (x) => x.status?.lastProbe?.result === 'EgressDenied');
      expect(condition(c, 'Reachable')).toMatchObject({ status: 'False', reason: 'EgressDenied' });
      expect(condition(c, 'Ready')).toMatchObject({ status: 'False', reason: 'EgressDenied' });
      expect(fixture.connections()).toBe(0);
      expect(fixture.requests).toEqual([]);
    });
  });

  describe('HTTP integrations, rotation and test requests', () => {
    let fixture: HttpFixture;
    /** Keys the fixture accepts, per header; everything else gets 401. */
    const accepted = new Set<string>();
    const typeName = uniqueName('acme-status');
    const HEADER = 'x-acme-key';
    const receivedAt = new WeakMap<object, number>();

    beforeAll(async () => {
      fixture = await startHttpFixture((req, res) => {
        receivedAt.set(req, Date.now());
        const presented = req.headers[HEADER] ?? (req.headers.authorization ?? '').replace(/^Bearer /, '');
        res.statusCode = typeof presented === 'string' && accepted.has(presented) ? 200 : 401;
        res.end(res.statusCode === 200 ? '{"ok":true}' : '{"error":"unauthorized"}');
      });
      // A platform engineer's own type, added as a manifest with no code.
      const manifest = `apiVersion: atoll.dev/v1alpha1
kind: IntegrationType
metadata:
  name: ${typeName}
spec:
  displayName: Acme Status API
  category: api
  settingsSchema:
    type: object
    additionalProperties: false
    required: [url]
    properties:
      url:
        type: string
        format: uri
  credentialFields:
    - name: apiKey
      displayName: API key
      required: true
  probe:
    http:
      method: GET
      url: "{{settings.url}}/v1/whoami"
      auth:
        type: header
        headerName: X-Acme-Key
        credential: apiKey
      successStatuses: [200]
      authFailureStatuses: [401, 403]
`;
      const applied = await kubectl(['apply', '-f', '-'], { input: manifest });
      expect(applied.code).toBe(0);
      // The operator learns about the type through its informer.
      await eventually(
        'type visible',
        () => admin().tryGet(IntegrationTypes, typeName),
        (t) => t !== undefined,
        WAIT_MS,
      );
    });

    afterAll(async () => {
      await fixture?.stop();
      await admin()
        .delete(IntegrationTypes, typeName)
        .catch(() => undefined);
    });

    const requestsWith = (key: string) => fixture.requests.filter((r) => r.headers[HEADER] === key);

    it('probes two connections of the same type independently', async () => {
      const right = secret('tokright');
      const wrong = secret('tokwrong');
      accepted.add(right);
      const a = uniqueName('api-a');
      const b = uniqueName('api-b');
      await createConnection(
        ns,
        a,
        'http-api',
        { baseURL: fixture.url, auth: 'bearer', probePath: '/v1/me' },
        { token: right },
      );
      await createConnection(
        ns,
        b,
        'http-api',
        { baseURL: fixture.url, auth: 'bearer', probePath: '/v1/me' },
        { token: wrong },
      );
      const [ca, cb] = await Promise.all([probed(ns, a, isReady), probed(ns, b, authFailed)]);
      expectReady(ca);
      expectAuthenticationFailed(cb);
      const sent = fixture.requests.filter((r) => r.url === '/v1/me').map((r) => r.headers.authorization);
      expect(sent).toContain(`Bearer ${right}`);
      expect(sent).toContain(`Bearer ${wrong}`);
    });

    it('a custom IntegrationType from a manifest works end to end, sending the credential in the declared header', async () => {
      const key = secret('acme');
      accepted.add(key);
      const name = uniqueName('acme');
      await createConnection(ns, name, typeName, { url: fixture.url }, { apiKey: key });
      const c = await probed(ns, name, isReady);
      expectReady(c);
      const seen = requestsWith(key);
      expect(seen.length).toBeGreaterThan(0);
      expect(seen[0]).toMatchObject({ method: 'GET', url: '/v1/whoami' });
      expect(seen[0]!.headers.authorization).toBeUndefined();
    });

    it('a rotation probes again with the new credential only, and status follows', async () => {
      const first = secret('rotfirst');
      const second = secret('rotsecond');
      const third = secret('rotthird');
      accepted.add(first);
      accepted.add(third);
      const name = uniqueName('rotate');
      await createConnection(ns, name, typeName, { url: fixture.url }, { apiKey: first });
      const before = await probed(ns, name, isReady);
      expectReady(before);
      const version = before.status?.credentials?.apiKey?.version ?? 0;

      // Rotate to a key the service refuses: the very next probe uses it, and status flips.
      await admin().mergePatch(ExternalConnections, name, ns, {
        spec: { credentials: { apiKey: { value: second, sealed: null } } },
      });
      const flipped = await probed(ns, name, authFailed, 'Authenticated=False after rotation');
      expectAuthenticationFailed(flipped);
      expect(requestsWith(second).length).toBeGreaterThan(0);
      expect(flipped.status?.credentials?.apiKey?.version).toBeGreaterThan(version);
      const firstCount = requestsWith(first).length;

      // And back to an accepted one: Ready again, the refused key is not used again.
      await admin().mergePatch(ExternalConnections, name, ns, {
        spec: { credentials: { apiKey: { value: third, sealed: null } } },
      });
      const recovered = await probed(ns, name, isReady, 'Ready after second rotation');
      expectReady(recovered);
      expect(requestsWith(third).length).toBeGreaterThan(0);
      expect(requestsWith(first).length).toBe(firstCount);
      expect(recovered.status?.credentials?.apiKey?.hint).not.toBe(before.status?.credentials?.apiKey?.hint);
    });

    it('the test-requested-at annotation triggers a fresh probe', async () => {
      const key = secret('again');
      accepted.add(key);
      const name = uniqueName('retest');
      await createConnection(ns, name, typeName, { url: fixture.url }, { apiKey: key });
      const first = await probed(ns, name, isReady);
      const firstTime = first.status!.lastProbe!.time!;
      const requestsBefore = requestsWith(key).length;
      // Nothing else would probe it for ten minutes (the default interval).
      await admin().mergePatch(ExternalConnections, name, ns, {
        metadata: { annotations: { [TEST_REQUESTED_AT_ANNOTATION]: new Date().toISOString() } },
      });
      const again = await probed(ns, name, (c) => c.status?.lastProbe?.time !== firstTime, 'lastProbe.time to move');
      expect(Date.parse(again.status!.lastProbe!.time!)).toBeGreaterThan(Date.parse(firstTime));
      expect(requestsWith(key).length).toBe(requestsBefore + 1);
      expectReady(again);
    });

    it('probes again every probe.interval', async () => {
      const key = secret('periodic');
      accepted.add(key);
      const name = uniqueName('periodic');
      await createConnection(ns, name, typeName, { url: fixture.url }, { apiKey: key }, { interval: '5s' }); // the CRD's minimum
      const first = await probed(ns, name, isReady);
      await eventually(
        'two periodic probes after the first',
        async () => requestsWith(key).length,
        (n) => n >= 3,
        20_000,
      );
      // Same outcome every time: nothing written after the first result (ADR 0028; test/probe-writes.test.ts).
      const later = await get(ns, name)();
      expectReady(later);
      expect(later.status?.lastProbe?.time).toBe(first.status?.lastProbe?.time);
      // One interval from start to start (plus, after the first probe only, a jitter of at most a tenth of it:
      // ADR 0028), not a hot loop: no gap much shorter than the interval (arrival varies by connect time).
      const times = requestsWith(key).map((r) => receivedAt.get(r)!);
      const gaps = times.slice(1).map((t, i) => t - times[i]!);
      expect(Math.min(...gaps)).toBeGreaterThanOrEqual(4_500);
      expect(Math.max(...gaps)).toBeLessThan(8_000);
    });
  });

  it('no Event, status or condition message in either namespace contains a credential', async () => {
    for (const namespace of [ns, closedNs]) {
      const events = await admin().list<KubeObject & { reason?: string; message?: string }>(CoreEvents, { namespace });
      const connections = await admin().list<Conn>(ExternalConnections, { namespace });
      // The suite's probes produced Events and statuses worth searching.
      expect(connections.items.length).toBeGreaterThan(0);
      expect(connections.items.every((c) => c.status?.lastProbe !== undefined)).toBe(true);
      if (namespace === ns) expect(events.items.length).toBeGreaterThan(0);
      const haystack = JSON.stringify(events.items) + JSON.stringify(connections.items);
      for (const p of plaintexts) expect(haystack, 'a credential leaked into an Event or a status').not.toContain(p);
      // kubectl's view too (what a user would see).
      const shown = await kubectl(['get', 'events,externalconnections', '-n', namespace, '-o', 'yaml']);
      expect(shown.code).toBe(0);
      for (const p of plaintexts) expect(shown.stdout).not.toContain(p);
    }
  });
});
