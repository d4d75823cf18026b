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
 * Issue 9, item 1: workspace B smuggles a second request inside the body of a
 * GET, hoping it lands on a keep-alive upstream socket that workspace A's next
 * request (carrying A's injected credential) reuses, so A's request becomes
 * the body of B's POST. The upstream is a raw-socket server that records every
 * byte on the wire and frames requests as a correct HTTP/1.1 server does.
 */
describe("attack: request smuggling through the gateway into another workspace's upstream socket", () => {
  let upstream: RawUpstream;
  let nsA: string;
  let nsB: string;
  let tokenA: string;
  let tokenB: string;
  const secretA = randomSecret('victimkey');
  const secretB = randomSecret('attackerkey');

  beforeAll(async () => {
    upstream = await startRawUpstream();
    const type = await createTestType(['proxy']);
    nsA = await loopbackWorkspace('smug-a');
    nsB = await loopbackWorkspace('smug-b');
    await createConnection(nsA, 'api', type, upstream.url, secretA);
    await createConnection(nsB, 'api', type, upstream.url, secretB);
    tokenA = await workload(nsA, 'app', { use: true });
    tokenB = await workload(nsB, 'app', { use: true });
  });

  afterAll(async () => {
    await upstream?.close();
  });

  /** Requests in the recording that carry A's credential: each must be exactly one of A's own, and nothing else may contain it. */
  function expectSecretAOnlyInItsOwnRequests(ownPaths: string[]): void {
    const carrying = upstream.requests.filter((r) => r.raw.toString('latin1').includes(secretA));
    for (const r of carrying) {
      expect(ownPaths).toContain(r.path);
      expect(r.headers.filter(([n]) => n === 'x-api-key')).toEqual([['x-api-key', secretA]]);
      expect(r.body.toString('latin1')).not.toContain(secretA);
    }
    const total = upstream.wire.map((w) => w.toString('latin1').split(secretA).length - 1).reduce((a, b) => a + b, 0);
    expect(total).toBe(carrying.length);
    for (const r of upstream.requests) expect(r.path.startsWith('/comments')).toBe(false);
  }

  it("refuses B's chunked GET carrying a second request, and A's next call stays A's own", async () => {
    // B warms up a pooled socket to the shared upstream host first, as the attacker would.
    expect((await gatewayCall('/v1/connections/api/proxy/b-warm', tokenB)).status).toBe(200);
    const smuggled =
      'POST /comments HTTP/1.1\r\nHost: upstream\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 400\r\n\r\ncomment=';
    const chunk = Buffer.from(smuggled).length.toString(16);
    const attack = `GET /v1/connections/api/proxy/b-get HTTP/1.1\r\nHost: gateway\r\nAuthorization: Bearer ${tokenB}\r\nTransfer-Encoding: chunked\r\n\r\n${chunk}\r\n${smuggled}\r\n0\r\n\r\n`;
    const before = upstream.requests.length;

    const answer = await rawGatewayExchange(attack);

    expect(statuses(answer)[0]).toBe(400);
    expect(answer).toContain('"AmbiguousFraming"');
    expect(answer.toLowerCase()).toContain('connection: close');
    expect(upstream.requests.length).toBe(before);

    const a = await gatewayCall('/v1/connections/api/proxy/a-own', tokenA);
    expect(a.status).toBe(200);
    const body = (await a.json()) as { path: string; connection: number };
    expect(body.path).toBe('/a-own');
    expectSecretAOnlyInItsOwnRequests(['/a-own']);
  });

  it("keeps A's and B's requests to the same upstream host on different sockets (pools per connection)", async () => {
    const seen: { a: number[]; b: number[] } = { a: [], b: [] };
    for (let i = 0; i < 3; i++) {
      for (const [who, token] of [
        ['a', tokenA],
        ['b', tokenB],
      ] as const) {
        const res = await gatewayCall(`/v1/connections/api/proxy/${who}-pool-${i}`, token);
        expect(res.status).toBe(200);
        seen[who].push(((await res.json()) as { connection: number }).connection);
      }
    }
    // Keep-alive works within a connection's own pool...
    expect(new Set(seen.a).size).toBe(1);
    expect(new Set(seen.b).size).toBe(1);
    // ...and no socket ever carried both workspaces' requests.
    for (const id of new Set([...seen.a, ...seen.b])) {
      const wire = upstream.wire[id]!.toString('latin1');
      expect(wire.includes(secretA) && wire.includes(secretB)).toBe(false);
    }
    expect(seen.a[0]).not.toBe(seen.b[0]);
    expectSecretAOnlyInItsOwnRequests(['/a-own', '/a-pool-0', '/a-pool-1', '/a-pool-2']);
  });

  it('forwards a legitimate body with explicit framing, byte for byte', async () => {
    const payload = 'x=1&y=' + 'z'.repeat(3000);
    const res = await gatewayCall('/v1/connections/api/proxy/b-post', tokenB, {
      method: 'POST',
      body: payload,
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    expect(res.status).toBe(200);
    const got = upstream.requests.find((r) => r.path === '/b-post')!;
    expect(got.body.toString('latin1')).toBe(payload);
    const framing = got.headers.filter(([n]) => n === 'content-length' || n === 'transfer-encoding');
    expect(framing).toHaveLength(1);
  });

  it('destroys, never reuses, a socket whose response the caller abandoned mid-body', async () => {
    upstream.behave('/b-hang', 'hang-mid-body');
    const abort = new AbortController();
    const res = await gatewayCall('/v1/connections/api/proxy/b-hang', tokenB, { signal: abort.signal });
    expect(res.status).toBe(200);
    const hung = upstream.requests.find((r) => r.path === '/b-hang')!;
    abort.abort();
    await expect(res.text()).rejects.toThrow();
    await waitFor(() => upstream.closed.has(hung.connection));
    const next = await gatewayCall('/v1/connections/api/proxy/b-after-hang', tokenB);
    expect(((await next.json()) as { connection: number }).connection).not.toBe(hung.connection);
  });

  it('destroys a socket on which the upstream sent an unrequested extra response, so nobody receives it', async () => {
    upstream.behave('/b-extra', 'extra-response');
    const res = await gatewayCall('/v1/connections/api/proxy/b-extra', tokenB);
    expect(await res.text()).toBe('ok');
    const poisoned = upstream.requests.find((r) => r.path === '/b-extra')!;
    await waitFor(() => upstream.closed.has(poisoned.connection));
    for (const [token, who] of [
      [tokenB, 'b'],
      [tokenA, 'a'],
    ] as const) {
      const next = await gatewayCall(`/v1/connections/api/proxy/${who}-after-extra`, token);
      const text = await next.text();
      expect(text).not.toContain('POISONED');
      expect((JSON.parse(text) as { path: string }).path).toBe(`/${who}-after-extra`);
    }
    expectSecretAOnlyInItsOwnRequests(['/a-own', '/a-pool-0', '/a-pool-1', '/a-pool-2', '/a-after-extra']);
  });
});

async function waitFor(check: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !check(); i++) await new Promise((r) => setTimeout(r, 20));
  expect(check()).toBe(true);
}
