import type { IncomingMessage } from 'node:http';
import { GatewayErrorMessage } from './errors.js';

/**
 * Methods whose requests the gateway forwards without a body and therefore
 * refuses with one: their body has no defined meaning (RFC 9110 §9.3), and an
 * unexpected body is exactly what request smuggling hides a second request in.
 * DELETE, POST, PUT and PATCH bodies are forwarded, always explicitly framed.
 */
export const BODYLESS_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'CONNECT']);

/** What the request body is, once its framing has been found unambiguous. */
export type RequestBody = { kind: 'none' } | { kind: 'length'; length: number } | { kind: 'chunked' };

export type FramingVerdict = { ok: true; body: RequestBody } | { ok: false; message: GatewayErrorMessage };

const DIGITS = /^[0-9]{1,15}$/;

/**
 * Decides how the request body is delimited, from the raw header lines
 * (not Node's merged view, which hides duplicates). Node's parser already
 * refuses most malformed framing with a 400 of its own; this is the
 * gateway's own rule, so a parser change or a lenient option can never let
 * an ambiguous request through to an upstream (RFC 9112 §6.1, §6.3):
 * - Transfer-Encoding and Content-Length together;
 * - a transfer coding other than exactly one final `chunked`;
 * - Transfer-Encoding on HTTP/1.0;
 * - more than one Content-Length, or one that is not a plain number;
 * - a header value with line folding (CR or LF) left in it;
 * - a body on a method in BODYLESS_METHODS;
 * - an HTTP/1.1 request without a Host header (RFC 9112 §3.2). Node would
 *   answer that one itself, before the gateway sees it, and go on serving
 *   what follows on the connection; the gateway answers it so that nothing
 *   after a refused request is ever served.
 */
export function checkFraming(req: Pick<IncomingMessage, 'method' | 'rawHeaders' | 'httpVersion'>): FramingVerdict {
  const transferEncodings: string[] = [];
  const contentLengths: string[] = [];
  let hosts = 0;
  const raw = req.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = (raw[i] as string).toLowerCase();
    const value = raw[i + 1] as string;
    if (/[\r\n]/.test(value)) return refuse(GatewayErrorMessage.framingFolded);
    if (name === 'transfer-encoding') transferEncodings.push(value);
    else if (name === 'content-length') contentLengths.push(value);
    else if (name === 'host') hosts++;
  }

  let body: RequestBody = { kind: 'none' };
  if (transferEncodings.length > 0) {
    if (contentLengths.length > 0) return refuse(GatewayErrorMessage.framingBoth);
    if (req.httpVersion !== '1.1') return refuse(GatewayErrorMessage.framingCoding);
    const codings = transferEncodings
      .join(',')
      .split(',')
      .map((c) => c.trim().toLowerCase());
    if (codings.length !== 1 || codings[0] !== 'chunked') return refuse(GatewayErrorMessage.framingCoding);
    body = { kind: 'chunked' };
  } else if (contentLengths.length > 0) {
    if (contentLengths.length > 1) return refuse(GatewayErrorMessage.framingLength);
    const value = (contentLengths[0] as string).trim();
    if (!DIGITS.test(value)) return refuse(GatewayErrorMessage.framingLength);
    const length = Number(value);
    if (length > 0) body = { kind: 'length', length };
  }

  if (body.kind !== 'none' && BODYLESS_METHODS.has(req.method ?? '')) return refuse(GatewayErrorMessage.bodyNotAllowed);
  if (req.httpVersion === '1.1' && hosts === 0) return refuse(GatewayErrorMessage.hostMissing);
  return { ok: true, body };
}

function refuse(message: GatewayErrorMessage): FramingVerdict {
  return { ok: false, message };
}
