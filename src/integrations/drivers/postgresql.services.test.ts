import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCertificate, createCertificateAuthority } from '../../kube/x509.js';
import { freePort } from '../../dev/ports.js';
import { startPostgres, type DatabaseServer } from '../../../test/support/databases.js';
import type { ProbeContext, ProbeOutcome } from '../probe-types.js';
import { PostgresqlDriver } from './postgresql.js';

const PASSWORD = 'pg-Secret-3f9a';
const driver = new PostgresqlDriver();

function context(settings: Record<string, unknown>, overrides: Partial<ProbeContext> = {}): ProbeContext {
  return {
    settings: { database: 'app', user: 'probe', sslmode: 'disable', ...settings },
    credentials: { password: PASSWORD },
    timeoutMs: 5000,
    egress: { allowCIDRs: ['127.0.0.0/8'] },
    maxResponseBytes: 64 * 1024,
    ...overrides,
  };
}

function expectNoSecret(outcome: ProbeOutcome, ...secrets: string[]): void {
  for (const secret of [PASSWORD, ...secrets]) expect(outcome.message).not.toContain(secret);
}

/** A loopback listener that counts connections and never answers: for egress and timeout checks. */
async function silentServer(): Promise<{ port: number; connections: () => number; close: () => Promise<void> }> {
  let count = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    count++;
    sockets.add(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    connections: () => count,
    close: () => {
      for (const socket of sockets) socket.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

describe('PostgresqlDriver against a real PostgreSQL without TLS', () => {
  let pg: DatabaseServer;

  beforeAll(async () => {
    pg = await startPostgres({
      user: 'probe',
      password: PASSWORD,
      database: 'app',
      hbaRules: ['host all md5user 127.0.0.1/32 md5', 'host all clearuser 127.0.0.1/32 password'],
    });
    await pg.exec("SET password_encryption = 'md5'; CREATE ROLE md5user LOGIN PASSWORD 'md5-Secret-1'");
    await pg.exec("CREATE ROLE clearuser LOGIN PASSWORD 'clear-Secret-1'");
  });
  afterAll(async () => pg?.stop());

  it('logs in with SCRAM-SHA-256 and the right password', async () => {
    const outcome = await driver.probe(context({ host: pg.host, port: pg.port }));
    expect(outcome).toMatchObject({ reachable: 'True', authenticated: 'True', reason: 'Succeeded' });
    expect(outcome.message).toContain(`127.0.0.1:${pg.port}`);
    expectNoSecret(outcome);
  });

  it('reports a wrong password as AuthenticationFailed without echoing it', async () => {
    const outcome = await driver.probe(
      context({ host: pg.host, port: pg.port }, { credentials: { password: 'wrong-Guess-77' } }),
    );
    expect(outcome).toMatchObject({ reachable: 'True', authenticated: 'False', reason: 'AuthenticationFailed' });
    expect(outcome.message).toContain('28P01');
    expectNoSecret(outcome, 'wrong-Guess-77');
  });

  it('logs in with MD5, and refuses to send a cleartext password over an unencrypted connection', async () => {
    const md5 = await driver.probe(
      context(
        { host: pg.host, port: pg.port, user: 'md5user', database: 'postgres' },
        { credentials: { password: 'md5-Secret-1' } },
      ),
    );
    expect(md5.reason).toBe('Succeeded');
    const md5Wrong = await driver.probe(
      context(
        { host: pg.host, port: pg.port, user: 'md5user', database: 'postgres' },
        { credentials: { password: 'nope' } },
      ),
    );
    expect(md5Wrong.reason).toBe('AuthenticationFailed');
    const clear = await driver.probe(
      context(
        { host: pg.host, port: pg.port, user: 'clearuser', database: 'postgres' },
        { credentials: { password: 'clear-Secret-1' } },
      ),
    );
    expect(clear).toMatchObject({ reachable: 'True', reason: 'UnexpectedResponse' });
    expect(clear.message).toContain('asked for the password in clear text over an unencrypted connection');
    expectNoSecret(clear, 'clear-Secret-1');
  });

  it('names the database setting when the database does not exist', async () => {
    const outcome = await driver.probe(context({ host: pg.host, port: pg.port, database: 'missing_db' }));
    expect(outcome).toMatchObject({ reachable: 'True', authenticated: 'Unknown', reason: 'UnexpectedResponse' });
    expect(outcome.message).toContain('settings.database');
    expect(outcome.message).toContain('3D000');
  });

  it('reports CredentialsMissing when the server asks for a password that is not configured', async () => {
    const outcome = await driver.probe(context({ host: pg.host, port: pg.port }, { credentials: {} }));
    expect(outcome.reason).toBe('CredentialsMissing');
  });

  it('reports sslmode=require against a server without SSL as TLSError', async () => {
    const outcome = await driver.probe(context({ host: pg.host, port: pg.port, sslmode: 'require' }));
    expect(outcome).toMatchObject({ reason: 'TLSError', reachable: 'True', authenticated: 'Unknown' });
    expect(outcome.message).toContain('sslmode');
  });

  it('falls back to an unencrypted connection with sslmode=prefer, as libpq does', async () => {
    const outcome = await driver.probe(context({ host: pg.host, port: pg.port, sslmode: 'prefer' }));
    expect(outcome.reason).toBe('Succeeded');
    expect(outcome.message).not.toContain('TLS');
  });

  it('reports a closed port as Unreachable', async () => {
    const outcome = await driver.probe(context({ host: '127.0.0.1', port: await freePort() }));
    expect(outcome).toMatchObject({ reachable: 'False', reason: 'Unreachable' });
  });

  it('refuses a loopback target outside the egress policy before connecting', async () => {
    const listener = await silentServer();
    try {
      const outcome = await driver.probe(
        context({ host: '127.0.0.1', port: listener.port }, { egress: { allowCIDRs: [] } }),
      );
      expect(outcome).toMatchObject({ reachable: 'False', reason: 'EgressDenied' });
      expect(listener.connections()).toBe(0);
    } finally {
      await listener.close();
    }
  });

  it('times out on a server that accepts but never answers, with Reachable Unknown', async () => {
    const listener = await silentServer();
    try {
      const outcome = await driver.probe(context({ host: '127.0.0.1', port: listener.port }, { timeoutMs: 300 }));
      expect(outcome).toMatchObject({ reachable: 'Unknown', reason: 'Timeout' });
      expect(listener.connections()).toBe(1);
    } finally {
      await listener.close();
    }
  });

  it('reports a non-PostgreSQL server as UnexpectedResponse', async () => {
    const server = net.createServer((socket) => socket.resume().end('HTTP/1.1 400 Bad Request\r\n\r\n'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const outcome = await driver.probe(
        context({ host: '127.0.0.1', port: (server.address() as net.AddressInfo).port }),
      );
      expect(outcome).toMatchObject({ reachable: 'True', reason: 'UnexpectedResponse' });
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('reports missing settings as InvalidSettings without connecting', async () => {
    const outcome = await driver.probe(context({ host: undefined }));
    expect(outcome).toMatchObject({ reason: 'InvalidSettings' });
    expect(outcome.message).toContain('settings.host');
  });
});

describe('PostgresqlDriver against a real PostgreSQL with TLS', () => {
  const ca = createCertificateAuthority({ commonName: 'atoll test CA' });
  const otherCa = createCertificateAuthority({ commonName: 'unrelated CA' });
  const serverCert = createCertificate({ issuer: ca, commonName: 'db.test', dnsNames: ['db.test'], usage: 'server' });
  let pg: DatabaseServer;

  beforeAll(async () => {
    pg = await startPostgres({ user: 'probe', password: PASSWORD, database: 'app', tls: serverCert });
  });
  afterAll(async () => pg?.stop());

  // The certificate names db.test; dial sends that name to the loopback server (like curl --connect-to).
  const viaDbTest = (overrides: Partial<ProbeContext> = {}): ProbeContext =>
    context(
      { host: 'db.test', port: 5432, sslmode: 'verify-full' },
      { dial: () => ({ host: '127.0.0.1', port: pg.port }), ...overrides },
    );

  it('logs in over TLS with sslmode=require without checking the certificate', async () => {
    const outcome = await driver.probe(context({ host: pg.host, port: pg.port, sslmode: 'require' }));
    expect(outcome.reason).toBe('Succeeded');
    expect(outcome.message).toContain('TLS');
  });

  it('logs in with sslmode=verify-full when the CA is trusted and the name matches', async () => {
    const outcome = await driver.probe(viaDbTest({ trustedCAs: [ca.certPem] }));
    expect(outcome).toMatchObject({ reason: 'Succeeded', message: expect.stringContaining('db.test:5432') });
  });

  it('fails verify-full with TLSError for an untrusted CA or a name mismatch', async () => {
    expect((await driver.probe(viaDbTest({ trustedCAs: [otherCa.certPem] }))).reason).toBe('TLSError');
    const mismatch = await driver.probe(
      context({ host: '127.0.0.1', port: pg.port, sslmode: 'verify-full' }, { trustedCAs: [ca.certPem] }),
    );
    expect(mismatch.reason).toBe('TLSError');
  });

  it('with sslmode=verify-ca checks the chain but not the name', async () => {
    const byAddress = await driver.probe(
      context({ host: '127.0.0.1', port: pg.port, sslmode: 'verify-ca' }, { trustedCAs: [ca.certPem] }),
    );
    expect(byAddress.reason).toBe('Succeeded');
    const untrusted = await driver.probe(
      context({ host: '127.0.0.1', port: pg.port, sslmode: 'verify-ca' }, { trustedCAs: [otherCa.certPem] }),
    );
    expect(untrusted.reason).toBe('TLSError');
    const prefer = await driver.probe(context({ host: pg.host, port: pg.port, sslmode: 'prefer' }));
    expect(prefer).toMatchObject({ reason: 'Succeeded', message: expect.stringContaining('TLS') });
  });

  it('still refuses a wrong password over TLS', async () => {
    const outcome = await driver.probe(viaDbTest({ trustedCAs: [ca.certPem], credentials: { password: 'bad' } }));
    expect(outcome.reason).toBe('AuthenticationFailed');
  });
});
