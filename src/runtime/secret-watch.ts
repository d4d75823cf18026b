import { MANAGED_BY_LABEL, MANAGED_BY_VALUE } from '../api/v1alpha1/index.js';
import type { KubeClient, KubeObject } from '../kube/client.js';
import { Secrets } from '../kube/resources.js';
import type { Secret, SecretCaches } from '../controllers/context.js';
import { Informer, type InformerHandler } from './informer.js';
import type { Logger } from './logger.js';

/** Selects the Secrets atoll writes (managed copies); tenant Secrets are never cached wholesale. */
export const MANAGED_SECRETS = `${MANAGED_BY_LABEL}=${MANAGED_BY_VALUE}`;

/**
 * The one Secret-watch manager of the operator and the gateway (ADR 0022).
 * Both hold Secret access only inside workspace namespaces (a RoleBinding the
 * Workspace reconciler creates), so nothing here watches cluster-wide:
 *
 * - per watched namespace, one informer of atoll's own Secrets, selected by
 *   label: tenant Secrets are not cached;
 * - per Secret a connection names in a `secretKeyRef`, one narrow watch
 *   (field selector on its name), started while some connection refers to it
 *   and its namespace is watched, so a change to it reaches the reconciler
 *   as before without caching the namespace's other Secrets.
 *
 * A cache answer is authoritative only where a watch covers the name (see
 * `synced`); anything else is read from the API server. What is cached of a
 * Secret is `view(secret)`: the Secret without managedFields for the
 * operator, a narrower view for the gateway (ADR 0036).
 */
export class SecretWatch<T extends KubeObject = Secret> implements SecretCaches<T> {
  private readonly managed = new Map<string, Informer<T>>();
  /** `namespace/name` → narrow watch of one referenced Secret. */
  private readonly referenced = new Map<string, Informer<T>>();
  /** Referrer (a connection key) → the `namespace/name`s it refers to. */
  private readonly references = new Map<string, Set<string>>();
  private readonly handlers: InformerHandler<T>[] = [];

  constructor(
    private readonly client: KubeClient,
    private readonly log: Logger,
    private readonly opts: { relistMs?: number; view: (secret: Secret) => T },
  ) {}

  on(handler: InformerHandler<T>): void {
    this.handlers.push(handler);
  }

  watching(namespace: string): boolean {
    return this.managed.has(namespace);
  }

  watch(namespace: string): void {
    if (this.managed.has(namespace)) return;
    this.managed.set(namespace, this.informer(namespace, { labelSelector: MANAGED_SECRETS }));
    this.syncReferenced();
  }

  unwatch(namespace: string): void {
    const inf = this.managed.get(namespace);
    if (!inf) return;
    this.managed.delete(namespace);
    void inf.stop();
    this.syncReferenced();
  }

  /** Declares the Secrets (`namespace/name`) one referrer uses; an empty list forgets it. */
  setReferences(referrer: string, secrets: Iterable<string>): void {
    const next = new Set(secrets);
    const previous = this.references.get(referrer);
    if (!previous && next.size === 0) return;
    if (previous && previous.size === next.size && [...next].every((k) => previous.has(k))) return;
    if (next.size === 0) this.references.delete(referrer);
    else this.references.set(referrer, next);
    this.syncReferenced();
  }

  get(namespace: string, name: string): T | undefined {
    const key = `${namespace}/${name}`;
    return this.referenced.get(key)?.get(key) ?? this.managed.get(namespace)?.get(key);
  }

  /**
   * True when the cache's answer for this name is the API server's: a synced
   * narrow watch covers it, or the label-selected cache holds it. A miss in
   * the label-selected cache proves nothing (a tenant Secret of that name is
   * not cached), so the caller reads it from the API server.
   */
  synced(namespace: string, name: string): boolean {
    const key = `${namespace}/${name}`;
    const narrow = this.referenced.get(key);
    if (narrow) return narrow.hasSynced();
    const managed = this.managed.get(namespace);
    return managed !== undefined && managed.hasSynced() && managed.get(key) !== undefined;
  }

  /** Waits (bounded) until the namespace's managed Secrets are cached; false when not watched or not in time. */
  async waitForSync(namespace: string, timeoutMs: number): Promise<boolean> {
    const inf = this.managed.get(namespace);
    if (!inf) return false;
    if (inf.hasSynced()) return true;
    return inf.waitForSync(timeoutMs).then(
      () => true,
      () => false,
    );
  }

  /** Watches in use: the API server holds one per entry (for the bench and /metrics). */
  watchCount(): { managed: number; referenced: number } {
    return { managed: this.managed.size, referenced: this.referenced.size };
  }

  async stop(): Promise<void> {
    const all = [...this.managed.values(), ...this.referenced.values()];
    this.managed.clear();
    this.referenced.clear();
    await Promise.all(all.map((i) => i.stop()));
  }

  /** Narrow watches for exactly the referenced Secrets of watched namespaces. */
  private syncReferenced(): void {
    const want = new Set<string>();
    for (const keys of this.references.values())
      for (const k of keys) if (this.managed.has(k.slice(0, k.indexOf('/')))) want.add(k);
    for (const key of want) {
      if (this.referenced.has(key)) continue;
      const slash = key.indexOf('/');
      this.referenced.set(
        key,
        this.informer(key.slice(0, slash), { fieldSelector: `metadata.name=${key.slice(slash + 1)}` }),
      );
    }
    for (const [key, inf] of [...this.referenced]) {
      if (want.has(key)) continue;
      this.referenced.delete(key);
      void inf.stop();
    }
  }

  private informer(namespace: string, selector: { labelSelector?: string; fieldSelector?: string }): Informer<T> {
    const inf = new Informer<T>(this.client, Secrets, {
      namespace,
      ...selector,
      // The informer's transform maps an object to its cached form; here the API's Secret to the view.
      transform: this.opts.view,
      log: this.log,
      ...(this.opts.relistMs === undefined ? {} : { relistMs: this.opts.relistMs }),
    });
    for (const h of this.handlers) inf.on(h);
    inf.start();
    return inf;
  }
}
