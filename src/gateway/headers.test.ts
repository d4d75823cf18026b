import { describe, expect, it } from 'vitest';
import { forwardableRequestHeaders, safeResponseHeaders } from './headers.js';

describe('forwardableRequestHeaders', () => {
  it('drops caller credentials, proxy claims, hop-by-hop headers and injected names', () => {
    const out = forwardableRequestHeaders(
      {
        authorization: 'Bearer caller-token',
        cookie: 'session=1',
        host: 'gateway:8443',
        'proxy-authorization': 'Basic x',
        'x-forwarded-for': '10.0.0.1',
        'x-forwarded-host': 'evil',
        forwarded: 'for=1.2.3.4',
        connection: 'keep-alive, x-private',
        'x-private': 'named by Connection',
        'keep-alive': 'timeout=5',
        'transfer-encoding': 'chunked',
        'x-api-key': 'caller supplied',
        accept: 'application/json',
        'content-type': 'text/plain',
        'x-request-id': 'abc',
      },
      ['X-API-Key'],
    );
    expect(out).toEqual({ accept: 'application/json', 'content-type': 'text/plain', 'x-request-id': 'abc' });
  });
});

describe('safeResponseHeaders', () => {
  it('drops headers that echo a secret, raw or URL-encoded, and hop-by-hop headers', () => {
    const secret = 'sk_live a/b+c';
    const out = safeResponseHeaders(
      {
        'content-type': 'application/json',
        'x-echo': `you sent ${secret}`,
        location: `https://svc/?api_key=${encodeURIComponent(secret)}`,
        'set-cookie': ['a=1', `b=${secret}`],
        connection: 'close',
        'transfer-encoding': 'chunked',
        'x-other': 'fine',
      },
      [secret],
    );
    expect(out).toEqual({ 'content-type': 'application/json', 'x-other': 'fine' });
  });

  it('ignores secrets too short to search for', () => {
    expect(safeResponseHeaders({ 'x-a': 'abc' }, ['ab'])).toEqual({ 'x-a': 'abc' });
  });
});
