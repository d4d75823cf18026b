import { createHash } from 'node:crypto';
import { LAST_CHANGE_ANNOTATION, type ExternalConnection } from '../../api/v1alpha1/index.js';
import { auditGroups, auditMessage, parseLastChange } from '../../domain/last-change.js';
import type { KubeObject } from '../../kube/client.js';
import { ExternalConnections } from '../../kube/resources.js';
import type { OperatorContext } from '../context.js';

const REMEMBERED = 10_000;

/**
 * Turns the `atoll.dev/last-change-by` annotation that admission stamped
 * into audit Events on the connection: one per kind of change (rotation,
 * settings, test request, rebind, other), naming the actor and the changed
 * fields. Events are aggregated per connection and reason and a repeat of
 * the same message is not recorded again, so reconciling twice (or after a
 * restart) adds nothing; the annotation values already turned into Events
 * are remembered so steady-state reconciles make no API call here.
 */
export class AuditEvents {
  readonly #seen = new Map<string, string>();

  constructor(private readonly ctx: Pick<OperatorContext, 'events'>) {}

  async record(conn: ExternalConnection & KubeObject): Promise<void> {
    // The uid alone names the object, and the cached object's own string serves as the key.
    const key = conn.metadata?.uid ?? `${conn.metadata?.namespace}/${conn.metadata?.name}`;
    const raw = conn.metadata?.annotations?.[LAST_CHANGE_ANNOTATION];
    const change = parseLastChange(conn.metadata?.annotations);
    if (raw === undefined || change === undefined) return;
    const said = digest(raw);
    if (this.#seen.get(key) === said) return;
    for (const group of auditGroups(change)) {
      await this.ctx.events.record(ExternalConnections, conn, 'Normal', group.reason, auditMessage(group, change), {
        once: true,
      });
    }
    this.#seen.delete(key);
    this.#seen.set(key, said);
    if (this.#seen.size > REMEMBERED) this.#seen.delete(this.#seen.keys().next().value!);
  }
}

/** 128 bits of SHA-256: remembers which annotation was recorded in a fifth of its size (ADR 0035). */
function digest(raw: string): string {
  return createHash('sha256').update(raw).digest('base64url').slice(0, 22);
}
