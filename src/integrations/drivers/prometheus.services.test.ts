import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHttpFixture, startPrometheus } from '../../../test/support/services.js';
import type { RunningService } from '../../../test/support/services.js';
import { ProbeFailure } from '../probe-failure.js';
import type { ProbeContext, ProbeOutcome } from '../probe-types.js';
import { PrometheusDriver, buildinfoUrl } from './prometheus.js';

const driver = new PrometheusDriver();

function context(url: string, credentials: Record<string, string>): ProbeContext {
  return {
    settings: { url },
    credentials,
    timeoutMs: 5_000,
    egress: { allowCIDRs: ['127.0.0.0/8'] },
    maxResponseBytes: 64 * 1024,
  };
}

async function probe(ctx: ProbeContext): Promise<ProbeOutcome | ProbeFailure> {
  return driver.probe(ctx).catch((err: unknown) => {
    if (err instanceof ProbeFailure) return err;
    throw err;
  });
}

describe('buildinfoUrl', () => {
  it('appends the API path to any prefix and rejects non-HTTP URLs', () => {
    expect(buildinfoUrl('http://p:9090').href).toBe('http://p:9090/api/v1/status/buildinfo');
    expect(buildinfoUrl('https://p.example/prom/?x=1').href).toBe('https://p.example/prom/api/v1/status/buildinfo');
    expect(() => buildinfoUrl('ftp://p')).toThrow(ProbeFailure);
    expect(() => buildinfoUrl('http://u:p@p')).toThrow(ProbeFailure);
  });
});

describe('PrometheusDriver against a real Prometheus with basic auth', () => {
  let prometheus: RunningService & { url: string };
  beforeAll(async () => {
    prometheus = await startPrometheus({ username: 'probe', password: 'prom-pw-5e7a' });
  });
  afterAll(async () => {
    await prometheus?.stop();
  });

  it('right credentials: Succeeded', async () => {
    expect(await probe(context(prometheus.url, { username: 'probe', password: 'prom-pw-5e7a' }))).toMatchObject({
      reason: 'Succeeded',
      reachable: 'True',
      authenticated: 'True',
    });
  });

  it('wrong password: AuthenticationFailed', async () => {
    expect(await probe(context(prometheus.url, { username: 'probe', password: 'wrong-pw' }))).toMatchObject({
      reason: 'AuthenticationFailed',
      reachable: 'True',
      authenticated: 'False',
    });
  });

  it('no credentials against a protected server: AuthenticationFailed', async () => {
    expect(await probe(context(prometheus.url, {}))).toMatchObject({ reason: 'AuthenticationFailed' });
  });

  it('username without password: CredentialsMissing', async () => {
    expect(await probe(context(prometheus.url, { username: 'probe' }))).toMatchObject({ reason: 'CredentialsMissing' });
  });
});

describe('PrometheusDriver against fixtures', () => {
  it('sends a bearer token, and wants status success in the body', async () => {
    const fake = await startHttpFixture((req, res) => {
      const ok = req.headers['authorization'] === 'Bearer prom-token-1';
      res
        .writeHead(200, { 'content-type': 'text/html' })
        .end(ok ? '{"status":"success","data":{}}' : '<html>login</html>');
    });
    try {
      expect(await probe(context(fake.url, { token: 'prom-token-1' }))).toMatchObject({ reason: 'Succeeded' });
      expect(fake.requests[0]?.url).toBe('/api/v1/status/buildinfo');
      expect(await probe(context(fake.url, { token: 'other' }))).toMatchObject({
        reason: 'UnexpectedResponse',
        reachable: 'True',
      });
    } finally {
      await fake.stop();
    }
  });
});
