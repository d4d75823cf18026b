import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCertificate } from '../kube/x509.js';
import {
  createTestPki,
  startHttpFixture,
  startSilentServer,
  startTlsMismatchServer,
} from '../../test/support/services.js';
import type { HttpFixture } from '../../test/support/services.js';
import { runHttpProbe, sendProbeRequest } from './http-probe.js';
import { ProbeFailure } from './probe-failure.js';
import type { HttpProbeSpec, ProbeContext, ProbeOutcome } from './probe-types.js';

const TOKEN = 'tok-3c1e9f2a7b';
const LOOPBACK = { allowCIDRs: ['127.0.0.0/8'] };

function context(over: Partial<ProbeContext> = {}): ProbeContext {
  return { settings: {}, credentials: {}, timeoutMs: 3_000, egress: LOOPBACK, maxResponseBytes: 64 * 1024, ...over };
}

async function failure(p: Promise<unknown>): Promise<ProbeFailure> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof ProbeFailure)) throw new Error(`expected a ProbeFailure, got ${String(err)}`);
  return err;
}

/** A fixture standing in for an API: 200 only for the right credential in the right place. */
let api: HttpFixture;
beforeAll(async () => {
  api = await startHttpFixture((req, res) => {
    const path = req.url.split('?')[0];
    if (path === '/redirect') {
      res.writeHead(302, { location: 'http://169.254.169.254/' }).end();
      return;
    }
    if (path === '/broken') {
      res.writeHead(500).end('boom');
      return;
    }
    if (path === '/big') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('x'.repeat(1024 * 1024));
      return;
    }
    const presented = [
      req.headers['x-api-key'],
      req.headers['authorization'],
      new URL(req.url, 'http://h').searchParams.get('api_key'),
    ];
    const ok = presented.some(
      (v) =>
        v === TOKEN || v === `Bearer ${TOKEN}` || v === `Basic ${Buffer.from(`alice:${TOKEN}`).toString('base64')}`,
    );
    res.writeHead(ok ? 200 : 401).end();
  });
});
afterAll(async () => {
  await api.stop();
});

function spec(over: Partial<HttpProbeSpec> = {}): HttpProbeSpec {
  return { method: 'GET', url: `${api.url}/v1/validate`, ...over };
}

describe('runHttpProbe: credential placement (what the server received)', () => {
  it('header', async () => {
    const before = api.requests.length;
    const outcome = await runHttpProbe(
      spec({
        auth: { type: 'header', headerName: 'X-API-Key', credential: 'apiKey' },
        headers: { 'X-Extra': 'v-{{settings.site}}' },
      }),
      context({ settings: { site: 'eu' }, credentials: { apiKey: TOKEN } }),
    );
    expect(outcome).toMatchObject({ reason: 'Succeeded', reachable: 'True', authenticated: 'True' });
    const got = api.requests[before]!;
    expect(got.method).toBe('GET');
    expect(got.url).toBe('/v1/validate');
    expect(got.headers['x-api-key']).toBe(TOKEN);
    expect(got.headers['x-extra']).toBe('v-eu');
    expect(got.headers['user-agent']).toBe('atoll-probe/0.1');
    expect(got.headers['authorization']).toBeUndefined();
    expect(got.headers['host']).toBe(`127.0.0.1:${api.port}`);
  });

  it('bearer, with auth.type as a template', async () => {
    const before = api.requests.length;
    const outcome = await runHttpProbe(
      spec({ auth: { type: '{{settings.auth}}', credential: 'token' } }),
      context({ settings: { auth: 'bearer' }, credentials: { token: TOKEN } }),
    );
    expect(outcome.reason).toBe('Succeeded');
    expect(api.requests[before]!.headers['authorization']).toBe(`Bearer ${TOKEN}`);
  });

  it('basic with a username template', async () => {
    const before = api.requests.length;
    const outcome = await runHttpProbe(
      spec({ auth: { type: 'basic', usernameField: '{{settings.user}}', passwordField: 'password' } }),
      context({ settings: { user: 'alice' }, credentials: { password: TOKEN } }),
    );
    expect(outcome.reason).toBe('Succeeded');
    expect(api.requests[before]!.headers['authorization']).toBe(
      `Basic ${Buffer.from(`alice:${TOKEN}`).toString('base64')}`,
    );
  });

  it('basic with username and password credential fields', async () => {
    const before = api.requests.length;
    const outcome = await runHttpProbe(
      spec({ auth: { type: 'basic' } }),
      context({ credentials: { username: 'alice', password: TOKEN } }),
    );
    expect(outcome.reason).toBe('Succeeded');
    expect(api.requests[before]!.headers['authorization']).toMatch(/^Basic /);
  });

  it('query parameter, keeping the URL query', async () => {
    const before = api.requests.length;
    const outcome = await runHttpProbe(
      spec({
        url: `${api.url}/v1/validate?x={{settings.x}}`,
        auth: { type: 'query', queryParam: 'api_key', credential: 'apiKey' },
      }),
      context({ settings: { x: 'a b&c' }, credentials: { apiKey: TOKEN } }),
    );
    expect(outcome.reason).toBe('Succeeded');
    const sent = new URL(api.requests[before]!.url, 'http://h');
    expect(sent.searchParams.get('api_key')).toBe(TOKEN);
    expect(sent.searchParams.get('x')).toBe('a b&c');
  });

  it('none sends no credential; POST sends the rendered body', async () => {
    const before = api.requests.length;
    const outcome = await runHttpProbe(
      spec({
        method: 'POST',
        auth: { type: 'none' },
        body: '{"site":"{{settings.site}}"}',
        headers: { 'Content-Type': 'application/json' },
      }),
      context({ settings: { site: 'eu' }, credentials: { apiKey: TOKEN } }),
    );
    expect(outcome).toMatchObject({ reason: 'AuthenticationFailed', reachable: 'True', authenticated: 'False' });
    const got = api.requests[before]!;
    expect(got.method).toBe('POST');
    expect(got.body).toBe('{"site":"eu"}');
    expect(JSON.stringify(got.headers)).not.toContain(TOKEN);
  });

  it('drops a header whose optional credential is absent', async () => {
    const before = api.requests.length;
    await runHttpProbe(
      spec({ auth: { type: 'bearer' }, headers: { 'X-App-Key': '{{credentials.appKey}}' } }),
      context({ credentials: { token: TOKEN } }),
    );
    expect(api.requests[before]!.headers['x-app-key']).toBeUndefined();
  });
});

describe('runHttpProbe: statuses', () => {
  it('401 with a wrong credential is AuthenticationFailed', async () => {
    const outcome = await runHttpProbe(
      spec({ auth: { type: 'bearer' } }),
      context({ credentials: { token: 'wrong-token' } }),
    );
    expect(outcome).toMatchObject({ reason: 'AuthenticationFailed', reachable: 'True', authenticated: 'False' });
    expect(outcome.message).toContain('HTTP 401');
  });

  it('a redirect is never followed', async () => {
    const before = api.requests.length;
    const outcome: ProbeOutcome = await runHttpProbe(
      spec({ url: `${api.url}/redirect`, auth: { type: 'bearer' } }),
      context({ credentials: { token: TOKEN } }),
    );
    expect(outcome).toMatchObject({ reason: 'UnexpectedResponse', reachable: 'True', authenticated: 'False' });
    expect(outcome.message).toContain('redirect');
    expect(api.requests.length).toBe(before + 1);
  });

  it('an unexpected status is UnexpectedResponse and custom success statuses count', async () => {
    const broken = await runHttpProbe(spec({ url: `${api.url}/broken` }), context());
    // Reachable, but the credential is not confirmed: Authenticated False, so Ready is False (not Unknown).
    expect(broken).toMatchObject({ reason: 'UnexpectedResponse', reachable: 'True', authenticated: 'False' });
    expect(broken.message).toContain('unexpected HTTP 500 (expected 200)');
    expect((await runHttpProbe(spec({ url: `${api.url}/broken`, successStatuses: [500] }), context())).reason).toBe(
      'Succeeded',
    );
  });

  it('reads at most maxResponseBytes of a body', async () => {
    const res = await sendProbeRequest(context({ maxResponseBytes: 1000 }), {
      url: new URL(`${api.url}/big`),
      method: 'GET',
      headers: {},
      readBody: true,
    });
    expect(res.status).toBe(200);
    expect(res.truncated).toBe(true);
    expect(res.body.length).toBe(1000);
  });
});

describe('runHttpProbe: refusals and network failures', () => {
  it('refuses loopback without allowCIDRs before connecting', async () => {
    const connectionsBefore = api.connections();
    const err = await failure(
      runHttpProbe(
        spec({ auth: { type: 'bearer' } }),
        context({ egress: { allowCIDRs: [] }, credentials: { token: TOKEN } }),
      ),
    );
    expect(err.reason).toBe('EgressDenied');
    expect(api.connections()).toBe(connectionsBefore);
  });

  it('reports a missing credential and a missing setting by name', async () => {
    const missingCredential = await failure(
      runHttpProbe(spec({ auth: { type: 'bearer', credential: 'token' } }), context()),
    );
    expect(missingCredential.reason).toBe('CredentialsMissing');
    expect(missingCredential.message).toContain('token');
    const missingSetting = await failure(runHttpProbe(spec({ url: 'https://api.{{settings.site}}/v1' }), context()));
    expect(missingSetting.reason).toBe('InvalidSettings');
    expect(missingSetting.message).toContain('settings.site');
    const badMethod = await failure(runHttpProbe(spec({ method: 'DELETE' as 'GET' }), context()));
    expect(badMethod.reason).toBe('InvalidSettings');
    const badAuth = await failure(
      runHttpProbe(spec({ auth: { type: '{{settings.auth}}' } }), context({ settings: { auth: 'digest' } })),
    );
    expect(badAuth.reason).toBe('InvalidSettings');
  });

  it('refuses a credential that would break the header', async () => {
    const err = await failure(
      runHttpProbe(spec({ auth: { type: 'bearer' } }), context({ credentials: { token: 'a\r\nX-Injected: 1' } })),
    );
    expect(err.reason).toBe('InvalidSettings');
    expect(err.message).not.toContain('Injected');
  });

  it('a silent server times out with Reachable Unknown', async () => {
    const silent = await startSilentServer();
    try {
      const err = await failure(
        runHttpProbe(spec({ url: `http://127.0.0.1:${silent.port}/` }), context({ timeoutMs: 300 })),
      );
      expect(err).toMatchObject({ reason: 'Timeout', reachable: 'Unknown' });
      expect(silent.connections()).toBe(1);
    } finally {
      await silent.stop();
    }
  });
});

describe('runHttpProbe: TLS', () => {
  it("presents the connection's client certificate (clientCertificate + clientKey) to a server that requires one", async () => {
    const pki = createTestPki('mtls');
    const client = createCertificate({ issuer: pki.ca, commonName: 'orders-app', usage: 'client' });
    const seen: Array<string | string[] | undefined> = [];
    const server = createHttpsServer(
      {
        cert: pki.server.certPem,
        key: pki.server.keyPem,
        ca: [pki.ca.certPem],
        requestCert: true,
        rejectUnauthorized: true,
      },
      (req, res) => {
        const peer = (req.socket as TLSSocket).getPeerCertificate();
        seen.push(peer.subject?.CN);
        res.end('ok');
      },
    );
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    try {
      const withCert = await runHttpProbe(
        { url: `https://127.0.0.1:${port}/` },
        context({
          trustedCAs: [pki.ca.certPem],
          credentials: { clientCertificate: client.certPem, clientKey: client.keyPem },
        }),
      );
      expect(withCert.reason).toBe('Succeeded');
      expect(seen).toEqual(['orders-app']);
      // Without it the server refuses the handshake: the probe fails and the server saw no request.
      const without = await runHttpProbe(
        { url: `https://127.0.0.1:${port}/` },
        context({ trustedCAs: [pki.ca.certPem] }),
      ).then(
        (o) => o.reason,
        (e: unknown) => (e as ProbeFailure).reason,
      );
      expect(without).not.toBe('Succeeded');
      expect(seen).toEqual(['orders-app']);
    } finally {
      await new Promise((r) => server.close(r));
    }
  });

  it('verifies against trustedCAs, keeps the name for SNI and Host via the dial override', async () => {
    const pki = createTestPki('http-probe');
    const tlsApi = await startHttpFixture(undefined, { tls: pki.server });
    try {
      const dial = (host: string, port: number) =>
        host === 'localhost' && port === 443 ? { host: '127.0.0.1', port: tlsApi.port } : undefined;
      const outcome = await runHttpProbe(
        { url: 'https://localhost/health' },
        context({ trustedCAs: [pki.ca.certPem], dial }),
      );
      expect(outcome.reason).toBe('Succeeded');
      expect(tlsApi.requests[0]?.headers['host']).toBe('localhost');

      const untrusted = await failure(runHttpProbe({ url: 'https://localhost/health' }, context({ dial })));
      expect(untrusted.reason).toBe('TLSError');
      expect(tlsApi.requests.length).toBe(1);
    } finally {
      await tlsApi.stop();
    }
  });

  it('a certificate from an unknown CA is a TLSError', async () => {
    const mismatch = await startTlsMismatchServer();
    try {
      const err = await failure(runHttpProbe({ url: `https://127.0.0.1:${mismatch.port}/` }, context()));
      expect(err).toMatchObject({ reason: 'TLSError', reachable: 'False' });
    } finally {
      await mismatch.stop();
    }
  });
});
