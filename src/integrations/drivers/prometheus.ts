/**
 * The Prometheus probe driver: GET <url>/api/v1/status/buildinfo, an endpoint
 * every Prometheus (and most compatible servers) serves cheaply, with basic
 * auth (username + password) or a bearer token. A driver rather than a
 * declarative probe because success needs the JSON body's `status: success`,
 * not just a 200 (a login page or proxy also answers 200).
 *
 * Settings: url. Credentials: username + password, or token, or none.
 */
import { ProbeFailure, describeTarget, probeOutcome } from '../probe-failure.js';
import { sendProbeRequest, urlTarget } from '../http-probe.js';
import { PROBE_USER_AGENT } from '../probe-types.js';
import type { ProbeContext, ProbeDriver, ProbeOutcome } from '../probe-types.js';

export const BUILDINFO_PATH = '/api/v1/status/buildinfo';
export const ERROR_INVALID_URL = 'setting url must be an http or https URL without credentials';
export const ERROR_PASSWORD_WITHOUT_USERNAME = 'credential password is set but username is not';
export const ERROR_USERNAME_WITHOUT_PASSWORD = 'credential password is required with username';

/** <url>/api/v1/status/buildinfo, keeping any path prefix (Prometheus behind --web.route-prefix or a proxy). */
export function buildinfoUrl(base: unknown): URL {
  let url: URL;
  try {
    url = new URL(String(base));
  } catch (err) {
    throw new ProbeFailure('InvalidSettings', ERROR_INVALID_URL, { cause: err });
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.username !== '' || url.password !== '') {
    throw new ProbeFailure('InvalidSettings', ERROR_INVALID_URL);
  }
  url.pathname = `${url.pathname.replace(/\/+$/, '')}${BUILDINFO_PATH}`;
  url.search = '';
  url.hash = '';
  return url;
}

/** Basic when a username is set, bearer when a token is, nothing otherwise. */
function authorization(credentials: Record<string, string>): string | undefined {
  const { username, password, token } = credentials;
  if (username !== undefined && username !== '') {
    if (password === undefined || password === '')
      throw new ProbeFailure('CredentialsMissing', ERROR_USERNAME_WITHOUT_PASSWORD);
    return `Basic ${Buffer.from(`${username}:${password}`, 'utf8').toString('base64')}`;
  }
  if (password !== undefined && password !== '')
    throw new ProbeFailure('CredentialsMissing', ERROR_PASSWORD_WITHOUT_USERNAME);
  if (token !== undefined && token !== '') return `Bearer ${token}`;
  return undefined;
}

function isPrometheusSuccess(body: Buffer): boolean {
  try {
    const parsed: unknown = JSON.parse(body.toString('utf8'));
    return typeof parsed === 'object' && parsed !== null && (parsed as { status?: unknown }).status === 'success';
  } catch {
    return false;
  }
}

/** Probes a Prometheus HTTP API. */
export class PrometheusDriver implements ProbeDriver {
  readonly name = 'prometheus';

  async probe(ctx: ProbeContext): Promise<ProbeOutcome> {
    const started = performance.now();
    const url = buildinfoUrl(ctx.settings['url']);
    const auth = authorization(ctx.credentials);
    const headers: Record<string, string> = { 'user-agent': PROBE_USER_AGENT, accept: 'application/json' };
    if (auth !== undefined) headers['authorization'] = auth;
    const response = await sendProbeRequest(ctx, { url, method: 'GET', headers, readBody: true });
    const where = describeTarget(urlTarget(url));
    const outcome = ((): ProbeOutcome => {
      if (response.status === 401 || response.status === 403) {
        return probeOutcome('AuthenticationFailed', `${where} refused the credentials (HTTP ${response.status})`);
      }
      if (response.status >= 300 && response.status < 400) {
        return probeOutcome(
          'UnexpectedResponse',
          `${where} answered with a redirect (HTTP ${response.status}); redirects are not followed`,
        );
      }
      if (response.status !== 200)
        return probeOutcome('UnexpectedResponse', `${where} answered with unexpected HTTP ${response.status}`);
      if (response.truncated || !isPrometheusSuccess(response.body)) {
        return probeOutcome('UnexpectedResponse', `${where} answered HTTP 200 but not with a Prometheus API response`);
      }
      return probeOutcome(
        'Succeeded',
        auth === undefined ? `${where} answered without authentication` : `${where} accepted the credentials`,
      );
    })();
    return { ...outcome, durationMs: Math.round(performance.now() - started) };
  }
}
