/**
 * One copy of each string that repeats across cached objects. JSON.parse
 * gives every object its own copy of its namespace, its conditions' types,
 * reasons, messages and transition times, its owners' apiVersion and kind,
 * its key id; at 10,000 connections those copies were several MiB of the
 * controller's and the gateway's heap (ADR 0035). Replacing a string with an
 * equal one changes nothing a reader can see, so the cached object is
 * rewritten in place.
 */

/** Keys whose string values repeat from object to object (wherever they appear in it). */
const SHARED_KEYS = new Set([
  'apiVersion',
  'kind',
  'namespace',
  'type',
  'status',
  'reason',
  'message',
  'lastTransitionTime',
  'keyId',
  'result',
  'workspace',
]);
/** Maps whose every value is shared (label values are few: managed-by, workspace names). */
const SHARED_MAPS = new Set(['labels']);
/** Longer strings are rarely repeated and not worth a lookup. */
const MAX_LENGTH = 512;
/**
 * Bound of the table. Values that turn out unique (a message naming a host)
 * fill it; it then starts again, and objects cached before keep their copies.
 */
export const MAX_SHARED_STRINGS = 20_000;

const table = new Map<string, string>();

function shared(value: string): string {
  if (value.length > MAX_LENGTH) return value;
  const known = table.get(value);
  if (known !== undefined) return known;
  if (table.size >= MAX_SHARED_STRINGS) table.clear();
  table.set(value, value);
  return value;
}

/** Replaces repeated strings in `obj` (a freshly parsed API object) with their shared copies; returns `obj`. */
export function shareStrings<T>(obj: T): T {
  visit(obj, false);
  return obj;
}

function visit(node: unknown, shareAll: boolean): void {
  if (Array.isArray(node)) {
    for (let i = 0; i < node.length; i++) {
      const v: unknown = node[i];
      if (typeof v === 'object' && v !== null) visit(v, false);
    }
    return;
  }
  if (typeof node !== 'object' || node === null) return;
  const record = node as Record<string, unknown>;
  for (const key of Object.keys(record)) {
    const v = record[key];
    if (typeof v === 'string') {
      if (shareAll || SHARED_KEYS.has(key)) record[key] = shared(v);
    } else if (typeof v === 'object' && v !== null) visit(v, SHARED_MAPS.has(key));
  }
}

/** Strings in the table (tests). */
export function sharedStringCount(): number {
  return table.size;
}
