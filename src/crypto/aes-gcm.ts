import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

/** 96-bit nonces, the size GCM is specified for; random per value. */
export const NONCE_BYTES = 12;
export const TAG_BYTES = 16;

/** AES-256-GCM seal with a fresh random nonce; returns the nonce and `ciphertext || tag`. */
export function aesGcmSeal(key: Buffer, plaintext: Buffer, aad: Buffer): { nonce: Buffer; sealed: Buffer } {
  const nonce = randomBytes(NONCE_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG_BYTES });
  cipher.setAAD(aad);
  const sealed = Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
  return { nonce, sealed };
}

/**
 * AES-256-GCM open of `ciphertext || tag`. Throws (Node's error) when the key,
 * nonce, AAD or any byte is wrong; callers translate that into their own
 * constant-message error.
 */
export function aesGcmOpen(key: Buffer, nonce: Buffer, sealed: Buffer, aad: Buffer): Buffer {
  if (nonce.length !== NONCE_BYTES || sealed.length < TAG_BYTES) throw new RangeError('bad GCM input sizes');
  const decipher = createDecipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG_BYTES });
  decipher.setAAD(aad);
  decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
  return Buffer.concat([decipher.update(sealed.subarray(0, sealed.length - TAG_BYTES)), decipher.final()]);
}
