import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import type { KubeClient, KubeObject } from '../../../src/kube/client.js';
import {
  ExternalConnections,
  IntegrationTypes,
  Leases,
  Namespaces,
  RoleBindings,
  ServiceAccounts,
  Workspaces,
} from '../../../src/kube/resources.js';
import { createCertificate, createCertificateAuthority } from '../../../src/kube/x509.js';
import { ControlPlane, WEBHOOK_CLIENT_NAME } from '../../../src/dev/control-plane.js';
import { installAtoll, OPERATOR_NAMESPACE, precreateWebhookConfigurations } from '../../../src/dev/embedded.js';
import { createKmsKey, MOTO_CREDENTIALS, MOTO_REGION, startMoto, type MotoServer } from '../moto.js';
import { freePort, waitFor } from '../../../src/dev/ports.js';
import { SupervisedProcess } from './processes.js';
import { Toxiproxy } from './toxiproxy.js';

/** The IntegrationType of every chaos connection: an API key in a header, deliverable through the gateway and as files. */
export const CHAOS_TYPE = {
  displayName: 'Chaos API',
  category: 'api',
  settingsSchema: { type: 'object', required: ['baseURL'], properties: { baseURL: { type: 'string' } } },
  credentialFields: [{ name: 'apiKey', required: true }],
  probe: {
    http: {
      url: '{{settings.baseURL}}/health',
      auth: { type: 'header', headerName: 'X-API-Key', credential: 'apiKey' },
    },
  },
  gateway: { baseURL: '{{settings.baseURL}}', auth: { type: 'header', headerName: 'X-API-Key', credential: 'apiKey' } },
  delivery: ['proxy', 'files'],
};

/** The ServiceAccount of each workspace's workload (calls through the gateway, runs the agent). */
export const WORKLOAD_SA = 'app';

/** What the recording upstream received: the connection its path names and the key the gateway injected. */
export interface Received {
  connection: string;
  call: string;
  apiKey: string;
  at: number;
}

export interface ConnectionRef {
  namespace: string;
  name: string;
  key: string;
}

export interface ChaosWorld {
  dir: string;
  cp: ControlPlane;
  admin: KubeClient;
  moto: MotoServer;
  toxiproxy: Toxiproxy;
  /** Proxy names, as toxiproxy knows them. */
  proxies: { kubeApi: string; kms: string };
  controllers: SupervisedProcess[];
  gateway: { url: string; caPem: string; process: SupervisedProcess };
  agents: SupervisedProcess[];
  /** `<agentsDir>/<namespace>/<connection>/apiKey`. */
  agentsDir: string;
  upstream: { received: Received[] };
  connections: ConnectionRef[];
  /** Per workspace namespace, a token of its workload's ServiceAccount (audience atoll-gateway). */
  tokens: Map<string, string>;
  /** Stops everything; the state dir (logs, etcd data) is removed unless `keepState` or ATOLL_KEEP_CHAOS_STATE. */
  stop(opts?: { keepState?: boolean }): Promise<void>;
}

const LEASE_AND_TOKEN_SECONDS = 24 * 3600;

/** A recording upstream on loopback: every connection's baseURL is `<url>/<namespace>/<name>`. */
async function recordingUpstream(): Promise<{ url: string; received: Received[]; close(): Promise<void> }> {
  const received: Received[] = [];
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://upstream');
    const [, ns, name] = url.pathname.split('/');
    received.push({
      connection: `${ns}/${name}`,
      call: url.searchParams.get('call') ?? '',
      apiKey: String(req.headers['x-api-key'] ?? ''),
      at: Date.now(),
    });
    req.resume();
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{"ok":true}');
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    received,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/**
 * The admission webhook's Service: one stable address in front of both
 * controller replicas (each serves the webhooks, as in a cluster), sending
 * each connection to the first replica that accepts it. TLS passes through.
 */
async function webhookService(backends: number[]): Promise<{ port: number; close(): Promise<void> }> {
  let next = 0;
  const open = new Set<net.Socket>();
  const server = net.createServer((client) => {
    open.add(client);
    client.once('close', () => open.delete(client));
    client.pause();
    const order = backends.map((_, i) => backends[(next + i) % backends.length]!);
    next++;
    const tryNext = (i: number) => {
      if (i >= order.length) return void client.destroy();
      const upstream = net.connect(order[i]!, '127.0.0.1');
      open.add(upstream);
      upstream.once('close', () => open.delete(upstream));
      upstream.once('error', () => tryNext(i + 1));
      upstream.once('connect', () => {
        upstream.removeAllListeners('error');
        upstream.on('error', () => client.destroy());
        client.on('error', () => upstream.destroy());
        client.pipe(upstream).pipe(client);
        client.resume();
      });
    };
    tryNext(0);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        for (const s of open) s.destroy();
      }),
  };
}

async function serviceAccountToken(
  admin: KubeClient,
  namespace: string,
  name: string,
  audiences?: string[],
): Promise<string> {
  const review = await admin.request<{ status: { token: string } }>(
    'POST',
    `/api/v1/namespaces/${namespace}/serviceaccounts/${name}/token`,
    {
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenRequest',
      spec: { expirationSeconds: LEASE_AND_TOKEN_SECONDS, ...(audiences ? { audiences } : {}) },
    },
  );
  return review.status.token;
}

function tokenKubeconfig(server: string, caPem: string, token: string): string {
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [
      { name: 'chaos', cluster: { server, 'certificate-authority-data': Buffer.from(caPem).toString('base64') } },
    ],
    users: [{ name: 'sa', user: { token } }],
    contexts: [{ name: 'chaos', context: { cluster: 'chaos', user: 'sa' } }],
    'current-context': 'chaos',
  });
}

export interface WorldOptions {
  workspaces: number;
  connectionsPerWorkspace: number;
  /** The first value of each connection. */
  initialValue: (connection: ConnectionRef) => string;
  progress: (line: string) => void;
}

/**
 * Everything the chaos suite breaks, each part a real process: etcd and
 * kube-apiserver (with kube-controller-manager's quota controller), moto as
 * the KMS, toxiproxy in front of the API server and the KMS, two controller
 * replicas with leader election (`node dist/main.js controller`, kept running
 * like a kubelet would), the gateway, one agent per workspace, and a
 * recording upstream every connection points at.
 */
export async function startChaosWorld(opts: WorldOptions): Promise<ChaosWorld> {
  const dir = mkdtempSync(path.join(tmpdir(), 'atoll-chaos-'));
  const say = opts.progress;
  const cleanups: Array<{ what: string; run: () => Promise<unknown> }> = [];
  const cleanup = (what: string, run: () => Promise<unknown>) => void cleanups.push({ what, run });
  // Each step bounded: a process that ignores SIGTERM must not hold the suite (they are SIGKILLed on exit anyway).
  const stop = async (opts: { keepState?: boolean } = {}) => {
    for (const c of cleanups.reverse()) {
      const began = Date.now();
      await Promise.race([c.run().catch(() => undefined), new Promise((r) => setTimeout(r, 20_000).unref())]);
      if (Date.now() - began > 5_000) say(`stopping ${c.what} took ${Math.round((Date.now() - began) / 1000)}s`);
    }
    if (!opts.keepState && !process.env.ATOLL_KEEP_CHAOS_STATE) rmSync(dir, { recursive: true, force: true });
  };
  try {
    say(`state in ${dir}`);
    const cp = await ControlPlane.start({ dir: path.join(dir, 'cluster'), controllerManager: false, onProgress: say });
    cleanup('controlPlane', () => cp.stop());
    const admin = cp.adminClient();
    await installAtoll(admin);
    await precreateWebhookConfigurations(admin);
    await cp.startControllerManager(['resourcequota']);
    await admin.create(IntegrationTypes, { metadata: { name: 'chaos-api' }, spec: CHAOS_TYPE } as never);

    const moto = await startMoto();
    cleanup('moto', () => moto.stop());
    const keyArn = await createKmsKey(moto.endpoint);

    const toxiproxy = await Toxiproxy.start(path.join(dir, 'toxiproxy.log'));
    cleanup('toxiproxy', () => toxiproxy.stop());
    const kubeApi = await toxiproxy.proxy('kube-api', new URL(cp.server).host);
    const kms = await toxiproxy.proxy('kms', new URL(moto.endpoint).host);

    const upstream = await recordingUpstream();
    cleanup('upstream', () => upstream.close());

    // Controller and gateway reach the API server and the KMS only through toxiproxy, with the shipped RBAC.
    const caPem = cp.ca.certPem;
    const proxiedServer = `https://${kubeApi.listen}`;
    const controllerKubeconfig = path.join(dir, 'controller.kubeconfig');
    writeFileSync(
      controllerKubeconfig,
      tokenKubeconfig(proxiedServer, caPem, await serviceAccountToken(admin, OPERATOR_NAMESPACE, 'atoll-controller')),
      { mode: 0o600 },
    );
    const gatewayKubeconfig = path.join(dir, 'gateway.kubeconfig');
    writeFileSync(
      gatewayKubeconfig,
      tokenKubeconfig(proxiedServer, caPem, await serviceAccountToken(admin, OPERATOR_NAMESPACE, 'atoll-gateway')),
      { mode: 0o600 },
    );
    const common: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      ATOLL_NAMESPACE: OPERATOR_NAMESPACE,
      ATOLL_KMS_PROVIDER: 'aws-kms',
      ATOLL_KMS_ENDPOINT: `http://${kms.listen}`,
      ATOLL_KMS_KEY_ID: keyArn,
      AWS_REGION: MOTO_REGION,
      AWS_ACCESS_KEY_ID: MOTO_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: MOTO_CREDENTIALS.secretAccessKey,
      ATOLL_HEALTH_HOST: '127.0.0.1',
      ATOLL_HEALTH_PORT: '0',
      ATOLL_LOG_LEVEL: 'info',
    };

    const replicaPorts = [await freePort(), await freePort()];
    const webhook = await webhookService(replicaPorts);
    cleanup('webhookService', () => webhook.close());
    const controllers = ['a', 'b'].map(
      (id, i) =>
        new SupervisedProcess(
          `controller-${id}`,
          ['controller'],
          {
            ...common,
            KUBECONFIG: controllerKubeconfig,
            POD_NAME: `atoll-controller-${id}`,
            ATOLL_LEADER_ELECT: 'true',
            ATOLL_WEBHOOK_HOST: '127.0.0.1',
            ATOLL_WEBHOOK_PORT: String(replicaPorts[i]),
            ATOLL_WEBHOOK_URL: `https://127.0.0.1:${webhook.port}`,
            ATOLL_WEBHOOK_CLIENT_CA_FILE: cp.webhookClientCAPath,
            ATOLL_WEBHOOK_CLIENT_NAMES: WEBHOOK_CLIENT_NAME,
          },
          dir,
        ),
    );
    cleanup('controllers', () => Promise.all(controllers.map((c) => c.stop())));
    say('starting two controller replicas');
    for (const c of controllers) c.start();
    await waitFor(
      'a controller leads and the webhook answers',
      async () => {
        const lease = await admin.tryGet<KubeObject & { spec: { holderIdentity?: string } }>(
          Leases,
          'atoll-controller',
          OPERATOR_NAMESPACE,
        );
        return Boolean(lease?.spec.holderIdentity);
      },
      120_000,
      500,
    );

    const gatewayCA = createCertificateAuthority({ commonName: 'atoll-chaos-gateway-ca' });
    const gatewayCert = createCertificate({
      issuer: gatewayCA,
      commonName: 'localhost',
      dnsNames: ['localhost'],
      ipAddresses: ['127.0.0.1'],
      usage: 'server',
    });
    writeFileSync(path.join(dir, 'gateway.crt'), gatewayCert.certPem);
    writeFileSync(path.join(dir, 'gateway.key'), gatewayCert.keyPem, { mode: 0o600 });
    writeFileSync(path.join(dir, 'gateway-ca.crt'), gatewayCA.certPem);
    const gatewayPort = await freePort();
    const gatewayProcess = new SupervisedProcess(
      'gateway',
      ['gateway'],
      {
        ...common,
        KUBECONFIG: gatewayKubeconfig,
        ATOLL_GATEWAY_HOST: '127.0.0.1',
        ATOLL_GATEWAY_PORT: String(gatewayPort),
        ATOLL_GATEWAY_TLS_CERT_FILE: path.join(dir, 'gateway.crt'),
        ATOLL_GATEWAY_TLS_KEY_FILE: path.join(dir, 'gateway.key'),
      },
      dir,
    );
    cleanup('gateway', () => gatewayProcess.stop());
    gatewayProcess.start();

    say(`creating ${opts.workspaces} workspaces with ${opts.connectionsPerWorkspace} connections each`);
    const connections: ConnectionRef[] = [];
    const tokens = new Map<string, string>();
    const agentsDir = path.join(dir, 'agents');
    const agents: SupervisedProcess[] = [];
    cleanup('agents', () => Promise.all(agents.map((a) => a.stop())));
    for (let w = 0; w < opts.workspaces; w++) {
      const ns = `chaos-${w}`;
      await admin.create(Namespaces, { metadata: { name: ns } });
      await admin.create(Workspaces, {
        metadata: { name: ns, namespace: ns },
        spec: { displayName: ns, policy: { egress: { allowCIDRs: ['127.0.0.1/32'] } } },
      } as never);
      await admin.create(ServiceAccounts, { metadata: { name: WORKLOAD_SA, namespace: ns } });
      for (const role of ['atoll-connection-user', 'atoll-connection-reader']) {
        await admin.create(RoleBindings, {
          metadata: { name: `${WORKLOAD_SA}-${role}`, namespace: ns },
          roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role },
          subjects: [{ kind: 'ServiceAccount', name: WORKLOAD_SA, namespace: ns }],
        } as never);
      }
      await waitFor(
        `workspace ${ns} Ready`,
        async () => {
          const ws = await admin.get<
            KubeObject & { status?: { conditions?: Array<{ type: string; status: string }> } }
          >(Workspaces, ns, ns);
          return ws.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
        },
        120_000,
        250,
      );
      for (let c = 0; c < opts.connectionsPerWorkspace; c++) {
        const ref = { namespace: ns, name: `conn-${c}`, key: `${ns}/conn-${c}` };
        await admin.create(ExternalConnections, {
          metadata: { name: ref.name, namespace: ns },
          spec: {
            type: 'chaos-api',
            settings: { baseURL: `${upstream.url}/${ns}/${ref.name}` },
            credentials: { apiKey: { value: opts.initialValue(ref) } },
            probe: { interval: '0' },
          },
        } as never);
        connections.push(ref);
      }
      const token = await serviceAccountToken(admin, ns, WORKLOAD_SA, ['atoll-gateway']);
      tokens.set(ns, token);
      const tokenFile = path.join(dir, `${ns}.token`);
      writeFileSync(tokenFile, token, { mode: 0o600 });
      mkdirSync(path.join(agentsDir, ns), { recursive: true });
      const names = connections.filter((c) => c.namespace === ns).map((c) => c.name);
      agents.push(
        new SupervisedProcess(
          `agent-${ns}`,
          [
            'agent',
            '--gateway',
            `https://127.0.0.1:${gatewayPort}`,
            '--ca-file',
            path.join(dir, 'gateway-ca.crt'),
            '--token-file',
            tokenFile,
            '--dir',
            path.join(agentsDir, ns),
            ...names.flatMap((n) => ['--connection', n]),
          ],
          { PATH: process.env.PATH, HOME: process.env.HOME },
          dir,
        ),
      );
    }
    for (const a of agents) a.start();

    return {
      dir,
      cp,
      admin,
      moto,
      toxiproxy,
      proxies: { kubeApi: kubeApi.name, kms: kms.name },
      controllers,
      gateway: { url: `https://127.0.0.1:${gatewayPort}`, caPem: gatewayCA.certPem, process: gatewayProcess },
      agents,
      agentsDir,
      upstream,
      connections,
      tokens,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
