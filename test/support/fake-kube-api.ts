/**
 * A scripted stand-in for the kube-apiserver, for unit tests of the runtime
 * (client, informer, leader election) under faults a real API server only
 * shows now and then: 410 Gone mid-watch, BOOKMARK events, a watch that goes
 * silent, a request that hangs, 409 storms, 429 with Retry-After, and a
 * half-open connection (TCP stays up, nothing gets through).
 *
 * By default it is a small object store with resourceVersions, optimistic
 * concurrency (PUT with a stale resourceVersion is a 409), list and watch.
 * `script()` overrides the answer to matching requests. Over TLS it speaks
 * HTTP/2 and HTTP/1.1 on one port, as the real one does, behind a TCP proxy
 * whose existing connections can be blackholed.
 */
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import { stringify } from 'yaml';
import { KubeClient, type KubeClientOptions, type KubeObject } from '../../src/kube/client.js';
import { kubeconfigFromString } from '../../src/kube/kubeconfig.js';
import { apiVersionOf, resourcePath, type ResourceType } from '../../src/kube/resources.js';
import { createCertificate, createCertificateAuthority } from '../../src/kube/x509.js';
import { createLogger, type Logger } from '../../src/runtime/logger.js';

type Req = http.IncomingMessage | http2.Http2ServerRequest;
export type FakeResponse = http.ServerResponse | http2.Http2ServerResponse;

export interface FakeRequest {
  seq: number;
  method: string;
  path: string;
  query: URLSearchParams;
  body: unknown;
  /** Which TCP connection (HTTP/1.1) or HTTP/2 session carried it. */
  connection: number;
  /** performance.now() on arrival. */
  at: number;
  watch: boolean;
  /** The client went away (aborted, reset the stream, lost the connection) before the response ended. */
  abandoned: boolean;
  authorization?: string;
}

/** Answers a request; return 'default' to let the object store answer instead. */
export type ScriptHandler = (
  req: FakeRequest,
  res: FakeResponse,
  api: FakeKubeApi,
) => void | 'default' | Promise<void | 'default'>;

interface Script {
  match: (r: FakeRequest) => boolean;
  handler: ScriptHandler;
  times: number;
}

interface Stored {
  prefix: string;
  plural: string;
  namespace: string;
  name: string;
  obj: KubeObject;
}

interface WatchEventRecord {
  rv: number;
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  stored: Stored;
}

interface Watcher {
  prefix: string;
  plural: string;
  namespace?: string;
  res: FakeResponse;
  req: FakeRequest;
}

const PATH = /^\/(api\/v1|apis\/[^/]+\/[^/]+)(?:\/namespaces\/([^/]+))?\/([^/]+)(?:\/([^/]+))?(?:\/(status))?$/;

export class FakeKubeApi {
  readonly token = `fake-token-${randomBytes(12).toString('hex')}`;
  readonly requests: FakeRequest[] = [];
  private readonly scripts: Script[] = [];
  private readonly store = new Map<string, Stored>();
  private readonly history: WatchEventRecord[] = [];
  private readonly watchers = new Set<Watcher>();
  private readonly connectionIds = new WeakMap<object, number>();
  private readonly proxied = new Set<{ client: net.Socket; upstream: net.Socket; blackholed: boolean }>();
  private readonly openResponses = new Set<FakeResponse>();
  private rv = 100;
  private compactedRV = 0;
  private connections = 0;
  private seq = 0;
  /** HTTP/2 sessions the server accepted. */
  sessions = 0;

  private constructor(
    private readonly server: http.Server | http2.Http2SecureServer,
    private readonly proxy: net.Server | undefined,
    readonly url: string,
    readonly caPem: string | undefined,
  ) {}

  static async start(opts: { tls?: boolean } = {}): Promise<FakeKubeApi> {
    let server: http.Server | http2.Http2SecureServer;
    let caPem: string | undefined;
    if (opts.tls) {
      const ca = createCertificateAuthority({ commonName: 'fake-kube-api-ca' });
      const leaf = createCertificate({
        issuer: ca,
        commonName: 'fake-kube-api',
        ipAddresses: ['127.0.0.1'],
        usage: 'server',
      });
      caPem = ca.certPem;
      server = http2.createSecureServer({ key: leaf.keyPem, cert: leaf.certPem, allowHTTP1: true });
    } else {
      server = http.createServer();
    }
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const serverPort = (server.address() as net.AddressInfo).port;
    let proxy: net.Server | undefined;
    let port = serverPort;
    const holder: { api?: FakeKubeApi } = {};
    if (opts.tls) {
      proxy = net.createServer((client) => holder.api!.pipe(client, serverPort));
      await new Promise<void>((resolve) => proxy!.listen(0, '127.0.0.1', resolve));
      port = (proxy.address() as net.AddressInfo).port;
    }
    const api = new FakeKubeApi(server, proxy, `${opts.tls ? 'https' : 'http'}://127.0.0.1:${port}`, caPem);
    holder.api = api;
    server.on(opts.tls ? 'secureConnection' : 'connection', (socket: object) =>
      api.connectionIds.set(socket, ++api.connections),
    );
    server.on('session', (session: object) => {
      api.sessions++;
      api.connectionIds.set(session, ++api.connections);
    });
    server.on('request', (req: Req, res: FakeResponse) => void api.handle(req, res));
    return api;
  }

  /** A client for this server, authenticated with a bearer token that must never show up in a log. */
  client(opts: KubeClientOptions = {}): KubeClient {
    const cluster = {
      server: this.url,
      ...(this.caPem
        ? { 'certificate-authority-data': Buffer.from(this.caPem).toString('base64') }
        : { 'insecure-skip-tls-verify': true }),
    };
    const kubeconfig = stringify({
      clusters: [{ name: 'fake', cluster }],
      users: [{ name: 'fake', user: { token: this.token } }],
      contexts: [{ name: 'fake', context: { cluster: 'fake', user: 'fake' } }],
      'current-context': 'fake',
    });
    return new KubeClient(kubeconfigFromString(kubeconfig), opts);
  }

  /** Answers the next `times` requests that match with `handler` (in the order scripts were added). */
  script(match: (r: FakeRequest) => boolean, handler: ScriptHandler, times = Infinity): { remove(): void } {
    const s: Script = { match, handler, times };
    this.scripts.push(s);
    return { remove: () => void this.scripts.splice(this.scripts.indexOf(s) >>> 0, 1) };
  }

  /** Creates or replaces an object as another client would, notifying watches. */
  upsert<T extends KubeObject>(t: ResourceType, obj: T): T {
    const path = resourcePath(t, { namespace: obj.metadata?.namespace, name: obj.metadata?.name });
    const m = PATH.exec(path)!;
    return this.write(m[1]!, m[3]!, m[2] ?? '', m[4]!, { apiVersion: apiVersionOf(t), kind: t.kind, ...obj }) as T;
  }

  remove(t: ResourceType, name: string, namespace?: string): void {
    const m = PATH.exec(resourcePath(t, { namespace, name }))!;
    const key = storeKey(m[1]!, m[3]!, m[2] ?? '', m[4]!);
    const stored = this.store.get(key);
    if (!stored) return;
    this.store.delete(key);
    const rv = ++this.rv;
    stored.obj = { ...stored.obj, metadata: { ...stored.obj.metadata, resourceVersion: String(rv) } };
    this.publish({ rv, type: 'DELETED', stored });
  }

  get<T extends KubeObject>(t: ResourceType, name: string, namespace?: string): T | undefined {
    const m = PATH.exec(resourcePath(t, { namespace, name }))!;
    return this.store.get(storeKey(m[1]!, m[3]!, m[2] ?? '', m[4]!))?.obj as T | undefined;
  }

  /** The current resourceVersion (of the last write). */
  get resourceVersion(): string {
    return String(this.rv);
  }

  /** Advances the resourceVersion as writes outside every watch's selection would. */
  bumpResourceVersion(by = 1): void {
    this.rv += by;
  }

  /** Forgets history up to now: a watch from an older resourceVersion gets 410 Gone. */
  compact(): void {
    this.compactedRV = this.rv;
    this.history.splice(0);
  }

  /** Sends a BOOKMARK carrying the current resourceVersion to every open watch. */
  bookmark(): void {
    for (const w of this.watchers)
      send(w.res, {
        type: 'BOOKMARK',
        object: { kind: 'Status', apiVersion: 'v1', metadata: { resourceVersion: String(this.rv) } },
      });
  }

  /** Ends every open watch with an ERROR event 410 Expired, as a watch cache that fell behind does. */
  expireWatches(): void {
    for (const w of [...this.watchers]) {
      send(w.res, {
        type: 'ERROR',
        object: {
          kind: 'Status',
          apiVersion: 'v1',
          status: 'Failure',
          reason: 'Expired',
          code: 410,
          message: 'too old resource version',
        },
      });
      w.res.end();
      this.watchers.delete(w);
    }
  }

  /** Ends every open watch normally (as the server's timeoutSeconds does). */
  endWatches(): void {
    for (const w of [...this.watchers]) {
      w.res.end();
      this.watchers.delete(w);
    }
  }

  /** Open watch streams. */
  get openWatches(): number {
    return this.watchers.size;
  }

  /**
   * Half-open: every connection open now stays open but nothing more passes
   * in either direction (a peer that vanished, a NAT entry that expired). New
   * connections work.
   */
  blackholeExisting(): void {
    if (!this.proxy) throw new Error('blackholing needs the TLS fake (it runs behind a proxy)');
    for (const p of this.proxied) p.blackholed = true;
  }

  watchRequests(): FakeRequest[] {
    return this.requests.filter((r) => r.watch);
  }

  async close(): Promise<void> {
    for (const res of this.openResponses) res.destroy?.();
    for (const p of this.proxied) {
      p.client.destroy();
      p.upstream.destroy();
    }
    const s = this.server as http.Server;
    s.closeAllConnections?.();
    await new Promise<void>((resolve) => s.close(() => resolve()));
    if (this.proxy) await new Promise<void>((resolve) => this.proxy!.close(() => resolve()));
  }

  private pipe(client: net.Socket, port: number): void {
    const upstream = net.connect(port, '127.0.0.1');
    const entry = { client, upstream, blackholed: false };
    this.proxied.add(entry);
    client.on('data', (d) => !entry.blackholed && upstream.write(d));
    upstream.on('data', (d) => !entry.blackholed && client.write(d));
    const end = () => {
      this.proxied.delete(entry);
      client.destroy();
      upstream.destroy();
    };
    // A blackholed connection does not even pass on a close: the far side never learns.
    client.on('close', () => (entry.blackholed ? upstream.destroy() : end()));
    upstream.on('close', () => (entry.blackholed ? undefined : end()));
    client.on('error', () => undefined);
    upstream.on('error', () => undefined);
  }

  private async handle(raw: Req, res: FakeResponse): Promise<void> {
    const url = new URL(raw.url ?? '/', 'http://fake');
    const chunks: Buffer[] = [];
    for await (const c of raw as AsyncIterable<Buffer>) chunks.push(c);
    const text = Buffer.concat(chunks).toString('utf8');
    const transport = 'stream' in raw ? raw.stream.session : raw.socket;
    const req: FakeRequest = {
      seq: ++this.seq,
      method: raw.method ?? 'GET',
      path: url.pathname,
      query: url.searchParams,
      body: text ? JSON.parse(text) : undefined,
      connection: (transport && this.connectionIds.get(transport)) ?? 0,
      at: performance.now(),
      watch: url.searchParams.get('watch') === '1' || url.searchParams.get('watch') === 'true',
      abandoned: false,
      authorization: typeof raw.headers.authorization === 'string' ? raw.headers.authorization : undefined,
    };
    this.requests.push(req);
    this.openResponses.add(res);
    res.on('close', () => {
      if (!res.writableFinished) req.abandoned = true;
      this.openResponses.delete(res);
    });
    const script = this.scripts.find((s) => s.times > 0 && s.match(req));
    if (script) {
      script.times--;
      if ((await script.handler(req, res, this)) !== 'default') return;
    }
    this.serve(req, res);
  }

  private serve(req: FakeRequest, res: FakeResponse): void {
    const m = PATH.exec(req.path);
    if (!m) return status(res, 404, 'NotFound', 'no such path');
    const [, prefix, namespace, plural, name, sub] = m as unknown as [
      string,
      string,
      string | undefined,
      string,
      string | undefined,
      string | undefined,
    ];
    if (req.watch) return this.watch(req, res, prefix, plural, namespace);
    if (!name) {
      if (req.method === 'GET') {
        const items = [...this.store.values()]
          .filter(
            (s) => s.prefix === prefix && s.plural === plural && (namespace === undefined || s.namespace === namespace),
          )
          .map((s) => s.obj);
        // Pages as the API server cuts them: `limit` items, then a `continue` token for the rest.
        const limit = Number(req.query.get('limit') ?? 0);
        const from = Number(req.query.get('continue') ?? 0);
        const page = limit > 0 ? items.slice(from, from + limit) : items;
        const more = limit > 0 && from + limit < items.length;
        return json(res, 200, {
          kind: 'List',
          apiVersion: 'v1',
          metadata: { resourceVersion: String(this.rv), ...(more ? { continue: String(from + limit) } : {}) },
          items: page,
        });
      }
      if (req.method === 'POST') {
        const obj = req.body as KubeObject;
        const objName = obj.metadata?.name ?? '';
        if (this.store.has(storeKey(prefix, plural, namespace ?? '', objName)))
          return status(res, 409, 'AlreadyExists', 'already exists');
        return json(res, 201, this.write(prefix, plural, namespace ?? '', objName, obj));
      }
      return status(res, 405, 'MethodNotAllowed', 'method not allowed');
    }
    const key = storeKey(prefix, plural, namespace ?? '', name);
    const stored = this.store.get(key);
    if (req.method === 'GET') return stored ? json(res, 200, stored.obj) : status(res, 404, 'NotFound', 'not found');
    if (req.method === 'PUT') {
      if (!stored) return status(res, 404, 'NotFound', 'not found');
      const obj = req.body as KubeObject;
      const rv = obj.metadata?.resourceVersion;
      if (rv && rv !== stored.obj.metadata?.resourceVersion)
        return status(
          res,
          409,
          'Conflict',
          'the object has been modified; please apply your changes to the latest version and try again',
        );
      const next = sub === 'status' ? { ...stored.obj, status: (obj as { status?: unknown }).status } : obj;
      return json(res, 200, this.write(prefix, plural, namespace ?? '', name, next));
    }
    if (req.method === 'DELETE') {
      if (!stored) return status(res, 404, 'NotFound', 'not found');
      this.store.delete(key);
      const rv = ++this.rv;
      this.publish({
        rv,
        type: 'DELETED',
        stored: {
          ...stored,
          obj: { ...stored.obj, metadata: { ...stored.obj.metadata, resourceVersion: String(rv) } },
        },
      });
      return json(res, 200, { kind: 'Status', status: 'Success' });
    }
    return status(res, 405, 'MethodNotAllowed', 'method not allowed');
  }

  private write(prefix: string, plural: string, namespace: string, name: string, obj: KubeObject): KubeObject {
    const key = storeKey(prefix, plural, namespace, name);
    const existed = this.store.has(key);
    const rv = ++this.rv;
    const saved = {
      ...obj,
      metadata: { ...obj.metadata, name, ...(namespace ? { namespace } : {}), resourceVersion: String(rv) },
    };
    const stored: Stored = { prefix, plural, namespace, name, obj: saved };
    this.store.set(key, stored);
    this.publish({ rv, type: existed ? 'MODIFIED' : 'ADDED', stored });
    return saved;
  }

  private publish(ev: WatchEventRecord): void {
    this.history.push(ev);
    for (const w of this.watchers) if (matches(w, ev.stored)) send(w.res, { type: ev.type, object: ev.stored.obj });
  }

  private watch(
    req: FakeRequest,
    res: FakeResponse,
    prefix: string,
    plural: string,
    namespace: string | undefined,
  ): void {
    const from = Number(req.query.get('resourceVersion') || this.rv);
    res.writeHead(200, { 'content-type': 'application/json' });
    if (from < this.compactedRV) {
      send(res, {
        type: 'ERROR',
        object: {
          kind: 'Status',
          apiVersion: 'v1',
          status: 'Failure',
          reason: 'Expired',
          code: 410,
          message: 'too old resource version',
        },
      });
      res.end();
      return;
    }
    const w: Watcher = { prefix, plural, namespace, res, req };
    for (const ev of this.history)
      if (ev.rv > from && matches(w, ev.stored)) send(res, { type: ev.type, object: ev.stored.obj });
    this.watchers.add(w);
    res.on('close', () => this.watchers.delete(w));
    const timeout = Number(req.query.get('timeoutSeconds') ?? 0);
    if (timeout > 0) {
      const t = setTimeout(() => {
        this.watchers.delete(w);
        res.end();
      }, timeout * 1000);
      t.unref();
      res.on('close', () => clearTimeout(t));
    }
  }
}

/** A handler that answers with a Kubernetes Status error. */
export function reply(code: number, reason: string, headers: Record<string, string> = {}): ScriptHandler {
  return (_req, res) => status(res, code, reason, reason, headers);
}

/** A handler that never answers (the request hangs until the client gives up). */
export const hang: ScriptHandler = () => undefined;

/** A watch that opens (200, headers sent) and then says nothing, ever. */
export const silentWatch: ScriptHandler = (_req, res) => {
  res.writeHead(200, { 'content-type': 'application/json' });
  (res as http.ServerResponse).flushHeaders?.();
};

function matches(w: Watcher, s: Stored): boolean {
  return w.prefix === s.prefix && w.plural === s.plural && (w.namespace === undefined || w.namespace === s.namespace);
}

function storeKey(prefix: string, plural: string, namespace: string, name: string): string {
  return `${prefix}/${plural}/${namespace}/${name}`;
}

function send(res: FakeResponse, ev: unknown): void {
  // Both response types write strings; their union's overloads do not combine.
  if (!res.writableEnded) (res as http.ServerResponse).write(JSON.stringify(ev) + '\n');
}

function json(res: FakeResponse, code: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(code, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

function status(
  res: FakeResponse,
  code: number,
  reason: string,
  message: string,
  headers: Record<string, string> = {},
): void {
  json(res, code, { kind: 'Status', apiVersion: 'v1', status: 'Failure', reason, message, code }, headers);
}

/** A real (pino) logger whose lines are kept, so a test can check that no credential was ever logged. */
export function capturedLogger(): { log: Logger; lines: string[] } {
  const lines: string[] = [];
  return {
    log: createLogger({ level: 'debug', destination: { write: (line: string) => void lines.push(line) } }),
    lines,
  };
}

/** Polls until `predicate` holds; the deadline only turns a hang into a failure, it is not what a test asserts. */
export async function until(
  what: string,
  predicate: () => boolean | Promise<boolean>,
  timeoutMs = 20_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
