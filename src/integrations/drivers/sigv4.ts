import { createHash, createHmac } from 'node:crypto';

/**
 * AWS Signature Version 4, written on node:crypto so that an S3 probe needs no
 * SDK: a probe signs exactly one request, and keeping the signer here means the
 * secret key only ever flows into an HMAC, never into a library's logs or retries.
 */

/** The long-term (or session) keys that sign a request. */
export interface SigV4Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

/** One request to sign. Header names may use any case; values are used as given. */
export interface SigV4Request {
  method: string;
  url: URL;
  headers?: Record<string, string>;
  body?: string | Buffer;
}

export interface SigV4Options {
  credentials: SigV4Credentials;
  region: string;
  service: string;
  /** Signing time; the current time otherwise. Fixed in tests to reproduce documented vectors. */
  now?: Date;
  /**
   * S3 signs the path as sent (each segment encoded once) and carries the payload
   * hash in `x-amz-content-sha256`; every other service double-encodes the path.
   */
  s3?: boolean;
}

const ALGORITHM = 'AWS4-HMAC-SHA256';
const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

/**
 * Signs `request` and returns the full header set to send: the caller's headers
 * plus `host`, `x-amz-date`, `authorization` (and `x-amz-content-sha256` for S3,
 * `x-amz-security-token` for session credentials), all lower-case.
 */
export function signRequest(request: SigV4Request, options: SigV4Options): Record<string, string> {
  const now = options.now ?? new Date();
  const amzDate = now.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
  const dateStamp = amzDate.slice(0, 8);
  const payloadHash = request.body === undefined || request.body.length === 0 ? EMPTY_SHA256 : sha256Hex(request.body);

  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(request.headers ?? {})) headers[name.toLowerCase()] = value;
  headers['host'] ??= request.url.host;
  headers['x-amz-date'] = amzDate;
  if (options.s3) headers['x-amz-content-sha256'] ??= payloadHash;
  if (options.credentials.sessionToken) headers['x-amz-security-token'] = options.credentials.sessionToken;

  const signedNames = Object.keys(headers).sort();
  const canonicalHeaders = signedNames.map((name) => `${name}:${canonicalHeaderValue(headers[name] ?? '')}\n`).join('');
  const signedHeaders = signedNames.join(';');

  const canonicalRequest = [
    request.method.toUpperCase(),
    canonicalPath(request.url.pathname, options.s3 === true),
    canonicalQuery(request.url.searchParams),
    canonicalHeaders,
    signedHeaders,
    headers['x-amz-content-sha256'] ?? payloadHash,
  ].join('\n');

  const scope = `${dateStamp}/${options.region}/${options.service}/aws4_request`;
  const stringToSign = [ALGORITHM, amzDate, scope, sha256Hex(canonicalRequest)].join('\n');
  const signature = createHmac('sha256', signingKey(options.credentials.secretAccessKey, dateStamp, options.region, options.service))
    .update(stringToSign, 'utf8')
    .digest('hex');

  headers['authorization'] =
    `${ALGORITHM} Credential=${options.credentials.accessKeyId}/${scope}, SignedHeaders=${signedHeaders}, Signature=${signature}`;
  return headers;
}

/** RFC 3986 encoding as SigV4 defines it: everything but unreserved characters is %XX (upper-case hex). */
export function uriEncode(value: string): string {
  return encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

function signingKey(secret: string, dateStamp: string, region: string, service: string): Buffer {
  let key = hmac(`AWS4${secret}`, dateStamp);
  for (const part of [region, service, 'aws4_request']) key = hmac(key, part);
  return key;
}

function hmac(key: string | Buffer, data: string): Buffer {
  return createHmac('sha256', key).update(data, 'utf8').digest();
}

function sha256Hex(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

function canonicalHeaderValue(value: string): string {
  return value.trim().replace(/\s+/g, ' ');
}

/** The URL's path is already percent-encoded; decode each segment and re-encode it the SigV4 way. */
function canonicalPath(pathname: string, s3: boolean): string {
  if (pathname === '') return '/';
  const encoded = pathname
    .split('/')
    .map((segment) => uriEncode(decodeURIComponent(segment)))
    .join('/');
  return s3 ? encoded : encoded.split('/').map(uriEncode).join('/');
}

function canonicalQuery(params: URLSearchParams): string {
  return [...params]
    .map(([name, value]) => [uriEncode(name), uriEncode(value)] as const)
    .sort(([a, av], [b, bv]) => (a < b ? -1 : a > b ? 1 : av < bv ? -1 : av > bv ? 1 : 0))
    .map(([name, value]) => `${name}=${value}`)
    .join('&');
}
