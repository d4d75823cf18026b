/**
 * X.509 certificate issuance. The dev/test control plane needs a CA, an
 * apiserver serving certificate and client certificates (CN = user, O =
 * groups), and the admission webhook rotates its own serving certificate
 * in-cluster. The certificate structures and their DER encoding come from
 * @peculiar/asn1-x509 (the ASN.1 layer of @peculiar/x509); Node's crypto makes
 * the keys and signs, synchronously, so issuance stays a plain function call
 * (docs/adr/0018-libraries-over-protocols.md says why not @peculiar/x509's
 * async builder). Keys are ECDSA P-256 signed with ecdsa-with-SHA256.
 */
import { X509Certificate, createHash, createPrivateKey, generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { isIP } from 'node:net';
import { AsnConvert, OctetString } from '@peculiar/asn1-schema';
import {
  AlgorithmIdentifier,
  AttributeTypeAndValue,
  AttributeValue,
  AuthorityKeyIdentifier,
  BasicConstraints,
  Certificate,
  ExtendedKeyUsage,
  Extension,
  Extensions,
  GeneralName,
  KeyIdentifier,
  KeyUsage,
  KeyUsageFlags,
  Name,
  RelativeDistinguishedName,
  SubjectAlternativeName,
  SubjectKeyIdentifier,
  SubjectPublicKeyInfo,
  TBSCertificate,
  Validity,
  Version,
  id_ce_authorityKeyIdentifier,
  id_ce_basicConstraints,
  id_ce_extKeyUsage,
  id_ce_keyUsage,
  id_ce_subjectAltName,
  id_ce_subjectKeyIdentifier,
  id_kp_clientAuth,
  id_kp_serverAuth,
} from '@peculiar/asn1-x509';

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
} as const;

const MS_PER_DAY = 86_400_000;
/** Tolerates clocks on other machines being slightly behind ours. */
const CLOCK_SKEW_MS = 5 * 60_000;

/** Creates a self-signed CA (pathLen 0: it signs leaves only) and its key. */
export function createCertificateAuthority(opts: CertificateAuthorityOptions): KeyPairPem {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const name = distinguishedName(opts.commonName, []);
  const keyId = subjectKeyIdentifier(publicKey);
  const certPem = signCertificate({
    issuerName: name,
    subjectName: name,
    subjectKey: publicKey,
    signingKey: privateKey,
    validDays: opts.validDays ?? 3650,
    extensions: [
      extension(id_ce_subjectKeyIdentifier, false, new SubjectKeyIdentifier(keyId)),
      extension(
        id_ce_authorityKeyIdentifier,
        false,
        new AuthorityKeyIdentifier({ keyIdentifier: new KeyIdentifier(keyId) }),
      ),
      extension(id_ce_basicConstraints, true, new BasicConstraints({ cA: true, pathLenConstraint: 0 })),
      extension(id_ce_keyUsage, true, new KeyUsage(KeyUsageFlags.keyCertSign | KeyUsageFlags.cRLSign)),
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
    server: [id_kp_serverAuth],
    client: [id_kp_clientAuth],
    'server-and-client': [id_kp_serverAuth, id_kp_clientAuth],
  }[opts.usage];
  const altNames = [
    ...(opts.dnsNames ?? []).map((dns) => new GeneralName({ dNSName: dnsName(dns) })),
    ...(opts.ipAddresses ?? []).map((ip) => new GeneralName({ iPAddress: ipAddress(ip) })),
  ];
  const extensions = [
    extension(id_ce_subjectKeyIdentifier, false, new SubjectKeyIdentifier(subjectKeyIdentifier(publicKey))),
    extension(
      id_ce_authorityKeyIdentifier,
      false,
      new AuthorityKeyIdentifier({ keyIdentifier: new KeyIdentifier(subjectKeyIdentifier(issuerCert.publicKey)) }),
    ),
    extension(id_ce_basicConstraints, true, new BasicConstraints()),
    extension(id_ce_keyUsage, true, new KeyUsage(KeyUsageFlags.digitalSignature | KeyUsageFlags.keyEncipherment)),
    extension(id_ce_extKeyUsage, false, new ExtendedKeyUsage(extendedUsages)),
  ];
  if (altNames.length > 0)
    extensions.push(extension(id_ce_subjectAltName, false, new SubjectAlternativeName(altNames)));

  const certPem = signCertificate({
    // The issuer's subject as its certificate carries it, so chains match.
    issuerName: AsnConvert.parse(issuerCert.raw, Certificate).tbsCertificate.subject,
    subjectName: distinguishedName(opts.commonName, opts.organizations ?? []),
    subjectKey: publicKey,
    signingKey: issuerKey,
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
  issuerName: Name;
  subjectName: Name;
  subjectKey: KeyObject;
  signingKey: KeyObject;
  validDays: number;
  extensions: Extension[];
}

function signCertificate(cert: UnsignedCertificate): string {
  if (!Number.isFinite(cert.validDays) || cert.validDays <= 0) throw new Error(ERROR_INVALID_VALIDITY);
  const now = Date.now();
  const signatureAlgorithm = new AlgorithmIdentifier({ algorithm: OID.ecdsaWithSha256 });
  const tbsCertificate = new TBSCertificate({
    version: Version.v3,
    serialNumber: positiveSerial(),
    signature: signatureAlgorithm,
    issuer: cert.issuerName,
    validity: new Validity({
      notBefore: new Date(now - CLOCK_SKEW_MS),
      notAfter: new Date(now + cert.validDays * MS_PER_DAY),
    }),
    subject: cert.subjectName,
    subjectPublicKeyInfo: AsnConvert.parse(
      cert.subjectKey.export({ type: 'spki', format: 'der' }),
      SubjectPublicKeyInfo,
    ),
    extensions: new Extensions(cert.extensions),
  });
  const tbsDer = Buffer.from(AsnConvert.serialize(tbsCertificate));
  const signature = sign('sha256', tbsDer, { key: cert.signingKey, dsaEncoding: 'der' });
  const der = Buffer.from(
    AsnConvert.serialize(
      new Certificate({ tbsCertificate, signatureAlgorithm, signatureValue: toArrayBuffer(signature) }),
    ),
  );
  const body = der
    .toString('base64')
    .replace(/(.{64})/g, '$1\n')
    .replace(/\n$/, '');
  return `-----BEGIN CERTIFICATE-----\n${body}\n-----END CERTIFICATE-----\n`;
}

/** 16 random bytes with the top bit clear: a positive INTEGER without a padding byte. */
function positiveSerial(): ArrayBuffer {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0]! & 0x7f) | 0x01;
  return toArrayBuffer(bytes);
}

/** Name: one RDN per O= entry, then CN, each a UTF8String. */
function distinguishedName(commonName: string, organizations: string[]): Name {
  if (commonName.length === 0) throw new Error(ERROR_EMPTY_COMMON_NAME);
  const rdn = (type: string, value: string): RelativeDistinguishedName =>
    new RelativeDistinguishedName([
      new AttributeTypeAndValue({ type, value: new AttributeValue({ utf8String: value }) }),
    ]);
  return new Name([...organizations.map((o) => rdn(OID.organization, o)), rdn(OID.commonName, commonName)]);
}

function extension(extnID: string, critical: boolean, value: object): Extension {
  return new Extension({ extnID, critical, extnValue: new OctetString(AsnConvert.serialize(value)) });
}

/** RFC 5280 method 1: SHA-1 of the subjectPublicKey bits (the uncompressed EC point). */
function subjectKeyIdentifier(publicKey: KeyObject): ArrayBuffer {
  const jwk = publicKey.export({ format: 'jwk' });
  const point = Buffer.concat([
    Buffer.from([4]),
    Buffer.from(jwk.x ?? '', 'base64url'),
    Buffer.from(jwk.y ?? '', 'base64url'),
  ]);
  return toArrayBuffer(createHash('sha1').update(point).digest());
}

function toArrayBuffer(bytes: Buffer): ArrayBuffer {
  return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
}

function dnsName(name: string): string {
  if (!/^[\x21-\x7e]+$/.test(name)) throw new Error(ERROR_INVALID_DNS_NAME);
  return name;
}

/**
 * The library encodes the address; the check here keeps zones and non-literals
 * out with our own message. An IPv6 address with a dotted IPv4 tail
 * (::ffff:10.0.0.1) is rewritten to hex groups first: asn1-x509 2.x encodes
 * that form wrongly (measured: ::ffff:10.0.0.1 came out as ::ffff:10 and lost the 10.0.0.1 SAN).
 */
function ipAddress(address: string): string {
  const family = isIP(address);
  if (family === 0 || address.includes('%')) throw new Error(ERROR_INVALID_IP_ADDRESS);
  const tail = address.slice(address.lastIndexOf(':') + 1);
  if (family === 4 || !tail.includes('.')) return address;
  const [a = 0, b = 0, c = 0, d = 0] = tail.split('.').map(Number);
  return `${address.slice(0, address.length - tail.length)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
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
