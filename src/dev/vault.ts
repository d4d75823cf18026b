import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import path from 'node:path';
import { Agent, request } from 'undici';
import type { KubeClient } from '../kube/client.js';
import { ClusterRoleBindings, Namespaces, ServiceAccounts } from '../kube/resources.js';
import { packageRoot, pinnedVersions } from './binaries.js';
import { SERVICE_ACCOUNT_ISSUER } from './control-plane.js';
import { freePort } from './ports.js';

/** A Vault server on a loopback port, started and stopped by a test. */
export interface VaultServer {
  /** `https://127.0.0.1:<port>` (dev mode, TLS by Vault's own dev CA) or `http://...` (persistent mode). */
  address: string;
  /** PEM of the CA that signed the dev server's certificate (dev mode), and the file holding it. */
  caPem?: string;
  caFile?: string;
  rootToken: string;
  /** An authenticated call to Vault's HTTP API as root (or `token`); throws on a non-2xx answer. */
  api<T = Record<string, unknown>>(method: string, apiPath: string, body?: unknown, token?: string): Promise<T>;
  /** A call that returns Vault's status and `errors` instead of throwing (for asserting refusals). */
  raw(
    method: string,
    apiPath: string,
    body?: unknown,
    token?: string,
  ): Promise<{ status: number; body: { data?: Record<string, unknown>; errors?: string[] } }>;
  /** Freezes the server (SIGSTOP): connections hang, as in a network partition; state is kept. */
  pause(): void;
  /** Thaws it (SIGCONT). */
  resume(): void;
  /** Kills the server process (an outage). */
  stop(): Promise<void>;
  /** Starts it again on the same port (persistent mode keeps its data and comes back sealed). */
  start(): Promise<void>;
  seal(): Promise<void>;
  unseal(): Promise<void>;
  /** Stops it and removes its files. */
  destroy(): Promise<void>;
}

const STARTUP_TIMEOUT_MS = 30_000;
const STOP_GRACE_MS = 3_000;

/**
 * Path of the vault binary: VAULT_BINARY, else the version-stamped cache that
 * hack/build-vault.sh fills (building it now when `build` is not false).
 */
export function vaultBinary(opts: { build?: boolean } = {}): string {
  const fromEnv = process.env.VAULT_BINARY;
  if (fromEnv) {
    if (!existsSync(fromEnv)) throw new Error(`VAULT_BINARY=${fromEnv} does not exist`);
    return fromEnv;
  }
  const cache = process.env.ATOLL_CACHE_DIR ?? path.join(homedir(), '.cache', 'atoll');
  const binary = path.join(cache, 'bin', `vault-v${pinnedVersions().VAULT_VERSION}`, 'vault');
  if (existsSync(binary)) return binary;
  if (opts.build === false) throw new Error('the vault binary is missing: run `bash hack/build-vault.sh`');
  const r = spawnSync('bash', [path.join(packageRoot(), 'hack', 'build-vault.sh')], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  if (r.status !== 0 || !existsSync(binary)) throw new Error('building vault failed (see output above)');
  return binary;
}

/**
 * Starts `vault server` on 127.0.0.1. `dev` (the default) is `vault server
 * -dev -dev-tls`: in-memory, unsealed, TLS with a throw-away CA, a random root
 * token. `persistent` runs a real server with file storage (initialised with
 * one unseal key, then unsealed), so a stop and start keeps the Transit keys,
 * as a production Vault does, and comes back sealed.
 */
export async function startVault(opts: { mode?: 'dev' | 'persistent' } = {}): Promise<VaultServer> {
  const binary = vaultBinary();
  const mode = opts.mode ?? 'dev';
  const dir = mkdtempSync(path.join(tmpdir(), 'atoll-vault-'));
  const port = await freePort();
  let rootToken = `root-${randomBytes(12).toString('hex')}`;
  let unsealKey = '';
  let child: ChildProcess | undefined;
  let stderrTail = '';
  let stdout = '';
  const scheme = mode === 'dev' ? 'https' : 'http';
  const address = `${scheme}://127.0.0.1:${port}`;

  let args: string[];
  if (mode === 'dev') {
    args = [
      'server',
      '-dev',
      `-dev-listen-address=127.0.0.1:${port}`,
      `-dev-root-token-id=${rootToken}`,
      '-dev-tls',
      `-dev-tls-cert-dir=${dir}`,
      '-dev-no-store-token',
    ];
  } else {
    mkdirSync(path.join(dir, 'data'));
    writeFileSync(
      path.join(dir, 'vault.hcl'),
      `storage "file" {\n  path = "${path.join(dir, 'data')}"\n}\nlistener "tcp" {\n  address = "127.0.0.1:${port}"\n  tls_disable = true\n}\ndisable_mlock = true\napi_addr = "${address}"\nui = false\n`,
    );
    args = ['server', `-config=${path.join(dir, 'vault.hcl')}`];
  }
  const killOnExit = () => child?.kill('SIGKILL');
  process.once('exit', killOnExit);

  let agent = new Agent();
  let trustsDevCa = false;
  const raw: VaultServer['raw'] = async (method, apiPath, body, token = rootToken) => {
    const res = await request(`${address}/v1/${apiPath.replace(/^\//, '')}`, {
      method: method as 'GET',
      headers: { 'x-vault-token': token, 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      dispatcher: agent,
      signal: AbortSignal.timeout(10_000),
    });
    const text = await res.body.text();
    return {
      status: res.statusCode,
      body: text ? (JSON.parse(text) as { data?: Record<string, unknown>; errors?: string[] }) : {},
    };
  };
  const api: VaultServer['api'] = async <T>(method: string, apiPath: string, body?: unknown, token?: string) => {
    const res = await raw(method, apiPath, body, token);
    if (res.status < 200 || res.status >= 300)
      throw new Error(`vault ${method} ${apiPath}: ${res.status} ${(res.body.errors ?? []).join('; ')}`);
    return res.body as T;
  };

  const start = async () => {
    stdout = '';
    child = spawn(binary, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, HOME: dir, VAULT_ADDR: address },
    });
    // The dev banner (with the unseal key) goes to stderr; keep both streams' start for it.
    child.stdout?.on('data', (c: Buffer) => (stdout = (stdout + c.toString()).slice(0, 50_000)));
    child.stderr?.on('data', (c: Buffer) => {
      stdout = (stdout + c.toString()).slice(0, 50_000);
      stderrTail = (stderrTail + c.toString()).slice(-2000);
    });
    const deadline = Date.now() + STARTUP_TIMEOUT_MS;
    for (;;) {
      if (child.exitCode !== null)
        throw new Error(`vault exited: ${stderrTail.trim().split('\n').slice(-3).join(' | ')}`);
      if (Date.now() > deadline) throw new Error('vault did not answer in time');
      if (mode === 'dev' && !trustsDevCa && existsSync(path.join(dir, 'vault-ca.pem'))) {
        await agent.close();
        agent = new Agent({ connect: { ca: readFileSync(path.join(dir, 'vault-ca.pem'), 'utf8') } });
        trustsDevCa = true;
      }
      // Dev mode: the health endpoint answers 200 only once Transit and friends are mounted.
      const status = await raw('GET', 'sys/health?standbyok=true&sealedcode=299&uninitcode=298').then(
        (r) => r.status,
        () => 0,
      );
      if (status === 200 || (mode === 'persistent' && (status === 298 || status === 299))) break;
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  const stop = async () => {
    const proc = child;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    proc.kill('SIGCONT');
    await new Promise<void>((resolve) => {
      const killer = setTimeout(() => proc.kill('SIGKILL'), STOP_GRACE_MS);
      proc.once('exit', () => {
        clearTimeout(killer);
        resolve();
      });
      proc.kill('SIGTERM');
    });
  };
  const unseal = async () => {
    // A dev server prints its banner (with the unseal key) on stdout a moment after it answers health checks.
    if (mode === 'dev') unsealKey ||= /Unseal Key: (\S+)/.exec(stdout)?.[1] ?? '';
    if (!unsealKey) throw new Error('the vault dev server printed no unseal key');
    await api('PUT', 'sys/unseal', { key: unsealKey }, '');
  };

  try {
    await start();
    if (mode === 'persistent') {
      const init = await api<{ keys_base64: string[]; root_token: string }>(
        'PUT',
        'sys/init',
        { secret_shares: 1, secret_threshold: 1 },
        '',
      );
      unsealKey = init.keys_base64[0]!;
      rootToken = init.root_token;
      await unseal();
      await waitActive(raw);
    }
  } catch (err) {
    await stop();
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  const caPath = path.join(dir, 'vault-ca.pem');
  return {
    address,
    ...(mode === 'dev' ? { caPem: readFileSync(caPath, 'utf8'), caFile: caPath } : {}),
    get rootToken() {
      return rootToken;
    },
    api,
    raw,
    stop,
    pause: () => void child?.kill('SIGSTOP'),
    resume: () => void child?.kill('SIGCONT'),
    async start() {
      if (mode === 'dev') throw new Error('a dev-mode Vault keeps nothing across a restart; use mode persistent');
      await start();
    },
    async seal() {
      await api('PUT', 'sys/seal');
    },
    async unseal() {
      await unseal();
      await waitActive(raw);
    },
    async destroy() {
      await stop();
      await agent.close();
      process.removeListener('exit', killOnExit);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function waitActive(raw: VaultServer['raw']): Promise<void> {
  const deadline = Date.now() + STARTUP_TIMEOUT_MS;
  while (
    (await raw('GET', 'sys/health').then(
      (r) => r.status,
      () => 0,
    )) !== 200
  ) {
    if (Date.now() > deadline) throw new Error('vault did not become active after unseal');
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Mounts Transit at `mount` (if needed) and creates a derived AES-256-GCM key. */
export async function createTransitKey(
  vault: VaultServer,
  key: string,
  opts: { mount?: string; derived?: boolean } = {},
): Promise<string> {
  const mount = opts.mount ?? 'transit';
  const mounts = await vault.api<Record<string, unknown>>('GET', 'sys/mounts');
  if (!(`${mount}/` in ((mounts.data as Record<string, unknown> | undefined) ?? mounts)))
    await vault.api('POST', `sys/mounts/${mount}`, { type: 'transit' });
  await vault.api('POST', `${mount}/keys/${key}`, { type: 'aes256-gcm96', derived: opts.derived ?? true });
  return `${mount}/keys/${key}`;
}

/**
 * The least-privilege policies of docs/reference/kms-vault-transit.md, one
 * per caller: the controller wraps and unwraps (datakey/plaintext, decrypt),
 * the gateway only unwraps, and whoever re-wraps after a Transit rotation
 * (`rewrapEnvelope`) needs rewrap. Only `update` (Transit's POST endpoints).
 */
export function transitPolicy(keyId: string, component: 'controller' | 'gateway' | 'rewrap' = 'controller'): string {
  const [mount, key] = keyId.split('/keys/') as [string, string];
  const endpoints = { controller: ['datakey/plaintext', 'decrypt'], gateway: ['decrypt'], rewrap: ['rewrap'] }[
    component
  ];
  return endpoints.map((e) => `path "${mount}/${e}/${key}" {\n  capabilities = ["update"]\n}\n`).join('');
}

/** Writes a policy and returns a token holding only it (written to a fresh file for token auth). */
export async function tokenWithPolicy(
  vault: VaultServer,
  policy: string,
  hcl: string,
  opts: { ttl?: string } = {},
): Promise<{ token: string; file: string }> {
  await vault.api('PUT', `sys/policies/acl/${policy}`, { policy: hcl });
  const out = await vault.api<{ auth: { client_token: string } }>('POST', 'auth/token/create', {
    policies: [policy],
    no_default_policy: true,
    ttl: opts.ttl ?? '1h',
  });
  const file = path.join(mkdtempSync(path.join(tmpdir(), 'atoll-vault-token-')), 'token');
  writeFileSync(file, out.auth.client_token, { mode: 0o600 });
  return { token: out.auth.client_token, file };
}

/** A ServiceAccount token from the real TokenRequest API, with `audience`, written to a fresh file. */
export async function serviceAccountTokenFile(
  client: KubeClient,
  namespace: string,
  name: string,
  audience: string,
  expirationSeconds = 3600,
  file?: string,
): Promise<string> {
  const review = await client.request<{ status: { token: string } }>(
    'POST',
    `/api/v1/namespaces/${namespace}/serviceaccounts/${name}/token`,
    {
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenRequest',
      spec: { audiences: [audience], expirationSeconds },
    },
  );
  const target = file ?? path.join(mkdtempSync(path.join(tmpdir(), 'atoll-sa-token-')), 'token');
  writeFileSync(target, review.status.token, { mode: 0o600 });
  return target;
}

/**
 * Enables Vault's Kubernetes auth method against a real API server, as a
 * platform team does: a token-reviewer ServiceAccount bound to
 * system:auth-delegator (so Vault may call TokenReview), the API server's
 * URL and CA, and no local-pod JWT.
 */
export async function enableKubernetesAuth(
  vault: VaultServer,
  client: KubeClient,
  apiServer: { url: string; caPem: string },
): Promise<void> {
  const ns = 'vault-auth';
  await client.apply(Namespaces, { metadata: { name: ns } });
  await client.apply(ServiceAccounts, { metadata: { name: 'vault-token-reviewer', namespace: ns } });
  await client.apply(ClusterRoleBindings, {
    metadata: { name: 'vault-token-reviewer' },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'system:auth-delegator' },
    subjects: [{ kind: 'ServiceAccount', name: 'vault-token-reviewer', namespace: ns }],
  } as never);
  const reviewer = readFileSync(
    await serviceAccountTokenFile(client, ns, 'vault-token-reviewer', SERVICE_ACCOUNT_ISSUER, 24 * 3600),
    'utf8',
  );
  await vault.api('POST', 'sys/auth/kubernetes', { type: 'kubernetes' });
  await vault.api('POST', 'auth/kubernetes/config', {
    kubernetes_host: apiServer.url,
    kubernetes_ca_cert: apiServer.caPem,
    token_reviewer_jwt: reviewer,
    disable_local_ca_jwt: true,
  });
}

/** A Kubernetes auth role: this ServiceAccount, this audience, these policies. */
export async function kubernetesRole(
  vault: VaultServer,
  role: string,
  opts: { namespace: string; serviceAccount: string; audience: string; policies: string[]; ttl?: string },
): Promise<void> {
  await vault.api('POST', `auth/kubernetes/role/${role}`, {
    bound_service_account_names: [opts.serviceAccount],
    bound_service_account_namespaces: [opts.namespace],
    audience: opts.audience,
    token_policies: opts.policies,
    token_no_default_policy: true,
    token_ttl: opts.ttl ?? '1h',
  });
}
