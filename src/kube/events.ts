import { createHash } from 'node:crypto';
import type { KubeClient, KubeObject } from './client.js';
import { isAlreadyExists, isConflict } from './errors.js';
import { CoreEvents, apiVersionOf, type ResourceType } from './resources.js';
import type { Logger } from '../runtime/logger.js';

interface CoreEvent extends KubeObject {
  message?: string;
  count?: number;
}

/**
 * Records Kubernetes Events, aggregated the way kubectl expects: one Event
 * per (object, reason, component) under a stable name, whose count and
 * lastTimestamp grow on repeats and whose message is the latest, instead of
 * a new randomly named Event each time. Callers
 * pass constant reasons and messages built only from non-secret facts;
 * Events are readable by tenants.
 */
export class EventRecorder {
  constructor(
    private readonly client: KubeClient,
    private readonly component: string,
    private readonly log: Logger,
  ) {}

  /**
   * `once`: the message names one fact (it carries its own time), so a repeat
   * with the same message is the same fact seen again and is not counted.
   */
  async record(
    t: ResourceType,
    obj: KubeObject,
    type: 'Normal' | 'Warning',
    reason: string,
    message: string,
    opts: { once?: boolean } = {},
  ): Promise<void> {
    const md = obj.metadata ?? {};
    // The API server files Events about cluster-scoped objects in `default`.
    const namespace = md.namespace ?? 'default';
    const name = eventName(String(md.name), md.uid ?? '', reason, this.component);
    const now = new Date().toISOString();
    try {
      try {
        await this.client.create(CoreEvents, {
          metadata: { name, namespace },
          involvedObject: {
            apiVersion: apiVersionOf(t),
            kind: t.kind,
            name: md.name,
            ...(md.namespace ? { namespace: md.namespace } : {}),
            ...(md.uid ? { uid: md.uid } : {}),
            ...(md.resourceVersion ? { resourceVersion: md.resourceVersion } : {}),
          },
          reason,
          message,
          type,
          source: { component: this.component },
          reportingComponent: this.component,
          reportingInstance: this.component,
          firstTimestamp: now,
          lastTimestamp: now,
          count: 1,
        });
      } catch (err) {
        if (!isAlreadyExists(err)) throw err;
        await this.#increment(name, namespace, type, message, now, opts.once === true);
      }
    } catch (err) {
      // Events are best effort; never fail a reconcile or an admission for one.
      this.log.debug({ reason, status: (err as { status?: number }).status }, 'could not record event');
    }
  }

  /** count + 1 at the resourceVersion read; a concurrent recorder makes it conflict, and it reads again. */
  async #increment(
    name: string,
    namespace: string,
    type: string,
    message: string,
    now: string,
    once: boolean,
  ): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      const existing = await this.client.get<CoreEvent>(CoreEvents, name, namespace);
      if (once && existing.message === message) return;
      try {
        await this.client.mergePatch(CoreEvents, name, namespace, {
          count: (existing.count ?? 1) + 1,
          lastTimestamp: now,
          message,
          type,
          metadata: { resourceVersion: existing.metadata?.resourceVersion },
        });
        return;
      } catch (err) {
        if (!isConflict(err) || attempt >= 2) throw err;
      }
    }
  }
}

/** `<object>.<hash>`: stable per object instance, reason and reporter, so repeats aggregate. */
export function eventName(objectName: string, uid: string, reason: string, component: string): string {
  const digest = createHash('sha256').update(`${uid}\0${reason}\0${component}`).digest('hex').slice(0, 16);
  return `${objectName.slice(0, 200)}.${digest}`;
}
