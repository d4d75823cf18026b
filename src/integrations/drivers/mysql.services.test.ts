import { createHash, generateKeyPairSync, randomBytes, timingSafeEqual } from 'node:crypto';
import { TLSSocket, createSecureContext } from 'node:tls';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCertificate, createCertificateAuthority } from '../../kube/x509.js';
import { freePort } from '../../dev/ports.js';
import { startMariadb, type DatabaseServer } from '../../../test/support/databases.js';
import type { ProbeContext } from '../probe-types.js';
import { MysqlDriver } from './mysql.js';
import { startSilentServer } from '../../../test/support/services.js';

const PASSWORD = 'my-Secret-8c1e';
const driver = new MysqlDriver();

function context(settings: Record<string, unknown>, overrides: Partial<ProbeContext> = {}): ProbeContext {
  return {
    settings: { database: 'app', user: 'probe', tls: false, ...settings },
    credentials: { password: PASSWORD },
    timeoutMs: 5000,
    egress: { allowCIDRs: ['127.0.0.0/8'] },
    maxResponseBytes: 64 * 1024,
    ...overrides,
  };
}

describe('MysqlDriver against a real MariaDB', () => {
  const ca = createCertificateAuthority({ commonName: 'atoll test CA' });
  const serverCert = createCertificate({ issuer: ca, commonName: 'db.test', dnsNames: ['db.test'], usage: 'server' });
  let db: DatabaseServer;

  beforeAll(async () => {
    db = await startMariadb({ user: 'probe', password: PASSWORD, database: 'app', tls: serverCert });
  });
  afterAll(async () => db?.stop());

  it('logs in with mysql_native_password and the right password', async () => {
    const outcome = await driver.probe(context({ host: db.host, port: db.port }));
    expect(outcome).toMatchObject({ reachable: 'True', authenticated: 'True', reason: 'Succeeded' });
    expect(outcome.message).not.toContain(PASSWORD);
  });

  it('reports a wrong password as AuthenticationFailed (1045) without echoing it', async () => {
    const outcome = await driver.probe(
      context({ host: db.host, port: db.port }, { credentials: { password: 'wrong-Guess-77' } }),
    );
    expect(outcome).toMatchObject({ reachable: 'True', authenticated: 'False', reason: 'AuthenticationFailed' });
    expect(outcome.message).toContain('1045');
    expect(outcome.message).not.toContain('wrong-Guess-77');
  });

  it('names the database setting for an unknown database', async () => {
    await db.exec("GRANT ALL ON *.* TO 'probe'@'127.0.0.1'");
    const outcome = await driver.probe(context({ host: db.host, port: db.port, database: 'missing_db' }));
    expect(outcome).toMatchObject({ reachable: 'True', authenticated: 'Unknown', reason: 'UnexpectedResponse' });
    expect(outcome.message).toContain('settings.database');
    expect(outcome.message).toContain('1049');
  });

  it('logs in over TLS, verifying the certificate against the trusted CA and host name', async () => {
    const outcome = await driver.probe(
      context(
        { host: 'db.test', port: 3306, tls: true },
        { trustedCAs: [ca.certPem], dial: () => ({ host: '127.0.0.1', port: db.port }) },
      ),
    );
    expect(outcome.reason).toBe('Succeeded');
    expect(outcome.message).toContain('over TLS');
  });

  it('reports an untrusted certificate as TLSError', async () => {
    const outcome = await driver.probe(
      context({ host: 'db.test', port: 3306, tls: true }, { dial: () => ({ host: '127.0.0.1', port: db.port }) }),
    );
    expect(outcome.reason).toBe('TLSError');
  });

  it('checks an IP address host against the certificate too (it names db.test, not 127.0.0.1)', async () => {
    const outcome = await driver.probe(
      context({ host: '127.0.0.1', port: db.port, tls: true }, { trustedCAs: [ca.certPem] }),
    );
    expect(outcome).toMatchObject({ reason: 'TLSError' });
  });

  it('reports a closed port as Unreachable', async () => {
    const outcome = await driver.probe(context({ host: '127.0.0.1', port: await freePort() }));
    expect(outcome).toMatchObject({ reachable: 'False', reason: 'Unreachable' });
  });

  it('times out on a server that accepts but never greets, with Reachable Unknown', async () => {
    const server = await startSilentServer();
    try {
      const outcome = await driver.probe(context({ host: '127.0.0.1', port: server.port }, { timeoutMs: 300 }));
      expect(outcome).toMatchObject({ reason: 'Timeout', reachable: 'Unknown' });
      expect(server.connections()).toBe(1);
    } finally {
      await server.stop();
    }
  });

  it('refuses a target outside the egress policy before connecting', async () => {
    const server = await startSilentServer();
    try {
      const port = server.port;
      const outcome = await driver.probe(
        context({ host: '127.0.0.1', port }, { egress: { allowCIDRs: ['10.0.0.0/8'] } }),
      );
      expect(outcome).toMatchObject({ reachable: 'False', reason: 'EgressDenied' });
      expect(server.connections()).toBe(0);
    } finally {
      await server.stop();
    }
  });
});

/**
 * MySQL 8's caching_sha2_password, which MariaDB does not implement, so it cannot
 * run here: a contract fixture written from the MySQL protocol documentation. It
 * greets with mysql_native_password (as a server whose default differs from the
 * account's plugin does), switches to caching_sha2_password, and checks the
 * scramble the way the server does: XOR with SHA256(stored || nonce) must yield a
 * value whose SHA256 is the stored SHA256(SHA256(password)). With `cached: false`
 * it demands full authentication: the cleartext password over TLS, or (without
 * TLS) it offers its RSA public key to a client that asks for it and records that
 * it was asked.
 */
async function cachingSha2Server(
  password: string,
  cached: boolean,
  tls?: { certPem: string; keyPem: string },
): Promise<{ port: number; close: () => Promise<void>; logins: string[]; keyRequests: () => number }> {
  const { publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const stored = sha256(sha256(Buffer.from(password)));
  const logins: string[] = [];
  let keyRequests = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((raw) => {
    sockets.add(raw);
    let socket: net.Socket = raw;
    let packets = packetReader(socket);
    const send = (seq: number, payload: Buffer) => socket.write(Buffer.concat([header(payload.length, seq), payload]));
    const ok = (seq: number) => send(seq, Buffer.from([0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00]));
    const denied = (seq: number) =>
      send(seq, Buffer.concat([Buffer.from([0xff, 0x15, 0x04]), Buffer.from('#28000Access denied')]));
    void (async () => {
      const greetingNonce = randomBytes(20);
      send(0, greeting(greetingNonce, tls !== undefined));
      let seq = 1;
      if (tls) {
        await packets.next(); // SSLRequest
        // The ClientHello may have arrived with it: hand those bytes to the TLS layer.
        raw.pause();
        raw.removeAllListeners('data');
        const early = packets.rest();
        if (early.length > 0) raw.unshift(early);
        socket = new TLSSocket(raw, {
          isServer: true,
          secureContext: createSecureContext({ cert: tls.certPem, key: tls.keyPem }),
        });
        packets = packetReader(socket);
        seq = 2;
      }
      await packets.next(); // HandshakeResponse41 answered with the native scramble
      const nonce = randomBytes(20);
      send(
        seq + 1,
        Buffer.concat([Buffer.from([0xfe]), Buffer.from('caching_sha2_password\0'), nonce, Buffer.from([0])]),
      );
      const scramble = (await packets.next()).payload;
      const stage1 = xor(scramble, sha256(Buffer.concat([stored, nonce])));
      const matches = scramble.length === 32 && timingSafeEqual(sha256(stage1), stored);
      if (!matches) return denied(seq + 3);
      if (cached) {
        send(seq + 3, Buffer.from([0x01, 0x03]));
        logins.push('fast');
        return ok(seq + 4);
      }
      send(seq + 3, Buffer.from([0x01, 0x04]));
      const next = (await packets.next()).payload;
      if (next[0] === 0x02 && next.length === 1) {
        keyRequests++;
        send(
          seq + 5,
          Buffer.concat([Buffer.from([0x01]), Buffer.from(publicKey.export({ type: 'spki', format: 'pem' }))]),
        );
        return;
      }
      if (!tls || next.toString() !== `${password}\0`) return denied(seq + 5);
      logins.push('full');
      return ok(seq + 5);
    })().catch(() => socket.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    logins,
    keyRequests: () => keyRequests,
    close: () => {
      for (const socket of sockets) socket.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

function greeting(nonce: Buffer, tls: boolean): Buffer {
  const capabilities = 0x0000_0200 | 0x0000_8000 | 0x0008_0000 | 0x0020_0000 | 0x8 | 0x1 | 0x4 | (tls ? 0x800 : 0);
  const fixed = Buffer.alloc(4 + 8 + 1 + 2 + 1 + 2 + 2 + 1 + 10);
  let o = 4; // connection id 0
  nonce.copy(fixed, o, 0, 8);
  o += 9;
  fixed.writeUInt16LE(capabilities & 0xffff, o);
  fixed[o + 2] = 45;
  fixed.writeUInt16LE(capabilities >>> 16, o + 5);
  fixed[o + 7] = 21;
  return Buffer.concat([
    Buffer.from([10]),
    Buffer.from('8.0.36-fixture\0'),
    fixed,
    nonce.subarray(8),
    Buffer.from([0]),
    Buffer.from('mysql_native_password\0'),
  ]);
}

function packetReader(socket: net.Socket): {
  next: () => Promise<{ seq: number; payload: Buffer }>;
  rest: () => Buffer;
} {
  let buffer = Buffer.alloc(0);
  const waiting: Array<() => void> = [];
  socket.on('data', (chunk) => {
    buffer = Buffer.concat([buffer, chunk]);
    waiting.splice(0).forEach((wake) => wake());
  });
  return {
    rest() {
      const left = buffer;
      buffer = Buffer.alloc(0);
      return left;
    },
    async next() {
      for (;;) {
        if (buffer.length >= 4) {
          const length = buffer.readUIntLE(0, 3);
          if (buffer.length >= 4 + length) {
            const packet = { seq: buffer[3]!, payload: buffer.subarray(4, 4 + length) };
            buffer = buffer.subarray(4 + length);
            return packet;
          }
        }
        await new Promise<void>((resolve) => waiting.push(resolve));
      }
    },
  };
}

function header(length: number, seq: number): Buffer {
  const h = Buffer.alloc(4);
  h.writeUIntLE(length, 0, 3);
  h[3] = seq;
  return h;
}

function sha256(data: Buffer): Buffer {
  return createHash('sha256').update(data).digest();
}

function xor(a: Buffer, b: Buffer): Buffer {
  return Buffer.from(a.map((byte, i) => byte ^ b[i]!));
}

describe('MysqlDriver against a caching_sha2_password contract fixture', () => {
  const ca = createCertificateAuthority({ commonName: 'atoll test CA' });
  const serverCert = createCertificate({ issuer: ca, commonName: 'db.test', dnsNames: ['db.test'], usage: 'server' });
  const overTls = (port: number, overrides: Partial<ProbeContext> = {}) =>
    context(
      { host: 'db.test', port: 3306, tls: true },
      { trustedCAs: [ca.certPem], dial: () => ({ host: '127.0.0.1', port }), ...overrides },
    );

  it('follows the auth switch and completes fast authentication', async () => {
    const fixture = await cachingSha2Server(PASSWORD, true);
    try {
      const outcome = await driver.probe(context({ host: '127.0.0.1', port: fixture.port }));
      expect(outcome.reason).toBe('Succeeded');
      expect(fixture.logins).toEqual(['fast']);
      const wrong = await driver.probe(
        context({ host: '127.0.0.1', port: fixture.port }, { credentials: { password: 'nope' } }),
      );
      expect(wrong).toMatchObject({ reason: 'AuthenticationFailed', authenticated: 'False' });
      expect(fixture.logins).toEqual(['fast']);
    } finally {
      await fixture.close();
    }
  });

  it('completes full authentication over TLS, sending the password only inside it', async () => {
    const fixture = await cachingSha2Server(PASSWORD, false, serverCert);
    try {
      const outcome = await driver.probe(overTls(fixture.port));
      expect(outcome).toMatchObject({ reason: 'Succeeded' });
      expect(outcome.message).toContain('over TLS');
      expect(fixture.logins).toEqual(['full']);
      expect(fixture.keyRequests()).toBe(0);
    } finally {
      await fixture.close();
    }
  });

  it('never asks for the server RSA key without TLS: it stops and names settings.tls', async () => {
    const fixture = await cachingSha2Server(PASSWORD, false);
    try {
      const outcome = await driver.probe(context({ host: '127.0.0.1', port: fixture.port }));
      expect(outcome).toMatchObject({ reason: 'TLSError', reachable: 'True' });
      expect(outcome.message).toContain('set settings.tls to true');
      expect(outcome.message).not.toContain(PASSWORD);
      expect(fixture.keyRequests()).toBe(0);
      expect(fixture.logins).toEqual([]);
    } finally {
      await fixture.close();
    }
  });
});
