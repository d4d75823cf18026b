/**
 * Copies of small buffers in allocations of their own. A Buffer under 4 KiB
 * is usually a view into Node's shared 8 KiB pool (base64 decoding,
 * Buffer.concat, decipher output), and a kept view keeps its whole pool
 * alive: at 3,000 connections the data-key cache's keys and wrapped keys held
 * 48 MiB of pools (heap snapshot, ADR 0033).
 */

/** An unpooled copy of `bytes`. */
export function unpooledCopy(bytes: Uint8Array): Buffer {
  const own = Buffer.alloc(bytes.byteLength); // Buffer.alloc never uses the pool
  own.set(bytes);
  return own;
}

/** Key material moved into an allocation of its own: the copy is returned, the original zeroed. */
export function ownBuffer(bytes: Uint8Array): Buffer {
  const own = unpooledCopy(bytes);
  bytes.fill(0);
  return own;
}
