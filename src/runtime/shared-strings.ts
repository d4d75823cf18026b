import type { KubeObject } from '../kube/client.js';

/**
 * One copy of each string that repeats across cached objects. JSON.parse
 * gives every object its own copy of its namespace, its conditions' types,
 * reasons, messages and transition times, its owners' apiVersion and kind,
 * its key id; at 10,000 connections those copies were several MiB of the
 * controller's and the gateway's heap (ADR 0035). Replacing a string with an
 * equal one changes nothing a reader can see, so the cached object is
 * rewritten in place.
 */

/** Keys of operator-written status whose string values repeat from object to object. */
const STATUS_KEYS = new Set(['type', 'status', 'reason', 'message', 'lastTransitionTime', 'keyId', 'result']);
/** Longer strings are rarely repeated and not worth a lookup. */
const MAX_LENGTH = 512;
/**
 * Bound of the table. Values that turn out unique (a message naming a host)
 * fill it; it then starts again, and objects cached before keep their copies.
 */
export const MAX_SHARED_STRINGS = 20_000;

const table = new Map<string, string>();

/** The shared copy of `value` (a probe outcome's reason or message, say). */
export function sharedText(value: string): string {
  if (value.length > MAX_LENGTH) return value;
  const known = table.get(value);
  if (known !== undefined) return known;
  if (table.size >= MAX_SHARED_STRINGS) table.clear();
  table.set(value, value);
  return value;
}

/**
 * Replaces repeated strings of a freshly parsed API object with their shared copies; returns it.
 * Only known places are touched: the kind, the namespace, label values, owners' kinds, `spec.type`
 * and operator-written status. Never `data`, annotations or the rest of `spec`: tenant values (a
 * Secret's data above all) must not outlive their object in a table.
 */
export function shareStrings<T extends KubeObject>(obj: T): T {
  const o = obj as KubeObject & { type?: unknown; spec?: { type?: unknown }; status?: unknown };
  if (typeof o.apiVersion === 'string') o.apiVersion = sharedText(o.apiVersion);
  if (typeof o.kind === 'string') o.kind = sharedText(o.kind);
  if (typeof o.type === 'string') o.type = sharedText(o.type);
  const md = o.metadata;
  if (md) {
    if (typeof md.namespace === 'string') md.namespace = sharedText(md.namespace);
    const labels = md.labels ?? {};
    for (const k of Object.keys(labels)) if (typeof labels[k] === 'string') labels[k] = sharedText(labels[k]);
    for (const owner of md.ownerReferences ?? []) {
      if (typeof owner.apiVersion === 'string') owner.apiVersion = sharedText(owner.apiVersion);
      if (typeof owner.kind === 'string') owner.kind = sharedText(owner.kind);
    }
  }
  if (o.spec && typeof o.spec === 'object' && typeof o.spec.type === 'string') o.spec.type = sharedText(o.spec.type);
  shareStatus(o.status);
  return obj;
}

function shareStatus(node: unknown): void {
  if (Array.isArray(node)) {
    for (const v of node) shareStatus(v);
    return;
  }
  if (typeof node !== 'object' || node === null) return;
  const record = node as Record<string, unknown>;
  for (const key of Object.keys(record)) {
    const v = record[key];
    if (typeof v === 'string') {
      if (STATUS_KEYS.has(key)) record[key] = sharedText(v);
    } else shareStatus(v);
  }
}

/** Strings in the table (tests). */
export function sharedStringCount(): number {
  return table.size;
}
