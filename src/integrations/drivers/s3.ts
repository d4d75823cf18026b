import { Readable } from 'node:stream';
import { GetBucketLocationCommand, HeadBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { deadlineSignal } from '../egress.js';
import { sendProbeRequest, urlTarget, type ProbeHttpResponse } from '../http-probe.js';
import { ProbeFailure, describeTarget, probeOutcome } from '../probe-failure.js';
import type { ProbeContext, ProbeDriver, ProbeOutcome } from '../probe-types.js';
import { PROBE_USER_AGENT } from '../probe-types.js';
import { booleanSetting, elapsedSince, stringSetting, withSettings } from './driver-support.js';

/**
 * Probes an S3 bucket (AWS or any S3-compatible store) with the AWS SDK's
 * `HeadBucket`: the cheapest request that proves both that the keys are valid
 * and that they reach this bucket. HEAD responses carry no body, so when it is
 * refused with 403 a `GetBucketLocation` of the same bucket is sent to read the
 * error code (InvalidAccessKeyId, SignatureDoesNotMatch, AccessDenied, ...), which
 * is what tells a wrong key from a missing permission. Only the code, never the
 * body, reaches the message.
 *
 * The SDK builds and signs the requests; they travel through the probe's own
 * HTTP transport (sendProbeRequest: egress guard, deadline, response cap), so the
 * SDK never opens a socket of its own.
 */

interface S3Settings {
  endpoint: URL | undefined;
  region: string;
  bucket: string;
  forcePathStyle: boolean;
}

const REGION = /^[a-z0-9-]{1,32}$/;
/** DNS-compatible bucket names; path-style addressing also admits legacy names. */
const VIRTUAL_HOST_BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
const PATH_STYLE_BUCKET = /^[A-Za-z0-9._-]{1,255}$/;
const ERROR_CODE = /^[A-Za-z]{1,64}$/;

const CREDENTIAL_ERRORS = new Set([
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'InvalidToken',
  'ExpiredToken',
  'TokenRefreshRequired',
]);

function readSettings(settings: Record<string, unknown>): S3Settings {
  const region = stringSetting(settings, 'region');
  if (!REGION.test(region)) throw new ProbeFailure('InvalidSettings', 'settings.region is not a valid region name');
  const forcePathStyle = booleanSetting(settings, 'forcePathStyle', false);
  const bucket = stringSetting(settings, 'bucket');
  if (!(forcePathStyle ? PATH_STYLE_BUCKET : VIRTUAL_HOST_BUCKET).test(bucket)) {
    throw new ProbeFailure('InvalidSettings', 'settings.bucket is not a valid bucket name');
  }
  if (settings['endpoint'] === undefined) return { endpoint: undefined, region, bucket, forcePathStyle };
  let endpoint: URL;
  try {
    endpoint = new URL(stringSetting(settings, 'endpoint'));
  } catch (err) {
    if (err instanceof ProbeFailure) throw err;
    throw new ProbeFailure('InvalidSettings', 'settings.endpoint is not a valid URL', { cause: err });
  }
  if (
    !['http:', 'https:'].includes(endpoint.protocol) ||
    endpoint.username ||
    endpoint.password ||
    endpoint.search ||
    endpoint.hash
  ) {
    throw new ProbeFailure('InvalidSettings', 'settings.endpoint must be a plain http or https URL');
  }
  return { endpoint, region, bucket, forcePathStyle };
}

/** The code-backed `s3` probe driver. */
export class S3Driver implements ProbeDriver {
  readonly name = 's3';

  probe(ctx: ProbeContext): Promise<ProbeOutcome> {
    return withSettings(ctx, readSettings, (settings) => probeBucket(ctx, settings));
  }
}

/** The parts of the SDK's HttpRequest this transport reads. */
interface SdkHttpRequest {
  method: string;
  protocol: string;
  hostname: string;
  port?: number;
  path: string;
  query?: Record<string, string | Array<string> | null>;
  headers: Record<string, string>;
  body?: unknown;
}

/**
 * The SDK's request handler: each signed request goes out through
 * sendProbeRequest, and the last answer is kept for the status and headers
 * (x-amz-bucket-region) the SDK's errors do not carry for HEAD.
 */
class ProbeTransport {
  last: ProbeHttpResponse | undefined;
  where: string | undefined;

  constructor(
    private readonly ctx: ProbeContext,
    private readonly signal: AbortSignal,
  ) {}

  async handle(
    request: SdkHttpRequest,
  ): Promise<{ response: { statusCode: number; headers: Record<string, string>; body: Readable } }> {
    if (request.body !== undefined && request.body !== null && request.body !== '')
      throw new ProbeFailure('UnexpectedResponse', 'the S3 probe sends no request bodies');
    const url = new URL(
      `${request.protocol}//${request.hostname}${request.port ? `:${request.port}` : ''}${request.path}${queryString(request.query)}`,
    );
    this.where = describeTarget(urlTarget(url));
    const headers = Object.fromEntries(
      Object.entries(request.headers).filter(([name]) => !['host', 'user-agent'].includes(name.toLowerCase())),
    );
    const response = await sendProbeRequest(
      this.ctx,
      // user-agent stays unsigned, as the AWS SDKs do: proxies rewrite it.
      {
        url,
        method: request.method,
        headers: { ...headers, 'user-agent': PROBE_USER_AGENT },
        readBody: request.method !== 'HEAD',
      },
      this.signal,
    );
    this.last = response;
    const flat = Object.fromEntries(
      Object.entries(response.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(', ') : (v ?? '')]),
    );
    return { response: { statusCode: response.status, headers: flat, body: Readable.from([response.body]) } };
  }

  updateHttpClientConfig(): void {}

  httpHandlerConfigs(): Record<string, never> {
    return {};
  }

  destroy(): void {}
}

/** RFC 3986 query encoding, as SigV4 canonicalises it; a null or empty value is a bare key (?location). */
function queryString(query: SdkHttpRequest['query']): string {
  const encode = (s: string): string =>
    encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  const parts: string[] = [];
  for (const [key, value] of Object.entries(query ?? {}).sort(([a], [b]) => (a < b ? -1 : 1))) {
    for (const v of Array.isArray(value) ? value : [value])
      parts.push(v === null || v === '' ? encode(key) : `${encode(key)}=${encode(v)}`);
  }
  return parts.length > 0 ? `?${parts.join('&')}` : '';
}

async function probeBucket(ctx: ProbeContext, settings: S3Settings): Promise<ProbeOutcome> {
  const startedAt = performance.now();
  const signal = deadlineSignal(ctx);
  const transport = new ProbeTransport(ctx, signal);
  const fallbackWhere = describeTarget(
    urlTarget(settings.endpoint ?? new URL(`https://s3.${settings.region}.amazonaws.com`)),
  );
  const where = (): string => transport.where ?? fallbackWhere;
  try {
    const client = new S3Client({
      region: settings.region,
      ...(settings.endpoint !== undefined ? { endpoint: settings.endpoint.href } : {}),
      forcePathStyle: settings.forcePathStyle,
      credentials: {
        accessKeyId: requiredCredential(ctx, 'accessKeyId'),
        secretAccessKey: requiredCredential(ctx, 'secretAccessKey'),
      },
      requestHandler: transport,
      // One request per step, addressed exactly as configured: no retries, no redirects
      // followed, nothing taken from the environment or ~/.aws.
      maxAttempts: 1,
      followRegionRedirects: false,
      useFipsEndpoint: false,
      useDualstackEndpoint: false,
      useArnRegion: false,
      disableS3ExpressSessionAuth: true,
      disableMultiregionAccessPoints: true,
    });
    try {
      await client.send(new HeadBucketCommand({ Bucket: settings.bucket }), { abortSignal: signal });
      return probeOutcome(
        'Succeeded',
        `bucket named by settings.bucket is accessible at ${where()}`,
        elapsedSince(startedAt),
      );
    } catch (err) {
      if (err instanceof ProbeFailure || transport.last === undefined) throw err;
    }
    const head = transport.last;
    const status = head.status;
    if (status === 301 || (status === 400 && wrongRegion(head, settings.region))) {
      const actual = bucketRegion(head);
      const hint = actual ? ` (the bucket is in ${actual})` : '';
      throw new ProbeFailure(
        'UnexpectedResponse',
        `bucket is not in the region named by settings.region${hint}: HTTP ${status} from ${where()}`,
      );
    }
    if (status === 404) {
      throw new ProbeFailure(
        'UnexpectedResponse',
        `bucket named by settings.bucket does not exist at ${where()} (HTTP 404)`,
      );
    }
    if (status === 403 || status === 400) {
      const code = await client
        .send(new GetBucketLocationCommand({ Bucket: settings.bucket }), { abortSignal: signal })
        .then(
          () => undefined,
          (err: unknown) => {
            if (err instanceof ProbeFailure) throw err;
            const name = (err as { name?: unknown } | null)?.name;
            return typeof name === 'string' && ERROR_CODE.test(name) && transport.last?.status !== 200
              ? name
              : undefined;
          },
        );
      throw refusal(status, code, where());
    }
    throw new ProbeFailure('UnexpectedResponse', `${where()} answered HTTP ${status}`);
  } catch (err) {
    const failure =
      err instanceof ProbeFailure
        ? err
        : new ProbeFailure('UnexpectedResponse', `probe of ${where()} failed`, { cause: err });
    return failure.toOutcome(elapsedSince(startedAt));
  }
}

function refusal(status: number, code: string | undefined, where: string): ProbeFailure {
  const shown = code ?? 'no error code';
  if (code !== undefined && CREDENTIAL_ERRORS.has(code)) {
    return new ProbeFailure('AuthenticationFailed', `${where} refused the access key (HTTP ${status}, ${shown})`);
  }
  if (code === 'AccessDenied' || (status === 403 && code === undefined)) {
    return new ProbeFailure(
      'AuthenticationFailed',
      `the access key may not access the bucket named by settings.bucket at ${where} (HTTP ${status}, ${shown})`,
    );
  }
  return new ProbeFailure('UnexpectedResponse', `${where} refused the request (HTTP ${status}, ${shown})`);
}

function requiredCredential(ctx: ProbeContext, field: string): string {
  const value = ctx.credentials[field];
  if (value === undefined || value === '')
    throw new ProbeFailure('CredentialsMissing', `credential ${field} is not set`);
  return value;
}

function bucketRegion(response: ProbeHttpResponse): string | undefined {
  const region = response.headers['x-amz-bucket-region'];
  return typeof region === 'string' && REGION.test(region) ? region : undefined;
}

function wrongRegion(response: ProbeHttpResponse, region: string): boolean {
  const actual = bucketRegion(response);
  return actual !== undefined && actual !== region;
}
