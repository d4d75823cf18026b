/**
 * The Google Cloud service-account key probe: signs a JWT with the key's
 * private_key (RS256) and exchanges it at Google's OAuth 2.0 token endpoint
 * (the JWT-bearer grant, RFC 7523), the same step every Google client library
 * does first. A 200 with an access_token means the key is valid and enabled;
 * 400 invalid_grant or 401 means Google refused it. The access token is
 * discarded.
 *
 * The endpoint is fixed, never taken from the key file's token_uri: a
 * tenant-supplied key must not choose where the probe goes.
 *
 * Settings: scope. Credentials: serviceAccountKey (format json).
 */
import { createSign } from 'node:crypto';
import { ProbeFailure, describeTarget, probeOutcome } from '../probe-failure.js';
import { sendProbeRequest, urlTarget } from '../http-probe.js';
import { PROBE_USER_AGENT } from '../probe-types.js';
import type { ProbeContext, ProbeDriver, ProbeOutcome } from '../probe-types.js';

export const GOOGLE_TOKEN_URL = 'https://oauth2.googleapis.com/token';
export const DEFAULT_SCOPE = 'https://www.googleapis.com/auth/cloud-platform';
export const ERROR_NOT_A_KEY =
  'credential serviceAccountKey is not a service-account key file: it needs type "service_account", client_email and private_key (download a JSON key in the Google Cloud console)';
export const ERROR_BAD_PRIVATE_KEY = 'credential serviceAccountKey has a private_key that is not a usable RSA key';

interface ServiceAccountKey {
  client_email: string;
  private_key: string;
  private_key_id?: string;
}

function parseKey(text: string | undefined): ServiceAccountKey {
  if (!text) throw new ProbeFailure('CredentialsMissing', 'credential serviceAccountKey is not set');
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new ProbeFailure('CredentialsMissing', ERROR_NOT_A_KEY);
  }
  const key = parsed as Partial<ServiceAccountKey> & { type?: unknown };
  if (key?.type !== 'service_account' || typeof key.client_email !== 'string' || typeof key.private_key !== 'string') {
    throw new ProbeFailure('CredentialsMissing', ERROR_NOT_A_KEY);
  }
  return key as ServiceAccountKey;
}

const b64url = (data: string | Buffer): string => Buffer.from(data).toString('base64url');

/** A signed JWT-bearer assertion for the token endpoint, valid for 5 minutes. */
export function signedAssertion(
  key: ServiceAccountKey,
  scope: string,
  nowSeconds = Math.floor(Date.now() / 1000),
): string {
  const header = { alg: 'RS256', typ: 'JWT', ...(key.private_key_id ? { kid: key.private_key_id } : {}) };
  const claims = { iss: key.client_email, scope, aud: GOOGLE_TOKEN_URL, iat: nowSeconds, exp: nowSeconds + 300 };
  const unsigned = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
  try {
    return `${unsigned}.${createSign('RSA-SHA256').update(unsigned).sign(key.private_key).toString('base64url')}`;
  } catch {
    // node's error may quote key material: say what is wrong instead.
    throw new ProbeFailure('CredentialsMissing', ERROR_BAD_PRIVATE_KEY);
  }
}

function errorCode(body: Buffer): string | undefined {
  try {
    const parsed = JSON.parse(body.toString('utf8')) as { error?: unknown };
    return typeof parsed.error === 'string' && /^[a-z_]{1,64}$/.test(parsed.error) ? parsed.error : undefined;
  } catch {
    return undefined;
  }
}

/** Probes a Google Cloud service-account key by exchanging it for an access token. */
export class GcpServiceAccountDriver implements ProbeDriver {
  readonly name = 'gcp-service-account';

  async probe(ctx: ProbeContext): Promise<ProbeOutcome> {
    const started = performance.now();
    const key = parseKey(ctx.credentials['serviceAccountKey']);
    const scope =
      typeof ctx.settings['scope'] === 'string' && ctx.settings['scope'] !== '' ? ctx.settings['scope'] : DEFAULT_SCOPE;
    const body = new URLSearchParams({
      grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer',
      assertion: signedAssertion(key, scope),
    }).toString();
    const url = new URL(GOOGLE_TOKEN_URL);
    const response = await sendProbeRequest(ctx, {
      url,
      method: 'POST',
      headers: {
        'user-agent': PROBE_USER_AGENT,
        accept: 'application/json',
        'content-type': 'application/x-www-form-urlencoded',
      },
      body,
      readBody: true,
    });
    const where = describeTarget(urlTarget(url));
    const outcome = ((): ProbeOutcome => {
      const code = errorCode(response.body);
      if (response.status === 200)
        return probeOutcome('Succeeded', `${where} issued an access token for the service account`);
      if (
        response.status === 401 ||
        response.status === 403 ||
        (response.status === 400 &&
          (code === 'invalid_grant' || code === 'invalid_client' || code === 'unauthorized_client'))
      ) {
        return probeOutcome(
          'AuthenticationFailed',
          `${where} refused the service-account key (HTTP ${response.status}${code ? `, ${code}` : ''}): the key may be deleted or disabled, or the account may not exist`,
        );
      }
      return {
        ...probeOutcome(
          'UnexpectedResponse',
          `${where} answered with unexpected HTTP ${response.status}${code ? ` (${code})` : ''}`,
        ),
        authenticated: 'False',
      };
    })();
    return { ...outcome, durationMs: Math.round(performance.now() - started) };
  }
}
