import { generateKeyPairSync, sign } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CONNECTION_LABEL,
  MANAGED_BY_LABEL,
  MANAGED_BY_VALUE,
  SEALED_SECRET_TYPE,
  WORKSPACE_LABEL,
} from '../src/api/v1alpha1/index.js';
import { createProviderRegistry, Envelope, InMemoryKeyRingStore, managedCopy } from '../src/crypto/index.js';
import { destinationDigest } from '../src/integrations/destination.js';
import type { KubeClient, KubeObject } from '../src/kube/client.js';
import { createCertificate, createCertificateAuthority } from '../src/kube/x509.js';
import {
  ClusterRoles,
  CustomResourceDefinitions,
  ExternalConnections,
  IntegrationTypes,
  Namespaces,
  RoleBindings,
  Secrets,
  ServiceAccounts,
  Workspaces,
} from '../src/kube/resources.js';
import { createLogger } from '../src/runtime/logger.js';
import { createOperatorMetrics } from '../src/runtime/metrics.js';
import { ControlPlane, SERVICE_ACCOUNT_ISSUER } from '../src/dev/control-plane.js';
import { packageRoot } from '../src/dev/binaries.js';
import { AgentFatalError, runAgent } from '../src/gateway/agent.js';
import { startGateway, type Gateway } from '../src/gateway/server.js';
import { readManifests } from '../src/cli/install.js';

const KEY = { provider: 'local', keyId: 'local/default' };
const NS_A = 'gw-a';
const NS_B = 'gw-b';
const NS_C = 'gw-c';
const SECRET_A1 = 'sk-alpha-first-0001';
const SECRET_A2 = 'sk-alpha-second-0002';
const SECRET_B = 'sk-bravo-only-0003';
const SECRET_C = 'sk-charlie-0004';
const SECRET_TLS = 'sk-tls-trusted-0005';
const QUERY_NEEDLE = 'query-needle-7f3a';

interface Received {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** A real upstream on loopback that records what it received and echoes the API key back in a header. */
async function recordingUpstream(tls?: { certPem: string; keyPem: string }) {
  const received: Received[] = [];
  const releases: Array<() => void> = [];
  const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      });
      if (req.url?.includes('/stream')) {
        // First chunk now, the rest only when the test says so: proves the gateway does not buffer.
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.write('first;');
        releases.push(() => res.end('second'));
        return;
      }
      res.writeHead(200, {
        'content-type': 'application/json',
        'x-echo-key': String(req.headers['x-api-key']),
        'x-upstream': 'yes',
      });
      res.end(JSON.stringify({ ok: true }));
    });
  };
  const server = tls ? https.createServer({ cert: tls.certPem, key: tls.keyPem }, handler) : http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    received,
    releases,
    url: `${tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

async function waitUntil(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A JWT with the right shape and claims, signed by a key the API server does not trust. */
function forgedToken(sub: string, expSecondsFromNow: number): string {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const now = Math.floor(Date.now() / 1000);
  const enc = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const [, ns, sa] = sub.split(':').slice(1);
  const body = `${enc({ alg: 'RS256', kid: 'forged' })}.${enc({
    iss: SERVICE_ACCOUNT_ISSUER,
    aud: ['atoll-gateway'],
    sub,
    iat: now - 700,
    nbf: now - 700,
    exp: now + expSecondsFromNow,
    'kubernetes.io': { namespace: ns, serviceaccount: { name: sa, uid: '00000000-0000-0000-0000-000000000000' } },
  })}`;
  return `${body}.${sign('RSA-SHA256', Buffer.from(body), privateKey).toString('base64url')}`;
}

const TEST_TYPE = {
  displayName: 'Test API',
  category: 'api',
  settingsSchema: { type: 'object', required: ['baseURL'], properties: { baseURL: { type: 'string' } } },
  credentialFields: [{ name: 'apiKey', required: true }],
  probe: {
    http: {
      url: '{{settings.baseURL}}/health',
      auth: { type: 'header', headerName: 'X-API-Key', credential: 'apiKey' },
    },
  },
  gateway: {
    baseURL: '{{settings.baseURL}}',
    auth: { type: 'header', headerName: 'X-API-Key', credential: 'apiKey' },
    headers: { 'X-Source': 'atoll' },
  },
  delivery: ['proxy', 'files'],
};

describe('atoll gateway and agent', () => {
  let cp: ControlPlane;
  let admin: KubeClient;
  let gateway: Gateway;
  let envelope: Envelope;
  let plain: Awaited<ReturnType<typeof recordingUpstream>>;
  let trusted: Awaited<ReturnType<typeof recordingUpstream>>;
  let untrusted: Awaited<ReturnType<typeof recordingUpstream>>;
  const logLines: string[] = [];
  const metrics = createOperatorMetrics();
  const responseHeaders: http.IncomingHttpHeaders[] = [];
  const identities = new Map<string, string>();
  const tokens: Record<string, string> = {};
  let workDir = '';

  async function token(ns: string, sa: string, audiences = ['atoll-gateway']): Promise<string> {
    const review = await admin.request<{ status: { token: string } }>(
      'POST',
      `/api/v1/namespaces/${ns}/serviceaccounts/${sa}/token`,
      {
        apiVersion: 'authentication.k8s.io/v1',
        kind: 'TokenRequest',
        spec: { audiences, expirationSeconds: 600 },
      },
    );
    return review.status.token;
  }

  async function workspace(ns: string, allowCIDRs: string[]): Promise<void> {
    await admin.create(Namespaces, { metadata: { name: ns, labels: { [WORKSPACE_LABEL]: ns } } });
    const ws = await admin.create(Workspaces, {
      metadata: { name: ns, namespace: ns },
      spec: { displayName: ns, policy: { egress: { allowCIDRs } } },
    });
    const uid = String((ws as KubeObject).metadata?.uid);
    await admin.mergePatch(Workspaces, ns, ns, { status: { identity: uid } }, { subresource: 'status' });
    identities.set(ns, uid);
  }

  async function serviceAccount(ns: string, name: string): Promise<void> {
    await admin.create(ServiceAccounts, { metadata: { name, namespace: ns } });
  }

  async function grantUse(ns: string, saNamespace: string, sa: string): Promise<void> {
    await admin.create(RoleBindings, {
      metadata: { name: `use-${saNamespace}-${sa}`, namespace: ns },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'atoll-connection-user' },
      subjects: [{ kind: 'ServiceAccount', name: sa, namespace: saNamespace }],
    });
  }

  /** `read-credentials` (plaintext delivery) is a separate grant from `use`. */
  async function grantRead(ns: string, saNamespace: string, sa: string): Promise<void> {
    await admin.create(RoleBindings, {
      metadata: { name: `read-${saNamespace}-${sa}`, namespace: ns },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'atoll-connection-reader' },
      subjects: [{ kind: 'ServiceAccount', name: sa, namespace: saNamespace }],
    });
  }

  // Sealed as the operator would: a managed copy of this connection object (uid) at a version, bound to its destination too.
  const baseURLs = new Map<string, string>();
  const uids = new Map<string, string>();
  async function sealedData(
    ns: string,
    connection: string,
    fields: Record<string, string>,
    version = 1,
  ): Promise<Record<string, string>> {
    const data: Record<string, string> = {};
    const destination = destinationDigest(
      { metadata: { name: 'test-api' }, spec: TEST_TYPE },
      { baseURL: baseURLs.get(`${ns}/${connection}`) },
    );
    for (const [field, value] of Object.entries(fields)) {
      const sealed = await envelope.seal(
        value,
        {
          namespace: ns,
          workspace: identities.get(ns)!,
          connection,
          field,
          destination,
          copy: managedCopy(uids.get(`${ns}/${connection}`)!, version),
        },
        KEY,
      );
      data[field] = Buffer.from(sealed).toString('base64');
    }
    return data;
  }
  const stateAnnotation = (version: number) =>
    JSON.stringify({ apiKey: { version, hint: '…0001', keyId: KEY.keyId, format: 2 } });

  async function connection(ns: string, name: string, baseURL: string, apiKey: string): Promise<void> {
    baseURLs.set(`${ns}/${name}`, baseURL);
    const destination = destinationDigest({ metadata: { name: 'test-api' }, spec: TEST_TYPE }, { baseURL });
    const sealed = await envelope.seal(
      apiKey,
      { namespace: ns, workspace: identities.get(ns)!, connection: name, field: 'apiKey', destination },
      KEY,
    );
    const conn = await admin.create<KubeObject & { spec: unknown }>(ExternalConnections, {
      metadata: { name, namespace: ns },
      spec: {
        type: 'test-api',
        displayName: `Test ${name}`,
        settings: { baseURL },
        credentials: { apiKey: { sealed } },
      },
    });
    uids.set(`${ns}/${name}`, conn.metadata!.uid!);
    const data = await sealedData(ns, name, { apiKey });
    await admin.create(Secrets, {
      metadata: {
        name: `${name}-credentials`,
        namespace: ns,
        labels: { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE, [CONNECTION_LABEL]: name },
        annotations: { 'atoll.dev/credentials': stateAnnotation(1) },
        ownerReferences: [
          {
            apiVersion: 'atoll.dev/v1alpha1',
            kind: 'ExternalConnection',
            name,
            uid: conn.metadata!.uid!,
            controller: true,
          },
        ],
      },
      type: SEALED_SECRET_TYPE,
      data,
    });
  }

  async function call(
    pathAndQuery: string,
    bearer: string | undefined,
    init: { method?: string; headers?: Record<string, string>; body?: string } = {},
  ) {
    const res = await fetch(`${gateway.url}${pathAndQuery}`, {
      method: init.method ?? 'GET',
      headers: { ...(bearer === undefined ? {} : { authorization: `Bearer ${bearer}` }), ...(init.headers ?? {}) },
      ...(init.body === undefined ? {} : { body: init.body }),
    });
    const headers: http.IncomingHttpHeaders = {};
    res.headers.forEach((v, k) => (headers[k] = v));
    responseHeaders.push(headers);
    return { status: res.status, headers, body: await res.text() };
  }

  function rawStatus(rawPath: string, bearer: string): Promise<number> {
    const url = new URL(gateway.url);
    return new Promise((resolve, reject) => {
      const req = http.request(
        { host: url.hostname, port: url.port, path: rawPath, headers: { authorization: `Bearer ${bearer}` } },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on('error', reject);
      req.end();
    });
  }

  beforeAll(async () => {
    workDir = mkdtempSync(path.join(tmpdir(), 'atoll-gw-test-'));
    cp = await ControlPlane.start({ controllerManager: false });
    admin = cp.adminClient();
    for (const file of readdirSync(path.join(packageRoot(), 'crds'))) {
      for (const doc of parseAllDocuments(readFileSync(path.join(packageRoot(), 'crds', file), 'utf8'))) {
        const crd = doc.toJS() as KubeObject | null;
        if (crd) await admin.create(CustomResourceDefinitions, crd);
      }
    }
    await waitUntil(
      'CRDs established',
      async () => {
        const crds = await admin.list<
          KubeObject & { status?: { conditions?: Array<{ type: string; status: string }> } }
        >(CustomResourceDefinitions);
        const atoll = crds.items.filter((c) => String(c.metadata?.name).endsWith('.atoll.dev'));
        return (
          atoll.length === 3 &&
          atoll.every((c) => c.status?.conditions?.some((k) => k.type === 'Established' && k.status === 'True'))
        );
      },
      30_000,
    );
    for (const role of ['atoll-connection-user', 'atoll-connection-reader']) {
      await admin.create(
        ClusterRoles,
        readManifests([path.join(packageRoot(), 'config/rbac/cluster-roles.yaml')]).find(
          (o) => o.metadata?.name === role,
        )!,
      );
    }
    // The gateway may only ask about resources that exist: wait for discovery of the new group.
    await waitUntil(
      'atoll API served',
      async () =>
        await admin.list(IntegrationTypes).then(
          () => true,
          () => false,
        ),
      30_000,
    );

    envelope = new Envelope({ providers: createProviderRegistry({ local: { store: new InMemoryKeyRingStore() } }) });
    plain = await recordingUpstream();
    const ca = createCertificateAuthority({ commonName: 'upstream-ca' });
    const otherCa = createCertificateAuthority({ commonName: 'someone-else' });
    trusted = await recordingUpstream(
      createCertificate({ issuer: ca, commonName: 'upstream', ipAddresses: ['127.0.0.1'], usage: 'server' }),
    );
    untrusted = await recordingUpstream(
      createCertificate({ issuer: otherCa, commonName: 'upstream', ipAddresses: ['127.0.0.1'], usage: 'server' }),
    );

    await admin.create(IntegrationTypes, { metadata: { name: 'test-api' }, spec: TEST_TYPE });

    await workspace(NS_A, ['127.0.0.1/32']);
    await workspace(NS_B, ['127.0.0.1/32']);
    await workspace(NS_C, []);
    for (const [ns, sa] of [
      [NS_A, 'app'],
      [NS_A, 'nouse'],
      [NS_B, 'intruder'],
      [NS_B, 'b-app'],
      [NS_C, 'c-app'],
    ] as const)
      await serviceAccount(ns, sa);
    await grantUse(NS_A, NS_A, 'app');
    await grantRead(NS_A, NS_A, 'app');
    // A RoleBinding in A that grants B's ServiceAccount `use`: the gateway must still refuse it.
    await grantUse(NS_A, NS_B, 'intruder');
    await grantRead(NS_A, NS_B, 'intruder');
    await grantUse(NS_B, NS_B, 'b-app');
    await grantUse(NS_C, NS_C, 'c-app');
    await connection(NS_A, 'api', `${plain.url}/base`, SECRET_A1);
    await connection(NS_A, 'tls-api', trusted.url, SECRET_TLS);
    await connection(NS_A, 'tls-untrusted', untrusted.url, SECRET_TLS);
    await connection(NS_B, 'api', `${plain.url}/base`, SECRET_B);
    await connection(NS_C, 'api', `${plain.url}/base`, SECRET_C);

    tokens.app = await token(NS_A, 'app');
    tokens.nouse = await token(NS_A, 'nouse');
    tokens.intruder = await token(NS_B, 'intruder');
    tokens.bApp = await token(NS_B, 'b-app');
    tokens.cApp = await token(NS_C, 'c-app');
    tokens.wrongAudience = await token(NS_A, 'app', [SERVICE_ACCOUNT_ISSUER]);

    gateway = await startGateway({
      client: admin,
      envelope,
      metrics,
      host: '127.0.0.1',
      port: 0,
      insecurePlaintext: true,
      upstreamCAs: [ca.certPem],
      upstreamTimeoutMs: 5_000,
      heartbeatMs: 500,
      log: createLogger({ level: 'debug', destination: { write: (line: string) => void logLines.push(line) } }),
    });
  });

  afterAll(async () => {
    await gateway?.close();
    await Promise.all([plain?.close(), trusted?.close(), untrusted?.close()]);
    await cp?.stop();
    if (workDir) rmSync(workDir, { recursive: true, force: true });
  });

  it("proxies an allowed call with the injected credential and without the caller's credentials", async () => {
    const before = plain.received.length;
    const res = await call(`/v1/connections/api/proxy/items/1?q=${QUERY_NEEDLE}`, tokens.app, {
      method: 'POST',
      headers: {
        cookie: 'session=abc',
        'x-forwarded-for': '10.1.2.3',
        'x-api-key': 'caller-supplied',
        'content-type': 'text/plain',
      },
      body: 'hello upstream',
    });
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toEqual({ ok: true });
    expect(res.headers['x-upstream']).toBe('yes');
    // The upstream echoed the key back; the gateway must not hand it to the component.
    expect(res.headers['x-echo-key']).toBeUndefined();
    const got = plain.received.slice(before);
    expect(got).toHaveLength(1);
    expect(got[0]).toMatchObject({ method: 'POST', url: `/base/items/1?q=${QUERY_NEEDLE}`, body: 'hello upstream' });
    expect(got[0]!.headers['x-api-key']).toBe(SECRET_A1);
    expect(got[0]!.headers['x-source']).toBe('atoll');
    expect(got[0]!.headers.authorization).toBeUndefined();
    expect(got[0]!.headers.cookie).toBeUndefined();
    expect(got[0]!.headers['x-forwarded-for']).toBeUndefined();
    expect(got[0]!.headers.host).toBe(new URL(plain.url).host);
  });

  it('streams the response body without buffering it', async () => {
    const res = await fetch(`${gateway.url}/v1/connections/api/proxy/stream`, {
      headers: { authorization: `Bearer ${tokens.app}` },
    });
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    const first = await reader.read();
    expect(Buffer.from(first.value!).toString()).toBe('first;');
    expect(plain.releases).toHaveLength(1);
    plain.releases.shift()!();
    let rest = '';
    for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read())
      rest += Buffer.from(chunk.value).toString();
    expect(rest).toBe('second');
  });

  it("lists in the catalogue only the connections of the caller's namespace it may use", async () => {
    const res = await call('/v1/connections', tokens.app);
    expect(res.status).toBe(200);
    const body = JSON.parse(res.body) as {
      namespace: string;
      items: Array<{ name: string; type: string; displayName: string; ready: boolean; proxy: boolean }>;
    };
    expect(body.namespace).toBe(NS_A);
    expect(body.items.map((i) => i.name)).toEqual(['api', 'tls-api', 'tls-untrusted']);
    expect(body.items[0]).toMatchObject({ type: 'test-api', displayName: 'Test api', ready: false, proxy: true });
    const none = await call('/v1/connections', tokens.nouse);
    expect(JSON.parse(none.body).items).toEqual([]);
  });

  it("refuses B's token for A's connection even with a RoleBinding in A, and serves B only its own", async () => {
    const before = plain.received.length;
    expect((await call('/v1/connections/api/proxy/x', tokens.intruder)).status).toBe(403);
    expect((await call('/v1/connections/api/credentials', tokens.intruder)).status).toBe(403);
    expect((await call('/v1/connections/tls-api/proxy/x', tokens.intruder)).status).toBe(403);
    expect(plain.received.length).toBe(before);
    const own = await call('/v1/connections/api/proxy/x', tokens.bApp);
    expect(own.status).toBe(200);
    expect(plain.received.at(-1)!.headers['x-api-key']).toBe(SECRET_B);
    // B's own grant does not reach A's connection names that do not exist in B.
    expect((await call('/v1/connections/tls-api/proxy/x', tokens.bApp)).status).toBe(404);
  });

  it('refuses a ServiceAccount without use (403), bad tokens (401), unknown connections (404) and traversal (400)', async () => {
    const before = plain.received.length;
    expect((await call('/v1/connections/api/proxy/x', tokens.nouse)).status).toBe(403);
    const missing = await call('/v1/connections/api/proxy/x', undefined);
    expect(missing.status).toBe(401);
    expect(missing.headers['www-authenticate']).toContain('Bearer');
    expect((await call('/v1/connections/api/proxy/x', tokens.wrongAudience)).status).toBe(401);
    expect(
      (await call('/v1/connections/api/proxy/x', forgedToken(`system:serviceaccount:${NS_A}:app`, 3600))).status,
    ).toBe(401);
    expect(
      (await call('/v1/connections/api/proxy/x', forgedToken(`system:serviceaccount:${NS_A}:app`, -60))).status,
    ).toBe(401);
    expect((await call('/v1/connections/api/proxy/x', 'not-a-jwt')).status).toBe(401);
    const unknown = await call('/v1/connections/nope/proxy/x', tokens.app);
    expect(unknown.status).toBe(404);
    expect(JSON.parse(unknown.body)).toEqual({
      error: { code: 'NotFound', message: "no such connection in the caller's namespace" },
    });
    // fetch would normalise dot segments away; send the raw request target as an attacker would.
    for (const raw of [
      '/v1/connections/api/proxy/a/%2e%2e/%2E%2E/etc',
      '/v1/connections/api/proxy/../../x',
      '/v1/connections/api/proxy/a%2f..%2f..',
    ]) {
      expect(await rawStatus(raw, tokens.app!)).toBe(400);
    }
    expect(plain.received.length).toBe(before);
  });

  it('applies the workspace egress policy and verifies upstream TLS', async () => {
    const denied = await call('/v1/connections/api/proxy/x', tokens.cApp);
    expect(denied.status).toBe(502);
    expect(JSON.parse(denied.body).error.code).toBe('EgressDenied');
    const before = trusted.received.length;
    expect((await call('/v1/connections/tls-api/proxy/secure', tokens.app)).status).toBe(200);
    expect(trusted.received.length).toBe(before + 1);
    expect(trusted.received.at(-1)!.headers['x-api-key']).toBe(SECRET_TLS);
    const bad = await call('/v1/connections/tls-untrusted/proxy/secure', tokens.app);
    expect(bad.status).toBe(502);
    expect(JSON.parse(bad.body).error.message).toContain('certificate');
    expect(untrusted.received).toHaveLength(0);
  });

  it('the agent refuses to run without read-credentials (403) or with a token for another audience (401)', async () => {
    const run = async (tok: string) => {
      const tokenFile = path.join(workDir, `token-${Math.random()}`);
      writeFileSync(tokenFile, tok);
      return runAgent({
        gatewayURL: gateway.url,
        tokenFile,
        connections: ['api'],
        dir: path.join(workDir, 'refused'),
        log: createLogger({ level: 'silent' }),
        insecurePlaintext: true,
      });
    };
    await expect(run(tokens.nouse!)).rejects.toMatchObject({ name: 'AgentFatalError', status: 403 });
    await expect(run(tokens.wrongAudience!)).rejects.toBeInstanceOf(AgentFatalError);
    await expect(run(tokens.wrongAudience!)).rejects.toMatchObject({ status: 401 });
  });

  it('rotation: agent files change within a second and proxied requests switch to the new value for good', async () => {
    const tokenFile = path.join(workDir, 'token');
    writeFileSync(tokenFile, tokens.app!);
    const dir = path.join(workDir, 'mounted');
    const stop = new AbortController();
    const updates: string[] = [];
    const agent = runAgent({
      gatewayURL: gateway.url,
      tokenFile,
      connections: ['api'],
      dir,
      log: createLogger({ level: 'silent' }),
      insecurePlaintext: true,
      signal: stop.signal,
      onUpdate: (_c, rev) => updates.push(rev),
    });
    const file = path.join(dir, 'api', 'apiKey');
    await waitUntil('agent wrote the first value', () => updates.length > 0);
    expect(readFileSync(file, 'utf8')).toBe(SECRET_A1);
    expect(statSync(file).mode & 0o777).toBe(0o400);

    // Keep traffic flowing while the credential rotates.
    const seen: string[] = [];
    let traffic = true;
    const loop = (async () => {
      while (traffic) {
        const res = await call('/v1/connections/api/proxy/rotating', tokens.app);
        expect(res.status).toBe(200);
        seen.push(String(plain.received.at(-1)!.headers['x-api-key']));
      }
    })();
    await waitUntil('traffic before rotation', () => seen.length >= 3);

    const rotatedAt = Date.now();
    await admin.mergePatch(Secrets, 'api-credentials', NS_A, {
      metadata: { annotations: { 'atoll.dev/credentials': stateAnnotation(2) } },
      data: await sealedData(NS_A, 'api', { apiKey: SECRET_A2 }, 2),
    });
    await waitUntil('agent file rotated', () => readFileSync(file, 'utf8') === SECRET_A2, 1_000);
    const fileLatency = Date.now() - rotatedAt;
    // The agent has seen the change, so the gateway has too: the very next request uses the new value.
    const next = await call('/v1/connections/api/proxy/after', tokens.app);
    expect(next.status).toBe(200);
    expect(plain.received.at(-1)!.headers['x-api-key']).toBe(SECRET_A2);
    await waitUntil('more traffic after rotation', () => seen.filter((k) => k === SECRET_A2).length >= 3);
    traffic = false;
    await loop;
    stop.abort();
    await agent;

    expect(fileLatency).toBeLessThan(1_000);
    const firstNew = seen.indexOf(SECRET_A2);
    expect(firstNew).toBeGreaterThan(0);
    expect(seen.slice(0, firstNew).every((k) => k === SECRET_A1)).toBe(true);
    // Once the new value is used, the old one never is again.
    expect(seen.slice(firstNew).every((k) => k === SECRET_A2)).toBe(true);
    expect(readdirSync(path.join(dir, 'api'))).toEqual(['apiKey']);
  });

  it("ends a credentials stream once the caller's grant is revoked", async () => {
    await serviceAccount(NS_A, 'temp');
    await grantRead(NS_A, NS_A, 'temp');
    const temp = await token(NS_A, 'temp');
    const strict = await startGateway({
      client: admin,
      envelope,
      metrics: createOperatorMetrics(),
      host: '127.0.0.1',
      port: 0,
      insecurePlaintext: true,
      authCacheTtlMs: 100,
      heartbeatMs: 200,
      log: createLogger({ level: 'silent' }),
    });
    try {
      const res = await fetch(`${strict.url}/v1/connections/api/credentials?watch=1`, {
        headers: { authorization: `Bearer ${temp}` },
      });
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('text/event-stream');
      expect(res.headers.get('cache-control')).toBe('no-store');
      const reader = res.body!.getReader();
      const first = Buffer.from((await reader.read()).value!).toString();
      expect(first).toContain('event: credentials');
      await admin.delete(RoleBindings, `read-${NS_A}-temp`, NS_A);
      const revokedAt = Date.now();
      for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) {
        expect(Buffer.from(chunk.value).toString()).not.toContain('event: credentials');
      }
      expect(Date.now() - revokedAt).toBeLessThan(3_000);
      expect(
        (await fetch(`${strict.url}/v1/connections/api/credentials`, { headers: { authorization: `Bearer ${temp}` } }))
          .status,
      ).toBe(403);
    } finally {
      await strict.close();
    }
  });

  it('serves HTTPS with its certificate and switches to a renewed one without a restart', async () => {
    const ca = createCertificateAuthority({ commonName: 'gateway-ca' });
    const first = createCertificate({ issuer: ca, commonName: 'first', ipAddresses: ['127.0.0.1'], usage: 'server' });
    const renewed = createCertificate({
      issuer: ca,
      commonName: 'renewed',
      ipAddresses: ['127.0.0.1'],
      usage: 'server',
    });
    const secure = await startGateway({
      client: admin,
      envelope,
      metrics: createOperatorMetrics(),
      host: '127.0.0.1',
      port: 0,
      tls: first,
      log: createLogger({ level: 'silent' }),
    });
    const served = () =>
      new Promise<string>((resolve, reject) => {
        const req = https.get(`${secure.url}/healthz`, { ca: ca.certPem, agent: false }, (res) => {
          const cert = (res.socket as TLSSocket).getPeerCertificate();
          res.resume();
          resolve(String(cert.subject?.CN));
        });
        req.on('error', reject);
      });
    try {
      expect(secure.url.startsWith('https://')).toBe(true);
      expect(await served()).toBe('first');
      secure.updateTLS(renewed);
      expect(await served()).toBe('renewed');
    } finally {
      await secure.close();
    }
  });

  it('never leaks a credential or token into response headers, access logs or metrics', async () => {
    const needles = [SECRET_A1, SECRET_A2, SECRET_B, SECRET_C, SECRET_TLS, ...Object.values(tokens)];
    const exposition = await metrics.registry.metrics();
    expect(exposition).toContain('atoll_gateway_requests_total');
    const accessLines = logLines.filter((l) => l.includes('"gateway request"'));
    expect(accessLines.length).toBeGreaterThan(10);
    const sample = JSON.parse(
      accessLines.find((l) => l.includes('"route":"proxy"') && l.includes('"status":200'))!,
    ) as Record<string, unknown>;
    expect(sample).toMatchObject({
      namespace: expect.any(String),
      connection: expect.any(String),
      method: expect.any(String),
      status: 200,
      durationMs: expect.any(Number),
    });
    for (const text of [exposition, ...logLines, ...responseHeaders.map((h) => JSON.stringify(h))]) {
      for (const needle of needles) expect(text).not.toContain(needle);
      expect(text).not.toContain(QUERY_NEEDLE);
    }
  });
});
