import { createHash } from 'node:crypto';
import { lengthPrefixed } from '../../crypto/binding.js';

/** What a managed copy was checked under: the binding it opened with and the state it matched. */
interface CopyPlace {
  namespace: string;
  workspace: string;
  connection: string;
  uid: string;
}

interface CheckedState {
  fingerprint: string;
  version: number;
  destination?: string;
}

/**
 * Managed copies this process opened and found to hold the recorded
 * credential (issue #12.3). A reconcile that finds exactly the same bytes
 * under the same binding and state skips opening them again, so a steady
 * state makes no KMS call, whatever the data-key cache's age. Kept in memory
 * only: a digest written next to the copy would be forged along with it (the
 * rollback attack rewrites the Secret's data and annotation together), and a
 * new process opens each copy once. Holds digests, never key material.
 */
export class VerifiedCopies {
  /** `namespace/connection` -> field -> digest of what was checked (a plain object: a Map each was 3x the size). */
  readonly #checked = new Map<string, Record<string, string>>();

  has(place: CopyPlace, field: string, ciphertext: string, st: CheckedState): boolean {
    return this.#checked.get(connectionKey(place))?.[field] === digest(place, field, ciphertext, st);
  }

  remember(place: CopyPlace, field: string, ciphertext: string, st: CheckedState): void {
    const key = connectionKey(place);
    this.#checked.set(key, { ...this.#checked.get(key), [field]: digest(place, field, ciphertext, st) });
  }

  /** The copy did not open (altered, rolled back, key gone): check it again next time. */
  forget(place: Pick<CopyPlace, 'namespace' | 'connection'>, field: string): void {
    const fields = this.#checked.get(connectionKey(place));
    if (fields) delete fields[field];
  }

  /** The connection is gone. */
  forgetConnection(namespace: string, connection: string): void {
    this.#checked.delete(connectionKey({ namespace, connection }));
  }
}

function connectionKey(place: Pick<CopyPlace, 'namespace' | 'connection'>): string {
  return `${place.namespace}/${place.connection}`;
}

function digest(place: CopyPlace, field: string, ciphertext: string, st: CheckedState): string {
  const h = createHash('sha256');
  for (const part of [
    place.namespace,
    place.workspace,
    place.connection,
    place.uid,
    field,
    st.fingerprint,
    String(st.version),
    st.destination ?? '',
    ciphertext,
  ])
    h.update(lengthPrefixed(part));
  return h.digest('base64url');
}
