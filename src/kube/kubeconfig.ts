import { existsSync, readFileSync } from 'node:fs';
import type https from 'node:https';
import { isIPv6 } from 'node:net';
import { homedir } from 'node:os';
import path from 'node:path';
import { parse, stringify } from 'yaml';

/**
 * Where the API server is and how to authenticate to it, without
 * `@kubernetes/client-node`: importing it costs every atoll process about
 * 70 MiB of RSS (its generated API), and production processes need only the
 * in-cluster configuration (ADR 0029). Kubeconfig users that need a plugin
 * (exec, auth-provider) or basic auth are delegated to client-node, loaded
 * lazily on their first request.
 */
export interface ClusterAccess {
  /** The API server's URL; never carries credentials. */
  readonly server: string;
  /** The context's (or the pod's) namespace, if one is set. */
  readonly namespace: string | undefined;
  /** TLS options and the Authorization header, asked per request: tokens rotate. */
  requestOptions(): Promise<https.RequestOptions>;
}

export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';
/** client-go re-reads a token file at most once a minute; kubelet refreshes projected tokens at 80% of their life. */
export const TOKEN_REREAD_MS = 60_000;

export class KubeconfigError extends Error {
  override readonly name = 'KubeconfigError';
}

/**
 * The configuration a process finds by itself, in controller-runtime's order:
 * `KUBECONFIG` (a list, merged as kubectl merges it), then the pod's
 * ServiceAccount, then `~/.kube/config`.
 */
export function defaultClusterAccess(env: NodeJS.ProcessEnv = process.env): ClusterAccess {
  const listed = env.KUBECONFIG?.split(path.delimiter).filter(Boolean) ?? [];
  if (listed.length > 0) {
    const present = listed.filter((f) => existsSync(f));
    if (present.length === 0)
      throw new KubeconfigError(
        `KUBECONFIG names ${listed.join(path.delimiter)}, which does not exist: point it at a kubeconfig file (after \`atoll dev\`, use the export line it prints)`,
      );
    return kubeconfigAccess(present);
  }
  if (env.KUBERNETES_SERVICE_HOST && existsSync(path.join(SERVICE_ACCOUNT_DIR, 'token')))
    return inClusterAccess({ env });
  const home = path.join(homedir(), '.kube', 'config');
  if (existsSync(home)) return kubeconfigAccess([home]);
  throw new KubeconfigError(
    'no kubeconfig found: set KUBECONFIG, pass --kubeconfig <file>, or create ~/.kube/config (with `atoll dev` running, use the `export KUBECONFIG=...` line it printed)',
  );
}

export interface InClusterOptions {
  /** The ServiceAccount mount (token, ca.crt, namespace). */
  dir?: string;
  env?: NodeJS.ProcessEnv;
  tokenRereadMs?: number;
}

/** The documented in-cluster configuration (client-go's rest.InClusterConfig). */
export function inClusterAccess(opts: InClusterOptions = {}): ClusterAccess {
  const dir = opts.dir ?? SERVICE_ACCOUNT_DIR;
  const env = opts.env ?? process.env;
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT;
  if (!host || !port)
    throw new KubeconfigError(
      'in-cluster configuration: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must both be set (the kubelet sets them in every pod); outside a cluster, set KUBECONFIG',
    );
  const server = `https://${isIPv6(host) ? `[${host}]` : host}:${port}`;
  const ca = readRequired(path.join(dir, 'ca.crt'), 'in-cluster configuration', 'the ServiceAccount CA');
  const token = new TokenFile(path.join(dir, 'token'), 'in-cluster configuration', opts.tokenRereadMs);
  token.read(); // fail at start, not on the first request
  const nsFile = path.join(dir, 'namespace');
  const namespace = existsSync(nsFile) ? readFileSync(nsFile, 'utf8').trim() || undefined : undefined;
  return new StaticAccess(server, namespace, { ca }, token);
}

/** Named entries merged from several files: the first file to define a name wins, as in kubectl. */
interface Merged {
  files: string[];
  currentContext?: { name: string; file: string };
  clusters: Map<string, Located>;
  users: Map<string, Located>;
  contexts: Map<string, Located>;
}

interface Located {
  value: Record<string, unknown>;
  file: string;
}

const SECTIONS = [
  ['clusters', 'cluster'],
  ['users', 'user'],
  ['contexts', 'context'],
] as const;

/** Fields we do not implement: a user with any of these is served by client-node. */
const DELEGATED_USER_FIELDS = ['exec', 'auth-provider', 'username', 'password'] as const;

/** Reads kubeconfig files (KUBECONFIG order) and resolves their current context, or `context` if given. */
export function kubeconfigAccess(
  files: string[],
  opts: { context?: string; tokenRereadMs?: number } = {},
): ClusterAccess {
  const merged: Merged = { files, clusters: new Map(), users: new Map(), contexts: new Map() };
  for (const file of files) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new KubeconfigError(
        `kubeconfig ${file}: cannot read it (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
        {
          cause: err,
        },
      );
    }
    mergeDocument(merged, text, path.resolve(file));
  }
  return resolve(merged, opts);
}

/** A kubeconfig given as text (tests, `atoll dev`); relative paths resolve against `dir`. */
export function kubeconfigFromString(
  text: string,
  opts: { source?: string; dir?: string; context?: string } = {},
): ClusterAccess {
  const source = path.join(opts.dir ?? process.cwd(), opts.source ?? '<inline kubeconfig>');
  const merged: Merged = { files: [source], clusters: new Map(), users: new Map(), contexts: new Map() };
  mergeDocument(merged, text, source);
  return resolve(merged, opts);
}

function mergeDocument(merged: Merged, text: string, file: string): void {
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (err) {
    // Only the first line, and no cause: the parser's full message quotes the lines around the error, tokens included.
    throw new KubeconfigError(`kubeconfig ${file}: not valid YAML (${(err as Error).message.split('\n')[0]})`);
  }
  if (doc === null || doc === undefined) return; // an empty file is an empty config, as for kubectl
  if (!isRecord(doc))
    throw new KubeconfigError(`kubeconfig ${file}: expected a mapping with clusters, users and contexts`);
  const current = doc['current-context'];
  if (typeof current === 'string' && current && !merged.currentContext) merged.currentContext = { name: current, file };
  for (const [section, field] of SECTIONS) {
    const list = doc[section];
    if (list === undefined || list === null) continue;
    if (!Array.isArray(list))
      throw new KubeconfigError(`kubeconfig ${file}: ${section} must be a list of {name, ${field}} entries`);
    list.forEach((entry: unknown, i) => {
      if (!isRecord(entry) || typeof entry.name !== 'string' || !entry.name)
        throw new KubeconfigError(`kubeconfig ${file}: ${section}[${i}] has no name: give every entry a name`);
      const value = entry[field] ?? {};
      if (!isRecord(value))
        throw new KubeconfigError(`kubeconfig ${file}: ${section}[${i}] ("${entry.name}"): ${field} must be a mapping`);
      const map = merged[section];
      if (!map.has(entry.name)) map.set(entry.name, { value, file });
    });
  }
}

function resolve(merged: Merged, opts: { context?: string; tokenRereadMs?: number }): ClusterAccess {
  const where = merged.files.join(path.delimiter);
  const contextName = opts.context ?? merged.currentContext?.name;
  if (!contextName)
    throw new KubeconfigError(
      `kubeconfig ${where}: no current-context is set: run kubectl config use-context <name>, or pass --kubeconfig`,
    );
  const ctx = merged.contexts.get(contextName);
  if (!ctx)
    throw new KubeconfigError(
      `kubeconfig ${merged.currentContext?.file ?? where}: current-context "${contextName}" is not defined in contexts: run kubectl config get-contexts to see the defined ones`,
    );
  const clusterName = str(ctx, 'cluster', `context "${contextName}"`);
  if (!clusterName)
    throw new KubeconfigError(`kubeconfig ${ctx.file}: context "${contextName}" names no cluster: set its cluster`);
  const cluster = merged.clusters.get(clusterName);
  if (!cluster)
    throw new KubeconfigError(
      `kubeconfig ${ctx.file}: context "${contextName}" names cluster "${clusterName}", which is not defined`,
    );
  const userName = str(ctx, 'user', `context "${contextName}"`);
  const user = userName ? merged.users.get(userName) : undefined;
  if (userName && !user)
    throw new KubeconfigError(
      `kubeconfig ${ctx.file}: context "${contextName}" names user "${userName}", which is not defined`,
    );
  const namespace = str(ctx, 'namespace', `context "${contextName}"`) || undefined;
  const server = serverOf(cluster, clusterName);

  if (user && DELEGATED_USER_FIELDS.some((f) => user.value[f] !== undefined)) {
    const single = {
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: clusterName, cluster: absolutePaths(cluster, CLUSTER_FILE_FIELDS) }],
      users: [{ name: userName, user: absolutePaths(user, USER_FILE_FIELDS) }],
      contexts: [{ name: contextName, context: ctx.value }],
      'current-context': contextName,
    };
    return new ClientNodeAccess(server, namespace, stringify(single));
  }

  const tls: https.RequestOptions = { ...clusterTLS(cluster, clusterName) };
  let token: TokenSource | undefined;
  if (user) {
    const label = `user "${userName}"`;
    Object.assign(tls, clientCertificate(user, label));
    const inline = str(user, 'token', label);
    const tokenFile = str(user, 'tokenFile', label);
    if (inline && tokenFile)
      throw new KubeconfigError(`kubeconfig ${user.file}: ${label} sets both token and tokenFile: keep one`);
    if (inline) token = { read: () => inline };
    else if (tokenFile) {
      const file = new TokenFile(
        path.resolve(path.dirname(user.file), tokenFile),
        `kubeconfig ${user.file}: ${label} tokenFile`,
        opts.tokenRereadMs,
      );
      file.read();
      token = file;
    }
  }
  return new StaticAccess(server, namespace, tls, token);
}

function serverOf(cluster: Located, name: string): string {
  const server = str(cluster, 'server', `cluster "${name}"`);
  if (!server)
    throw new KubeconfigError(
      `kubeconfig ${cluster.file}: cluster "${name}" has no server: set clusters[].cluster.server to the API server's URL`,
    );
  let url: URL;
  try {
    url = new URL(server);
  } catch {
    throw new KubeconfigError(
      `kubeconfig ${cluster.file}: cluster "${name}": server "${server}" is not a URL (https://host:port)`,
    );
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:')
    throw new KubeconfigError(
      `kubeconfig ${cluster.file}: cluster "${name}": server must be an https:// (or http://) URL`,
    );
  return server;
}

function clusterTLS(cluster: Located, name: string): https.RequestOptions {
  const label = `cluster "${name}"`;
  const ca = pemOf(cluster, 'certificate-authority', label);
  const insecure = cluster.value['insecure-skip-tls-verify'] === true;
  if (ca && insecure)
    throw new KubeconfigError(
      `kubeconfig ${cluster.file}: ${label} sets a certificate authority and insecure-skip-tls-verify: remove insecure-skip-tls-verify (client-go refuses the same)`,
    );
  const servername = str(cluster, 'tls-server-name', label);
  return {
    ...(ca ? { ca } : {}),
    ...(insecure ? { rejectUnauthorized: false } : {}),
    ...(servername ? { servername } : {}),
  };
}

function clientCertificate(user: Located, label: string): https.RequestOptions {
  const cert = pemOf(user, 'client-certificate', label);
  const key = pemOf(user, 'client-key', label);
  if (!cert !== !key)
    throw new KubeconfigError(
      `kubeconfig ${user.file}: ${label} has a client ${cert ? 'certificate but no client-key' : 'key but no client-certificate'}: set both (or their -data forms)`,
    );
  return cert && key ? { cert, key } : {};
}

/** `<field>-data` (base64) or `<field>` (a file, relative to the kubeconfig); both at once is ambiguous. */
function pemOf(entry: Located, field: string, label: string): Buffer | undefined {
  const data = str(entry, `${field}-data`, label);
  const file = str(entry, field, label);
  if (data && file)
    throw new KubeconfigError(`kubeconfig ${entry.file}: ${label} sets both ${field} and ${field}-data: keep one`);
  if (data) return Buffer.from(data, 'base64');
  if (file)
    return readRequired(
      path.resolve(path.dirname(entry.file), file),
      `kubeconfig ${entry.file}: ${label} ${field}`,
      'the file',
    );
  return undefined;
}

const CLUSTER_FILE_FIELDS = ['certificate-authority'];
const USER_FILE_FIELDS = ['client-certificate', 'client-key', 'tokenFile'];

/** client-node reads the text we hand it, so relative paths are made absolute first. */
function absolutePaths(entry: Located, fields: string[]): Record<string, unknown> {
  const out = { ...entry.value };
  for (const f of fields)
    if (typeof out[f] === 'string' && out[f]) out[f] = path.resolve(path.dirname(entry.file), out[f]);
  return out;
}

function str(entry: Located, field: string, label: string): string | undefined {
  const v = entry.value[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw new KubeconfigError(`kubeconfig ${entry.file}: ${label}: ${field} must be a string`);
  return v;
}

function readRequired(file: string, what: string, thing: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new KubeconfigError(
      `${what}: cannot read ${thing} ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
      {
        cause: err,
      },
    );
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

interface TokenSource {
  read(): string;
}

/** A token file re-read at most every `rereadMs`, so a rotated projected token is picked up. */
class TokenFile implements TokenSource {
  #value = '';
  #readAt = -Infinity;

  constructor(
    private readonly file: string,
    private readonly what: string,
    private readonly rereadMs = TOKEN_REREAD_MS,
  ) {}

  read(): string {
    const now = performance.now();
    if (now - this.#readAt < this.rereadMs && this.#value) return this.#value;
    const value = readRequired(this.file, this.what, 'the token').toString('utf8').trim();
    if (!value) throw new KubeconfigError(`${this.what}: the token file ${this.file} is empty`);
    this.#value = value;
    this.#readAt = now;
    return value;
  }
}

class StaticAccess implements ClusterAccess {
  constructor(
    readonly server: string,
    readonly namespace: string | undefined,
    private readonly tls: https.RequestOptions,
    private readonly token: TokenSource | undefined,
  ) {}

  requestOptions(): Promise<https.RequestOptions> {
    const token = this.token?.read();
    return Promise.resolve({ ...this.tls, ...(token ? { headers: { Authorization: `Bearer ${token}` } } : {}) });
  }
}

interface ClientNodeConfig {
  applyToHTTPSOptions(opts: https.RequestOptions): Promise<void>;
}

/** A kubeconfig user that needs client-node (exec or auth-provider plugins, basic auth), loaded on first use. */
class ClientNodeAccess implements ClusterAccess {
  #config: Promise<ClientNodeConfig> | undefined;

  constructor(
    readonly server: string,
    readonly namespace: string | undefined,
    private readonly kubeconfig: string,
  ) {}

  async requestOptions(): Promise<https.RequestOptions> {
    this.#config ??= import('@kubernetes/client-node').then(
      ({ KubeConfig }) => {
        const kc = new KubeConfig();
        kc.loadFromString(this.kubeconfig);
        return kc;
      },
      (err: unknown) => {
        this.#config = undefined; // let the next request try again
        throw err;
      },
    );
    const opts: https.RequestOptions = {};
    await (await this.#config).applyToHTTPSOptions(opts);
    return opts;
  }
}
