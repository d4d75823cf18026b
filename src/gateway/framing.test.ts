import { describe, expect, it } from 'vitest';
import { GatewayErrorMessage } from './errors.js';
import { checkFraming } from './framing.js';

const req = (method: string, rawHeaders: string[], httpVersion = '1.1') => ({ method, rawHeaders, httpVersion });

describe('checkFraming', () => {
  it.each([
    ['no body', req('GET', ['Host', 'x']), { kind: 'none' }],
    ['Content-Length: 0 on GET', req('GET', ['Host', 'x', 'Content-Length', '0']), { kind: 'none' }],
    ['a sized POST body', req('POST', ['Host', 'x', 'Content-Length', '12']), { kind: 'length', length: 12 }],
    ['a chunked PUT body (any case)', req('PUT', ['Host', 'x', 'transfer-encoding', 'Chunked']), { kind: 'chunked' }],
    ['a DELETE body, framed', req('DELETE', ['Host', 'x', 'Content-Length', '3']), { kind: 'length', length: 3 }],
    ['HTTP/1.0 without Host', req('GET', [], '1.0'), { kind: 'none' }],
  ])('accepts %s', (_name, r, body) => {
    expect(checkFraming(r)).toEqual({ ok: true, body });
  });

  it.each([
    [
      'Transfer-Encoding with Content-Length',
      req('POST', ['Transfer-Encoding', 'chunked', 'Content-Length', '5']),
      GatewayErrorMessage.framingBoth,
    ],
    ['a coding before chunked', req('POST', ['Transfer-Encoding', 'gzip, chunked']), GatewayErrorMessage.framingCoding],
    [
      'chunked twice in one header',
      req('POST', ['Transfer-Encoding', 'chunked, chunked']),
      GatewayErrorMessage.framingCoding,
    ],
    [
      'chunked in two headers',
      req('POST', ['Transfer-Encoding', 'chunked', 'Transfer-Encoding', 'chunked']),
      GatewayErrorMessage.framingCoding,
    ],
    ['identity', req('POST', ['Transfer-Encoding', 'identity']), GatewayErrorMessage.framingCoding],
    [
      'Transfer-Encoding on HTTP/1.0',
      req('POST', ['Transfer-Encoding', 'chunked'], '1.0'),
      GatewayErrorMessage.framingCoding,
    ],
    [
      'two equal Content-Lengths',
      req('POST', ['Content-Length', '3', 'Content-Length', '3']),
      GatewayErrorMessage.framingLength,
    ],
    ['a Content-Length list', req('POST', ['Content-Length', '3, 3']), GatewayErrorMessage.framingLength],
    ['a signed Content-Length', req('POST', ['Content-Length', '+3']), GatewayErrorMessage.framingLength],
    ['a folded header', req('GET', ['X-A', 'one\r\n two']), GatewayErrorMessage.framingFolded],
    ['a chunked GET', req('GET', ['Transfer-Encoding', 'chunked']), GatewayErrorMessage.bodyNotAllowed],
    ['a sized HEAD', req('HEAD', ['Content-Length', '4']), GatewayErrorMessage.bodyNotAllowed],
    ['an OPTIONS body', req('OPTIONS', ['Content-Length', '1']), GatewayErrorMessage.bodyNotAllowed],
    ['HTTP/1.1 without Host', req('GET', []), GatewayErrorMessage.hostMissing],
  ])('refuses %s', (_name, r, message) => {
    expect(checkFraming(r)).toEqual({ ok: false, message });
  });
});
