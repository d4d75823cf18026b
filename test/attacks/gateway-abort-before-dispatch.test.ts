import { connect as tlsConnect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { devState, randomSecret } from '../support/cluster.js';
import { startRawUpstream, type RawUpstream } from './support/raw-upstream.js';
import {
  createConnection,
  createTestType,
  gatewayCA,
  gatewayCall,
  loopbackWorkspace,
  workload,
} from './support/tenant.js';

/**
 * A caller that hangs up while the gateway is still authenticating
 * (TokenReview of a token it has not seen) must not have its request sent
 * upstream with the injected credential afterwards: the request was
 * abandoned, and the upstream must see nothing of it (ADR 0030 moved the
 * abort signal to an emitter listened to from the dispatch on).
 */
describe('attack: hanging up before the gateway dispatches, so the request is sent for nobody', () => {
  let upstream: RawUpstream;
  let ns: string;
  const secret = randomSecret('abortgap');

  beforeAll(async () => {
    upstream = await startRawUpstream();
    const type = await createTestType(['proxy']);
    ns = await loopbackWorkspace('abortgap');
    await createConnection(ns, 'api', type, upstream.url, secret);
  });

  afterAll(async () => {
    await upstream?.close();
  });

  it('a request whose caller is gone before dispatch never reaches the upstream', async () => {
    // A fresh token: the gateway has to ask the API server about it, which leaves time to hang up.
    const token = await workload(ns, 'app', { use: true });
    const url = new URL(devState().gateway.url);
    const abandoned = `/abandoned-${Date.now()}`;
    await new Promise<void>((resolve) => {
      const socket = tlsConnect({ host: url.hostname, port: Number(url.port), ca: gatewayCA() }, () =>
        socket.write(
          `GET /v1/connections/api/proxy${abandoned} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\n\r\n`,
          () => socket.destroy(),
        ),
      );
      socket.on('close', () => resolve());
      socket.on('error', () => undefined);
    });

    // A later request of the same caller goes through every step the abandoned one had to take.
    const later = await gatewayCall('/v1/connections/api/proxy/later', token);
    expect(later.status).toBe(200);
    await later.text();
    await new Promise((r) => setTimeout(r, 1_000));

    const paths = upstream.requests.map((r) => r.path);
    expect(paths).toContain('/later');
    expect(paths).not.toContain(abandoned);
    // Nothing of the abandoned request (and so none of its credential) was written to the upstream.
    expect(upstream.wire.map((w) => w.toString('latin1')).join('')).not.toContain(abandoned);
  });
});
