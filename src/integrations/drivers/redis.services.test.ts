import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  closedPort,
  createTestPki,
  startRedis,
  startSilentServer,
  startTlsMismatchServer,
} from '../../../test/support/services.js';
import type { RunningService } from '../../../test/support/services.js';
import { ProbeFailure } from '../probe-failure.js';
import type { ProbeContext, ProbeOutcome } from '../probe-types.js';
import { RedisDriver, errorCode } from './redis.js';

const PASSWORD = 'redis-pw-8d2f61';
const driver = new RedisDriver();

function context(settings: Record<string, unknown>, over: Partial<ProbeContext> = {}): ProbeContext {
  return {
    settings,
    credentials: { password: PASSWORD },
    timeoutMs: 3_000,
    egress: { allowCIDRs: ['127.0.0.0/8'] },
    maxResponseBytes: 64 * 1024,
    ...over,
  };
}

async function probe(ctx: ProbeContext): Promise<ProbeOutcome | ProbeFailure> {
  return driver.probe(ctx).catch((err: unknown) => {
    if (err instanceof ProbeFailure) return err;
    throw err;
  });
}

describe('Redis error codes', () => {
  it('keeps only the leading code of an error reply, and maps the pre-6 password refusals', () => {
    expect(errorCode('WRONGPASS invalid username-password pair')).toBe('WRONGPASS');
    expect(errorCode('ERR invalid password')).toBe('WRONGPASS');
    expect(errorCode('ERR AUTH <password> called without any password configured for the default user')).toBe(
      'NOPASSWORDSET',
    );
    expect(errorCode('something odd')).toBe('ERR');
    expect(errorCode('NOAUTH Authentication required.')).toBe('NOAUTH');
  });
});

describe('RedisDriver against a real redis-server', () => {
  let redis: RunningService;
  let acl: RunningService;
  beforeAll(async () => {
    [redis, acl] = await Promise.all([
      startRedis({ password: PASSWORD }),
      startRedis({ password: 'default-pw-x1', username: 'probe' }),
    ]);
  });
  afterAll(async () => {
    await Promise.all([redis?.stop(), acl?.stop()]);
  });

  it('tls: true against a plain-text server: the handshake gets no answer, and the message suggests tls: false', async () => {
    const outcome = await probe(context({ host: redis.host, port: redis.port, tls: true }, { timeoutMs: 1_000 }));
    // redis-server reads the ClientHello as an unfinished inline command and waits.
    expect(outcome).toMatchObject({ reason: 'TLSError', reachable: 'True' });
    expect(outcome.message).toContain('TLS handshake got no answer');
    expect(outcome.message).toContain('tls: false');
  });

  it('right password: Succeeded', async () => {
    expect(await probe(context({ host: redis.host, port: redis.port }))).toMatchObject({
      reason: 'Succeeded',
      reachable: 'True',
      authenticated: 'True',
    });
  });

  it('wrong password: AuthenticationFailed', async () => {
    const outcome = await probe(
      context({ host: redis.host, port: redis.port }, { credentials: { password: 'nope-wrong' } }),
    );
    expect(outcome).toMatchObject({ reason: 'AuthenticationFailed', reachable: 'True', authenticated: 'False' });
  });

  it('no password against a server that requires one: AuthenticationFailed (NOAUTH)', async () => {
    const outcome = await probe(context({ host: redis.host, port: redis.port }, { credentials: {} }));
    expect(outcome).toMatchObject({ reason: 'AuthenticationFailed', message: expect.stringContaining('NOAUTH') });
  });

  it('ACL user: AUTH username password', async () => {
    // The ACL user's password is 'default-pw-x1' as well (startRedis gives both the same one).
    const ok = await probe(
      context({ host: acl.host, port: acl.port, username: 'probe' }, { credentials: { password: 'default-pw-x1' } }),
    );
    expect(ok).toMatchObject({ reason: 'Succeeded' });
    const wrongUser = await probe(
      context({ host: acl.host, port: acl.port, username: 'mallory' }, { credentials: { password: 'default-pw-x1' } }),
    );
    expect(wrongUser).toMatchObject({ reason: 'AuthenticationFailed' });
  });

  it('egress policy without loopback: EgressDenied', async () => {
    const outcome = await probe(context({ host: redis.host, port: redis.port }, { egress: { allowCIDRs: [] } }));
    expect(outcome).toMatchObject({ reason: 'EgressDenied' });
  });
});

describe('RedisDriver over TLS', () => {
  it('verifies the server against trustedCAs and authenticates', async () => {
    const pki = createTestPki('redis');
    const redis = await startRedis({ password: PASSWORD, tls: { ...pki.server, caPem: pki.ca.certPem } });
    try {
      const outcome = await probe(
        context({ host: redis.host, port: redis.port, tls: true }, { trustedCAs: [pki.ca.certPem] }),
      );
      expect(outcome).toMatchObject({ reason: 'Succeeded' });
    } finally {
      await redis.stop();
    }
  });

  it('an untrusted certificate: TLSError', async () => {
    const mismatch = await startTlsMismatchServer();
    try {
      expect(await probe(context({ host: mismatch.host, port: mismatch.port, tls: true }))).toMatchObject({
        reason: 'TLSError',
        reachable: 'False',
      });
    } finally {
      await mismatch.stop();
    }
  });
});

describe('RedisDriver network failures', () => {
  it('closed port: Unreachable', async () => {
    const closed = await closedPort();
    expect(await probe(context({ host: closed.host, port: closed.port }))).toMatchObject({
      reason: 'Unreachable',
      reachable: 'False',
    });
  });

  it('silent server: Timeout after connecting', async () => {
    const silent = await startSilentServer();
    try {
      const started = Date.now();
      const outcome = await probe(context({ host: silent.host, port: silent.port }, { timeoutMs: 400 }));
      expect(outcome).toMatchObject({ reason: 'Timeout', reachable: 'Unknown' });
      expect(Date.now() - started).toBeLessThan(2_000);
    } finally {
      await silent.stop();
    }
  });
});
