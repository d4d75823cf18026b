import { randomBytes } from 'node:crypto';
import type { KubeClient, KubeObject } from './client.js';
import { CoreEvents, apiVersionOf, type ResourceType } from './resources.js';
import type { Logger } from '../runtime/logger.js';

/**
 * Records Kubernetes Events. Callers pass constant reasons and messages
 * built only from non-secret facts; Events are readable by tenants.
 */
export class EventRecorder {
  constructor(private readonly client: KubeClient, private readonly component: string, private readonly log: Logger) {}

  async record(t: ResourceType, obj: KubeObject, type: 'Normal' | 'Warning', reason: string, message: string): Promise<void> {
    const md = obj.metadata ?? {};
    const now = new Date().toISOString();
    try {
      await this.client.create(CoreEvents, {
        metadata: { name: `${md.name}.${randomBytes(8).toString('hex')}`, namespace: md.namespace ?? 'default' },
        involvedObject: { apiVersion: apiVersionOf(t), kind: t.kind, name: md.name, namespace: md.namespace, uid: md.uid, resourceVersion: md.resourceVersion },
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
      // Events are best effort; never fail a reconcile for one.
      this.log.debug({ reason, status: (err as { status?: number }).status }, 'could not record event');
    }
  }
}
