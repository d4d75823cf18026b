import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomSecret } from '../support/cluster.js';
import { startRawUpstream, type RawUpstream } from './support/raw-upstream.js';
import {
  createConnection,
  createTestType,
  gatewayCall,
  loopbackWorkspace,
  rawGatewayExchange,
  statuses,
  workload,
} from './support/tenant.js';

/**
 * Issue 9, item 1: every request whose body framing two HTTP parsers could
 * read differently is refused with 400 before anything reaches an upstream.
 * `by` says who refuses it today: Node's own parser (a bare 400 and a closed
 * connection) or the gateway's framing check (JSON code AmbiguousFraming),
 * which stays in force whatever Node's parser lets through.
 */
const VARIANTS: Array<{ name: string; head: string; body: string; by: 'node' | 'gateway' }> = [
  {
    name: 'Transfer-Encoding and Content-Length',
    head: 'POST /p HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n',
    body: '0\r\n\r\n',
    by: 'node',
  },
  {
    name: 'a coding before chunked',
    head: 'POST /p HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n',
    body: '0\r\n\r\n',
    by: 'gateway',
  },
  {
    name: 'chunked twice',
    head: 'POST /p HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n',
    body: '0\r\n\r\n',
    by: 'node',
  },
  {
    name: 'a transfer coding without chunked',
    head: 'POST /p HTTP/1.1\r\nTransfer-Encoding: gzip\r\n',
    body: '',
    by: 'node',
  },
  {
    name: 'Transfer-Encoding on HTTP/1.0',
    head: 'POST /p HTTP/1.0\r\nTransfer-Encoding: chunked\r\n',
    body: '0\r\n\r\n',
    by: 'gateway',
  },
  {
    name: 'two equal Content-Lengths',
    head: 'POST /p HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n',
    body: 'abc',
    by: 'node',
  },
  {
    name: 'two different Content-Lengths',
    head: 'POST /p HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 40\r\n',
    body: 'abc',
    by: 'node',
  },
  { name: 'a Content-Length list', head: 'POST /p HTTP/1.1\r\nContent-Length: 3, 3\r\n', body: 'abc', by: 'node' },
  { name: 'obsolete line folding', head: 'GET /p HTTP/1.1\r\nX-Folded: one\r\n two\r\n', body: '', by: 'node' },
  {
    name: 'a folded Transfer-Encoding',
    head: 'POST /p HTTP/1.1\r\nTransfer-Encoding: gzip,\r\n chunked\r\n',
    body: '0\r\n\r\n',
    by: 'node',
  },
  {
    name: 'a chunked GET',
    head: 'GET /p HTTP/1.1\r\nTransfer-Encoding: chunked\r\n',
    body: '3\r\nabc\r\n0\r\n\r\n',
    by: 'gateway',
  },
  { name: 'a GET with Content-Length', head: 'GET /p HTTP/1.1\r\nContent-Length: 3\r\n', body: 'abc', by: 'gateway' },
  { name: 'a HEAD with a body', head: 'HEAD /p HTTP/1.1\r\nContent-Length: 3\r\n', body: 'abc', by: 'gateway' },
  {
    name: 'an OPTIONS with a body',
    head: 'OPTIONS /p HTTP/1.1\r\nTransfer-Encoding: chunked\r\n',
    body: '3\r\nabc\r\n0\r\n\r\n',
    by: 'gateway',
  },
];

describe('attack: ambiguous request framing through the gateway', () => {
  let upstream: RawUpstream;
  let token: string;
  const secret = randomSecret('framingkey');

  beforeAll(async () => {
    upstream = await startRawUpstream();
    const type = await createTestType(['proxy']);
    const ns = await loopbackWorkspace('framing');
    await createConnection(ns, 'api', type, upstream.url, secret);
    token = await workload(ns, 'app', { use: true });
  });

  afterAll(async () => {
    await upstream?.close();
  });

  it.each(VARIANTS)('refuses $name with 400 ($by) and forwards nothing', async ({ head, body, by }) => {
    const before = upstream.wire.length;
    const [requestLine, ...rest] = head.split('\r\n');
    const raw = `${requestLine!.replace(' /p ', ' /v1/connections/api/proxy/p ')}\r\nHost: gateway\r\nAuthorization: Bearer ${token}\r\n${rest.join('\r\n')}\r\n${body}`;

    const answer = await rawGatewayExchange(raw);

    expect(statuses(answer)).toEqual([400]);
    if (by === 'gateway') {
      expect(answer.toLowerCase()).toContain('connection: close');
      expect(answer.toLowerCase()).toContain('content-type: application/json');
      // A HEAD answer carries no body, by HTTP's rules.
      if (!raw.startsWith('HEAD ')) expect(answer).toContain('"AmbiguousFraming"');
    }
    expect(upstream.wire.length).toBe(before);
    expect(upstream.requests.some((r) => r.path === '/p')).toBe(false);
  });

  it('still proxies a well-framed request (the refusals are not blanket)', async () => {
    const res = await gatewayCall('/v1/connections/api/proxy/p', token, { method: 'DELETE', body: 'abc' });
    expect(res.status).toBe(200);
    const got = upstream.requests.find((r) => r.path === '/p')!;
    expect(got.body.toString()).toBe('abc');
    expect(got.headers.filter(([n]) => n === 'x-api-key')).toEqual([['x-api-key', secret]]);
  });
});
