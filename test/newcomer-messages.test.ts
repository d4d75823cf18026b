import { beforeAll, afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import type { ExternalConnection, Workspace } from '../src/api/v1alpha1/index.js';
import type { KubeObject } from '../src/kube/client.js';
import { createCertificate, createCertificateAuthority } from '../src/kube/x509.js';
import { ExternalConnections, Workspaces } from '../src/kube/resources.js';
import { startHttpFixture, type HttpFixture } from './support/services.js';
import { admin, condition, createWorkspace, eventually, kubectl, randomSecret, uniqueName } from './support/cluster.js';

/**
 * What a newcomer reads and sees happen: messages that name the Workspace
 * field to change, a policy change that takes effect without `atoll test`,
 * an HTTP 404 that is not "Succeeded", ready/total on the Workspace, and
 * multi-line credentials (PEM, JSON) accepted in shape and refused otherwise.
 */

type Conn = ExternalConnection & KubeObject;

function httpConnection(ns: string, name: string, baseURL: string, extra: Record<string, unknown> = {}) {
  return {
    metadata: { name, namespace: ns },
    spec: {
      type: 'http-api',
      settings: { baseURL, auth: 'bearer' },
      credentials: { token: { value: randomSecret('msg') } },
      ...extra,
    },
  } as never;
}

describe('messages and reactions', () => {
  const ns = uniqueName('newcomer');
  let api: HttpFixture;

  beforeAll(async () => {
    api = await startHttpFixture((req, res) => {
      res.statusCode = req.url?.startsWith('/missing') ? 404 : 200;
      res.end();
    });
    // No egress allowed yet: loopback is refused until the policy says otherwise.
    await createWorkspace(ns, { policy: { allowedTypes: ['http-api', 'postgresql'] } });
  });

  afterAll(async () => {
    await api?.stop();
  });

  it('EgressDenied names spec.policy.egress.allowCIDRs; allowing the CIDR re-probes without atoll test', async () => {
    await admin().create(ExternalConnections, httpConnection(ns, 'egress', api.url, { probe: { interval: '0s' } }));
    const denied = await eventually(
      'EgressDenied',
      () => admin().get<Conn>(ExternalConnections, 'egress', ns),
      (c) => condition(c, 'Reachable')?.reason === 'EgressDenied',
    );
    expect(condition(denied, 'Reachable')?.message).toContain('spec.policy.egress.allowCIDRs');
    const requestsBefore = api.requests.length;
    await admin().mergePatch(Workspaces, ns, ns, { spec: { policy: { egress: { allowCIDRs: ['127.0.0.0/8'] } } } });
    // interval 0s: no periodic probe would come; only the policy change can trigger this one.
    const ready = await eventually(
      'Ready after the policy change',
      () => admin().get<Conn>(ExternalConnections, 'egress', ns),
      (c) => condition(c, 'Ready')?.status === 'True',
      30_000,
    );
    expect(condition(ready, 'Ready')?.reason).toBe('Succeeded');
    expect(api.requests.length).toBeGreaterThan(requestsBefore);
  });

  it('an HTTP 404 is UnexpectedResponse: Reachable True, Authenticated and Ready False', async () => {
    await admin().create(ExternalConnections, httpConnection(ns, 'wrong-path', `${api.url}/missing`));
    const conn = await eventually(
      'probed',
      () => admin().get<Conn>(ExternalConnections, 'wrong-path', ns),
      (c) => c.status?.lastProbe !== undefined,
    );
    expect(condition(conn, 'Reachable')).toMatchObject({ status: 'True' });
    expect(condition(conn, 'Authenticated')).toMatchObject({ status: 'False', reason: 'UnexpectedResponse' });
    expect(condition(conn, 'Ready')).toMatchObject({ status: 'False', reason: 'UnexpectedResponse' });
    expect(condition(conn, 'Ready')?.message).toContain('unexpected HTTP 404');
  });

  it('the Workspace shows ready/total in its CONNECTIONS column', async () => {
    const ws = await eventually(
      'counted',
      () => admin().get<Workspace & KubeObject>(Workspaces, ns, ns),
      (w) => w.status?.connections?.total === 2 && w.status?.connections?.ready === 1,
    );
    expect(ws.status?.connections?.summary).toBe('1/2');
    const out = await kubectl(['get', 'workspace', ns, '-n', ns]);
    expect(out.stdout.split('\n')[0]).toMatch(/CONNECTIONS/);
    expect(out.stdout.split('\n')[1]).toMatch(/\s1\/2\s/);
  });

  it('a type outside spec.policy.allowedTypes is refused naming the field; an unknown setting lists the known ones', async () => {
    const notAllowed = await kubectl(['apply', '-f', '-'], {
      input: stringify({
        apiVersion: 'atoll.dev/v1alpha1',
        kind: 'ExternalConnection',
        metadata: { name: 'dd', namespace: ns },
        spec: { type: 'datadog', settings: {}, credentials: { apiKey: { value: randomSecret('dd') } } },
      }),
    });
    expect(notAllowed.code).not.toBe(0);
    expect(notAllowed.stderr).toContain('spec.policy.allowedTypes lists: http-api, postgresql');
    const typo = await kubectl(['apply', '-f', '-'], {
      input: stringify({
        apiVersion: 'atoll.dev/v1alpha1',
        kind: 'ExternalConnection',
        metadata: { name: 'typo', namespace: ns },
        spec: {
          type: 'http-api',
          settings: { baseURL: api.url, bearer: 'x' },
          credentials: { token: { value: randomSecret('t') } },
        },
      }),
    });
    expect(typo.code).not.toBe(0);
    expect(typo.stderr).toMatch(
      /spec.settings.bearer is not a known setting of this type \(known settings: [A-Za-z, ]*baseURL/,
    );
    const pattern = await kubectl(['apply', '-f', '-'], {
      input: stringify({
        apiVersion: 'atoll.dev/v1alpha1',
        kind: 'ExternalConnection',
        metadata: { name: 'slash', namespace: ns },
        spec: {
          type: 'http-api',
          settings: { baseURL: `${api.url}/v2/` },
          credentials: { token: { value: randomSecret('t') } },
        },
      }),
    });
    expect(pattern.code).not.toBe(0);
    expect(pattern.stderr).toContain('spec.settings.baseURL is not in the form this setting expects: Scheme, host');
    expect(pattern.stderr).not.toContain('^https?');
  });
});

describe('multi-line credentials', () => {
  const ns = uniqueName('multiline');
  const ca = createCertificateAuthority({ commonName: 'orders-ca' });
  const client = createCertificate({ issuer: ca, commonName: 'orders-app', usage: 'client' });

  beforeAll(async () => {
    await createWorkspace(ns, { policy: { egress: { allowCIDRs: ['127.0.0.0/8'] } } });
  });

  function pg(name: string, credentials: Record<string, unknown>): string {
    return stringify({
      apiVersion: 'atoll.dev/v1alpha1',
      kind: 'ExternalConnection',
      metadata: { name, namespace: ns },
      spec: { type: 'postgresql', settings: { host: '127.0.0.1', port: 9, user: 'app' }, credentials },
    });
  }

  it('a PEM client certificate and key are sealed, newlines and all', async () => {
    const out = await kubectl(['apply', '-f', '-'], {
      input: pg('mtls', {
        password: { value: randomSecret('pw') },
        clientCertificate: { value: client.certPem },
        clientKey: { value: client.keyPem },
      }),
    });
    expect(out.code, out.stderr).toBe(0);
    const conn = await eventually(
      'sealed',
      () => admin().get<Conn>(ExternalConnections, 'mtls', ns),
      (c) => condition(c, 'CredentialsSealed')?.status === 'True',
    );
    expect(conn.spec.credentials?.clientKey?.sealed).toMatch(/^atoll:v1:/);
    expect(JSON.stringify(conn)).not.toContain('PRIVATE KEY');
    expect(conn.status?.credentials?.clientCertificate?.version).toBe(1);
  });

  it('refuses a value that is not PEM, and whitespace-only values, naming the field and never echoing the value', async () => {
    const secret = randomSecret('notpem');
    const notPem = await kubectl(['apply', '-f', '-'], {
      input: pg('bad-pem', { password: { value: randomSecret('pw') }, clientKey: { value: `${secret}\nsecond line` } }),
    });
    expect(notPem.code).not.toBe(0);
    expect(notPem.stderr).toContain('spec.credentials.clientKey.value is not PEM');
    expect(notPem.stderr).not.toContain(secret);
    const blank = await kubectl(['apply', '-f', '-'], { input: pg('blank', { password: { value: '   ' } }) });
    expect(blank.code).not.toBe(0);
    expect(blank.stderr).toContain('spec.credentials.password.value is only whitespace');
    const oneLine = await kubectl(['apply', '-f', '-'], { input: pg('newline', { password: { value: 'abc\ndef' } }) });
    expect(oneLine.code).not.toBe(0);
    expect(oneLine.stderr).toContain('spec.credentials.password.value contains control characters');
    for (const name of ['bad-pem', 'blank', 'newline'])
      expect(await admin().tryGet(ExternalConnections, name, ns)).toBeUndefined();
  });

  it('a JSON service-account key (gcp-service-account) is sealed; a broken one is refused without being quoted', async () => {
    const keyFile = JSON.stringify(
      { type: 'service_account', client_email: 'probe@acme.iam.gserviceaccount.com', private_key: client.keyPem },
      null,
      2,
    );
    const gcp = (name: string, value: string) =>
      stringify({
        apiVersion: 'atoll.dev/v1alpha1',
        kind: 'ExternalConnection',
        metadata: { name, namespace: ns },
        spec: { type: 'gcp-service-account', credentials: { serviceAccountKey: { value } } },
      });
    // A server-side dry run (as atoll seal does): sealed by the webhook, nothing stored, so no probe leaves for Google.
    const ok = await kubectl(['create', '--dry-run=server', '-o', 'json', '-f', '-'], { input: gcp('gcp', keyFile) });
    expect(ok.code, ok.stderr).toBe(0);
    expect((JSON.parse(ok.stdout) as Conn).spec.credentials?.serviceAccountKey?.sealed).toMatch(/^atoll:v1:/);
    expect(ok.stdout).not.toContain('PRIVATE KEY');
    const broken = await kubectl(['apply', '-f', '-'], { input: gcp('gcp-broken', keyFile.slice(0, -2)) });
    expect(broken.code).not.toBe(0);
    expect(broken.stderr).toContain('spec.credentials.serviceAccountKey.value is not valid JSON');
    expect(broken.stderr).not.toContain('gserviceaccount');
  });
});
