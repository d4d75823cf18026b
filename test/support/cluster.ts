import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execFile } from 'node:child_process';
import type { IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { promisify } from 'node:util';
import { KubeConfig } from '@kubernetes/client-node';
import { inject } from 'vitest';
import { stringify } from 'yaml';
import { KubeClient, type KubeObject } from '../../src/kube/client.js';
import { Namespaces, Workspaces } from '../../src/kube/resources.js';
import { createCertificate } from '../../src/kube/x509.js';
import { waitFor } from '../../src/dev/ports.js';
import type { Workspace } from '../../src/api/v1alpha1/index.js';
import type { DevState } from './state.js';

const run = promisify(execFile);

/** The shared `atoll dev` instance started by the global setup. */
export function devState(): DevState {
  return inject('atoll');
}

export function admin(): KubeClient {
  return KubeClient.fromKubeconfigFile(devState().kubeconfig);
}

/** The dev control plane's PKI directory (the API server CA, the webhook client certificate). */
export function devPki(state: DevState = devState()): string {
  return path.join(path.dirname(state.kubeconfig), 'pki');
}

/** A client certificate for `user` in `groups`, and the CA that verifies the API server. */
export function userCertificate(
  user: string,
  groups: string[] = [],
  state: DevState = devState(),
): { certPem: string; keyPem: string; caPem: string } {
  const pki = devPki(state);
  const ca = {
    certPem: readFileSync(path.join(pki, 'ca.crt'), 'utf8'),
    keyPem: readFileSync(path.join(pki, 'ca.key'), 'utf8'),
  };
  return {
    ...createCertificate({ issuer: ca, commonName: user, organizations: groups, usage: 'client' }),
    caPem: ca.certPem,
  };
}

export interface RawResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** One request to the API server as `user`, with status and headers as sent (what kubectl would see). */
export function rawApiRequest(
  user: { certPem: string; keyPem: string; caPem: string },
  method: string,
  apiPath: string,
  body?: unknown,
  contentType = 'application/json',
): Promise<RawResponse> {
  const url = new URL(apiPath, devState().server);
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      url,
      {
        method,
        cert: user.certPem,
        key: user.keyPem,
        ca: user.caPem,
        headers: {
          Accept: 'application/json',
          ...(payload ? { 'Content-Type': contentType, 'Content-Length': payload.length } : {}),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

function kubeconfigYaml(state: DevState, user: string, groups: string[]): string {
  const { caPem, ...cert } = userCertificate(user, groups, state);
  const ca = { certPem: caPem };
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'atoll', cluster: { server: state.server, 'certificate-authority-data': b64(ca.certPem) } }],
    users: [
      { name: user, user: { 'client-certificate-data': b64(cert.certPem), 'client-key-data': b64(cert.keyPem) } },
    ],
    contexts: [{ name: 'atoll', context: { cluster: 'atoll', user } }],
    'current-context': 'atoll',
  });
}

/** A client authenticated as a tenant user (client certificate; RBAC is real). */
export function userClient(user: string, groups: string[] = []): KubeClient {
  const kc = new KubeConfig();
  kc.loadFromString(kubeconfigYaml(devState(), user, groups));
  return new KubeClient(kc);
}

/** A kubeconfig file for kubectl acting as `user`. */
export function userKubeconfig(user: string, groups: string[] = []): string {
  const file = path.join(mkdtempSync(path.join(tmpdir(), 'atoll-kc-')), 'kubeconfig');
  writeFileSync(file, kubeconfigYaml(devState(), user, groups), { mode: 0o600 });
  return file;
}

/** Runs kubectl against the dev cluster (admin unless another kubeconfig is given). */
export async function kubectl(
  args: string[],
  opts: { kubeconfig?: string; input?: string } = {},
): Promise<{ stdout: string; stderr: string; code: number }> {
  return new Promise((resolve) => {
    const child = execFile(
      'kubectl',
      ['--kubeconfig', opts.kubeconfig ?? devState().kubeconfig, ...args],
      { maxBuffer: 32 * 1024 * 1024 },
      (err, stdout, stderr) => {
        resolve({ stdout, stderr, code: err ? ((err as { code?: number }).code ?? 1) : 0 });
      },
    );
    if (opts.input !== undefined) {
      child.stdin?.end(opts.input);
    }
  });
}
void run;

export function uniqueName(prefix: string): string {
  return `${prefix}-${randomBytes(3).toString('hex')}`;
}

/** A random credential that cannot appear anywhere by accident. */
export function randomSecret(prefix = 'atollsecret'): string {
  return `${prefix}${randomBytes(18).toString('hex')}`;
}

/** Creates a namespace with a Workspace and waits for it to be Ready. */
export async function createWorkspace(
  name: string,
  spec: Workspace['spec'] = {},
  client = admin(),
): Promise<Workspace & KubeObject> {
  await client.create(Namespaces, { metadata: { name } });
  await client.create(Workspaces, { metadata: { name, namespace: name }, spec } as never);
  let ws: (Workspace & KubeObject) | undefined;
  await waitFor(
    `workspace ${name} Ready`,
    async () => {
      ws = await client.get<Workspace & KubeObject>(Workspaces, name, name);
      return ws.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
    },
    30_000,
  );
  return ws!;
}

/** Polls until `get` returns something `predicate` accepts; returns it. */
export async function eventually<T>(
  what: string,
  get: () => Promise<T>,
  predicate: (v: T) => boolean,
  timeoutMs = 30_000,
): Promise<T> {
  let last: T | undefined;
  await waitFor(
    what,
    async () => {
      last = await get();
      return predicate(last);
    },
    timeoutMs,
    100,
  );
  return last!;
}

export interface ConditionView {
  type: string;
  status: string;
  reason?: string;
  message?: string;
  observedGeneration?: number;
  lastTransitionTime?: string;
}

/** The condition of that type on any object with status conditions (undefined when absent). */
export function condition(obj: { status?: unknown }, type: string): ConditionView | undefined {
  const status = obj.status as { conditions?: ConditionView[] } | undefined;
  return status?.conditions?.find((c) => c.type === type);
}

/** Every key and value in etcd, as raw bytes decoded latin1 (range over the whole keyspace via the v3 JSON gateway). */
export async function etcdDump(): Promise<string> {
  const endpoint = devState().etcd.endpoints[0]!;
  const res = await fetch(`${endpoint}/v3/kv/range`, {
    method: 'POST',
    body: JSON.stringify({
      key: Buffer.from('\0').toString('base64'),
      range_end: Buffer.from('\0').toString('base64'),
    }),
  });
  const body = (await res.json()) as { kvs?: Array<{ key: string; value: string }> };
  return (body.kvs ?? [])
    .map(
      (kv) =>
        Buffer.from(kv.key, 'base64').toString('latin1') +
        '\n' +
        Buffer.from(kv.value ?? '', 'base64').toString('latin1'),
    )
    .join('\n');
}
