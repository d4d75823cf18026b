import { CryptoErrorMessage } from './errors.js';

/**
 * Where a credential lives and where it may go. Every ciphertext is
 * cryptographically bound to all of it (KMS encryption context and AES-GCM
 * additional data), so a value copied to another namespace, workspace,
 * connection or field, or a connection pointed at another destination or
 * type, cannot open it (spec invariant 3). None of these parts is secret.
 */
export interface Binding {
  namespace: string;
  /** Platform-chosen workspace identity (not tenant input), e.g. the Workspace's UID or name. */
  workspace: string;
  connection: string;
  field: string;
  /** Digest of the type and settings that decide where and how the credential is sent (src/integrations/destination.ts). */
  destination: string;
  /**
   * Binding format. 2 (the default, the only one sealed) also binds the copy;
   * 1 is the format of values sealed before ADR 0013, kept so they still open.
   */
  format?: 1 | 2;
  /**
   * Which copy of the credential this is (format 2): `spec` for a value in a
   * connection's spec (what Git holds), `managed/<connection uid>/<version>`
   * for the operator's copy in the managed Secret. A value of one copy never
   * opens as another, so an old or a Git value written into the managed
   * Secret is refused (ADR 0013).
   */
  copy?: string;
}

export const SPEC_COPY = 'spec';

/** The copy name of the managed Secret's value of one incarnation (uid) of a connection at one version. */
export function managedCopy(connectionUid: string, version: number): string {
  return `managed/${connectionUid}/${version}`;
}

const CONTEXT_KEY = {
  namespace: 'atoll.dev/namespace',
  workspace: 'atoll.dev/workspace',
  connection: 'atoll.dev/connection',
  field: 'atoll.dev/field',
  destination: 'atoll.dev/destination',
  binding: 'atoll.dev/binding',
  copy: 'atoll.dev/copy',
} as const;

const AAD_LABEL = 'atoll.dev/envelope';

/** Rejects empty or non-string parts: an empty part would silently weaken the binding. */
export function assertBinding(b: Binding): void {
  const parts = [b.namespace, b.workspace, b.connection, b.field, b.destination];
  if (formatOf(b) === 2) parts.push(copyOf(b));
  for (const part of parts) {
    if (typeof part !== 'string' || part.length === 0) throw new TypeError(CryptoErrorMessage.invalidBinding);
  }
}

function formatOf(b: Binding): 1 | 2 {
  return b.format ?? 2;
}

function copyOf(b: Binding): string {
  return b.copy ?? SPEC_COPY;
}

/**
 * KMS EncryptionContext for a binding. KMS authenticates it with the wrapped
 * data key and records it in audit logs (CloudTrail), so it holds names only,
 * never a credential.
 */
export function encryptionContext(b: Binding): Record<string, string> {
  assertBinding(b);
  const context: Record<string, string> = {
    [CONTEXT_KEY.namespace]: b.namespace,
    [CONTEXT_KEY.workspace]: b.workspace,
    [CONTEXT_KEY.connection]: b.connection,
    [CONTEXT_KEY.field]: b.field,
    [CONTEXT_KEY.destination]: b.destination,
  };
  if (formatOf(b) === 2) {
    context[CONTEXT_KEY.binding] = '2';
    context[CONTEXT_KEY.copy] = copyOf(b);
  }
  return context;
}

/**
 * Canonical AES-GCM additional data for a binding: a label, the binding
 * format, then each part as a 4-byte big-endian length and its UTF-8 bytes,
 * in a fixed order. Length prefixes make it unambiguous: ("a:b", "c") and
 * ("a", "b:c") never produce the same bytes. Format 1 (byte 0x01) has five
 * parts; format 2 (byte 0x02) adds the copy.
 */
export function additionalData(b: Binding): Buffer {
  assertBinding(b);
  const format = formatOf(b);
  const parts = [
    lengthPrefixed(AAD_LABEL),
    Buffer.from([format]),
    lengthPrefixed(b.namespace),
    lengthPrefixed(b.workspace),
    lengthPrefixed(b.connection),
    lengthPrefixed(b.field),
    lengthPrefixed(b.destination),
  ];
  if (format === 2) parts.push(lengthPrefixed(copyOf(b)));
  return Buffer.concat(parts);
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
