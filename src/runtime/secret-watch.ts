import type { KubeClient } from '../kube/client.js';
import { Secrets } from '../kube/resources.js';
import type { Secret, SecretCaches } from '../controllers/context.js';
import { Informer, type InformerHandler } from './informer.js';
import type { Logger } from './logger.js';

/**
 * One Secret informer per workspace namespace. The operator is granted Secret
 * access only inside workspace namespaces (a RoleBinding the Workspace
 * reconciler creates), so it cannot - and does not - watch Secrets
 * cluster-wide.
 */
export class NamespacedSecretWatch implements SecretCaches {
  private readonly informers = new Map<string, Informer<Secret>>();
  private readonly handlers: InformerHandler<Secret>[] = [];

  constructor(private readonly client: KubeClient, private readonly log: Logger, private readonly labelSelector?: string) {}

  on(handler: InformerHandler<Secret>): void {
    this.handlers.push(handler);
  }

  /** Makes the set of watched namespaces exactly `namespaces`. */
  sync(namespaces: Iterable<string>): void {
    const want = new Set(namespaces);
    for (const ns of want) {
      if (this.informers.has(ns)) continue;
      const inf = new Informer<Secret>(this.client, Secrets, { namespace: ns, labelSelector: this.labelSelector, log: this.log });
      for (const h of this.handlers) inf.on(h);
      this.informers.set(ns, inf);
      inf.start();
    }
    for (const [ns, inf] of this.informers) {
      if (!want.has(ns)) {
        this.informers.delete(ns);
        void inf.stop();
      }
    }
  }

  get(namespace: string, name: string): Secret | undefined {
    return this.informers.get(namespace)?.get(`${namespace}/${name}`);
  }

  synced(namespace: string): boolean {
    return this.informers.get(namespace)?.hasSynced() ?? false;
  }

  async stop(): Promise<void> {
    await Promise.all([...this.informers.values()].map((i) => i.stop()));
    this.informers.clear();
  }
}
