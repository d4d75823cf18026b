import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomSecret } from '../support/cluster.js';
import { startRawUpstream, type RawUpstream } from './support/raw-upstream.js';
import {
  createConnection,
  createTestType,
  loopbackWorkspace,
  rawGatewayExchange,
  statuses,
  workload,
} from './support/tenant.js';

/**
 * Red-team pass on issue 9: a workload tries to send its connection's
 * injected credential somewhere else than the connection's base URL (another
 * host, another connection's route, a path outside the base URL's prefix),
 * to inject headers through the path, or to get the injected header stripped
 * or doubled through hop-by-hop declarations. Every attempt goes over a raw
 * TLS socket, so the request target and headers are exactly as written.
 *
 * `api` points at `<upstream>/base`; `other` (same namespace, another key)
 * points at a second recording upstream. Whatever the request, a request that
 * reaches an upstream must be `api`'s own: at `/base/...` on the first
 * upstream with api's key in exactly one X-API-Key header, and the second
 * upstream must see nothing but requests made through `other` explicitly.
 */
describe('attack: redirecting the injected credential through the request target and hop-by-hop headers', () => {
  let upstream: RawUpstream;
  let otherUpstream: RawUpstream;
  let token: string;
  const secret = randomSecret('pathkey');
  const otherSecret = randomSecret('otherkey');

  beforeAll(async () => {
    upstream = await startRawUpstream();
    otherUpstream = await startRawUpstream();
    const type = await createTestType(['proxy']);
    const ns = await loopbackWorkspace('pathtrick');
    await createConnection(ns, 'api', type, `${upstream.url}/base`, secret);
    await createConnection(ns, 'other', type, otherUpstream.url, otherSecret);
    token = await workload(ns, 'app', { use: true });
  });

  afterAll(async () => {
    await upstream?.close();
    await otherUpstream?.close();
  });

  const head = (target: string, extra = '') =>
    `GET ${target} HTTP/1.1\r\nHost: gateway\r\nAuthorization: Bearer ${token}\r\n${extra}Connection: close\r\n\r\n`;

  function expectOnlyApisOwnRequests(): void {
    expect(otherUpstream.requests).toEqual([]);
    expect(otherUpstream.wire).toEqual([]);
    const host = new URL(upstream.url).host;
    for (const r of upstream.requests) {
      expect(r.path.startsWith('/base/') || r.path === '/base').toBe(true);
      expect(r.headers.filter(([n]) => n === 'host')).toEqual([['host', host]]);
      expect(r.headers.filter(([n]) => n === 'x-api-key')).toEqual([['x-api-key', secret]]);
      expect(r.headers.some(([n]) => n === 'x-injected')).toBe(false);
      expect(r.raw.toString('latin1')).not.toContain(otherSecret);
    }
  }

  const REFUSED_PATHS = [
    '/v1/connections/api/proxy/..',
    '/v1/connections/api/proxy/../../other/proxy/x',
    '/v1/connections/api/proxy/%2e%2e/x',
    '/v1/connections/api/proxy/%2E%2e/x',
    '/v1/connections/api/proxy/.%2e/x',
    '/v1/connections/api/proxy/x/%2e',
    '/v1/connections/api/proxy/x%2f..%2f..%2fy',
    '/v1/connections/api/proxy/x%2F..',
    '/v1/connections/api/proxy/x\\..\\..\\other\\proxy\\x',
    '/v1/connections/api/proxy/%5c..%5cx',
    '/v1/connections/api/proxy/x%0d%0aX-Injected:%20yes',
    '/v1/connections/api/proxy/x%0aX-Injected:%20yes',
    '/v1/connections/api/proxy/x%00y',
    '/v1/connections/api/proxy/%',
    '/v1/connections/api/proxy/%zz',
    // Servlet containers (Tomcat, Jetty, Spring) drop `;parameters` before resolving dot segments: `..;` climbs.
    '/v1/connections/api/proxy/..;/..;/admin',
    '/v1/connections/api/proxy/x/..;jsessionid=1/y',
    '/v1/connections/api/proxy/.;/x',
    '/v1/connections/api/proxy/%2e%2e;/admin',
    '/v1/connections/api/proxy/..%3b/admin',
  ];

  it.each(REFUSED_PATHS)('refuses %s with 400 and forwards nothing', async (target) => {
    const before = upstream.requests.length;
    const answer = await rawGatewayExchange(head(target));
    expect(statuses(answer)).toEqual([400]);
    expect(upstream.requests.length).toBe(before);
    expectOnlyApisOwnRequests();
  });

  const NOT_A_ROUTE = [
    // Absolute-form and authority tricks name the gateway's route from another "host": the gateway routes on origin-form only.
    () => `http://${new URL(otherUpstream.url).host}/v1/connections/api/proxy/x`,
    () => `https://evil.example/v1/connections/api/proxy/x`,
    () => '/v1/connections/api/proxy;/../other/proxy/x',
    () => '/v1/connections/api%2fproxy/x',
    () => '/v1/connections/API/proxy/x',
    () => '/v1/connections/../connections/other/proxy/x',
    () => '//v1/connections/api/proxy/x',
    () => '*',
    () => '/v1/connections/api/proxy\\..\\..\\other\\proxy\\x',
  ];

  it.each(NOT_A_ROUTE)('answers target #%# as not a route (4xx) and forwards nothing', async (target) => {
    const before = upstream.requests.length;
    const answer = await rawGatewayExchange(head(target()));
    const [status] = statuses(answer);
    expect(status).toBeGreaterThanOrEqual(400);
    expect(status).toBeLessThan(500);
    expect(upstream.requests.length).toBe(before);
    expectOnlyApisOwnRequests();
  });

  const FORWARDED_UNDER_BASE: Array<[string, string]> = [
    // These are legitimate (if odd) paths: they must stay on the connection's host, under its base path.
    ['/v1/connections/api/proxy//evil.example/x', '/base//evil.example/x'],
    ['/v1/connections/api/proxy/@evil.example/x', '/base/@evil.example/x'],
    ['/v1/connections/api/proxy/%252e%252e/x', '/base/%252e%252e/x'],
    [
      '/v1/connections/api/proxy/x?next=http://evil.example/&a=%0d%0aX-Injected:%20yes',
      '/base/x?next=http://evil.example/&a=%0d%0aX-Injected:%20yes',
    ],
    // A fragment is no part of a request target; it is forwarded encoded, as part of the path.
    ['/v1/connections/api/proxy/x#frag', '/base/x%23frag'],
    // Characters the string join (ADR 0030) must leave to the URL, and a `?` or `#` inside the query.
    ['/v1/connections/api/proxy/x?a?b=c', '/base/x?a?b=c'],
    ['/v1/connections/api/proxy/x?a#b', '/base/x?a%23b'],
    ["/v1/connections/api/proxy/x?q='1'", '/base/x?q=%271%27'],
    ['/v1/connections/api/proxy/x{y}', '/base/x%7By%7D'],
    ['/v1/connections/api/proxy/x?', '/base/x'],
    ['/v1/connections/api/proxy/\u00e9', '/base/%C3%A9'],
  ];

  it.each(FORWARDED_UNDER_BASE)("forwards %s on the connection's own host as %s", async (target, expected) => {
    const before = upstream.requests.length;
    const answer = await rawGatewayExchange(head(target));
    const fresh = upstream.requests.slice(before);
    // Either refused outright, or forwarded exactly where the base URL says.
    if (statuses(answer)[0] === 400) {
      expect(fresh).toEqual([]);
    } else {
      expect(statuses(answer)).toEqual([200]);
      expect(fresh.map((r) => r.path)).toEqual([expected]);
    }
    expectOnlyApisOwnRequests();
  });

  it("ignores the caller's Host, X-Forwarded-Host and Forwarded headers when picking the upstream", async () => {
    const other = new URL(otherUpstream.url).host;
    const before = upstream.requests.length;
    const raw = `GET /v1/connections/api/proxy/hosts HTTP/1.1\r\nHost: ${other}\r\nX-Forwarded-Host: ${other}\r\nForwarded: host=${other}\r\nAuthorization: Bearer ${token}\r\nConnection: close\r\n\r\n`;
    const answer = await rawGatewayExchange(raw);
    expect(statuses(answer)).toEqual([200]);
    const got = upstream.requests.slice(before);
    expect(got.map((r) => r.path)).toEqual(['/base/hosts']);
    expect(got[0]!.headers.some(([n]) => n === 'x-forwarded-host' || n === 'forwarded')).toBe(false);
    expectOnlyApisOwnRequests();
  });

  it("a Connection header naming the injected header neither strips it nor lets the caller's own copy through", async () => {
    const before = upstream.requests.length;
    const answer = await rawGatewayExchange(
      head(
        '/v1/connections/api/proxy/hop',
        'X-API-Key: attacker-chosen\r\nx-api-key: second\r\nConnection: x-api-key, authorization, host\r\n',
      ),
    );
    expect(statuses(answer)).toEqual([200]);
    const got = upstream.requests.slice(before);
    expect(got.map((r) => r.path)).toEqual(['/base/hop']);
    expect(got[0]!.raw.toString('latin1')).not.toContain('attacker-chosen');
    expect(got[0]!.headers.some(([n, v]) => n === 'authorization' || v.includes(token))).toBe(false);
    expectOnlyApisOwnRequests();
  });

  it('Upgrade: h2c is not honoured: no upgrade header upstream, no 101, and nothing after it on the socket is read as another protocol', async () => {
    const before = upstream.requests.length;
    const raw = `GET /v1/connections/api/proxy/upgrade HTTP/1.1\r\nHost: gateway\r\nAuthorization: Bearer ${token}\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n`;
    const answer = await rawGatewayExchange(raw);
    expect(statuses(answer)).not.toContain(101);
    const got = upstream.requests.slice(before);
    for (const r of got) {
      expect(r.path).toBe('/base/upgrade');
      expect(
        r.headers.some(
          ([n, v]) => n === 'upgrade' || n === 'http2-settings' || (n === 'connection' && /upgrade/i.test(v)),
        ),
      ).toBe(false);
    }
    expectOnlyApisOwnRequests();
  });

  it('CONNECT to another host through the gateway is not tunnelled', async () => {
    const other = new URL(otherUpstream.url).host;
    const answer = await rawGatewayExchange(
      `CONNECT ${other} HTTP/1.1\r\nHost: ${other}\r\nAuthorization: Bearer ${token}\r\n\r\nGET /tunnel HTTP/1.1\r\nHost: x\r\n\r\n`,
    );
    expect(statuses(answer)).not.toContain(200);
    expectOnlyApisOwnRequests();
  });
});
