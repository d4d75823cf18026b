import type { CredentialSource } from '../../api/v1alpha1/index.js';
import { Reason } from '../../api/v1alpha1/index.js';
import type { Binding } from '../../crypto/binding.js';
import { CryptoError, CryptoErrorReason } from '../../crypto/errors.js';
import { fingerprint, sameFingerprint } from '../../crypto/fingerprint.js';
import { credentialHint } from '../../crypto/hint.js';
import type { KeyRef } from '../../crypto/kms-provider.js';
import type { CryptoSetup } from '../../crypto/setup.js';
import type { Secret } from '../context.js';

/** Per-field bookkeeping kept in the managed Secret's annotation (the source of truth for versions). */
export interface FieldState {
  fingerprint: string;
  version: number;
  updatedAt: string;
  keyId: string;
  hint: string;
}

export { CREDENTIALS_STATE_ANNOTATION as STATE_ANNOTATION } from '../../api/v1alpha1/well-known.js';
import { CREDENTIALS_STATE_ANNOTATION } from '../../api/v1alpha1/well-known.js';

/**
 * A Secret made by someone else (a person, External Secrets Operator) is used
 * only if its owner opted in by naming the connection: tenants who may edit
 * connections must not be able to read arbitrary Secrets of their namespace
 * through atoll (tenant roles never read Secrets).
 */
export const ALLOWED_CONNECTIONS_ANNOTATION = 'atoll.dev/allowed-connections';

const NEVER_SOURCES = new Set(['kubernetes.io/service-account-token', 'atoll.dev/sealed']);

export function offersTo(secret: Secret, connection: string): boolean {
  if (NEVER_SOURCES.has(secret.type ?? '')) return false;
  const list = secret.metadata?.annotations?.[ALLOWED_CONNECTIONS_ANNOTATION];
  return list !== undefined && list.split(',').map((x) => x.trim()).some((x) => x === '*' || x === connection);
}

export type SourceReader = (name: string) => Promise<Secret | undefined>;

export interface ResolvedField {
  field: string;
  plaintext: string;
  ciphertext: string;
  state: FieldState;
  rotated: boolean;
}

/** A credential problem the user must fix; KMS outages are thrown instead, to be retried. */
export class CredentialProblem extends Error {
  constructor(readonly reason: string, message: string) {
    super(message);
  }
}

export function readState(secret: Secret | undefined): Record<string, FieldState> {
  try {
    return JSON.parse(secret?.metadata?.annotations?.[CREDENTIALS_STATE_ANNOTATION] ?? '{}') as Record<string, FieldState>;
  } catch {
    return {};
  }
}

/**
 * Turns one credential source into the ciphertext the managed Secret holds.
 * An unchanged credential (same keyed fingerprint) still wrapped with the
 * workspace's key keeps its ciphertext and version: no KMS call, no write.
 * A changed one is a rotation (version + 1); a key change re-wraps without a
 * new version.
 */
export async function resolveField(
  crypto: CryptoSetup,
  field: string,
  source: CredentialSource,
  binding: Binding,
  key: KeyRef,
  previous: { state?: FieldState; ciphertext?: string },
  readSource: SourceReader,
  now: Date,
): Promise<ResolvedField> {
  let plaintext: string;
  if (source.sealed !== undefined) {
    try {
      plaintext = await crypto.envelope.open(source.sealed, binding);
    } catch (err) {
      if (err instanceof CryptoError && (err.reason === CryptoErrorReason.CiphertextRejected || err.reason === CryptoErrorReason.MalformedCiphertext)) {
        throw new CredentialProblem(Reason.CiphertextRejected, `spec.credentials.${field}.sealed was not sealed for this workspace, connection, field and destination and cannot be used here (pointing a connection at another host or port requires supplying its credentials again); seal it for this connection with atoll seal`);
      }
      throw err;
    }
  } else if (source.secretKeyRef) {
    const ref = source.secretKeyRef;
    const secret = await readSource(ref.name);
    // One message for "missing" and "not offered", so an editor cannot probe which Secrets exist.
    if (!secret || !offersTo(secret, binding.connection)) {
      throw new CredentialProblem(Reason.SecretNotFound, `spec.credentials.${field}.secretKeyRef: Secret ${ref.name} does not exist in this namespace or does not offer itself to this connection; its owner must annotate it ${ALLOWED_CONNECTIONS_ANNOTATION}: "${binding.connection}" (or "*")`);
    }
    const raw = secret.data?.[ref.key];
    if (raw === undefined) throw new CredentialProblem(Reason.SecretKeyNotFound, `spec.credentials.${field}.secretKeyRef: Secret ${ref.name} has no key ${ref.key}`);
    plaintext = Buffer.from(raw, 'base64').toString('utf8');
  } else {
    throw new CredentialProblem(Reason.CredentialsMissing, `spec.credentials.${field} has no sealed value or secretKeyRef`);
  }

  const fp = fingerprint(crypto.fingerprintKey, binding, plaintext);
  const prev = previous.state;
  const unchanged = prev !== undefined && sameFingerprint(prev.fingerprint, fp);
  if (unchanged && previous.ciphertext && crypto.envelope.isWrappedWith(previous.ciphertext, key)) {
    return { field, plaintext, ciphertext: previous.ciphertext, state: prev, rotated: false };
  }
  const ciphertext = source.sealed !== undefined && crypto.envelope.isWrappedWith(source.sealed, key) ? source.sealed : await crypto.envelope.seal(plaintext, binding, key);
  const state: FieldState = {
    fingerprint: fp,
    version: (prev?.version ?? 0) + (unchanged ? 0 : 1),
    updatedAt: unchanged ? prev!.updatedAt : now.toISOString(),
    keyId: crypto.envelope.describe(ciphertext).keyId,
    hint: credentialHint(plaintext),
  };
  return { field, plaintext, ciphertext, state, rotated: !unchanged };
}
