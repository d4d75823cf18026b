import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ExternalConnection, IntegrationType, Workspace } from '../src/api/v1alpha1/index.js';
import { destinationDigest } from '../src/integrations/destination.js';
import { Envelope } from '../src/crypto/envelope.js';
import { createProviderRegistry } from '../src/crypto/providers/index.js';
import { startGateway, type Gateway } from '../src/gateway/server.js';
import type { KubeClient, KubeObject } from '../src/kube/client.js';
import {
  ExternalConnections,
  IntegrationTypes,
  Namespaces,
  RoleBindings,
  ServiceAccounts,
  Workspaces,
} from '../src/kube/resources.js';
import { createOperatorMetrics } from '../src/runtime/metrics.js';
import {
  createKmsKey,
  disableKmsKey,
  MOTO_CREDENTIALS,
  MOTO_REGION,
  startKmsKeyStateProxy,
  startMoto,
  type KmsKeyStateProxy,
  type MotoServer,
} from './support/moto.js';
import { waitFor } from '../src/dev/ports.js';
import { startHttpFixture, type HttpFixture } from './support/services.js';
import { condition, randomSecret } from './support/cluster.js';
import { startIsolatedAtoll, type IsolatedAtoll } from './support/operator-fixture.js';
import { createLogger } from '../src/runtime/logger.js';

type Conn = ExternalConnection & KubeObject;
type Ws = Workspace & KubeObject;

/**
 * Issue 10.3: after a key rotation nothing needs the old key. The operator
 * works from its re-wrapped managed copies (it opens spec's value only when
 * spec changes), publishes the re-wrapped value for Git, and says when the
 * old key is retirable. Against moto: the old key is disabled, the operator
 * and a gateway start afresh (no cached data keys), and every connection
 * stays Ready and is served.
 */
describe('aws-kms: a rotated-away key can be retired', () => {
  let atoll: IsolatedAtoll;
  let client: KubeClient;
  let moto: MotoServer;
  let kms: KmsKeyStateProxy; // moto ignores a disabled key on Decrypt; this enforces it as AWS does
  let oldKey: string;
  let newKey: string;
  let gateway: Gateway | undefined;
  let upstream: HttpFixture;
  const ns = 'retire';
  const tokens = { a: randomSecret('reta'), b: randomSecret('retb') };

  const awsEnvelope = () =>
    new Envelope({ providers: createProviderRegistry({ awsKms: { region: MOTO_REGION, endpoint: kms.endpoint } }) });
  const get = (name: string) => client.get<Conn>(ExternalConnections, name, ns);

  beforeAll(async () => {
    process.env.AWS_ACCESS_KEY_ID = MOTO_CREDENTIALS.accessKeyId;
    process.env.AWS_SECRET_ACCESS_KEY = MOTO_CREDENTIALS.secretAccessKey;
    [moto, upstream] = await Promise.all([startMoto(), startHttpFixture()]);
    kms = await startKmsKeyStateProxy(moto.endpoint);
    oldKey = await createKmsKey(moto.endpoint);
    newKey = await createKmsKey(moto.endpoint);
    // The operator runs as its ServiceAccount with the shipped RBAC, in its own control plane.
    atoll = await startIsolatedAtoll({ kms: { provider: 'aws-kms', endpoint: kms.endpoint, keyId: oldKey } });
    client = atoll.client;
    await client.create(Namespaces, { metadata: { name: ns } });
    await client.create(Workspaces, {
      metadata: { name: ns, namespace: ns },
      spec: { encryption: { keyId: oldKey }, policy: { egress: { allowCIDRs: ['127.0.0.0/8'] } } },
    } as never);
    await waitFor(
      'workspace ready',
      async () => condition(await client.get<Ws>(Workspaces, ns, ns), 'Ready')?.status === 'True',
      30_000,
    );
    for (const [name, token] of Object.entries(tokens)) {
      await client.create(ExternalConnections, {
        metadata: { name, namespace: ns },
        spec: {
          type: 'http-api',
          settings: { baseURL: upstream.url, auth: 'bearer' },
          credentials: { token: { value: token } },
          probe: { interval: '0' },
        },
      } as never);
    }
    await client.create(ServiceAccounts, { metadata: { name: 'app', namespace: ns } });
    await client.create(RoleBindings, {
      metadata: { name: 'app-uses', namespace: ns },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'atoll-connection-user' },
      subjects: [{ kind: 'ServiceAccount', name: 'app', namespace: ns }],
    });
    for (const name of Object.keys(tokens))
      await waitFor(`${name} Ready`, async () => condition(await get(name), 'Ready')?.status === 'True', 30_000);
  });

  afterAll(async () => {
    await gateway?.close();
    await atoll?.stop();
    await Promise.all([moto?.stop(), upstream?.stop(), kms?.stop()]);
  });

  it('re-wraps every managed copy, publishes the new sealed values and says the old key is retirable', async () => {
    await client.mergePatch(Workspaces, ns, ns, { spec: { encryption: { keyId: newKey } } });
    let ws: Ws | undefined;
    await waitFor(
      'retirable',
      async () => {
        ws = await client.get<Ws>(Workspaces, ns, ns);
        return (
          ws.status?.keyRotation?.targetKeyId === newKey &&
          ws.status.keyRotation.retirable === true &&
          ws.status.keyRotation.rewrapped === 2
        );
      },
      60_000,
    );
    expect(ws!.status!.keyRotation).toMatchObject({
      phase: 'Completed',
      managedCopiesOnOldKeys: 0,
      specValuesOnOldKeys: 2,
      rewrapped: 2,
      total: 2,
    });
    for (const name of Object.keys(tokens)) {
      const c = await get(name);
      expect(c.status?.credentials?.token?.keyId).toBe(newKey);
      expect(c.status?.credentials?.token?.version).toBe(1); // re-wrapping is not a rotation
      const published = c.status?.credentials?.token?.sealed;
      expect(published).toMatch(/^atoll:v1:aws-kms:/);
      expect(awsEnvelope().describe(published!).keyId).toBe(newKey);
      expect(awsEnvelope().describe(c.spec.credentials!.token!.sealed!).keyId).toBe(oldKey);
    }
  });

  it('with the old key disabled, a fresh operator keeps every connection Ready and a fresh gateway keeps injecting', async () => {
    await disableKmsKey(moto.endpoint, oldKey);
    kms.disable(oldKey);
    // Spec's values (old key) no longer open anywhere.
    const c = await get('a');
    const ws = await client.get<Ws>(Workspaces, ns, ns);
    const type = await client.get<IntegrationType & KubeObject>(IntegrationTypes, 'http-api');
    const destination = destinationDigest(type, c.spec.settings);
    await expect(
      awsEnvelope().open(c.spec.credentials!.token!.sealed!, {
        namespace: ns,
        workspace: ws.metadata.uid!,
        connection: 'a',
        field: 'token',
        destination,
      }),
    ).rejects.toMatchObject({ reason: 'KeyNotFound' });

    const triedOldKey = kms.refused(); // our own check above
    const restartedAt = Date.now() - 1000;
    await atoll.start(); // a fresh operator: no cached data keys
    for (const name of Object.keys(tokens)) {
      await client.mergePatch(ExternalConnections, name, ns, {
        metadata: { annotations: { 'atoll.dev/test-requested-at': new Date().toISOString() } },
      });
    }
    for (const name of Object.keys(tokens)) {
      await waitFor(
        `${name} re-probed and Ready`,
        async () => {
          const x = await get(name);
          return (
            condition(x, 'Ready')?.status === 'True' &&
            condition(x, 'CredentialsSealed')?.status === 'True' &&
            Date.parse(x.status?.lastProbe?.time ?? '') > restartedAt
          );
        },
        30_000,
      );
    }

    gateway = await startGateway({
      client,
      envelope: awsEnvelope(),
      metrics: createOperatorMetrics(),
      host: '127.0.0.1',
      port: 0,
      insecurePlaintext: true,
      upstreamTimeoutMs: 5_000,
      log: createLogger({ level: 'silent' }),
    }); // loopback only, as in test/gateway.test.ts
    const review = await client.request<{ status: { token: string } }>(
      'POST',
      `/api/v1/namespaces/${ns}/serviceaccounts/app/token`,
      {
        apiVersion: 'authentication.k8s.io/v1',
        kind: 'TokenRequest',
        spec: { audiences: ['atoll-gateway'], expirationSeconds: 600 },
      },
    );
    for (const [name, token] of Object.entries(tokens)) {
      const res = await fetch(`${gateway.url}/v1/connections/${name}/proxy/after-retirement`, {
        headers: { authorization: `Bearer ${review.status.token}` },
      });
      expect(res.status).toBe(200);
      expect(upstream.requests.at(-1)?.headers.authorization).toBe(`Bearer ${token}`);
    }
    // Neither the operator nor the gateway even asked for the old key.
    expect(kms.refused()).toBe(triedOldKey);
  });
});
