import type { KubeClient, KubeObject } from '../kube/client.js';
import { KubeApiError, isGone } from '../kube/errors.js';
import type { ResourceType } from '../kube/resources.js';
import { StalledStreamError } from '../kube/watch-transport.js';
import { describeError } from './describe-error.js';
import { RestartBackoff } from './restart-backoff.js';
import { shareStrings } from './shared-strings.js';
import type { Logger } from './logger.js';

/** How long a namespaced informer's 403s count as the usual race with its new RoleBinding (debug) before they are a warning. */
const FORBIDDEN_GRACE_MS = 15_000;
/** A watch that ends sooner than this without one event is a failure (client-go's "very short watch"), not a normal end. */
const SHORT_WATCH_MS = 1_000;
const STALL_GRACE_MS = 30_000;
const DEFAULT_RELIST_MS = 30 * 60_000;
const RELIST_JITTER = 0.5;

/** Cap of the restart backoff; with its jitter a restart waits at most twice this. */
const MAX_RESTART_BACKOFF_MS = 10_000;
export type InformerEvent = 'add' | 'update' | 'delete';
export type InformerHandler<T> = (event: InformerEvent, obj: T, old?: T) => void;

export interface InformerOptions<T extends KubeObject = KubeObject> {
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
  /**
   * Applied to every object before it is cached and handed to handlers: keep
   * only what readers need (e.g. `stripForCache`), since caches are most of a
   * controller's memory at scale.
   */
  transform?: (obj: T) => T;
  /**
   * Full relist interval, stretched by up to half at random: a safety net for anything a watch missed
   * (default 30 min). Watches resume from their resourceVersion and relist on 410 Gone anyway; a LIST
   * of 10,000 connections, or a thousand namespaces' Secrets at once, is too heavy to repeat often (ADR 0034).
   */
  relistMs?: number;
  /** Server-side watch timeout; a stream open longer than this plus a grace period is stalled. */
  watchTimeoutSeconds?: number;
  /** The grace period past watchTimeoutSeconds (default 30 s). */
  stallGraceMs?: number;
  /** Wait between restarts after a failure, a 410 or a very short watch (default 800 ms doubling to 30 s, jittered). */
  restartBackoff?: { initialMs?: number; maxMs?: number };
  log: Logger;
}

export function objectKey(obj: KubeObject): string {
  const md = obj.metadata ?? {};
  return md.namespace ? `${md.namespace}/${md.name}` : String(md.name);
}

/**
 * List-then-watch cache of one resource type. It survives everything a real
 * API server does to a watch: streams that end, 410 Gone (relist), errors and
 * restarts (relist with backoff), and silent stalls (a watchdog aborts a
 * stream that outlives its server-side timeout). `healthy()` feeds /readyz.
 */
export class Informer<T extends KubeObject> {
  private readonly store = new Map<string, T>();
  /** namespace → key → object: list(namespace) without scanning everything. */
  private readonly byNamespace = new Map<string, Map<string, T>>();
  private readonly handlers: InformerHandler<T>[] = [];
  private synced = false;
  private failing = false;
  private lastContact = 0;
  private resourceVersion = '';
  private readonly relistMs: number;
  private readonly watchTimeoutSeconds: number;
  private readonly stallGraceMs: number;
  private readonly backoff: RestartBackoff;
  private abort = new AbortController();
  private stopped = false;
  private loop: Promise<void> | undefined;

  constructor(
    private readonly client: KubeClient,
    readonly resource: ResourceType,
    private readonly opts: InformerOptions<T>,
  ) {
    this.relistMs = opts.relistMs ?? DEFAULT_RELIST_MS;
    this.watchTimeoutSeconds = opts.watchTimeoutSeconds ?? 240;
    this.stallGraceMs = opts.stallGraceMs ?? STALL_GRACE_MS;
    // client-go's reflector caps at 30 s, stretched up to 60 s: after an outage the gateway then served
    // 503 for up to a minute once the API server was back (the chaos suite, docs/reliability.md).
    this.backoff = new RestartBackoff({ maxMs: MAX_RESTART_BACKOFF_MS, ...opts.restartBackoff });
  }

  on(handler: InformerHandler<T>): void {
    this.handlers.push(handler);
  }

  get(key: string): T | undefined {
    return this.store.get(key);
  }

  /** Objects cached. */
  get size(): number {
    return this.store.size;
  }

  list(namespace?: string): T[] {
    if (namespace === undefined) return [...this.store.values()];
    return [...(this.byNamespace.get(namespace)?.values() ?? [])];
  }

  /** Caches `obj` (transformed unless it already is) and returns what was cached. */
  private put(key: string, received: T, transformed = false): T {
    const obj = this.opts.transform && !transformed ? this.opts.transform(received) : received;
    this.store.set(key, obj);
    const ns = obj.metadata?.namespace ?? '';
    const index = this.byNamespace.get(ns) ?? new Map<string, T>();
    index.set(key, obj);
    this.byNamespace.set(ns, index);
    return obj;
  }

  private remove(key: string, obj: T): void {
    this.store.delete(key);
    const ns = obj.metadata?.namespace ?? '';
    const index = this.byNamespace.get(ns);
    index?.delete(key);
    if (index?.size === 0) this.byNamespace.delete(ns);
  }

  hasSynced(): boolean {
    return this.synced;
  }

  /** True while the cache is synced, the last list/watch worked and the API server answered recently. */
  healthy(maxSilenceMs = (this.watchTimeoutSeconds + 60) * 1000): boolean {
    return this.synced && !this.failing && Date.now() - this.lastContact < maxSilenceMs;
  }

  start(): void {
    if (!this.loop) this.loop = this.run();
  }

  async waitForSync(timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.synced) {
      if (Date.now() > deadline) throw new Error(`informer for ${this.resource.plural} did not sync`);
      await sleep(50);
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.abort.abort();
    await this.loop;
  }

  /**
   * The reflector loop of client-go: list, then watch from the list's
   * resourceVersion, re-watching from the last seen one whenever a stream
   * ends normally. Anything else - an error, 410 Gone, a stall, a stream
   * the server closes at once - restarts from a fresh list after a backoff,
   * so a server that keeps failing is never hammered in a hot loop.
   */
  private async run(): Promise<void> {
    let forbiddenSince: number | undefined;
    while (!this.stopped) {
      try {
        await this.relist();
        forbiddenSince = undefined;
        // Informers started together (one per workspace namespace) relist apart.
        const relistAt = Date.now() + this.relistMs * (1 + RELIST_JITTER * Math.random());
        while (!this.stopped && Date.now() < relistAt) {
          await this.watchOnce();
        }
      } catch (err) {
        if (this.stopped) break;
        const gone = isGone(err);
        if (!gone) this.failing = true;
        const delay = this.backoff.next();
        const status = err instanceof KubeApiError ? err.status : undefined;
        const reason = err instanceof KubeApiError ? err.reason : undefined;
        const fields = {
          resource: this.resource.plural,
          namespace: this.opts.namespace,
          status,
          reason,
          delayMs: Math.round(delay),
        };
        // A namespaced informer started for a new Workspace usually races the RoleBinding
        // that grants it: 403s for a short while are expected, only lasting ones are worth a warning.
        if (status === 403) forbiddenSince ??= Date.now();
        else forbiddenSince = undefined;
        const expected =
          gone ||
          (status === 403 && this.opts.namespace !== undefined && Date.now() - forbiddenSince! < FORBIDDEN_GRACE_MS);
        const message = gone
          ? 'watch expired, relisting'
          : status === 403
            ? `list/watch of ${this.resource.plural} in namespace ${this.opts.namespace ?? '(all)'} forbidden, retrying`
            : 'list/watch failed, retrying';
        if (expected) this.opts.log.debug(fields, message);
        else this.opts.log.warn(fields, message);
        await sleep(delay, this.abort.signal);
      }
    }
  }

  private async relist(): Promise<void> {
    const list = await this.client.list<T>(this.resource, {
      namespace: this.opts.namespace,
      labelSelector: this.opts.labelSelector,
      fieldSelector: this.opts.fieldSelector,
      ...(this.opts.transform ? { map: this.opts.transform as <I extends KubeObject>(item: I) => I } : {}),
    });
    this.lastContact = Date.now();
    const seen = new Set<string>();
    for (const obj of list.items) {
      const key = objectKey(obj);
      seen.add(key);
      const old = this.store.get(key);
      this.emit(old ? 'update' : 'add', this.put(key, obj, true), old);
    }
    for (const [key, old] of [...this.store]) {
      if (!seen.has(key)) {
        this.remove(key, old);
        this.emit('delete', old);
      }
    }
    this.resourceVersion = list.metadata.resourceVersion;
    this.synced = true;
    this.failing = false;
  }

  private async watchOnce(): Promise<void> {
    const streamAbort = new AbortController();
    const onStop = () => streamAbort.abort();
    this.abort.signal.addEventListener('abort', onStop, { once: true });
    // Watchdog: the server closes the stream after timeoutSeconds; if it has
    // not by then plus a grace period, the connection is silently dead (the
    // transport then drops the whole connection, not just this stream).
    const watchdog = setTimeout(
      () => streamAbort.abort(new StalledStreamError()),
      this.watchTimeoutSeconds * 1000 + this.stallGraceMs,
    );
    watchdog.unref();
    const startedAt = Date.now();
    let events = 0;
    try {
      await this.client.watch<T>(
        this.resource,
        {
          namespace: this.opts.namespace,
          labelSelector: this.opts.labelSelector,
          fieldSelector: this.opts.fieldSelector,
          resourceVersion: this.resourceVersion,
          timeoutSeconds: this.watchTimeoutSeconds,
          signal: streamAbort.signal,
        },
        (ev) => {
          events++;
          this.lastContact = Date.now();
          const rv = ev.object?.metadata?.resourceVersion;
          if (rv) this.resourceVersion = rv;
          if (ev.type === 'BOOKMARK') return;
          const key = objectKey(ev.object);
          const old = this.store.get(key);
          if (ev.type === 'DELETED') {
            this.remove(key, ev.object);
            // Handlers see every object in its cached form, the last one included.
            this.emit('delete', this.opts.transform ? this.opts.transform(ev.object) : ev.object);
          } else {
            this.emit(old ? 'update' : 'add', this.put(key, ev.object), old);
          }
        },
      );
      this.lastContact = Date.now();
      if (!this.stopped && events === 0 && Date.now() - startedAt < SHORT_WATCH_MS) {
        throw new KubeApiError(0, 'ShortWatch', 'watch closed at once without events');
      }
    } catch (err) {
      if (streamAbort.signal.aborted && !this.stopped) {
        throw new KubeApiError(0, 'WatchStalled', 'watch stream stalled', undefined, { cause: err });
      }
      throw err;
    } finally {
      clearTimeout(watchdog);
      this.abort.signal.removeEventListener('abort', onStop);
    }
  }

  private emit(event: InformerEvent, obj: T, old?: T): void {
    for (const h of this.handlers) {
      try {
        h(event, obj, old);
      } catch (err) {
        this.opts.log.error({ error: describeError(err), resource: this.resource.plural }, 'informer handler failed');
      }
    }
  }
}

/** Annotation kubectl writes on apply: a full copy of the object, read by nothing in atoll. */
const LAST_APPLIED = 'kubectl.kubernetes.io/last-applied-configuration';

/**
 * The informer transform the operator and gateway use: drops `managedFields`
 * and kubectl's last-applied copy, which nothing reads and which are often
 * larger than the rest of the object, and shares strings that repeat across
 * objects (`shareStrings`). A write built from a cached object still works:
 * the API server keeps managedFields a request omits.
 */
export function stripForCache<T extends KubeObject>(obj: T): T {
  return shareStrings(stripped(obj));
}

function stripped<T extends KubeObject>(obj: T): T {
  const md = obj.metadata;
  if (!md || (md.managedFields === undefined && md.annotations?.[LAST_APPLIED] === undefined)) return obj;
  const { managedFields: _dropped, ...metadata } = md;
  if (metadata.annotations?.[LAST_APPLIED] !== undefined) {
    const { [LAST_APPLIED]: _copy, ...annotations } = metadata.annotations;
    metadata.annotations = annotations;
  }
  return { ...obj, metadata };
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const onAbort = () => {
      clearTimeout(t);
      resolve();
    };
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
