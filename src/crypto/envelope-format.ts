import { MalformedCiphertextError } from './errors.js';
import { NONCE_BYTES, TAG_BYTES } from './aes-gcm.js';

/**
 * The `atoll:v1` text format, parsing and printing only (no crypto):
 *
 *   atoll:v1:<provider>:<keyId>:<wrappedDek>:<nonce>:<ciphertext+tag>
 *
 * All fields after the provider are unpadded base64url, so `:` never occurs
 * inside one. See docs/reference/envelope-format.md.
 */
export interface ParsedEnvelope {
  version: 1;
  provider: string;
  keyId: string;
  wrapped: Buffer;
  nonce: Buffer;
  ciphertext: Buffer;
}

export const ENVELOPE_PREFIX = 'atoll:v1:';
/** Upper bounds that keep a hostile value from costing more than a parse. */
export const ENVELOPE_LIMITS = { maxChars: 256 * 1024, maxKeyIdBytes: 2048, maxWrappedBytes: 6144 } as const;

const PROVIDER = /^[a-z][a-z0-9-]{0,31}$/;
const BASE64URL = /^[A-Za-z0-9_-]+$/;
const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Cheap check that a string claims to be an envelope (for admission: "already sealed?"). */
export function looksSealed(value: string): boolean {
  return value.startsWith(ENVELOPE_PREFIX);
}

export function formatEnvelope(e: Omit<ParsedEnvelope, 'version'>): string {
  return [
    'atoll',
    'v1',
    e.provider,
    Buffer.from(e.keyId, 'utf8').toString('base64url'),
    e.wrapped.toString('base64url'),
    e.nonce.toString('base64url'),
    e.ciphertext.toString('base64url'),
  ].join(':');
}

/** Strict parse: anything but a canonical v1 envelope is a MalformedCiphertextError. */
export function parseEnvelope(sealed: string): ParsedEnvelope {
  if (typeof sealed !== 'string' || sealed.length > ENVELOPE_LIMITS.maxChars) throw new MalformedCiphertextError();
  const parts = sealed.split(':');
  if (parts.length !== 7) throw new MalformedCiphertextError();
  const [magic, version, provider, keyId, wrapped, nonce, ciphertext] = parts as [
    string,
    string,
    string,
    string,
    string,
    string,
    string,
  ];
  if (magic !== 'atoll' || version !== 'v1' || !PROVIDER.test(provider)) throw new MalformedCiphertextError();
  const keyIdBytes = decode(keyId);
  const parsed: ParsedEnvelope = {
    version: 1,
    provider,
    keyId: decodeUtf8(keyIdBytes),
    wrapped: decode(wrapped),
    nonce: decode(nonce),
    ciphertext: decode(ciphertext),
  };
  if (
    keyIdBytes.length > ENVELOPE_LIMITS.maxKeyIdBytes ||
    parsed.wrapped.length > ENVELOPE_LIMITS.maxWrappedBytes ||
    parsed.nonce.length !== NONCE_BYTES ||
    parsed.ciphertext.length < TAG_BYTES
  ) {
    throw new MalformedCiphertextError();
  }
  return parsed;
}

/** Decodes base64url, refusing padding, foreign characters and non-canonical trailing bits. */
function decode(field: string): Buffer {
  if (!BASE64URL.test(field)) throw new MalformedCiphertextError();
  const bytes = Buffer.from(field, 'base64url');
  if (bytes.toString('base64url') !== field) throw new MalformedCiphertextError();
  return bytes;
}

function decodeUtf8(bytes: Buffer): string {
  try {
    return utf8.decode(bytes);
  } catch (err) {
    throw new MalformedCiphertextError({ cause: err });
  }
}
