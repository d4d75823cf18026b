import { readFileSync } from 'node:fs';
import { connect as tlsConnect } from 'node:tls';
import { Agent, fetch as undiciFetch } from 'undici';
import type { ExternalConnection, Workspace } from '../../../src/api/v1alpha1/index.js';
import type { KubeObject } from '../../../src/kube/client.js';
import {
  ExternalConnections,
  IntegrationTypes,
  RoleBindings,
  Secrets,
  ServiceAccounts,
} from '../../../src/kube/resources.js';
import { admin, condition, createWorkspace, devState, eventually, uniqueName } from '../../support/cluster.js';

type Conn = ExternalConnection & KubeObject;

/** Nothing listens on port 1: the one probe of each test connection fails at once and sends nothing anywhere. */
const CLOSED_PORT_URL = 'http://127.0.0.1:1/probe';

/** A cluster-scoped IntegrationType for one suite: an API-key header injected by the gateway. */
export async function createTestType(delivery: Array<'proxy' | 'files'>): Promise<string> {
  const name = uniqueName('attack-api');
  await admin().create(IntegrationTypes, {
    metadata: { name },
    spec: {
      displayName: 'Attack test API',
      category: 'api',
      delivery,
      settingsSchema: {
        type: 'object',
        required: ['baseURL', 'probeURL'],
        properties: { baseURL: { type: 'string' }, probeURL: { type: 'string' } },
      },
      credentialFields: [{ name: 'apiKey', required: true }],
      // Probes go elsewhere (a closed port), so the recording upstream sees only traffic through the gateway.
      probe: {
        http: { url: '{{settings.probeURL}}', auth: { type: 'header', headerName: 'X-API-Key', credential: 'apiKey' } },
      },
      gateway: {
        baseURL: '{{settings.baseURL}}',
        auth: { type: 'header', headerName: 'X-API-Key', credential: 'apiKey' },
      },
    },
  });
  return name;
}

/** A workspace that may reach loopback (the recording upstream). */
export async function loopbackWorkspace(
  prefix: string,
  policy: NonNullable<Workspace['spec']>['policy'] = {},
): Promise<string> {
  const ns = uniqueName(prefix);
  await createWorkspace(ns, { policy: { ...policy, egress: { allowCIDRs: ['127.0.0.1/32'] } } });
  return ns;
}

/** A connection sealed by the real webhook and controller, never probed, with its managed Secret in place. */
export async function createConnection(
  ns: string,
  name: string,
  type: string,
  baseURL: string,
  apiKey: string,
): Promise<void> {
  await admin().create(ExternalConnections, {
    metadata: { name, namespace: ns },
    spec: {
      type,
      settings: { baseURL, probeURL: CLOSED_PORT_URL },
      credentials: { apiKey: { value: apiKey } },
      probe: { interval: '0' },
    },
  } as never);
  await eventually(
    `${ns}/${name} sealed`,
    () => admin().get<Conn>(ExternalConnections, name, ns),
    (c) => condition(c, 'CredentialsSealed')?.status === 'True',
  );
  await eventually(
    `${ns}/${name} managed Secret`,
    () => admin().tryGet(Secrets, `${name}-credentials`, ns),
    (s) => s !== undefined,
  );
}

/** A ServiceAccount holding the given verbs (through the shipped ClusterRoles) and a gateway token for it. */
export async function workload(ns: string, name: string, grants: { use?: boolean; read?: boolean }): Promise<string> {
  await admin().create(ServiceAccounts, { metadata: { name, namespace: ns } });
  const roles = [...(grants.use ? ['atoll-connection-user'] : []), ...(grants.read ? ['atoll-connection-reader'] : [])];
  for (const role of roles) {
    await admin().create(RoleBindings, {
      metadata: { name: `${name}-${role}`, namespace: ns },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role },
      subjects: [{ kind: 'ServiceAccount', name, namespace: ns }],
    });
  }
  const review = await admin().request<{ status: { token: string } }>(
    'POST',
    `/api/v1/namespaces/${ns}/serviceaccounts/${name}/token`,
    {
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenRequest',
      spec: { audiences: ['atoll-gateway'], expirationSeconds: 3600 },
    },
  );
  return review.status.token;
}

export function gatewayCA(): string {
  return readFileSync(devState().gateway.caFile, 'utf8');
}

let dispatcher: Agent | undefined;

/** A request to the dev gateway over HTTPS, verified against the dev CA. */
export async function gatewayCall(
  pathAndQuery: string,
  token: string | undefined,
  init: { method?: string; body?: string; headers?: Record<string, string>; signal?: AbortSignal } = {},
) {
  dispatcher ??= new Agent({ connect: { ca: gatewayCA() } });
  const res = await undiciFetch(`${devState().gateway.url}${pathAndQuery}`, {
    dispatcher,
    method: init.method ?? 'GET',
    headers: { ...(token === undefined ? {} : { authorization: `Bearer ${token}` }), ...(init.headers ?? {}) },
    ...(init.body === undefined ? {} : { body: init.body }),
    ...(init.signal ? { signal: init.signal } : {}),
  });
  return res;
}

/**
 * Writes `raw` (a whole request, bytes as an attacker chooses them) on a
 * fresh TLS connection to the gateway and returns everything it answers
 * until it closes the connection or goes quiet.
 */
export function rawGatewayExchange(
  raw: string,
  opts: { localAddress?: string; quietMs?: number } = {},
): Promise<string> {
  const url = new URL(devState().gateway.url);
  return new Promise((resolve) => {
    let received = '';
    const socket = tlsConnect(
      {
        host: url.hostname,
        port: Number(url.port),
        ca: gatewayCA(),
        ...(opts.localAddress ? { localAddress: opts.localAddress } : {}),
      },
      () => socket.write(raw),
    );
    let timer: NodeJS.Timeout | undefined;
    const done = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve(received);
    };
    const quiet = () => {
      clearTimeout(timer);
      timer = setTimeout(done, opts.quietMs ?? 1_500);
    };
    quiet();
    socket.on('data', (c: Buffer) => {
      received += c.toString('latin1');
      quiet();
    });
    socket.on('error', done);
    socket.on('close', done);
  });
}

/** Status codes of every response in a raw exchange, in order. */
export function statuses(exchange: string): number[] {
  return [...exchange.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]));
}
