import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  closedPort,
  startHttpFixture,
  startRedis,
  startSilentServer,
  startTlsMismatchServer,
} from '../../test/support/services.js';
import type { CountingService, HttpFixture, RunningService } from '../../test/support/services.js';
import type { IntegrationTypeObject, IntegrationTypeSpec, ProbeContext, ProbeOutcome } from './probe-types.js';
import { runProbe } from './run-probe.js';

/** Distinctive, so that finding it anywhere in an outcome is unambiguous. */
const SECRET = 'ZZ-SECRET-7f3c91d0b2-ZZ';
const LOOPBACK = { allowCIDRs: ['127.0.0.0/8'] };

const httpApiType: IntegrationTypeObject = {
  metadata: { name: 'http-api', generation: 1 },
  spec: {
    settingsSchema: {
      type: 'object',
      additionalProperties: false,
      required: ['baseURL'],
      properties: {
        baseURL: { type: 'string', format: 'uri' },
        auth: { type: 'string', enum: ['bearer', 'header', 'query', 'basic'], default: 'bearer' },
        headerName: { type: 'string', default: 'X-API-Key' },
        queryParam: { type: 'string', default: 'api_key' },
      },
    },
    credentialFields: [{ name: 'token', required: true }],
    probe: {
      http: {
        method: 'GET',
        url: '{{settings.baseURL}}',
        auth: {
          type: '{{settings.auth}}',
          headerName: '{{settings.headerName}}',
          queryParam: '{{settings.queryParam}}',
          credential: 'token',
        },
      },
    },
  },
};

const redisType: IntegrationTypeSpec = {
  settingsSchema: {
    type: 'object',
    required: ['host'],
    properties: {
      host: { type: 'string', format: 'hostname' },
      port: { type: 'integer', minimum: 1, maximum: 65535, default: 6379 },
      username: { type: 'string' },
      tls: { type: 'boolean', default: false },
    },
  },
  credentialFields: [{ name: 'password', required: false }],
  probe: { driver: 'redis' },
};

function context(settings: Record<string, unknown>, over: Partial<ProbeContext> = {}): ProbeContext {
  return {
    settings,
    credentials: { token: SECRET, password: SECRET },
    timeoutMs: 2_000,
    egress: LOOPBACK,
    maxResponseBytes: 64 * 1024,
    ...over,
  };
}

function expectNoSecret(outcome: ProbeOutcome): void {
  expect(JSON.stringify(outcome)).not.toContain(SECRET);
  expect(JSON.stringify(outcome)).not.toContain(Buffer.from(SECRET).toString('base64'));
}

/** Echoes every credential-bearing part of the request back, in the body and a header. */
let echo: HttpFixture;
let redis: RunningService;
let silent: CountingService;
let mismatch: CountingService;
beforeAll(async () => {
  [echo, redis, silent, mismatch] = await Promise.all([
    startHttpFixture((req, res) => {
      const path = req.url.split('?')[0];
      const status = path === '/ok' ? 200 : path === '/denied' ? 401 : path === '/weird' ? 418 : 302;
      res.writeHead(status, {
        'x-echo': encodeURIComponent(JSON.stringify(req.headers)),
        location: `http://evil.example/${encodeURIComponent(req.url)}`,
      });
      res.end(JSON.stringify({ url: req.url, headers: req.headers }));
    }),
    startRedis({ password: SECRET }),
    startSilentServer(),
    startTlsMismatchServer(),
  ]);
});
afterAll(async () => {
  await Promise.all([echo?.stop(), redis?.stop(), silent?.stop(), mismatch?.stop()]);
});

describe('runProbe never leaks a credential', () => {
  const placements = ['bearer', 'header', 'query', 'basic'] as const;

  it.each(placements)('HTTP probe, auth %s: success, refusal, unexpected, redirect', async (auth) => {
    const credentials = { token: SECRET, username: 'u', password: SECRET };
    const type =
      auth === 'basic'
        ? { ...httpApiType.spec, probe: { http: { url: '{{settings.baseURL}}', auth: { type: 'basic' } } } }
        : httpApiType;
    const cases: Array<[string, ProbeOutcome['reason']]> = [
      ['/ok', 'Succeeded'],
      ['/denied', 'AuthenticationFailed'],
      ['/weird', 'UnexpectedResponse'],
      ['/redirect', 'UnexpectedResponse'],
    ];
    for (const [path, reason] of cases) {
      const outcome = await runProbe(type, context({ baseURL: `${echo.url}${path}`, auth }, { credentials }));
      expect(outcome.reason).toBe(reason);
      expectNoSecret(outcome);
    }
    // The server really got the credential, so the assertions above are meaningful.
    expect(JSON.stringify(echo.requests.at(-1))).toMatch(
      new RegExp(`${SECRET}|${Buffer.from(`u:${SECRET}`).toString('base64')}`),
    );
  });

  it('redis: success and authentication failure', async () => {
    const ok = await runProbe(redisType, context({ host: redis.host, port: redis.port }));
    expect(ok).toMatchObject({ reason: 'Succeeded', reachable: 'True', authenticated: 'True' });
    expectNoSecret(ok);
    const wrong = `${SECRET}-but-wrong`;
    const refused = await runProbe(
      redisType,
      context({ host: redis.host, port: redis.port }, { credentials: { password: wrong } }),
    );
    expect(refused.reason).toBe('AuthenticationFailed');
    expect(JSON.stringify(refused)).not.toContain(wrong);
  });

  it('unreachable, timeout, TLS error, egress denied, DNS error', async () => {
    const closed = await closedPort();
    const outcomes: Array<[ProbeOutcome, ProbeOutcome['reason']]> = [
      [await runProbe(httpApiType, context({ baseURL: `http://127.0.0.1:${closed.port}/` })), 'Unreachable'],
      [await runProbe(redisType, context({ host: closed.host, port: closed.port })), 'Unreachable'],
      [
        await runProbe(
          httpApiType,
          context({ baseURL: `http://127.0.0.1:${silent.port}/`, auth: 'query' }, { timeoutMs: 300 }),
        ),
        'Timeout',
      ],
      [await runProbe(redisType, context({ host: silent.host, port: silent.port }, { timeoutMs: 300 })), 'Timeout'],
      [await runProbe(httpApiType, context({ baseURL: `https://127.0.0.1:${mismatch.port}/` })), 'TLSError'],
      [await runProbe(redisType, context({ host: mismatch.host, port: mismatch.port, tls: true })), 'TLSError'],
      [await runProbe(httpApiType, context({ baseURL: 'http://no-such-host.invalid/' })), 'DNSError'],
      [
        await runProbe(
          httpApiType,
          context({ baseURL: `${echo.url}/ok`, auth: 'query' }, { egress: { allowCIDRs: [] } }),
        ),
        'EgressDenied',
      ],
    ];
    for (const [outcome, reason] of outcomes) {
      expect(outcome.reason).toBe(reason);
      expectNoSecret(outcome);
    }
  });

  it('scrubs a credential that a setting smuggled into a message', async () => {
    // The secret is a valid host name; the DNS failure message names the host, and the scrubber must catch it.
    const outcome = await runProbe(redisType, context({ host: `${SECRET}.invalid` }));
    expect(outcome.reason).toBe('DNSError');
    expect(outcome.message).toContain('[redacted].invalid');
    expectNoSecret(outcome);
  });
});

describe('runProbe', () => {
  it('refuses a loopback target by default without connecting', async () => {
    const before = silent.connections();
    const outcome = await runProbe(
      redisType,
      context({ host: silent.host, port: silent.port }, { egress: { allowCIDRs: [] } }),
    );
    expect(outcome).toMatchObject({ reason: 'EgressDenied', reachable: 'False', authenticated: 'Unknown' });
    expect(silent.connections()).toBe(before);
    const viaHttp = await runProbe(
      httpApiType,
      context({ baseURL: `http://127.0.0.1:${silent.port}/` }, { egress: { allowCIDRs: [] } }),
    );
    expect(viaHttp.reason).toBe('EgressDenied');
    expect(silent.connections()).toBe(before);
  });

  it('validates settings first and names the field', async () => {
    const outcome = await runProbe(redisType, context({ port: 0 }));
    expect(outcome.reason).toBe('InvalidSettings');
    expect(outcome.message).toContain('spec.settings.host is required');
    expect(outcome.message).toContain('spec.settings.port must be >= 1');
  });

  it('applies schema defaults before probing (auth defaults to bearer)', async () => {
    const before = echo.requests.length;
    const outcome = await runProbe(httpApiType, context({ baseURL: `${echo.url}/ok` }));
    expect(outcome.reason).toBe('Succeeded');
    expect(echo.requests[before]?.headers['authorization']).toBe(`Bearer ${SECRET}`);
  });

  it('reports missing required credentials by name without dialling', async () => {
    const before = echo.connections();
    const outcome = await runProbe(httpApiType, context({ baseURL: `${echo.url}/ok` }, { credentials: {} }));
    expect(outcome).toMatchObject({ reason: 'CredentialsMissing', message: 'required credentials are not set: token' });
    expect(echo.connections()).toBe(before);
  });

  it('reports an unknown driver or a type without a probe', async () => {
    expect((await runProbe({ probe: { driver: 'carrier-pigeon' } }, context({}))).message).toContain('carrier-pigeon');
    expect((await runProbe({}, context({}))).reason).toBe('InvalidSettings');
  });

  it('measures duration and honours cancellation', async () => {
    const abort = new AbortController();
    const pending = runProbe(
      redisType,
      context({ host: silent.host, port: silent.port }, { timeoutMs: 10_000, signal: abort.signal }),
    );
    setTimeout(() => abort.abort(), 100);
    const outcome = await pending;
    expect(outcome.reason).toBe('Timeout');
    expect(outcome.durationMs).toBeGreaterThanOrEqual(90);
    expect(outcome.durationMs).toBeLessThan(5_000);
  });
});
