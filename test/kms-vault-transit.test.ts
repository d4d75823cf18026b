import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import { Agent, request } from 'undici';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ExternalConnection, Workspace } from '../src/api/v1alpha1/index.js';
import { startGatewayFromConfig } from '../src/cli/gateway.js';
import { encryptionContext } from '../src/crypto/binding.js';
import { Envelope, parseEnvelope } from '../src/crypto/envelope.js';
import { CiphertextRejectedError, KmsAccessDeniedError } from '../src/crypto/errors.js';
import { VaultResponseError, VaultTransitProvider } from '../src/crypto/providers/vault-transit.js';
import type { Gateway } from '../src/gateway/server.js';
import { destinationDigest } from '../src/integrations/destination.js';
import type { IntegrationTypeObject } from '../src/integrations/probe-types.js';
import type { KubeClient, KubeObject } from '../src/kube/client.js';
import { createCertificate, createCertificateAuthority } from '../src/kube/x509.js';
import {
  ExternalConnections,
  Namespaces,
  RoleBindings,
  Secrets,
  ServiceAccounts,
  Workspaces,
} from '../src/kube/resources.js';
import { startOperator, type RunningOperator } from '../src/operator.js';
import { createLogger } from '../src/runtime/logger.js';
import { packageRoot } from '../src/dev/binaries.js';
import { ControlPlane, WEBHOOK_CLIENT_NAME } from '../src/dev/control-plane.js';
import {
  installAtoll,
  loopbackOperatorConfig,
  OPERATOR_NAMESPACE,
  precreateWebhookConfigurations,
} from '../src/dev/embedded.js';
import { waitFor } from '../src/dev/ports.js';
import {
  createTransitKey,
  enableKubernetesAuth,
  kubernetesRole,
  serviceAccountTokenFile,
  startVault,
  tokenWithPolicy,
  transitPolicy,
  type VaultServer,
} from '../src/dev/vault.js';
import { condition, randomSecret } from './support/cluster.js';
import { expectFailsClosedThroughOutage } from './support/kms-outage.js';
import { scrapeCounter } from './support/operator-fixture.js';

type Conn = ExternalConnection & KubeObject;
type Secret = KubeObject & { data?: Record<string, string> };

const HTTP_API = parse(
  readFileSync(path.join(packageRoot(), 'config', 'types', 'http-api.yaml'), 'utf8'),
) as IntegrationTypeObject;
const VAULT_AUDIENCE = 'vault';

/**
 * The operator and the gateway with `ATOLL_KMS_PROVIDER=vault-transit`
 * against a real Vault (dev server, TLS) whose Kubernetes auth method
 * reviews the operator's ServiceAccount tokens with this suite's real API
 * server: sealing at admission and by the controller, injection by the
 * gateway, fail-closed on an outage and on a revoked policy.
 */
describe('vault-transit: operator and gateway against a real Vault with Kubernetes auth', () => {
  let cp: ControlPlane;
  let client: KubeClient;
  let vault: VaultServer;
  let keyId: string;
  let operator: RunningOperator | undefined;
  let gateway: Gateway | undefined;
  let gatewayTrust: Agent | undefined;
  let upstream: { url: string; received: http.IncomingHttpHeaders[]; close(): Promise<void> };
  let controllerJwt: string;
  let gatewayJwt: string;
  const logs: string[] = [];
  const ns = 'vault-tenant';
  const secrets: string[] = [];

  const vaultEnv = (role: string, jwtFile: string) => ({
    ATOLL_KMS_PROVIDER: 'vault-transit',
    ATOLL_KMS_KEY_ID: keyId,
    ATOLL_KMS_TIMEOUT_MS: '800',
    ATOLL_VAULT_ADDR: vault.address,
    ATOLL_VAULT_CACERT: vault.caFile!,
    ATOLL_VAULT_AUTH: 'kubernetes',
    ATOLL_VAULT_ROLE: role,
    ATOLL_VAULT_JWT_FILE: jwtFile,
    // The API server authenticates to the webhook with its client certificate, as `atoll dev` sets it up.
    ATOLL_WEBHOOK_CLIENT_CA_FILE: cp.webhookClientCAPath,
    ATOLL_WEBHOOK_CLIENT_NAMES: WEBHOOK_CLIENT_NAME,
  });
  const sink = new Writable({
    write(chunk: Buffer, _e, cb) {
      logs.push(chunk.toString());
      cb();
    },
  });
  const log = createLogger({ level: 'debug', destination: sink });

  beforeAll(async () => {
    vault = await startVault();
    keyId = await createTransitKey(vault, 'atoll');
    cp = await ControlPlane.start({ controllerManager: false });
    client = cp.adminClient();
    await installAtoll(client);
    await precreateWebhookConfigurations(client);
    await cp.startControllerManager();

    // Vault side, as a platform team sets it up: Transit, least-privilege policies, Kubernetes auth, one role per component.
    await vault.api('PUT', 'sys/policies/acl/atoll-controller', { policy: transitPolicy(keyId, 'controller') });
    await vault.api('PUT', 'sys/policies/acl/atoll-gateway', { policy: transitPolicy(keyId, 'gateway') });
    await enableKubernetesAuth(vault, client, { url: cp.server, caPem: cp.ca.certPem });
    await kubernetesRole(vault, 'atoll-controller', {
      namespace: OPERATOR_NAMESPACE,
      serviceAccount: 'atoll-controller',
      audience: VAULT_AUDIENCE,
      policies: ['atoll-controller'],
    });
    await kubernetesRole(vault, 'atoll-gateway', {
      namespace: OPERATOR_NAMESPACE,
      serviceAccount: 'atoll-gateway',
      audience: VAULT_AUDIENCE,
      policies: ['atoll-gateway'],
    });
    // What the chart's projected token volume holds: the component's own ServiceAccount token for audience "vault".
    controllerJwt = await serviceAccountTokenFile(client, OPERATOR_NAMESPACE, 'atoll-controller', VAULT_AUDIENCE);
    gatewayJwt = await serviceAccountTokenFile(client, OPERATOR_NAMESPACE, 'atoll-gateway', VAULT_AUDIENCE);

    // Each component as its own ServiceAccount, as installed (atoll's admission policies fence what the operator may do).
    operator = await startOperator({
      client: await cp.serviceAccountClient(OPERATOR_NAMESPACE, 'atoll-controller'),
      config: loopbackOperatorConfig(vaultEnv('atoll-controller', controllerJwt)),
      log: log.child({ component: 'controller' }),
    });
    const gatewayCA = createCertificateAuthority({ commonName: 'vault-suite-gateway-ca' });
    gatewayTrust = new Agent({ connect: { ca: gatewayCA.certPem } });
    const tls = createCertificate({
      issuer: gatewayCA,
      commonName: 'localhost',
      ipAddresses: ['127.0.0.1'],
      usage: 'server',
    });
    gateway = await startGatewayFromConfig({
      client: await cp.serviceAccountClient(OPERATOR_NAMESPACE, 'atoll-gateway'),
      config: loopbackOperatorConfig(vaultEnv('atoll-gateway', gatewayJwt)),
      log: log.child({ component: 'gateway' }),
      host: '127.0.0.1',
      port: 0,
      tls,
    });

    const received: http.IncomingHttpHeaders[] = [];
    const server = http.createServer((req, res) => {
      received.push(req.headers);
      req.resume();
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    upstream = {
      url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      received,
      close: () => new Promise<void>((r) => server.close(() => r())),
    };

    await client.create(Namespaces, { metadata: { name: ns } });
    await client.create(Workspaces, {
      metadata: { name: ns, namespace: ns },
      spec: { policy: { egress: { allowCIDRs: ['127.0.0.1/32'] } } },
    } as never);
    await waitFor(
      'workspace ready',
      async () => condition(await client.get<Workspace & KubeObject>(Workspaces, ns, ns), 'Ready')?.status === 'True',
      60_000,
    ).catch(async (err: Error) => {
      const ws = (await client.get(Workspaces, ns, ns)) as { status?: unknown };
      throw new Error(`${err.message}: ${JSON.stringify(ws.status)}`);
    });
  });

  afterAll(async () => {
    await gateway?.close();
    await gatewayTrust?.close();
    await operator?.stop();
    await upstream?.close();
    await cp?.stop();
    await vault?.destroy();
  });

  const conn = (name: string, credentials: Record<string, unknown>) => ({
    metadata: { name, namespace: ns },
    spec: {
      type: 'http-api',
      settings: { baseURL: upstream.url, auth: 'bearer' },
      credentials,
      probe: { interval: '0' },
    },
  });
  const get = (name: string) => client.get<Conn>(ExternalConnections, name, ns);
  const binding = async (connection: string) => ({
    namespace: ns,
    workspace: (await client.get<KubeObject>(Workspaces, ns, ns)).metadata!.uid!,
    connection,
    field: 'token',
    destination: destinationDigest(HTTP_API, { baseURL: upstream.url, auth: 'bearer' }),
  });
  /** A provider as root, to check from outside what the operator stored. */
  const inspector = async () => {
    const root = await tokenWithPolicy(vault, 'inspector', transitPolicy(keyId));
    return new VaultTransitProvider({
      address: vault.address,
      caPem: vault.caPem!,
      auth: { method: 'token', tokenFile: root.file },
    });
  };

  it('seals at admission with Vault Transit after a Kubernetes-auth login; Vault enforces the binding', async () => {
    const value = randomSecret('vault');
    secrets.push(value);
    await client.create(ExternalConnections, conn('steady', { token: { value } }) as never);
    await waitFor(
      'steady sealed',
      async () => condition(await get('steady'), 'CredentialsSealed')?.status === 'True',
      30_000,
    );
    const c = await get('steady');
    expect(c.status?.credentials?.token?.keyId).toBe(keyId);
    const sealed = c.spec.credentials!.token!.sealed!;
    expect(sealed.startsWith('atoll:v1:vault-transit:')).toBe(true);
    expect(parseEnvelope(sealed).wrapped.toString()).toMatch(/^vault:v1:/);
    // The managed Secret holds the same kind of ciphertext, never the value.
    const managed = await client.get<Secret>(Secrets, 'steady-credentials', ns);
    expect(Buffer.from(managed.data!.token!, 'base64').toString()).toMatch(/^atoll:v1:vault-transit:/);

    const p = await inspector();
    try {
      const b = await binding('steady');
      expect(await new Envelope({ providers: new Map([['vault-transit', p]]) }).open(sealed, b)).toBe(value);
      const err = await p
        .decryptDataKey(keyId, parseEnvelope(sealed).wrapped, encryptionContext({ ...b, connection: 'other' }))
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(CiphertextRejectedError);
      expect((err as Error).cause).toBeInstanceOf(VaultResponseError);
    } finally {
      await p.close();
    }
  });

  it('the gateway (its own role: decrypt only) injects the credential into the upstream call', async () => {
    await client.create(ServiceAccounts, { metadata: { name: 'app', namespace: ns } });
    await client.create(RoleBindings, {
      metadata: { name: 'use-app', namespace: ns },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'atoll-connection-user' },
      subjects: [{ kind: 'ServiceAccount', name: 'app', namespace: ns }],
    });
    const token = readFileSync(await serviceAccountTokenFile(client, ns, 'app', 'atoll-gateway', 600), 'utf8');
    const before = upstream.received.length;
    let status = 0;
    await waitFor(
      'gateway serves the connection',
      async () => {
        const res = await request(`${gateway!.url}/v1/connections/steady/proxy/items`, {
          headers: { authorization: `Bearer ${token}` },
          dispatcher: gatewayTrust,
        });
        await res.body.dump();
        status = res.statusCode;
        return status === 200;
      },
      30_000,
      250,
    );
    const got = upstream.received.slice(before).filter((h) => h.authorization);
    expect(got.at(-1)!.authorization).toBe(`Bearer ${secrets[0]}`);
  });

  it('fails closed during a Vault outage, loses nothing, and converges when it returns', async () => {
    await expectFailsClosedThroughOutage({
      client,
      ns,
      provider: 'vault-transit',
      connection: conn,
      pause: () => vault.pause(),
      resume: () => vault.resume(),
      stored: (value) => secrets.push(value),
    });
  });

  it('logs in again after Vault revokes its token', async () => {
    // Revoke every token the Kubernetes auth method issued: the operator's cached token now gets 403.
    await vault.api('PUT', 'sys/leases/revoke-prefix/auth/kubernetes/login');
    const value = randomSecret('relogin');
    secrets.push(value);
    await client.create(ExternalConnections, conn('after-revoke', { token: { value } }) as never);
    await waitFor(
      'sealed after re-login',
      async () => condition(await get('after-revoke'), 'CredentialsSealed')?.status === 'True',
      30_000,
    );
  });

  it('a revoked Vault policy fails closed with reason KmsAccessDenied; restoring it recovers', async () => {
    const denied = () =>
      scrapeCounter(operator!.healthURL, 'atoll_kms_failures_total', {
        provider: 'vault-transit',
        reason: 'KmsAccessDenied',
      });
    const before = await denied();
    await vault.api('DELETE', 'sys/policies/acl/atoll-controller');
    try {
      const refused = await client
        .create(ExternalConnections, conn('no-policy', { token: { value: randomSecret('pol') } }) as never)
        .catch((e: Error) => e);
      expect(refused.message).toContain('nothing was stored');
      expect(await client.tryGet(ExternalConnections, 'no-policy', ns)).toBeUndefined();

      const v = randomSecret('pref');
      secrets.push(v);
      await client.create(Secrets, {
        metadata: { name: 'eso-2', namespace: ns, annotations: { 'atoll.dev/allowed-connections': 'denied-ref' } },
        stringData: { token: v },
      } as never);
      await client.create(
        ExternalConnections,
        conn('denied-ref', { token: { secretKeyRef: { name: 'eso-2', key: 'token' } } }) as never,
      );
      await waitFor('refused by Vault', async () => (await denied()) > before, 30_000, 250);
      expect(condition(await get('denied-ref'), 'CredentialsSealed')).toMatchObject({
        status: 'False',
        reason: 'KMSUnavailable',
      });
      expect(await client.tryGet(Secrets, 'denied-ref-credentials', ns)).toBeUndefined();
    } finally {
      await vault.api('PUT', 'sys/policies/acl/atoll-controller', { policy: transitPolicy(keyId, 'controller') });
    }
    await waitFor(
      'recovered',
      async () => condition(await get('denied-ref'), 'CredentialsSealed')?.status === 'True',
      60_000,
      250,
    );
  });

  it('Vault refuses a token of the wrong audience or of another ServiceAccount', async () => {
    const wrongAudience = await serviceAccountTokenFile(client, OPERATOR_NAMESPACE, 'atoll-controller', 'not-vault');
    const otherAccount = await serviceAccountTokenFile(client, ns, 'app', VAULT_AUDIENCE);
    for (const jwtFile of [wrongAudience, otherAccount]) {
      const p = new VaultTransitProvider({
        address: vault.address,
        caPem: vault.caPem!,
        auth: { method: 'kubernetes', role: 'atoll-controller', jwtFile },
      });
      try {
        const err = await p.generateDataKey(keyId, encryptionContext(await binding('x'))).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(KmsAccessDeniedError);
        expect(JSON.stringify(err)).not.toContain(readFileSync(jwtFile, 'utf8'));
      } finally {
        await p.close();
      }
    }
  });

  it('never logged a credential, a Vault token or a ServiceAccount token', () => {
    const all = logs.join('');
    expect(all.length).toBeGreaterThan(0);
    for (const s of secrets) expect(all).not.toContain(s);
    expect(all).not.toContain(readFileSync(controllerJwt, 'utf8'));
    expect(all).not.toMatch(/hvs\.[A-Za-z0-9_-]{20,}/);
  });
});
