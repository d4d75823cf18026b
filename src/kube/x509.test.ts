import { X509Certificate } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { afterAll, describe, expect, it } from 'vitest';
import {
  ERROR_INVALID_IP_ADDRESS,
  ERROR_INVALID_ISSUER_KEY,
  ERROR_ISSUER_KEY_MISMATCH,
  ERROR_ISSUER_NOT_CA,
  certificateExpiresAt,
  createCertificate,
  createCertificateAuthority,
} from './x509.js';
import type { KeyPairPem } from './x509.js';

const DAY_MS = 86_400_000;
const workDir = mkdtempSync(join(tmpdir(), 'atoll-x509-'));
afterAll(() => rmSync(workDir, { recursive: true, force: true }));

let fileCounter = 0;
function writePem(pem: string): string {
  const path = join(workDir, `${fileCounter++}.pem`);
  writeFileSync(path, pem);
  return path;
}

function openssl(...args: string[]): string {
  return execFileSync('openssl', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

const opensslText = (pem: string): string => openssl('x509', '-noout', '-text', '-in', writePem(pem));
const opensslVerify = (caPem: string, pem: string): string =>
  openssl('verify', '-CAfile', writePem(caPem), writePem(pem));
/** The line after an extension's heading in `openssl x509 -text`, e.g. the key usage names. */
function extensionValue(text: string, heading: string): string {
  const match = new RegExp(`${heading}:( critical)? *\\n\\s*(.*)`).exec(text);
  if (!match) throw new Error(`extension ${heading} missing`);
  return `${match[2]}${match[1] ? ' (critical)' : ''}`;
}

const ca = createCertificateAuthority({ commonName: 'atoll-test-ca' });

describe('createCertificateAuthority', () => {
  it('creates a self-signed v3 CA with critical CA constraints and CA key usages', () => {
    const cert = new X509Certificate(ca.certPem);
    expect(cert.subject).toBe('CN=atoll-test-ca');
    expect(cert.issuer).toBe('CN=atoll-test-ca');
    expect(cert.ca).toBe(true);
    expect(cert.checkIssued(cert)).toBe(true);
    expect(cert.verify(cert.publicKey)).toBe(true);
    expect(cert.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    expect(ca.keyPem).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);

    const text = opensslText(ca.certPem);
    expect(text).toContain('Version: 3 (0x2)');
    expect(text).toContain('Signature Algorithm: ecdsa-with-SHA256');
    expect(extensionValue(text, 'X509v3 Basic Constraints')).toBe('CA:TRUE, pathlen:0 (critical)');
    expect(extensionValue(text, 'X509v3 Key Usage')).toBe('Certificate Sign, CRL Sign (critical)');
    expect(extensionValue(text, 'X509v3 Authority Key Identifier')).toContain(
      extensionValue(text, 'X509v3 Subject Key Identifier'),
    );
    expect(opensslVerify(ca.certPem, ca.certPem)).toContain(': OK');
  });

  it('defaults to ten years and backdates notBefore by five minutes', () => {
    const cert = new X509Certificate(ca.certPem);
    const skewMs = Date.now() - new Date(cert.validFrom).getTime();
    expect(skewMs).toBeGreaterThanOrEqual(4 * 60_000);
    expect(skewMs).toBeLessThan(6 * 60_000);
    const lifetimeDays = (certificateExpiresAt(ca.certPem).getTime() - Date.now()) / DAY_MS;
    expect(lifetimeDays).toBeGreaterThan(3649.9);
    expect(lifetimeDays).toBeLessThan(3650.1);
  });

  it('uses random positive serial numbers', () => {
    const serials = [ca, createCertificateAuthority({ commonName: 'other' })].map(
      (pair) => new X509Certificate(pair.certPem).serialNumber,
    );
    expect(serials[0]).not.toBe(serials[1]);
    for (const serial of serials) expect(BigInt(`0x${serial}`)).toBeGreaterThan(0n);
  });
});

describe('createCertificate', () => {
  const server = createCertificate({
    issuer: ca,
    commonName: 'kube-apiserver',
    usage: 'server',
    dnsNames: ['kubernetes', 'kubernetes.default.svc'],
    ipAddresses: ['127.0.0.1', '10.96.0.1', 'fd00::1', '::ffff:10.0.0.1'],
  });

  it('creates a server certificate with SANs that chains to the CA', () => {
    const cert = new X509Certificate(server.certPem);
    const caCert = new X509Certificate(ca.certPem);
    expect(cert.subject).toBe('CN=kube-apiserver');
    expect(cert.issuer).toBe('CN=atoll-test-ca');
    expect(cert.ca).toBe(false);
    expect(cert.checkIssued(caCert)).toBe(true);
    expect(cert.verify(caCert.publicKey)).toBe(true);
    expect(cert.checkHost('kubernetes.default.svc')).toBe('kubernetes.default.svc');
    expect(cert.checkIP('127.0.0.1')).toBe('127.0.0.1');
    expect(cert.checkIP('fd00:0::1')).toBe('fd00:0::1');
    expect(cert.checkIP('10.0.0.2')).toBeUndefined();
    expect(cert.subjectAltName).toBe(
      'DNS:kubernetes, DNS:kubernetes.default.svc, IP Address:127.0.0.1, ' +
        'IP Address:10.96.0.1, IP Address:FD00:0:0:0:0:0:0:1, IP Address:0:0:0:0:0:FFFF:A00:1',
    );

    const text = opensslText(server.certPem);
    expect(extensionValue(text, 'X509v3 Basic Constraints')).toBe('CA:FALSE (critical)');
    expect(extensionValue(text, 'X509v3 Key Usage')).toBe('Digital Signature, Key Encipherment (critical)');
    expect(extensionValue(text, 'X509v3 Extended Key Usage')).toBe('TLS Web Server Authentication');
    expect(extensionValue(text, 'X509v3 Authority Key Identifier')).toContain(
      extensionValue(opensslText(ca.certPem), 'X509v3 Subject Key Identifier'),
    );
    expect(opensslVerify(ca.certPem, server.certPem)).toContain(': OK');
  });

  it('creates a client certificate whose O entries carry the Kubernetes groups', () => {
    const client = createCertificate({
      issuer: ca,
      commonName: 'zoë',
      organizations: ['system:masters', 'atoll:devs'],
      usage: 'client',
      validDays: 30,
    });
    const cert = new X509Certificate(client.certPem);
    expect(cert.subject).toBe('O=system:masters\nO=atoll:devs\nCN=zoë');
    expect(cert.subjectAltName).toBeUndefined();
    const lifetimeDays = (certificateExpiresAt(client.certPem).getTime() - Date.now()) / DAY_MS;
    expect(Math.round(lifetimeDays)).toBe(30);

    const text = opensslText(client.certPem);
    expect(extensionValue(text, 'X509v3 Extended Key Usage')).toBe('TLS Web Client Authentication');
    expect(openssl('asn1parse', '-in', writePem(client.certPem))).toMatch(/UTF8STRING\s+:zo/);
    expect(opensslVerify(ca.certPem, client.certPem)).toContain(': OK');
  });

  it('supports both extended key usages at once', () => {
    const both = createCertificate({ issuer: ca, commonName: 'webhook', usage: 'server-and-client' });
    expect(extensionValue(opensslText(both.certPem), 'X509v3 Extended Key Usage')).toBe(
      'TLS Web Server Authentication, TLS Web Client Authentication',
    );
  });

  it('encodes validity past 2049 as GeneralizedTime and reports the right expiry', () => {
    const longLived = createCertificate({
      issuer: ca,
      commonName: 'far-future',
      usage: 'client',
      validDays: 365 * 100,
    });
    const times = openssl('asn1parse', '-in', writePem(longLived.certPem)).match(/(UTCTIME|GENERALIZEDTIME)/g);
    expect(times).toEqual(['UTCTIME', 'GENERALIZEDTIME']);
    expect(certificateExpiresAt(longLived.certPem).getUTCFullYear()).toBe(
      new Date(Date.now() + 365 * 100 * DAY_MS).getUTCFullYear(),
    );
    expect(opensslVerify(ca.certPem, longLived.certPem)).toContain(': OK');
  });

  it('rejects bad input and issuers that cannot sign', () => {
    expect(() =>
      createCertificate({ issuer: ca, commonName: 'x', usage: 'server', ipAddresses: ['300.1.1.1'] }),
    ).toThrow(ERROR_INVALID_IP_ADDRESS);
    const other = createCertificateAuthority({ commonName: 'other' });
    expect(() =>
      createCertificate({ issuer: { certPem: ca.certPem, keyPem: other.keyPem }, commonName: 'x', usage: 'client' }),
    ).toThrow(ERROR_ISSUER_KEY_MISMATCH);
    expect(() => createCertificate({ issuer: server, commonName: 'x', usage: 'client' })).toThrow(ERROR_ISSUER_NOT_CA);
    expect(() =>
      createCertificate({ issuer: { certPem: ca.certPem, keyPem: 'not a key' }, commonName: 'x', usage: 'client' }),
    ).toThrow(ERROR_INVALID_ISSUER_KEY);
  });
});

describe('mutual TLS with the generated certificates', () => {
  interface HandshakeResult {
    /** The client subject the server saw, or undefined when the server refused the client. */
    seenByServer?: { CN?: string | string[]; O?: string | string[] };
    receivedByClient?: string;
    clientErrorCode?: string;
  }

  /** One handshake on 127.0.0.1: the server trusts `ca` only and requires a client certificate. */
  async function handshake(clientPair: KeyPairPem, clientTrusts: string): Promise<HandshakeResult> {
    const serverPair = createCertificate({
      issuer: ca,
      commonName: 'localhost',
      usage: 'server',
      ipAddresses: ['127.0.0.1'],
    });
    const result: HandshakeResult = {};
    const server = tls.createServer(
      {
        key: serverPair.keyPem,
        cert: serverPair.certPem,
        ca: ca.certPem,
        requestCert: true,
        rejectUnauthorized: true,
      },
      (socket) => {
        const subject = socket.getPeerCertificate().subject;
        result.seenByServer = { CN: subject.CN, O: subject.O };
        socket.end('hello');
      },
    );
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      await new Promise<void>((resolve) => {
        const socket = tls.connect({
          host: '127.0.0.1',
          port: (server.address() as AddressInfo).port,
          ca: clientTrusts,
          key: clientPair.keyPem,
          cert: clientPair.certPem,
        });
        socket.on('error', (err: NodeJS.ErrnoException) => {
          result.clientErrorCode ??= err.code;
        });
        socket.on('data', (chunk: Buffer) => {
          result.receivedByClient = (result.receivedByClient ?? '') + chunk.toString();
        });
        socket.on('close', () => resolve());
      });
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
    return result;
  }

  it('authenticates a client certificate and exposes its CN and groups to the server', async () => {
    const alice = createCertificate({
      issuer: ca,
      commonName: 'alice',
      organizations: ['team-a', 'system:authenticated'],
      usage: 'client',
    });
    const result = await handshake(alice, ca.certPem);
    expect(result).toEqual({
      seenByServer: { CN: 'alice', O: ['team-a', 'system:authenticated'] },
      receivedByClient: 'hello',
    });
  });

  it('rejects a client certificate signed by a different CA with the same name', async () => {
    const rogueCa = createCertificateAuthority({ commonName: 'atoll-test-ca' });
    const mallory = createCertificate({
      issuer: rogueCa,
      commonName: 'mallory',
      organizations: ['system:masters'],
      usage: 'client',
    });
    expect(new X509Certificate(mallory.certPem).issuer).toBe(new X509Certificate(ca.certPem).subject);
    expect(() => opensslVerify(ca.certPem, mallory.certPem)).toThrow();
    const result = await handshake(mallory, ca.certPem);
    expect(result.seenByServer).toBeUndefined();
    expect(result.receivedByClient).toBeUndefined();
  });

  it('lets the client reject a server whose CA it does not trust', async () => {
    const alice = createCertificate({ issuer: ca, commonName: 'alice', usage: 'client' });
    const unrelatedCa = createCertificateAuthority({ commonName: 'unrelated' });
    const result = await handshake(alice, unrelatedCa.certPem);
    expect(result.seenByServer).toBeUndefined();
    expect(result.clientErrorCode).toBe('SELF_SIGNED_CERT_IN_CHAIN');
  });
});
