import { CREDENTIALS_STATE_ANNOTATION } from '../api/v1alpha1/well-known.js';
import type { KubeObject } from '../kube/client.js';

/**
 * Per-field bookkeeping kept in the managed Secret's annotation (the source
 * of truth for versions). Since binding format 2 (`format: 2`) it also pins
 * what the managed copy was made from and for (ADR 0013). The controller
 * writes it; the gateway and the agent read it to serve the current version.
 */
export interface FieldState {
  fingerprint: string;
  version: number;
  updatedAt: string;
  keyId: string;
  hint: string;
  /** 2: the data is a managed copy (binding format 2) and the fingerprint leaves out the destination. */
  format?: 2;
  /** Destination digest the managed copy is bound to: where the credential may go. */
  destination?: string;
  /** What the copy was made from: `sealed:<sha-256 of spec's sealed value>` or `secret:<name>/<key>`. */
  source?: string;
  /** Generation of the IntegrationType when the destination was pinned (names a type change in messages). */
  typeGeneration?: number;
  /** A spec-form value under the current key and destination, published in status for Git (when spec's is older). */
  sealed?: string;
  /** The `atoll.dev/rebind-requested` value last acted on. */
  rebind?: string;
  /** Digest of the connection's own settings when the copy was pinned: a rebind confirms only a move made by the type. */
  settings?: string;
}

export { CREDENTIALS_STATE_ANNOTATION as STATE_ANNOTATION };

/**
 * The annotation's text for `state`, ASCII only: a hint's "…" would otherwise make the whole string
 * two bytes a character in the memory of every process caching the Secret (ADR 0035). JSON reads
 * `\u2026` as the same character, so readers see no difference.
 */
export function writeState(state: Record<string, FieldState>): string {
  return JSON.stringify(state).replace(
    /[\u0080-\uffff]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

/** Whether an annotation's text already says `state` (written by this version or an older one that did not escape). */
export function saysState(annotation: string | undefined, state: Record<string, FieldState>): boolean {
  if (annotation === undefined) return false;
  try {
    return JSON.stringify(JSON.parse(annotation)) === JSON.stringify(state);
  } catch {
    return false;
  }
}

/** The managed Secret's per-field state; an absent or unreadable annotation reads as no state. */
export function readState(secret: KubeObject | undefined): Record<string, FieldState> {
  try {
    const state: unknown = JSON.parse(secret?.metadata?.annotations?.[CREDENTIALS_STATE_ANNOTATION] ?? '{}');
    // Anyone who may write Secrets in the namespace may write this annotation: only an object is state.
    return state !== null && typeof state === 'object' && !Array.isArray(state)
      ? (state as Record<string, FieldState>)
      : {};
  } catch {
    return {};
  }
}

/** Said in a DestinationChanged message that no rebind can resolve (`atoll rebind` recognises it). */
export const REBIND_CANNOT_CONFIRM = 'A rebind confirms only a change of IntegrationType';
