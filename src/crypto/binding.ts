import { CryptoErrorMessage } from './errors.js';

/**
 * Where a credential lives and where it may go. Every ciphertext is
 * cryptographically bound to all five parts (KMS encryption context and
 * AES-GCM additional data), so a value copied to another namespace,
 * workspace, connection or field, or a connection pointed at another
 * destination, cannot open it (spec invariant 3). None of these parts is secret.
 */
export interface Binding {
  namespace: string;
  /** Platform-chosen workspace identity (not tenant input), e.g. the Workspace's UID or name. */
  workspace: string;
  connection: string;
  field: string;
  /** Digest of the settings that decide where the credential is sent (src/integrations/destination.ts). */
  destination: string;
}

/** The one envelope format version this code writes; part of the AAD so versions cannot be confused. */
export const ENVELOPE_VERSION = 1;

const CONTEXT_KEY = {
  namespace: 'atoll.dev/namespace',
  workspace: 'atoll.dev/workspace',
  connection: 'atoll.dev/connection',
  field: 'atoll.dev/field',
  destination: 'atoll.dev/destination',
} as const;

const AAD_LABEL = 'atoll.dev/envelope';

/** Rejects empty or non-string parts: an empty part would silently weaken the binding. */
export function assertBinding(b: Binding): void {
  for (const part of [b.namespace, b.workspace, b.connection, b.field, b.destination]) {
    if (typeof part !== 'string' || part.length === 0) throw new TypeError(CryptoErrorMessage.invalidBinding);
  }
}

/**
 * KMS EncryptionContext for a binding. KMS authenticates it with the wrapped
 * data key and records it in audit logs (CloudTrail), so it holds names only,
 * never a credential.
 */
export function encryptionContext(b: Binding): Record<string, string> {
  assertBinding(b);
  return {
    [CONTEXT_KEY.namespace]: b.namespace,
    [CONTEXT_KEY.workspace]: b.workspace,
    [CONTEXT_KEY.connection]: b.connection,
    [CONTEXT_KEY.field]: b.field,
    [CONTEXT_KEY.destination]: b.destination,
  };
}

/**
 * Canonical AES-GCM additional data for a binding: a label, the format
 * version, then each part as a 4-byte big-endian length and its UTF-8 bytes,
 * in a fixed order. Length prefixes make it unambiguous: ("a:b", "c") and
 * ("a", "b:c") never produce the same bytes.
 */
export function additionalData(b: Binding): Buffer {
  assertBinding(b);
  return Buffer.concat([
    lengthPrefixed(AAD_LABEL),
    Buffer.from([ENVELOPE_VERSION]),
    lengthPrefixed(b.namespace),
    lengthPrefixed(b.workspace),
    lengthPrefixed(b.connection),
    lengthPrefixed(b.field),
    lengthPrefixed(b.destination),
  ]);
}

/**
 * Canonical bytes of an arbitrary encryption context (keys sorted by code
 * unit, each key and value length-prefixed). Used where a context must be
 * authenticated or hashed outside a KMS: the local provider's AAD and cache keys.
 */
export function canonicalContext(context: Record<string, string>): Buffer {
  const keys = Object.keys(context).sort();
  const parts: Buffer[] = [u32(keys.length)];
  for (const key of keys) parts.push(lengthPrefixed(key), lengthPrefixed(context[key] ?? ''));
  return Buffer.concat(parts);
}

/** `u32be(byteLength) || utf8(value)`. */
export function lengthPrefixed(value: string | Buffer): Buffer {
  const bytes = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
  return Buffer.concat([u32(bytes.length), bytes]);
}

function u32(n: number): Buffer {
  const buf = Buffer.alloc(4);
  buf.writeUInt32BE(n);
  return buf;
}
