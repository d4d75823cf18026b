import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { devState, randomSecret } from '../support/cluster.js';
import { runAgentProcess } from './support/agent-process.js';
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
 * Issue 9, item 4: tokens and plaintext must not cross the network in the
 * clear, clients must verify who they talk to, and nobody may use the
 * gateway to hammer the API server with TokenReviews of made-up tokens.
 */
describe('attack: eavesdropping on the gateway and flooding it with unknown tokens', () => {
  let upstream: RawUpstream;
  let token: string;
  const secret = randomSecret('transport');

  beforeAll(async () => {
    upstream = await startRawUpstream();
    const type = await createTestType(['proxy', 'files']);
    const ns = await loopbackWorkspace('transport');
    await createConnection(ns, 'api', type, upstream.url, secret);
    token = await workload(ns, 'app', { use: true, read: true });
  });

  afterAll(async () => {
    await upstream?.close();
  });

  it('serves HTTPS by default: a plaintext request gets no HTTP answer and never reaches an upstream', async () => {
    expect(devState().gateway.url.startsWith('https://')).toBe(true);
    const url = new URL(devState().gateway.url);
    const before = upstream.requests.length;
    const answer = await new Promise<string>((resolve) => {
      let got = '';
      const socket = connect(Number(url.port), url.hostname, () =>
        socket.write(
          `GET /v1/connections/api/credentials HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\n\r\n`,
        ),
      );
      socket.on('data', (c: Buffer) => (got += c.toString('latin1')));
      socket.on('close', () => resolve(got));
      socket.on('error', () => resolve(got));
      setTimeout(() => socket.destroy(), 3_000);
    });
    expect(answer).not.toMatch(/^HTTP\/1\.1 200/);
    expect(answer).not.toContain(secret);
    expect(upstream.requests.length).toBe(before);
  });

  it('presents a certificate that clients verify: without the CA the handshake fails before any token is sent', async () => {
    const url = new URL(devState().gateway.url);
    const error = await new Promise<NodeJS.ErrnoException | undefined>((resolve) => {
      const socket = tlsConnect({ host: url.hostname, port: Number(url.port) }, () => {
        socket.destroy();
        resolve(undefined);
      });
      socket.on('error', (err: NodeJS.ErrnoException) => resolve(err));
    });
    expect(error?.code).toMatch(/CERT|SELF_SIGNED|UNABLE_TO_VERIFY/);
  });

  it('the agent refuses a plain http:// gateway URL unless explicitly opted out', async () => {
    const url = new URL(devState().gateway.url);
    const run = await runAgentProcess({ token, connections: ['api'], gatewayURL: `http://${url.host}`, caFile: null });
    expect(run.code).not.toBe(0);
    expect(run.stderr).toMatch(/http:\/\/.*unencrypted/);
    expect(run.files()).toEqual([]);
  });

  it("the agent without the gateway's CA refuses the certificate and exits, writing nothing", async () => {
    const run = await runAgentProcess({ token, connections: ['api'], caFile: null });
    expect(run.code).not.toBe(0);
    expect(run.stderr).toMatch(/certificate/);
    expect(run.files()).toEqual([]);
  });

  it('answers 429 with Retry-After to a source sending unknown tokens, before asking the API server, and only that source', async () => {
    const request = (bearer: string) =>
      `GET /v1/connections/api/proxy/flood HTTP/1.1\r\nHost: gateway\r\nAuthorization: Bearer ${bearer}\r\nConnection: close\r\n\r\n`;
    // All at once, as a flood is: the bucket (30, refilled at 3/s) empties long before the last one arrives.
    const flood = Array.from({ length: 60 }, () => `made-up.${randomBytes(24).toString('base64url')}.token`);
    const answers = await Promise.all(
      flood.map((bearer) => rawGatewayExchange(request(bearer), { localAddress: '127.0.0.2', quietMs: 5_000 })),
    );
    const codes = answers.map((a) => statuses(a)[0]);
    expect(codes.every((c) => c === 401 || c === 429)).toBe(true);
    expect(codes.filter((c) => c === 401).length).toBeGreaterThanOrEqual(30);
    const limited = answers.filter((a) => statuses(a)[0] === 429);
    expect(limited.length).toBeGreaterThanOrEqual(10);
    for (const a of limited) {
      expect(a).toContain('"TooManyRequests"');
      expect(Number(/retry-after: (\d+)/i.exec(a)?.[1])).toBeGreaterThanOrEqual(1);
    }
    // Another source is not affected, and a valid token is served there.
    const other = await rawGatewayExchange(request(token), { localAddress: '127.0.0.3', quietMs: 3_000 });
    expect(statuses(other)[0]).toBe(200);
    expect(upstream.requests.filter((r) => r.path === '/flood')).toHaveLength(1);
  });
});
