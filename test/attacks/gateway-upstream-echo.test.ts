import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomSecret } from '../support/cluster.js';
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
 * Red-team pass on issue 9: what a workload that holds only `use` can make
 * the gateway and its connection's upstream hand back, and what a malicious
 * upstream of workspace B can do to workspace A's traffic.
 *
 * The upstream here is a raw-socket HTTP/1.1 server that behaves as common
 * servers do, and misbehaves on request:
 * - TRACE is answered as RFC 9110 §9.3.8 says, echoing the request it
 *   received (Apache httpd's default, `TraceEnable On`): the injected header
 *   included;
 * - `/redirect*` answers 302 to another loopback server, or to a URL carrying
 *   the request's own X-API-Key;
 * - `/head-body`, `/304-body`, `/early-hints`, `/extra` send a body where
 *   none may be, informational responses, or bytes after the response.
 */
describe('attack: plaintext through upstream echoes, redirects, and response-side desync', () => {
  let upstream: EchoUpstream;
  let elsewhere: EchoUpstream;
  let tokenA: string;
  let tokenB: string;
  const secretA = randomSecret('echoa');
  const secretB = randomSecret('echob');

  beforeAll(async () => {
    elsewhere = await startEchoUpstream();
    upstream = await startEchoUpstream(elsewhere.url);
    const type = await createTestType(['proxy']);
    const nsA = await loopbackWorkspace('echo-a');
    const nsB = await loopbackWorkspace('echo-b');
    await createConnection(nsA, 'api', type, upstream.url, secretA);
    await createConnection(nsB, 'api', type, upstream.url, secretB);
    tokenA = await workload(nsA, 'app', { use: true });
    tokenB = await workload(nsB, 'app', { use: true });
  });

  afterAll(async () => {
    await upstream?.close();
    await elsewhere?.close();
  });

  it('a use-only workload cannot make the gateway TRACE its upstream and read the injected key from the echo', async () => {
    const answer = await rawGatewayExchange(
      `TRACE /v1/connections/api/proxy/trace HTTP/1.1\r\nHost: gateway\r\nAuthorization: Bearer ${tokenB}\r\nConnection: close\r\n\r\n`,
    );
    expect(answer).not.toContain(secretB);
    expect(statuses(answer)[0]).toBe(405);
    expect(upstream.requests.filter((r) => r.startsWith('TRACE '))).toEqual([]);
  });

  const get = (path: string, token: string) =>
    `GET /v1/connections/api/proxy${path} HTTP/1.1\r\nHost: gateway\r\nAuthorization: Bearer ${token}\r\nConnection: close\r\n\r\n`;

  it('does not follow a redirect: the 302 goes back to the caller and the other server sees nothing', async () => {
    const answer = await rawGatewayExchange(get('/redirect', tokenB));
    expect(statuses(answer)).toEqual([302]);
    expect(answer).toContain(`location: ${elsewhere.url}/followed`);
    expect(elsewhere.requests).toEqual([]);
  });

  it('drops a Location that carries the injected key', async () => {
    const answer = await rawGatewayExchange(get('/redirect-with-key', tokenB));
    expect(statuses(answer)).toEqual([302]);
    expect(answer.toLowerCase()).not.toContain('location:');
    expect(answer).not.toContain(secretB);
    expect(elsewhere.requests).toEqual([]);
  });

  it("B's upstream answering HEAD with a body, 304 with a body, 103s and trailing bytes never delivers anything to A, and A's key never meets B's on a socket", async () => {
    for (const [method, path] of [
      ['HEAD', '/head-body'],
      ['GET', '/304-body'],
      ['GET', '/early-hints'],
      ['GET', '/extra'],
      ['HEAD', '/head-body'],
    ] as const) {
      // The gateway may cut B's own exchange short (a malformed answer); what matters is what A gets next.
      await gatewayCall(`/v1/connections/api/proxy${path}`, tokenB, { method })
        .then((res) => res.arrayBuffer())
        .catch(() => undefined);
      // A asks right after, as the victim would.
      const a = await gatewayCall('/v1/connections/api/proxy/a-own', tokenA);
      const text = await a.text();
      expect(a.status).toBe(200);
      expect(text).toBe('own:/a-own');
      expect(text).not.toContain('POISON');
    }
    for (const wire of upstream.wire) expect(wire.includes(secretA) && wire.includes(secretB)).toBe(false);
  });
});

interface EchoUpstream {
  url: string;
  /** Each request's head as received (request line and headers). */
  requests: string[];
  /** Every byte received, per TCP connection. */
  wire: string[];
  close(): Promise<void>;
}

async function startEchoUpstream(redirectTo?: string): Promise<EchoUpstream> {
  const requests: string[] = [];
  const wire: string[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    const id = wire.length;
    wire.push('');
    sockets.add(socket);
    let pending = '';
    socket.on('data', (chunk: Buffer) => {
      wire[id] += chunk.toString('latin1');
      pending += chunk.toString('latin1');
      for (;;) {
        const end = pending.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = pending.slice(0, end);
        const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
        if (pending.length < end + 4 + length) return;
        pending = pending.slice(end + 4 + length);
        requests.push(head);
        socket.write(answer(head, redirectTo));
      }
    });
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    wire,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

function answer(head: string, redirectTo: string | undefined): string {
  const [method = '', path = ''] = head.split('\r\n')[0]!.split(' ');
  const key = /\r\nx-api-key: *([^\r\n]*)/i.exec(head)?.[1] ?? '';
  const ok = (body: string, extra = '') =>
    `HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\n${extra}\r\n${body}`;
  if (method === 'TRACE')
    return `HTTP/1.1 200 OK\r\nContent-Type: message/http\r\nContent-Length: ${head.length + 4}\r\n\r\n${head}\r\n\r\n`;
  if (path === '/redirect')
    return `HTTP/1.1 302 Found\r\nLocation: ${redirectTo}/followed\r\nContent-Length: 0\r\n\r\n`;
  if (path === '/redirect-with-key')
    return `HTTP/1.1 302 Found\r\nLocation: ${redirectTo}/followed?key=${key}\r\nContent-Length: 0\r\n\r\n`;
  if (path === '/head-body') return `HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nPOISON`;
  if (path === '/304-body') return `HTTP/1.1 304 Not Modified\r\nContent-Length: 6\r\n\r\nPOISON`;
  if (path === '/early-hints')
    return `HTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\nHTTP/1.1 100 Continue\r\n\r\n${ok('hinted')}`;
  if (path === '/extra') return `${ok('ok')}HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nPOISON`;
  return ok(`own:${path}`);
}
