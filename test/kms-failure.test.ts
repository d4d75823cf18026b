import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { destinationDigest } from '../src/integrations/destination.js';
import { managedCopy } from '../src/crypto/binding.js';
import type { IntegrationTypeObject } from '../src/integrations/probe-types.js';
import { Writable } from 'node:stream';
import type { ExternalConnection } from '../src/api/v1alpha1/index.js';
import {
  installAtoll,
  loopbackOperatorConfig,
  OPERATOR_NAMESPACE,
  precreateWebhookConfigurations,
} from '../src/dev/embedded.js';
import { Envelope } from '../src/crypto/envelope.js';
import { AwsKmsProvider } from '../src/crypto/providers/aws-kms.js';
import { createProviderRegistry } from '../src/crypto/providers/index.js';
import type { KubeClient, KubeObject } from '../src/kube/client.js';
import { ExternalConnections, Namespaces, Secrets, Workspaces } from '../src/kube/resources.js';
import { startOperator, type RunningOperator } from '../src/operator.js';
import { createLogger } from '../src/runtime/logger.js';
import { packageRoot } from '../src/dev/binaries.js';
import { ControlPlane } from '../src/dev/control-plane.js';
import { createKmsKey, MOTO_CREDENTIALS, MOTO_REGION, startMoto, type MotoServer } from './support/moto.js';
import { waitFor } from '../src/dev/ports.js';
import { condition, randomSecret } from './support/cluster.js';
import { expectFailsClosedThroughOutage } from './support/kms-outage.js';

type Conn = ExternalConnection & KubeObject;

const HTTP_API = parse(
  readFileSync(path.join(packageRoot(), 'config', 'types', 'http-api.yaml'), 'utf8'),
) as IntegrationTypeObject;
/** Where the connections below send their credential: part of what each value is sealed to. */
const HTTP_API_DESTINATION = destinationDigest(HTTP_API, { baseURL: 'https://api.example.com', auth: 'bearer' });
type Secret = KubeObject & { data?: Record<string, string> };

/**
 * Fail closed, lose nothing (invariant 7) with the aws-kms provider against a
 * real KMS emulator: an outage, and a controller killed between the KMS call
 * and the Secret write.
 */
describe('aws-kms: outage and crash recovery', () => {
  let cp: ControlPlane;
  let client: KubeClient;
  let moto: MotoServer;
  let keyId: string;
  let operator: RunningOperator | undefined;
  const logs: string[] = [];
  const ns = 'kms-tenant';

  async function start(hooks: Parameters<typeof startOperator>[0]['probeHooks'] = {}) {
    const config = loopbackOperatorConfig({
      ATOLL_KMS_PROVIDER: 'aws-kms',
      ATOLL_KMS_KEY_ID: keyId,
      AWS_REGION: MOTO_REGION,
      ATOLL_KMS_ENDPOINT: moto.endpoint,
      ATOLL_KMS_TIMEOUT_MS: '800',
    });
    const sink = new Writable({
      write(chunk: Buffer, _e, cb) {
        logs.push(chunk.toString());
        cb();
      },
    });
    // As its own ServiceAccount, as in a cluster (the admission policies fence exactly that identity).
    const operatorClient = await cp.serviceAccountClient(OPERATOR_NAMESPACE, config.serviceAccounts.controller);
    operator = await startOperator({
      client: operatorClient,
      config,
      log: createLogger({ level: 'debug', destination: sink }),
      probeHooks: hooks,
    });
  }

  beforeAll(async () => {
    process.env.AWS_ACCESS_KEY_ID = MOTO_CREDENTIALS.accessKeyId;
    process.env.AWS_SECRET_ACCESS_KEY = MOTO_CREDENTIALS.secretAccessKey;
    moto = await startMoto();
    keyId = await createKmsKey(moto.endpoint);
    cp = await ControlPlane.start({ controllerManager: false });
    client = cp.adminClient();
    const root = packageRoot();
    await installAtoll(client, root);
    await precreateWebhookConfigurations(client);
    await cp.startControllerManager();
    await start();
    await client.create(Namespaces, { metadata: { name: ns } });
    await client.create(Workspaces, { metadata: { name: ns, namespace: ns }, spec: {} } as never);
    await waitFor(
      'workspace ready',
      async () =>
        condition(await client.get<KubeObject & { status?: unknown }>(Workspaces, ns, ns), 'Ready')?.status === 'True',
      30_000,
    );
  });

  afterAll(async () => {
    await operator?.stop();
    await cp?.stop();
    await moto?.stop();
  });

  const conn = (name: string, credentials: Record<string, unknown>) => ({
    metadata: { name, namespace: ns },
    spec: {
      type: 'http-api',
      settings: { baseURL: 'https://api.example.com', auth: 'bearer' },
      credentials,
      probe: { interval: '0' },
    },
  });
  const get = (name: string) => client.get<Conn>(ExternalConnections, name, ns);

  it('seals with the AWS KMS key, bound by EncryptionContext', async () => {
    const p = randomSecret('aws');
    await client.create(ExternalConnections, conn('steady', { token: { value: p } }) as never);
    await waitFor(
      'steady sealed',
      async () => condition(await get('steady'), 'CredentialsSealed')?.status === 'True',
      30_000,
    );
    const c = await get('steady');
    expect(c.status?.credentials?.token?.keyId).toBe(keyId);
    const ct = c.spec.credentials!.token!.sealed!;
    expect(ct.startsWith('atoll:v1:aws-kms:')).toBe(true);
    // The emulator decrypts it only under this binding (workspace identity = Workspace UID).
    const ws = await client.get<KubeObject>(Workspaces, ns, ns);
    const envelope = new Envelope({
      providers: createProviderRegistry({ awsKms: { region: MOTO_REGION, endpoint: moto.endpoint } }),
    });
    expect(
      await envelope.open(ct, {
        namespace: ns,
        workspace: ws.metadata!.uid!,
        connection: 'steady',
        field: 'token',
        destination: HTTP_API_DESTINATION,
      }),
    ).toBe(p);
    await expect(
      envelope.open(ct, {
        namespace: ns,
        workspace: ws.metadata!.uid!,
        connection: 'other',
        field: 'token',
        destination: HTTP_API_DESTINATION,
      }),
    ).rejects.toMatchObject({ reason: 'CiphertextRejected' });
    // A KMS key outside the cluster: no LocalKeyRing warning, and /metrics names the provider.
    expect(condition(ws as never, 'EncryptionReady')).toMatchObject({ status: 'True', reason: 'Succeeded' });
    const metrics = await (await fetch(`${operator!.healthURL}/metrics`)).text();
    expect(metrics).toMatch(/^atoll_kms_provider_info\{provider="aws-kms"\} 1$/m);
    expect(metrics).toMatch(/^atoll_local_key_ring_workspaces 0$/m);
    void AwsKmsProvider;
  });

  it('fails closed during a KMS outage, loses nothing, and converges when it returns', async () => {
    await expectFailsClosedThroughOutage({
      client,
      ns,
      provider: 'aws-kms',
      connection: conn,
      pause: () => moto.pause(),
      resume: () => moto.resume(),
    });
  });

  it('converges to exactly one correct Secret after a crash between the KMS call and the Secret write', async () => {
    await operator!.stop();
    let crashed = false;
    await start({
      beforeSecretWrite: async (_ns, name) => {
        if (name === 'crashy') {
          crashed = true;
          throw new Error('simulated crash after sealing');
        }
      },
    });
    const v = randomSecret('crash');
    await client.create(Secrets, {
      metadata: { name: 'crash-src', namespace: ns, annotations: { 'atoll.dev/allowed-connections': 'crashy' } },
      stringData: { token: v },
    } as never);
    await client.create(
      ExternalConnections,
      conn('crashy', { token: { secretKeyRef: { name: 'crash-src', key: 'token' } } }) as never,
    );
    await waitFor('crash point reached', async () => crashed, 30_000);
    await operator!.stop(); // the process "dies" here
    expect(await client.tryGet(Secrets, 'crashy-credentials', ns)).toBeUndefined();

    await start();
    await waitFor(
      'crashy sealed',
      async () => condition(await get('crashy'), 'CredentialsSealed')?.status === 'True',
      30_000,
    );
    const secrets = await client.list<Secret>(Secrets, { namespace: ns, labelSelector: 'atoll.dev/connection=crashy' });
    expect(secrets.items).toHaveLength(1);
    expect((await get('crashy')).status?.credentials?.token?.version).toBe(1);
    const ws = await client.get<KubeObject>(Workspaces, ns, ns);
    const envelope = new Envelope({
      providers: createProviderRegistry({ awsKms: { region: MOTO_REGION, endpoint: moto.endpoint } }),
    });
    const ct = Buffer.from(secrets.items[0]!.data!.token!, 'base64').toString();
    // The managed Secret holds the operator's copy: bound to this connection object and version 1 (ADR 0013).
    const managed = {
      namespace: ns,
      workspace: ws.metadata!.uid!,
      connection: 'crashy',
      field: 'token',
      destination: HTTP_API_DESTINATION,
    };
    expect(await envelope.open(ct, { ...managed, copy: managedCopy((await get('crashy')).metadata.uid!, 1) })).toBe(v);
    await expect(envelope.open(ct, managed)).rejects.toMatchObject({ reason: 'CiphertextRejected' });
  });

  it('never logged a credential', () => {
    const all = logs.join('');
    expect(all.length).toBeGreaterThan(0);
    expect(all).not.toMatch(/(aws|out|src|crash)[0-9a-f]{36}/);
  });
});
