import { deadlineSignal } from '../egress.js';
import { sendProbeRequest, urlTarget, type ProbeHttpResponse } from '../http-probe.js';
import { ProbeFailure, describeTarget, probeOutcome } from '../probe-failure.js';
import type { ProbeContext, ProbeDriver, ProbeOutcome } from '../probe-types.js';
import { PROBE_USER_AGENT } from '../probe-types.js';
import { signRequest, uriEncode } from './sigv4.js';
import { booleanSetting, elapsedSince, stringSetting, withSettings } from './wire-session.js';

/**
 * Probes an S3 bucket (AWS or any S3-compatible store) with one SigV4-signed
 * `HEAD /<bucket>`: the cheapest request that proves both that the keys are valid
 * and that they reach this bucket. HEAD responses carry no body, so when it is
 * refused with 403 a signed `GET ?location` of the same bucket is sent to read the
 * error code (InvalidAccessKeyId, SignatureDoesNotMatch, AccessDenied, ...), which
 * is what tells a wrong key from a missing permission. Only the code, never the
 * body, reaches the message.
 */

interface S3Settings {
  endpoint: URL;
  region: string;
  bucket: string;
  forcePathStyle: boolean;
}

const REGION = /^[a-z0-9-]{1,32}$/;
/** DNS-compatible bucket names; path-style addressing also admits legacy names. */
const VIRTUAL_HOST_BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
const PATH_STYLE_BUCKET = /^[A-Za-z0-9._-]{1,255}$/;
const ERROR_CODE = /<Code>([A-Za-z]{1,64})<\/Code>/;

const CREDENTIAL_ERRORS = new Set(['InvalidAccessKeyId', 'SignatureDoesNotMatch', 'InvalidToken', 'ExpiredToken', 'TokenRefreshRequired']);

function readSettings(settings: Record<string, unknown>): S3Settings {
  const region = stringSetting(settings, 'region');
  if (!REGION.test(region)) throw new ProbeFailure('InvalidSettings', 'settings.region is not a valid region name');
  const forcePathStyle = booleanSetting(settings, 'forcePathStyle', false);
  const bucket = stringSetting(settings, 'bucket');
  if (!(forcePathStyle ? PATH_STYLE_BUCKET : VIRTUAL_HOST_BUCKET).test(bucket)) {
    throw new ProbeFailure('InvalidSettings', 'settings.bucket is not a valid bucket name');
  }
  const rawEndpoint = settings['endpoint'] === undefined ? `https://s3.${region}.amazonaws.com` : stringSetting(settings, 'endpoint');
  let endpoint: URL;
  try {
    endpoint = new URL(rawEndpoint);
  } catch (err) {
    throw new ProbeFailure('InvalidSettings', 'settings.endpoint is not a valid URL', { cause: err });
  }
  if (!['http:', 'https:'].includes(endpoint.protocol) || endpoint.username || endpoint.password || endpoint.search || endpoint.hash) {
    throw new ProbeFailure('InvalidSettings', 'settings.endpoint must be a plain http or https URL');
  }
  return { endpoint, region, bucket, forcePathStyle };
}

/** The bucket's URL: `<endpoint>/<bucket>/` path-style, or `<bucket>.<endpoint host>` virtual-hosted. */
function bucketUrl(settings: S3Settings): URL {
  const url = new URL(settings.endpoint.href);
  const base = url.pathname.replace(/\/+$/, '');
  if (settings.forcePathStyle) {
    url.pathname = `${base}/${uriEncode(settings.bucket)}`;
  } else {
    url.hostname = `${settings.bucket}.${url.hostname}`;
    url.pathname = `${base}/`;
  }
  return url;
}

/** The code-backed `s3` probe driver. */
export class S3Driver implements ProbeDriver {
  readonly name = 's3';

  probe(ctx: ProbeContext): Promise<ProbeOutcome> {
    return withSettings(ctx, readSettings, (settings) => probeBucket(ctx, settings));
  }
}

async function probeBucket(ctx: ProbeContext, settings: S3Settings): Promise<ProbeOutcome> {
  const startedAt = performance.now();
  const url = bucketUrl(settings);
  const where = describeTarget(urlTarget(url));
  try {
    const credentials = {
      accessKeyId: requiredCredential(ctx, 'accessKeyId'),
      secretAccessKey: requiredCredential(ctx, 'secretAccessKey'),
    };
    const signal = deadlineSignal(ctx);
    const send = (method: 'HEAD' | 'GET', target: URL, readBody: boolean): Promise<ProbeHttpResponse> =>
      sendProbeRequest(
        ctx,
        {
          url: target,
          method,
          readBody,
          // user-agent stays unsigned, as the AWS SDKs do: proxies rewrite it.
          headers: {
            ...signRequest({ method, url: target }, { credentials, region: settings.region, service: 's3', s3: true }),
            'user-agent': PROBE_USER_AGENT,
          },
        },
        signal,
      );

    const head = await send('HEAD', url, false);
    const status = head.status;
    if (status === 200) {
      return probeOutcome('Succeeded', `bucket named by settings.bucket is accessible at ${where}`, elapsedSince(startedAt));
    }
    if (status === 301 || (status === 400 && wrongRegion(head, settings.region))) {
      const actual = bucketRegion(head);
      const hint = actual ? ` (the bucket is in ${actual})` : '';
      throw new ProbeFailure('UnexpectedResponse', `bucket is not in the region named by settings.region${hint}: HTTP ${status} from ${where}`);
    }
    if (status === 404) {
      throw new ProbeFailure('UnexpectedResponse', `bucket named by settings.bucket does not exist at ${where} (HTTP 404)`);
    }
    if (status === 403 || status === 400) {
      const location = new URL(url.href);
      location.search = '?location';
      const code = errorCode(await send('GET', location, true));
      throw refusal(status, code, where);
    }
    throw new ProbeFailure('UnexpectedResponse', `${where} answered HTTP ${status}`);
  } catch (err) {
    const failure = err instanceof ProbeFailure ? err : new ProbeFailure('UnexpectedResponse', `probe of ${where} failed`, { cause: err });
    return failure.toOutcome(elapsedSince(startedAt));
  }
}

function refusal(status: number, code: string | undefined, where: string): ProbeFailure {
  const shown = code ?? 'no error code';
  if (code !== undefined && CREDENTIAL_ERRORS.has(code)) {
    return new ProbeFailure('AuthenticationFailed', `${where} refused the access key (HTTP ${status}, ${shown})`);
  }
  if (code === 'AccessDenied' || (status === 403 && code === undefined)) {
    return new ProbeFailure('AuthenticationFailed', `the access key may not access the bucket named by settings.bucket at ${where} (HTTP ${status}, ${shown})`);
  }
  return new ProbeFailure('UnexpectedResponse', `${where} refused the request (HTTP ${status}, ${shown})`);
}

function requiredCredential(ctx: ProbeContext, field: string): string {
  const value = ctx.credentials[field];
  if (value === undefined || value === '') throw new ProbeFailure('CredentialsMissing', `credential ${field} is not set`);
  return value;
}

function errorCode(response: ProbeHttpResponse): string | undefined {
  return ERROR_CODE.exec(response.body.toString('utf8'))?.[1];
}

function bucketRegion(response: ProbeHttpResponse): string | undefined {
  const region = response.headers['x-amz-bucket-region'];
  return typeof region === 'string' && REGION.test(region) ? region : undefined;
}

function wrongRegion(response: ProbeHttpResponse, region: string): boolean {
  const actual = bucketRegion(response);
  return actual !== undefined && actual !== region;
}
