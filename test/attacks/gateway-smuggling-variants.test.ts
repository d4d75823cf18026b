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
 * Red-team pass on issue 9: request-smuggling variants beyond the ones in
 * gateway-framing.test.ts, sent over a raw TLS socket to the dev gateway.
 * Each variant hides a second request (`/smuggled`, carrying the attacker's
 * own valid token so that it would be served if the gateway ever read it as a
 * request) where a lenient or differently-lenient parser would find it.
 *
 * Two outcomes are acceptable, and each row says which one RFC 9112 calls for:
 * - `refused`: a 400 (from Node's parser or the gateway's framing check), the
 *   connection closed, and NOTHING of it reaches an upstream: not the request,
 *   not the hidden one, not any request pipelined behind it. A front proxy
 *   that shares one connection to the gateway between clients would otherwise
 *   get the bytes after a refused request served as somebody's request.
 * - `forwarded`: the request is well framed; the upstream receives exactly the
 *   request as the RFC reads it, with one explicit framing header, and never a
 *   request at `/smuggled`.
 * In every case the recording upstream must see no byte outside a complete
 * request, and the connection's key only in its own X-API-Key header.
 */
describe("attack: request-smuggling variants against the gateway's framing", () => {
  let upstream: RawUpstream;
  let token: string;
  const secret = randomSecret('variantkey');

  beforeAll(async () => {
    upstream = await startRawUpstream();
    const type = await createTestType(['proxy']);
    const ns = await loopbackWorkspace('smugvar');
    await createConnection(ns, 'api', type, upstream.url, secret);
    token = await workload(ns, 'app', { use: true });
  });

  afterAll(async () => {
    await upstream?.close();
  });

  const P = '/v1/connections/api/proxy';
  /** A complete, valid request of the attacker's own, hidden where a lenient parser would find it. */
  const hidden = () => `GET ${P}/smuggled HTTP/1.1\r\nHost: gateway\r\nAuthorization: Bearer ${token}\r\n\r\n`;
  const auth = () => `Host: gateway\r\nAuthorization: Bearer ${token}\r\n`;

  type Variant = {
    name: string;
    raw: () => string;
    expect: 'refused' | 'rejected' | 'forwarded';
    forwardedBody?: string;
  };
  const VARIANTS: Variant[] = [
    // Transfer-Encoding spelled differently.
    {
      name: 'TE in upper case on a GET',
      raw: () => `GET ${P}/v HTTP/1.1\r\n${auth()}TRANSFER-ENCODING: CHUNKED\r\n\r\n${chunked(hidden())}`,
      expect: 'refused',
    },
    {
      name: 'TE value with a tab before it',
      raw: () => `GET ${P}/v HTTP/1.1\r\n${auth()}Transfer-Encoding:\tchunked\r\n\r\n${chunked(hidden())}`,
      expect: 'refused',
    },
    {
      name: 'TE: chunked, identity',
      raw: () =>
        `POST ${P}/v HTTP/1.1\r\n${auth()}Transfer-Encoding: chunked, identity\r\n\r\n${chunked('abc')}${hidden()}`,
      expect: 'refused',
    },
    {
      name: 'TE: identity, chunked',
      raw: () =>
        `POST ${P}/v HTTP/1.1\r\n${auth()}Transfer-Encoding: identity, chunked\r\n\r\n${chunked('abc')}${hidden()}`,
      expect: 'refused',
    },
    {
      name: 'TE: chunked plus a second TE line naming another coding',
      raw: () =>
        `POST ${P}/v HTTP/1.1\r\n${auth()}Transfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n\r\n${chunked('abc')}${hidden()}`,
      expect: 'refused',
    },
    {
      name: 'TE: xchunked',
      raw: () =>
        `POST ${P}/v HTTP/1.1\r\n${auth()}Transfer-Encoding: xchunked\r\nContent-Length: 3\r\n\r\nabc${hidden()}`,
      expect: 'refused',
    },
    {
      name: 'TE with a space before the colon',
      raw: () =>
        `POST ${P}/v HTTP/1.1\r\n${auth()}Transfer-Encoding : chunked\r\nContent-Length: 3\r\n\r\nabc${hidden()}`,
      expect: 'refused',
    },
    {
      name: 'TE with a tab before the colon',
      raw: () =>
        `POST ${P}/v HTTP/1.1\r\n${auth()}Transfer-Encoding\t: chunked\r\nContent-Length: 3\r\n\r\nabc${hidden()}`,
      expect: 'refused',
    },
    {
      name: 'TE as the first header behind a space (obs-fold of the request line)',
      raw: () =>
        `POST ${P}/v HTTP/1.1\r\n Transfer-Encoding: chunked\r\n${auth()}Content-Length: 3\r\n\r\nabc${hidden()}`,
      expect: 'refused',
    },
    {
      name: 'TE and Content-Length in odd case',
      raw: () =>
        `POST ${P}/v HTTP/1.1\r\n${auth()}transfer-encoding: chunked\r\ncontent-LENGTH: 3\r\n\r\nabc${hidden()}`,
      expect: 'refused',
    },
    // Content-Length spelled differently.
    {
      name: 'Content-Length: +3',
      raw: () => `POST ${P}/v HTTP/1.1\r\n${auth()}Content-Length: +3\r\n\r\nabc${hidden()}`,
      expect: 'refused',
    },
    {
      name: 'Content-Length: -1',
      raw: () => `POST ${P}/v HTTP/1.1\r\n${auth()}Content-Length: -1\r\n\r\n${hidden()}`,
      expect: 'refused',
    },
    {
      name: 'Content-Length: 0x3',
      raw: () => `POST ${P}/v HTTP/1.1\r\n${auth()}Content-Length: 0x3\r\n\r\nabc${hidden()}`,
      expect: 'refused',
    },
    {
      name: 'Content-Length beyond 64 bits',
      raw: () => `POST ${P}/v HTTP/1.1\r\n${auth()}Content-Length: 184467440737095516160\r\n\r\nabc`,
      expect: 'refused',
    },
    {
      name: 'Content-Length of 16 digits',
      raw: () => `POST ${P}/v HTTP/1.1\r\n${auth()}Content-Length: 1000000000000000\r\n\r\nabc`,
      expect: 'refused',
    },
    {
      name: 'Content-Length with a space inside',
      raw: () => `POST ${P}/v HTTP/1.1\r\n${auth()}Content-Length: 1 3\r\n\r\nabc${hidden()}`,
      expect: 'refused',
    },
    {
      name: 'Content-Length with leading zeros (valid: forwarded as 3)',
      raw: () => `POST ${P}/lz HTTP/1.1\r\n${auth()}Content-Length: 0003\r\nConnection: close\r\n\r\nabc`,
      expect: 'forwarded',
      forwardedBody: 'abc',
    },
    // Chunk syntax.
    {
      name: 'a chunk extension (valid: dropped, body forwarded)',
      raw: () =>
        `POST ${P}/ext HTTP/1.1\r\n${auth()}Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n3;name=value\r\nabc\r\n0\r\n\r\n`,
      expect: 'forwarded',
      forwardedBody: 'abc',
    },
    {
      name: 'a chunk extension hiding CRLF in a quoted string',
      raw: () =>
        `POST ${P}/v HTTP/1.1\r\n${auth()}Transfer-Encoding: chunked\r\n\r\n3;a="x\r\n0\r\n\r\n${hidden()}"\r\nabc\r\n0\r\n\r\n`,
      expect: 'refused',
    },
    {
      name: 'a chunk extension with a bare LF',
      raw: () => `POST ${P}/v HTTP/1.1\r\n${auth()}Transfer-Encoding: chunked\r\n\r\n3;a\nabc\r\n0\r\n\r\n${hidden()}`,
      expect: 'refused',
    },
    {
      name: 'a chunk size 0x3',
      raw: () =>
        `POST ${P}/v HTTP/1.1\r\n${auth()}Transfer-Encoding: chunked\r\n\r\n0x3\r\nabc\r\n0\r\n\r\n${hidden()}`,
      expect: 'refused',
    },
    {
      name: 'a chunk size with trailing space',
      raw: () => `POST ${P}/v HTTP/1.1\r\n${auth()}Transfer-Encoding: chunked\r\n\r\n3 \r\nabc\r\n0\r\n\r\n${hidden()}`,
      expect: 'refused',
    },
    {
      name: 'a negative chunk size',
      raw: () => `POST ${P}/v HTTP/1.1\r\n${auth()}Transfer-Encoding: chunked\r\n\r\n-3\r\nabc\r\n0\r\n\r\n${hidden()}`,
      expect: 'refused',
    },
    {
      name: 'an overflowing chunk size',
      raw: () =>
        `POST ${P}/v HTTP/1.1\r\n${auth()}Transfer-Encoding: chunked\r\n\r\n10000000000000003\r\nabc\r\n0\r\n\r\n${hidden()}`,
      expect: 'refused',
    },
    {
      name: 'chunk data longer than its size',
      raw: () =>
        `POST ${P}/v HTTP/1.1\r\n${auth()}Transfer-Encoding: chunked\r\n\r\n3\r\nabcdef\r\n0\r\n\r\n${hidden()}`,
      expect: 'refused',
    },
    {
      name: 'chunks ended with bare LF',
      raw: () => `POST ${P}/v HTTP/1.1\r\n${auth()}Transfer-Encoding: chunked\r\n\r\n3\nabc\n0\n\n${hidden()}`,
      expect: 'refused',
    },
    {
      name: 'trailers naming framing headers',
      raw: () =>
        `POST ${P}/v HTTP/1.1\r\n${auth()}Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nContent-Length: 99\r\nTransfer-Encoding: chunked\r\n\r\n${hidden()}`,
      expect: 'refused',
    },
    {
      name: 'a trailer naming the injected header (valid: trailers not forwarded)',
      raw: () =>
        `POST ${P}/trailer HTTP/1.1\r\n${auth()}Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n0\r\nX-API-Key: attacker\r\n\r\n`,
      expect: 'forwarded',
      forwardedBody: 'abc',
    },
    // Line endings and header-name syntax.
    {
      name: 'bare LF line endings throughout',
      raw: () =>
        `POST ${P}/v HTTP/1.1\nHost: gateway\nAuthorization: Bearer ${token}\nContent-Length: 3\n\nabc${hidden()}`,
      expect: 'refused',
    },
    {
      name: 'bare CR line endings',
      raw: () =>
        `POST ${P}/v HTTP/1.1\rHost: gateway\rAuthorization: Bearer ${token}\rContent-Length: 3\r\r\nabc${hidden()}`,
      expect: 'refused',
    },
    {
      name: 'a header name with a space inside',
      raw: () => `POST ${P}/v HTTP/1.1\r\n${auth()}Content Length: 3\r\n\r\nabc${hidden()}`,
      expect: 'refused',
    },
    {
      name: 'a NUL in a header value',
      raw: () => `GET ${P}/v HTTP/1.1\r\n${auth()}X-A: a\u0000b\r\n\r\n`,
      expect: 'refused',
    },
    // Protocol-level tricks.
    {
      name: 'Expect: 100-continue on a GET with a body',
      raw: () =>
        `GET ${P}/v HTTP/1.1\r\n${auth()}Expect: 100-continue\r\nContent-Length: ${hidden().length}\r\n\r\n${hidden()}`,
      expect: 'refused',
    },
    {
      name: 'HTTP/1.0 with Transfer-Encoding and keep-alive',
      raw: () =>
        `POST ${P}/v HTTP/1.0\r\n${auth()}Connection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n${chunked('abc')}${hidden()}`,
      expect: 'refused',
    },
    { name: 'HTTP/0.9 request line (no headers, so no token)', raw: () => `GET ${P}/v\r\n\r\n`, expect: 'rejected' },
    { name: 'HTTP/1.2 request line', raw: () => `GET ${P}/v HTTP/1.2\r\n${auth()}\r\n`, expect: 'refused' },
    // A refused request followed by a pipelined one on the same connection: nothing after the refusal may be served.
    {
      name: 'a well-formed request pipelined behind a chunked GET',
      raw: () => `GET ${P}/v HTTP/1.1\r\n${auth()}Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n${hidden()}`,
      expect: 'refused',
    },
    {
      name: 'a well-formed request pipelined behind a GET with Content-Length',
      raw: () => `GET ${P}/v HTTP/1.1\r\n${auth()}Content-Length: 3\r\n\r\nabc${hidden()}`,
      expect: 'refused',
    },
    {
      name: 'a well-formed request pipelined behind TE: gzip, chunked',
      raw: () => `POST ${P}/v HTTP/1.1\r\n${auth()}Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n${hidden()}`,
      expect: 'refused',
    },
    // The health routes answer without authentication; their framing is no less ambiguous to a front proxy.
    {
      name: 'a well-formed request pipelined behind a HTTP/1.0 chunked GET /healthz',
      raw: () =>
        `GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${hidden()}`,
      expect: 'refused',
    },
    {
      name: 'a well-formed request pipelined behind GET /readyz with TE: gzip, chunked',
      raw: () => `GET /readyz HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n${hidden()}`,
      expect: 'refused',
    },
    {
      name: 'a well-formed request pipelined behind GET /livez with a body',
      raw: () => `GET /livez HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc${hidden()}`,
      expect: 'refused',
    },
    // Requests Node answers by itself (no Host on HTTP/1.1: 400; an Expect other than 100-continue: 417) never reached the gateway's check.
    {
      name: 'a well-formed request pipelined behind a Host-less chunked GET',
      raw: () =>
        `GET ${P}/v HTTP/1.1\r\nAuthorization: Bearer ${token}\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${hidden()}`,
      expect: 'refused',
    },
    {
      name: 'a well-formed request pipelined behind a chunked GET with Expect: x',
      raw: () => `GET ${P}/v HTTP/1.1\r\n${auth()}Expect: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${hidden()}`,
      expect: 'refused',
    },
    {
      name: 'a well-formed request pipelined behind TE: gzip, chunked with Expect: x',
      raw: () =>
        `POST ${P}/v HTTP/1.1\r\n${auth()}Expect: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n${hidden()}`,
      expect: 'refused',
    },
    {
      name: 'a well-formed request pipelined behind a HTTP/1.0 chunked POST',
      raw: () =>
        `POST ${P}/v HTTP/1.0\r\n${auth()}Connection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${hidden()}`,
      expect: 'refused',
    },
  ];

  let barriers = 0;
  /**
   * Waits until everything the gateway started for an exchange has reached the
   * upstream: a request sent afterwards on a fresh connection, with the same
   * (cached) token, must have arrived, so a request the gateway dispatched from
   * the attack's bytes (parsed before this one was sent) has arrived too.
   */
  async function barrier(): Promise<void> {
    const path = `/barrier-${++barriers}`;
    const res = await gatewayCall(`${P}${path}`, token, { headers: { connection: 'close' } });
    expect(res.status).toBe(200);
    await res.arrayBuffer();
    await waitFor(() => upstream.requests.some((r) => r.path === path));
  }

  it.each(VARIANTS.map((v): [string, Variant] => [`${v.name}: ${v.expect}`, v]))(
    '%s',
    async (_title, { raw, expect: outcome, forwardedBody }) => {
      const firstRequest = upstream.requests.length;

      const answer = await rawGatewayExchange(raw(), { quietMs: 3_000 });
      await barrier();

      const fresh = upstream.requests.slice(firstRequest).filter((r) => !r.path.startsWith('/barrier-'));
      expect(fresh.filter((r) => r.path === '/smuggled')).toEqual([]);
      if (outcome === 'refused') {
        // Node's parser may answer 100 Continue before the gateway refuses; the last word is a 400.
        expect(statuses(answer).filter((s) => s !== 100)).toEqual([400]);
        expect(fresh).toEqual([]);
      } else if (outcome === 'rejected') {
        const codes = statuses(answer);
        expect(codes).toHaveLength(1);
        expect(codes[0]).toBeGreaterThanOrEqual(400);
        expect(codes[0]).toBeLessThan(500);
        expect(fresh).toEqual([]);
      } else {
        expect(statuses(answer)).toEqual([200]);
        expect(fresh).toHaveLength(1);
        const got = fresh[0]!;
        expect(got.body.toString('latin1')).toBe(forwardedBody);
        expect(got.headers.filter(([n]) => n === 'content-length' || n === 'transfer-encoding')).toHaveLength(1);
        expect(got.headers.filter(([n]) => n === 'x-api-key')).toEqual([['x-api-key', secret]]);
      }
      // Every upstream connection holds only complete requests, or was closed by the gateway (a body cut short when Node refused it).
      for (const [id, wire] of upstream.wire.entries()) {
        const parsed = Buffer.concat(upstream.requests.filter((r) => r.connection === id).map((r) => r.raw));
        if (!wire.equals(parsed)) await waitFor(() => upstream.closed.has(id));
      }
      for (const r of upstream.requests) expect(r.raw.toString('latin1').split(secret).length - 1).toBe(1);
    },
  );
});

async function waitFor(check: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !check(); i++) await new Promise((r) => setTimeout(r, 20));
  expect(check()).toBe(true);
}

function chunked(body: string): string {
  return `${Buffer.byteLength(body).toString(16)}\r\n${body}\r\n0\r\n\r\n`;
}
