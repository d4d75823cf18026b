/**
 * Dependency-free X.509 certificate issuance. The dev/test control plane needs
 * a CA, an apiserver serving certificate and client certificates (CN = user,
 * O = groups), and the admission webhook rotates its own serving certificate
 * in-cluster; Node's crypto can make keys and sign but cannot build
 * certificates, and we want neither openssl at runtime nor another npm package.
 * Keys are ECDSA P-256 signed with ecdsa-with-SHA256.
 */
import { X509Certificate, createHash, createPrivateKey, generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { isIP } from 'node:net';
import {
  bitString, booleanTrue, explicit, implicitPrimitive, objectIdentifier, octetString,
  readElement, sequence, set, unsignedInteger, utf8String, x509Time,
} from './asn1.js';

/** A certificate and its PKCS#8 private key, both PEM-encoded. */
export interface KeyPairPem {
  certPem: string;
  keyPem: string;
}

export interface CertificateAuthorityOptions {
  commonName: string;
  /** Defaults to 3650. */
  validDays?: number;
}

export type CertificateUsage = 'server' | 'client' | 'server-and-client';

export interface CertificateOptions {
  /** The CA that signs this certificate. */
  issuer: KeyPairPem;
  commonName: string;
  /** O= entries; Kubernetes reads them as the user's groups. */
  organizations?: string[];
  dnsNames?: string[];
  /** IPv4 or IPv6 literals. */
  ipAddresses?: string[];
  usage: CertificateUsage;
  /** Defaults to 365. */
  validDays?: number;
}

export const ERROR_EMPTY_COMMON_NAME = 'certificate common name must not be empty';
export const ERROR_INVALID_VALIDITY = 'certificate validity must be a positive number of days';
export const ERROR_INVALID_DNS_NAME = 'certificate DNS name must be non-empty ASCII';
export const ERROR_INVALID_IP_ADDRESS = 'certificate IP address is not a valid IPv4 or IPv6 literal';
export const ERROR_INVALID_ISSUER_KEY = 'issuer private key PEM could not be parsed';
export const ERROR_UNSUPPORTED_ISSUER_KEY = 'issuer key must be an ECDSA P-256 private key';
export const ERROR_ISSUER_KEY_MISMATCH = 'issuer private key does not match the issuer certificate';
export const ERROR_ISSUER_NOT_CA = 'issuer certificate is not a CA';
export const ERROR_INVALID_CERTIFICATE = 'certificate PEM could not be parsed';

const OID = {
  commonName: '2.5.4.3',
  organization: '2.5.4.10',
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  subjectKeyIdentifier: '2.5.29.14',
  keyUsage: '2.5.29.15',
  subjectAltName: '2.5.29.17',
  basicConstraints: '2.5.29.19',
  authorityKeyIdentifier: '2.5.29.35',
  extendedKeyUsage: '2.5.29.37',
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
} as const;

/** KeyUsage bit positions (RFC 5280 §4.2.1.3). */
const KEY_USAGE_BIT = { digitalSignature: 0, keyEncipherment: 2, keyCertSign: 5, cRLSign: 6 } as const;

const MS_PER_DAY = 86_400_000;
/** Tolerates clocks on other machines being slightly behind ours. */
const CLOCK_SKEW_MS = 5 * 60_000;

/** Creates a self-signed CA (pathLen 0: it signs leaves only) and its key. */
export function createCertificateAuthority(opts: CertificateAuthorityOptions): KeyPairPem {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const name = distinguishedName(opts.commonName, []);
  const keyId = subjectKeyIdentifier(publicKey);
  const certPem = signCertificate({
    issuerName: name, subjectName: name, subjectKey: publicKey, signingKey: privateKey,
    validDays: opts.validDays ?? 3650,
    extensions: [
      extension(OID.subjectKeyIdentifier, false, octetString(keyId)),
      extension(OID.authorityKeyIdentifier, false, sequence(implicitPrimitive(0, keyId))),
      extension(OID.basicConstraints, true, sequence(booleanTrue(), unsignedInteger(Buffer.from([0])))),
      extension(OID.keyUsage, true, keyUsage([KEY_USAGE_BIT.keyCertSign, KEY_USAGE_BIT.cRLSign])),
    ],
  });
  return { certPem, keyPem: exportKey(privateKey) };
}

/** Creates a leaf certificate signed by `opts.issuer`, with a fresh key. */
export function createCertificate(opts: CertificateOptions): KeyPairPem {
  const issuerCert = parseCertificate(opts.issuer.certPem);
  const issuerKey = parsePrivateKey(opts.issuer.keyPem);
  if (issuerKey.asymmetricKeyType !== 'ec' || issuerKey.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new Error(ERROR_UNSUPPORTED_ISSUER_KEY);
  }
  if (!issuerCert.checkPrivateKey(issuerKey)) throw new Error(ERROR_ISSUER_KEY_MISMATCH);
  if (!issuerCert.ca) throw new Error(ERROR_ISSUER_NOT_CA);

  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const extendedUsages = {
    server: [OID.serverAuth],
    client: [OID.clientAuth],
    'server-and-client': [OID.serverAuth, OID.clientAuth],
  }[opts.usage];
  const altNames = [
    ...(opts.dnsNames ?? []).map((dns) => implicitPrimitive(2, dnsNameBytes(dns))),
    ...(opts.ipAddresses ?? []).map((ip) => implicitPrimitive(7, ipAddressBytes(ip))),
  ];
  const extensions = [
    extension(OID.subjectKeyIdentifier, false, octetString(subjectKeyIdentifier(publicKey))),
    extension(OID.authorityKeyIdentifier, false,
      sequence(implicitPrimitive(0, subjectKeyIdentifier(issuerCert.publicKey)))),
    extension(OID.basicConstraints, true, sequence()),
    extension(OID.keyUsage, true, keyUsage([KEY_USAGE_BIT.digitalSignature, KEY_USAGE_BIT.keyEncipherment])),
    extension(OID.extendedKeyUsage, false, sequence(...extendedUsages.map(objectIdentifier))),
  ];
  if (altNames.length > 0) extensions.push(extension(OID.subjectAltName, false, sequence(...altNames)));

  const certPem = signCertificate({
    issuerName: subjectNameDer(issuerCert.raw),
    subjectName: distinguishedName(opts.commonName, opts.organizations ?? []),
    subjectKey: publicKey, signingKey: issuerKey,
    validDays: opts.validDays ?? 365,
    extensions,
  });
  return { certPem, keyPem: exportKey(privateKey) };
}

/** When the certificate stops being valid; used to decide when to renew it. */
export function certificateExpiresAt(certPem: string): Date {
  return new Date(parseCertificate(certPem).validTo);
}

interface UnsignedCertificate {
  issuerName: Buffer;
  subjectName: Buffer;
  subjectKey: KeyObject;
  signingKey: KeyObject;
  validDays: number;
  extensions: Buffer[];
}

function signCertificate(cert: UnsignedCertificate): string {
  if (!Number.isFinite(cert.validDays) || cert.validDays <= 0) throw new Error(ERROR_INVALID_VALIDITY);
  const now = Date.now();
  const signatureAlgorithm = sequence(objectIdentifier(OID.ecdsaWithSha256));
  const tbsCertificate = sequence(
    explicit(0, unsignedInteger(Buffer.from([2]))), // v3
    unsignedInteger(randomBytes(16)),
    signatureAlgorithm,
    cert.issuerName,
    sequence(x509Time(new Date(now - CLOCK_SKEW_MS)), x509Time(new Date(now + cert.validDays * MS_PER_DAY))),
    cert.subjectName,
    cert.subjectKey.export({ type: 'spki', format: 'der' }),
    explicit(3, sequence(...cert.extensions)),
  );
  const signature = sign('sha256', tbsCertificate, { key: cert.signingKey, dsaEncoding: 'der' });
  const der = sequence(tbsCertificate, signatureAlgorithm, bitString(signature));
  const body = der.toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '');
  return `-----BEGIN CERTIFICATE-----\n${body}\n-----END CERTIFICATE-----\n`;
}

/** Name: one RDN per O= entry, then CN, each a UTF8String. */
function distinguishedName(commonName: string, organizations: string[]): Buffer {
  if (commonName.length === 0) throw new Error(ERROR_EMPTY_COMMON_NAME);
  const rdn = (oid: string, value: string): Buffer => set(sequence(objectIdentifier(oid), utf8String(value)));
  return sequence(...organizations.map((o) => rdn(OID.organization, o)), rdn(OID.commonName, commonName));
}

/** The issuer's subject exactly as encoded in its certificate, so chains match byte for byte. */
function subjectNameDer(certificateDer: Buffer): Buffer {
  const tbs = readElement(certificateDer, readElement(certificateDer, 0).contentStart);
  let field = readElement(certificateDer, tbs.contentStart);
  if (field.tag === 0xa0) field = readElement(certificateDer, field.end); // version
  for (let skip = 0; skip < 4; skip++) field = readElement(certificateDer, field.end); // serial, alg, issuer, validity
  return certificateDer.subarray(field.start, field.end);
}

function extension(oid: string, critical: boolean, value: Buffer): Buffer {
  return sequence(objectIdentifier(oid), ...(critical ? [booleanTrue()] : []), octetString(value));
}

/** KeyUsage BIT STRING in DER form: trailing zero bits dropped and counted as unused. */
function keyUsage(bits: number[]): Buffer {
  const highest = Math.max(...bits);
  const bytes = Buffer.alloc(Math.floor(highest / 8) + 1);
  for (const bit of bits) bytes[bit >> 3]! |= 0x80 >> (bit & 7);
  return bitString(bytes, 7 - (highest & 7));
}

/** RFC 5280 method 1: SHA-1 of the subjectPublicKey bits (the uncompressed EC point). */
function subjectKeyIdentifier(publicKey: KeyObject): Buffer {
  const jwk = publicKey.export({ format: 'jwk' });
  const point = Buffer.concat([Buffer.from([4]), Buffer.from(jwk.x ?? '', 'base64url'), Buffer.from(jwk.y ?? '', 'base64url')]);
  return createHash('sha1').update(point).digest();
}

function dnsNameBytes(name: string): Buffer {
  if (!/^[\x21-\x7e]+$/.test(name)) throw new Error(ERROR_INVALID_DNS_NAME);
  return Buffer.from(name, 'ascii');
}

function ipAddressBytes(address: string): Buffer {
  const family = isIP(address);
  if (family === 4) return Buffer.from(address.split('.').map(Number));
  if (family !== 6 || address.includes('%')) throw new Error(ERROR_INVALID_IP_ADDRESS);
  let text = address;
  const tail = text.slice(text.lastIndexOf(':') + 1);
  if (tail.includes('.')) {
    const [a = 0, b = 0, c = 0, d = 0] = tail.split('.').map(Number);
    text = `${text.slice(0, text.length - tail.length)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', rest] = text.split('::');
  const headGroups = head ? head.split(':') : [];
  const tailGroups = rest ? rest.split(':') : [];
  const zeros = rest === undefined ? [] : Array<string>(8 - headGroups.length - tailGroups.length).fill('0');
  const bytes = Buffer.alloc(16);
  [...headGroups, ...zeros, ...tailGroups].forEach((group, i) => bytes.writeUInt16BE(parseInt(group, 16), i * 2));
  return bytes;
}

function parseCertificate(certPem: string): X509Certificate {
  try {
    return new X509Certificate(certPem);
  } catch (err) {
    throw new Error(ERROR_INVALID_CERTIFICATE, { cause: err });
  }
}

function parsePrivateKey(keyPem: string): KeyObject {
  try {
    return createPrivateKey(keyPem);
  } catch (err) {
    throw new Error(ERROR_INVALID_ISSUER_KEY, { cause: err });
  }
}

function exportKey(privateKey: KeyObject): string {
  return privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
}
