import https from 'node:https';
import http from 'node:http';
import type { Readable } from 'node:stream';
import { KubeApiError, isNotFound } from './errors.js';
import { defaultClusterAccess, kubeconfigAccess, type ClusterAccess } from './kubeconfig.js';
import { Http2WatchTransport, type Http2TransportOptions } from './watch-transport.js';
import { apiVersionOf, resourcePath, type ResourceType } from './resources.js';

/** Object metadata as it travels on the wire (timestamps are RFC 3339 strings). */
export interface ObjectMeta {
  name?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  finalizers?: string[];
  ownerReferences?: Array<{
    apiVersion: string;
    kind: string;
    name: string;
    uid: string;
    controller?: boolean;
    blockOwnerDeletion?: boolean;
  }>;
  deletionTimestamp?: string;
  creationTimestamp?: string;
  managedFields?: unknown[];
  [k: string]: unknown;
}

export interface ListMeta {
  resourceVersion?: string;
  continue?: string;
}

/** Minimal shape every Kubernetes object has. */
export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata?: ObjectMeta;
}

/** A core/v1 Secret as atoll reads it. */
export interface SecretObject extends KubeObject {
  type?: string;
  data?: Record<string, string>;
}

export interface KubeList<T> {
  items: T[];
  metadata: { resourceVersion: string; continue?: string };
}

export interface ListOptions {
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
  limit?: number;
  /**
   * Applied to each item as its page arrives (an informer's cache transform): only one page of
   * objects as the server sent them (managedFields and all) is in memory at a time, not the whole
   * list (ADR 0035).
   */
  map?: <I extends KubeObject>(item: I) => I;
}

export interface WriteOptions {
  dryRun?: boolean;
  fieldManager?: string;
  signal?: AbortSignal;
}

export interface ReadOptions {
  signal?: AbortSignal;
}

export interface WatchEvent<T> {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  object: T;
}

export interface WatchOptions extends ListOptions {
  resourceVersion: string;
  timeoutSeconds?: number;
  signal?: AbortSignal;
}

const FIELD_MANAGER = 'atoll';
const REQUEST_TIMEOUT_MS = 30_000;
/**
 * client-go retries a response that carries `Retry-After` with 429 or a 5xx
 * status (API Priority and Fairness, an etcd leader election) up to 10 times.
 * We retry fewer times and cap each wait, so a reconcile worker is held at
 * most about a minute; the caller's signal cuts the wait short.
 */
export const RETRY_AFTER_MAX_RETRIES = 5;
export const RETRY_AFTER_MAX_WAIT_MS = 10_000;

export interface KubeClientOptions {
  userAgent?: string;
  /** Idle timeout of a non-watch request. */
  requestTimeoutMs?: number;
  /** HTTP/2 PING interval and acknowledgement timeout of the watch transport. */
  http2?: Http2TransportOptions;
  /** Bounds on honouring `Retry-After`. */
  retry?: { maxRetries?: number; maxWaitMs?: number };
}

/**
 * A thin REST client over the API server, plain HTTP: it gives exact control
 * over content types (merge patch on status, apply patch with a field
 * manager), dry-run and watch streaming, and one error type for every
 * failure. Where the server is and how to authenticate comes from
 * `ClusterAccess` (src/kube/kubeconfig.ts, ADR 0029).
 */
export class KubeClient {
  private readonly server: URL;
  private readonly agent: https.Agent | http.Agent;
  /**
   * Watches hold a stream for minutes, one per workspace namespace. Over TLS
   * they are multiplexed on HTTP/2 connections; over plain HTTP they get an
   * uncapped pool of their own. Either way they never starve the request pool
   * (a capped shared pool deadlocked at ~60 namespaces).
   */
  private readonly watchAgent: https.Agent | http.Agent;
  private readonly h2: Http2WatchTransport | undefined;

  private readonly requestTimeoutMs: number;
  private readonly maxRetries: number;
  private readonly maxRetryWaitMs: number;

  constructor(
    readonly access: ClusterAccess,
    opts: KubeClientOptions = {},
  ) {
    this.server = new URL(access.server);
    const Agent = this.server.protocol === 'https:' ? https.Agent : http.Agent;
    this.agent = new Agent({ keepAlive: true, maxSockets: 64 });
    this.watchAgent = new Agent({ keepAlive: false, maxSockets: Infinity });
    this.h2 = this.server.protocol === 'https:' ? new Http2WatchTransport(this.server.origin, opts.http2) : undefined;
    this.userAgent = opts.userAgent ?? 'atoll/0.1';
    this.requestTimeoutMs = opts.requestTimeoutMs ?? REQUEST_TIMEOUT_MS;
    this.maxRetries = opts.retry?.maxRetries ?? RETRY_AFTER_MAX_RETRIES;
    this.maxRetryWaitMs = opts.retry?.maxWaitMs ?? RETRY_AFTER_MAX_WAIT_MS;
  }

  private readonly userAgent: string;

  static fromKubeconfigFile(path: string): KubeClient {
    return new KubeClient(kubeconfigAccess([path]));
  }

  /** KUBECONFIG, then the pod's ServiceAccount, then ~/.kube/config. */
  static fromDefault(): KubeClient {
    return new KubeClient(defaultClusterAccess());
  }

  /** Base URL of the API server (for diagnostics, never contains credentials). */
  get serverURL(): string {
    return this.server.origin;
  }

  private authOptions(): Promise<https.RequestOptions> {
    // Asked per request: exec plugins and projected tokens rotate; the access caches what is cacheable.
    return this.access.requestOptions();
  }

  async get<T extends KubeObject>(
    t: ResourceType,
    name: string,
    namespace?: string,
    opts: ReadOptions = {},
  ): Promise<T> {
    return this.request<T>('GET', resourcePath(t, { namespace, name }), undefined, undefined, opts.signal);
  }

  /** Like get, but a missing object is `undefined` rather than an error. */
  async tryGet<T extends KubeObject>(
    t: ResourceType,
    name: string,
    namespace?: string,
    opts: ReadOptions = {},
  ): Promise<T | undefined> {
    try {
      return await this.get<T>(t, name, namespace, opts);
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  async list<T extends KubeObject>(t: ResourceType, opts: ListOptions = {}): Promise<KubeList<T>> {
    const items: T[] = [];
    let cont: string | undefined;
    let rv = '';
    do {
      const q = query({
        labelSelector: opts.labelSelector,
        fieldSelector: opts.fieldSelector,
        limit: String(opts.limit ?? 500),
        continue: cont,
      });
      const page = await this.request<KubeList<T>>('GET', resourcePath(t, { namespace: opts.namespace }) + q);
      for (const item of page.items ?? []) {
        const typed = { apiVersion: apiVersionOf(t), kind: t.kind, ...item };
        items.push(opts.map ? opts.map(typed) : typed);
      }
      cont = page.metadata?.continue || undefined;
      rv = page.metadata?.resourceVersion ?? rv;
    } while (cont);
    return { items, metadata: { resourceVersion: rv } };
  }

  async create<T extends KubeObject>(t: ResourceType, obj: T, opts: WriteOptions = {}): Promise<T> {
    const ns = obj.metadata?.namespace;
    return this.request<T>(
      'POST',
      resourcePath(t, { namespace: ns }) + writeQuery(opts),
      withType(t, obj),
      undefined,
      opts.signal,
    );
  }

  async replace<T extends KubeObject>(
    t: ResourceType,
    obj: T,
    opts: WriteOptions & { subresource?: string } = {},
  ): Promise<T> {
    const md = obj.metadata ?? {};
    return this.request<T>(
      'PUT',
      resourcePath(t, { namespace: md.namespace, name: md.name, subresource: opts.subresource }) + writeQuery(opts),
      withType(t, obj),
      undefined,
      opts.signal,
    );
  }

  /** JSON merge patch (RFC 7386); custom resources reject strategic merge. */
  async mergePatch<T extends KubeObject>(
    t: ResourceType,
    name: string,
    namespace: string | undefined,
    patch: unknown,
    opts: WriteOptions & { subresource?: string } = {},
  ): Promise<T> {
    return this.request<T>(
      'PATCH',
      resourcePath(t, { namespace, name, subresource: opts.subresource }) + writeQuery(opts),
      patch,
      'application/merge-patch+json',
    );
  }

  /** JSON patch (RFC 6902), for test-and-set updates such as finalizer removal. */
  async jsonPatch<T extends KubeObject>(
    t: ResourceType,
    name: string,
    namespace: string | undefined,
    ops: unknown[],
    opts: WriteOptions & { subresource?: string } = {},
  ): Promise<T> {
    return this.request<T>(
      'PATCH',
      resourcePath(t, { namespace, name, subresource: opts.subresource }) + writeQuery(opts),
      ops,
      'application/json-patch+json',
    );
  }

  /** Server-side apply: declarative ownership of the fields we set. */
  async apply<T extends KubeObject>(
    t: ResourceType,
    obj: T,
    opts: WriteOptions & { force?: boolean; subresource?: string } = {},
  ): Promise<T> {
    const md = obj.metadata ?? {};
    const q = query({
      fieldManager: opts.fieldManager ?? FIELD_MANAGER,
      force: opts.force === false ? undefined : 'true',
      dryRun: opts.dryRun ? 'All' : undefined,
    });
    return this.request<T>(
      'PATCH',
      resourcePath(t, { namespace: md.namespace, name: md.name, subresource: opts.subresource }) + q,
      withType(t, obj),
      'application/apply-patch+yaml',
    );
  }

  async delete(
    t: ResourceType,
    name: string,
    namespace?: string,
    opts: { propagationPolicy?: 'Foreground' | 'Background' | 'Orphan'; preconditionsUID?: string } = {},
  ): Promise<void> {
    const body: Record<string, unknown> = { apiVersion: 'v1', kind: 'DeleteOptions' };
    if (opts.propagationPolicy) body.propagationPolicy = opts.propagationPolicy;
    if (opts.preconditionsUID) body.preconditions = { uid: opts.preconditionsUID };
    await this.request('DELETE', resourcePath(t, { namespace, name }), body);
  }

  /** POST to a create-only API such as TokenReview or SubjectAccessReview. */
  async review<T extends KubeObject>(t: ResourceType, obj: T): Promise<T> {
    return this.request<T>('POST', resourcePath(t), withType(t, obj));
  }

  /**
   * Streams watch events until the server closes the stream, the signal
   * aborts, or an error occurs. Resolves when the stream ends normally.
   */
  async watch<T extends KubeObject>(
    t: ResourceType,
    opts: WatchOptions,
    onEvent: (ev: WatchEvent<T>) => void,
  ): Promise<void> {
    const q = query({
      watch: '1',
      allowWatchBookmarks: 'true',
      resourceVersion: opts.resourceVersion,
      labelSelector: opts.labelSelector,
      fieldSelector: opts.fieldSelector,
      timeoutSeconds: String(opts.timeoutSeconds ?? 300),
    });
    const path = resourcePath(t, { namespace: opts.namespace }) + q;
    const { status, body: res } = await this.withRetryAfter(opts.signal, async () => {
      if (this.h2) {
        const auth = await this.authOptions();
        return this.h2
          .open(
            this.server.pathname.replace(/\/$/, '') + path,
            auth,
            { accept: 'application/json', 'user-agent': this.userAgent },
            opts.signal,
          )
          .catch((err: unknown) => {
            throw new KubeApiError(0, 'TransportError', 'watch request to the API server failed', undefined, {
              cause: err,
            });
          });
      }
      const r = await this.open('GET', path, undefined, undefined, opts.signal, this.watchAgent);
      return { status: r.statusCode ?? 0, retryAfter: header(r, 'retry-after'), body: r };
    });
    if (status >= 300) {
      throw await toError(status, res);
    }
    await new Promise<void>((resolve, reject) => {
      let buf = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buf += chunk;
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl).trim();
          buf = buf.slice(nl + 1);
          if (!line) continue;
          let ev: WatchEvent<T>;
          try {
            ev = JSON.parse(line) as WatchEvent<T>;
          } catch (err) {
            res.destroy();
            reject(
              new KubeApiError(0, 'InvalidWatchEvent', 'watch stream sent an unparseable event', undefined, {
                cause: err,
              }),
            );
            return;
          }
          if (ev.type === 'ERROR') {
            const st = ev.object as unknown as { code?: number; reason?: string; message?: string };
            res.destroy();
            reject(new KubeApiError(st.code ?? 500, st.reason ?? 'WatchError', st.message ?? 'watch error'));
            return;
          }
          try {
            onEvent(ev);
          } catch (err) {
            res.destroy();
            reject(err instanceof Error ? err : new Error('watch event handler failed', { cause: err }));
            return;
          }
        }
      });
      res.on('end', () => resolve());
      res.on('error', (err) =>
        reject(new KubeApiError(0, 'WatchStreamError', 'watch stream failed', undefined, { cause: err })),
      );
      // Closed without an end (connection destroyed, stream reset, aborted): not a normal end of the watch.
      res.on('close', () =>
        res.readableEnded
          ? resolve()
          : reject(new KubeApiError(0, 'WatchStreamError', 'watch stream closed before it ended')),
      );
    });
  }

  /** Raw request returning parsed JSON; the single place API errors are converted. */
  async request<T>(
    method: string,
    path: string,
    body?: unknown,
    contentType = 'application/json',
    signal?: AbortSignal,
  ): Promise<T> {
    const { status, body: res } = await this.send(method, path, body, contentType, signal);
    if (status >= 300) throw await toError(status, res);
    const text = await readAll(res);
    return (text ? JSON.parse(text) : {}) as T;
  }

  /** Raw request returning the body as text (health endpoints, logs). */
  async requestText(method: string, path: string): Promise<string> {
    const { status, body: res } = await this.send(method, path, undefined, undefined);
    if (status >= 300) throw await toError(status, res);
    return readAll(res);
  }

  private send(
    method: string,
    path: string,
    body: unknown,
    contentType: string | undefined,
    signal?: AbortSignal,
  ): Promise<{ status: number; body: Readable }> {
    return this.withRetryAfter(signal, async () => {
      const r = await this.open(method, path, body, contentType, signal);
      return { status: r.statusCode ?? 0, retryAfter: header(r, 'retry-after'), body: r };
    });
  }

  /**
   * Sends again after the wait a 429 or 5xx response asks for in
   * `Retry-After` (the server did not act on the request, so this is safe
   * for every verb), within the client's bounds. Without `Retry-After` the
   * response is the caller's to handle, as in client-go.
   */
  private async withRetryAfter<R extends { status: number; retryAfter?: string; body: Readable }>(
    signal: AbortSignal | undefined,
    attempt: () => Promise<R>,
  ): Promise<R> {
    for (let retries = 0; ; retries++) {
      const res = await attempt();
      const waitMs = retryAfterMs(res.status, res.retryAfter);
      if (waitMs === undefined || retries >= this.maxRetries) return res;
      res.body.resume(); // discard the body; the connection goes back to the pool
      await abortableSleep(Math.min(waitMs, this.maxRetryWaitMs), signal);
    }
  }

  private async open(
    method: string,
    path: string,
    body: unknown,
    contentType: string | undefined,
    signal?: AbortSignal,
    agent: https.Agent | http.Agent = this.agent,
  ): Promise<http.IncomingMessage> {
    const auth = await this.authOptions();
    const payload =
      body === undefined ? undefined : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
    const lib = this.server.protocol === 'https:' ? https : http;
    return new Promise((resolve, reject) => {
      const req = lib.request(
        {
          ...auth,
          agent,
          protocol: this.server.protocol,
          hostname: this.server.hostname.replace(/^\[(.*)\]$/, '$1'), // an IPv6 literal without its URL brackets
          port: this.server.port,
          method,
          path: this.server.pathname.replace(/\/$/, '') + path,
          signal,
          headers: {
            ...(auth.headers ?? {}),
            Accept: 'application/json',
            'User-Agent': this.userAgent,
            ...(payload ? { 'Content-Type': contentType ?? 'application/json', 'Content-Length': payload.length } : {}),
          },
        },
        resolve,
      );
      req.on('error', (err) =>
        reject(new KubeApiError(0, 'TransportError', 'request to the API server failed', undefined, { cause: err })),
      );
      // A stalled connection must not hold a reconcile worker forever; watches have their own watchdog.
      if (agent === this.agent)
        req.setTimeout(this.requestTimeoutMs, () => req.destroy(new Error('API request timed out')));
      if (payload) req.write(payload);
      req.end();
    });
  }
}

function header(res: http.IncomingMessage, name: string): string | undefined {
  const v = res.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** `Retry-After` in delta-seconds (what the API server sends) on a 429 or 5xx; undefined when the response is not to be retried. */
export function retryAfterMs(status: number, retryAfter: string | undefined): number | undefined {
  if (status !== 429 && (status < 500 || status > 599)) return undefined;
  if (retryAfter === undefined || !/^\d+$/.test(retryAfter.trim())) return undefined;
  return Number(retryAfter.trim()) * 1000;
}

function abortableSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const aborted = () => new KubeApiError(0, 'Aborted', 'request aborted while waiting to retry');
    if (signal?.aborted) return reject(aborted());
    const onAbort = () => {
      clearTimeout(t);
      reject(aborted());
    };
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function withType<T extends KubeObject>(t: ResourceType, obj: T): T {
  return { ...obj, apiVersion: obj.apiVersion ?? apiVersionOf(t), kind: obj.kind ?? t.kind };
}

function writeQuery(opts: WriteOptions): string {
  return query({ dryRun: opts.dryRun ? 'All' : undefined, fieldManager: opts.fieldManager ?? FIELD_MANAGER });
}

function query(params: Record<string, string | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : '';
}

function readAll(res: Readable): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    res.on('data', (c: Buffer) => chunks.push(c));
    res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    res.on('error', reject);
  });
}

async function toError(status: number, res: Readable): Promise<KubeApiError> {
  let text = '';
  try {
    text = await readAll(res);
  } catch {
    /* the status code alone is enough */
  }
  try {
    const st = JSON.parse(text) as { reason?: string; message?: string; details?: KubeApiError['details'] };
    return new KubeApiError(status, st.reason ?? String(status), st.message ?? `HTTP ${status}`, st.details);
  } catch {
    return new KubeApiError(status, String(status), `HTTP ${status}`);
  }
}
