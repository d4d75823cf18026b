import { createHmac, timingSafeEqual } from 'node:crypto';
import { additionalData, lengthPrefixed, type Binding } from './binding.js';

/** Shorter keys would make the fingerprint of a weak password brute-forceable offline. */
export const MIN_FINGERPRINT_KEY_BYTES = 32;

/**
 * Keyed fingerprint of a credential in its binding: HMAC-SHA256 over
 * additionalData(binding) followed by the plaintext, base64url. KMS
 * ciphertext differs on every seal, so the reconciler compares fingerprints
 * (stored in a Secret annotation) to skip writes when nothing changed. The
 * key is secret and operator-wide; the binding prefix is length-prefixed, so
 * the same value in two fields or workspaces fingerprints differently.
 */
export function fingerprint(key: Buffer, binding: Binding, plaintext: string): string {
  if (key.length < MIN_FINGERPRINT_KEY_BYTES) throw new RangeError('fingerprint key too short');
  return createHmac('sha256', key).update(additionalData(binding)).update(plaintext, 'utf8').digest('base64url');
}

/** Constant-time comparison of two fingerprints; false for anything of a different length. */
export function sameFingerprint(a: string, b: string): boolean {
  const left = Buffer.from(a, 'utf8');
  const right = Buffer.from(b, 'utf8');
  return left.length === right.length && timingSafeEqual(left, right);
}

/** Where a credential lives, without its destination: what fingerprints since binding format 2 cover. */
export interface CredentialPlace {
  namespace: string;
  workspace: string;
  connection: string;
  field: string;
}

/**
 * Keyed fingerprint since binding format 2: HMAC-SHA256 over a label, the
 * place (length-prefixed) and the plaintext. The destination is left out on
 * purpose: confirming a new destination (`atoll rebind`) is not a rotation.
 */
export function placeFingerprint(key: Buffer, place: CredentialPlace, plaintext: string): string {
  if (key.length < MIN_FINGERPRINT_KEY_BYTES) throw new RangeError('fingerprint key too short');
  const h = createHmac('sha256', key).update(lengthPrefixed('atoll.dev/fingerprint/v2'));
  for (const part of [place.namespace, place.workspace, place.connection, place.field]) h.update(lengthPrefixed(part));
  return h.update(plaintext, 'utf8').digest('base64url');
}
