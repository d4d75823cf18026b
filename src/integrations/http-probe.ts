/**
 * The declarative HTTP probe: executes an IntegrationType's `probe.http`
 * (a single request with the credential placed where the type says) and maps
 * the HTTP status to a ProbeOutcome. Requests go over a socket opened by the
 * egress guard, so the address connected to is the one that was checked,
 * while the Host header and TLS SNI keep the configured name. Redirects are
 * never followed (a 3xx could point the credential at another host) and at
 * most ctx.maxResponseBytes of a response are read.
 */
import { request as httpRequest } from 'node:http';
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import { clientCertificateOf, connectGuarded, deadlineSignal } from './egress.js';
import { ProbeFailure, classifyNetworkError, describeTarget, probeOutcome, timeoutFailure } from './probe-failure.js';
import type { ProbeTarget } from './probe-failure.js';
import { DEFAULT_MAX_RESPONSE_BYTES, PROBE_USER_AGENT } from './probe-types.js';
import type { HttpAuthSpec, HttpAuthType, HttpProbeSpec, ProbeContext, ProbeOutcome } from './probe-types.js';
import { TemplateError, refersToAbsentCredential, renderTemplate, renderUrlTemplate } from './templates.js';
import type { TemplateValues } from './templates.js';

export const ERROR_UNKNOWN_AUTH_TYPE = 'probe auth type must be one of header, bearer, basic, query, none';
export const ERROR_INVALID_HEADER_NAME = 'probe header name is not a valid HTTP header name';
export const ERROR_INVALID_HEADER_VALUE = 'probe header value contains characters not allowed in HTTP headers';
export const ERROR_INVALID_PROBE_URL = 'probe URL is not a valid http or https URL';

export const ERROR_UNSUPPORTED_METHOD = 'probe method must be GET, HEAD or POST';

const AUTH_TYPES: readonly HttpAuthType[] = ['header', 'bearer', 'basic', 'query', 'none'];
/** Probes must not change anything on the service: no PUT, PATCH or DELETE. */
const METHODS = ['GET', 'HEAD', 'POST'];
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const HEADER_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

export interface ProbeHttpRequest {
  url: URL;
  method: string;
  headers: Record<string, string>;
  body?: string;
  /** Wait for the body (up to maxResponseBytes); otherwise settle on the status line and discard the body. */
  readBody: boolean;
}

export interface ProbeHttpResponse {
  status: number;
  headers: IncomingHttpHeaders;
  /** At most maxResponseBytes; empty unless readBody. */
  body: Buffer;
  truncated: boolean;
}

/** The target of a URL as messages show it: configured host name and effective port. */
export function urlTarget(url: URL): ProbeTarget {
  const port = url.port !== '' ? Number(url.port) : url.protocol === 'https:' ? 443 : 80;
  return { host: url.hostname.replace(/^\[(.*)\]$/, '$1'), port };
}

/**
 * Sends one HTTP request through the egress guard and returns the status and
 * (optionally) the first maxResponseBytes of the body. Failures are
 * ProbeFailures. Shared by the declarative probe and HTTP-based drivers.
 */
export async function sendProbeRequest(
  ctx: ProbeContext,
  req: ProbeHttpRequest,
  signal: AbortSignal = deadlineSignal(ctx),
): Promise<ProbeHttpResponse> {
  const target = urlTarget(req.url);
  for (const [name, value] of Object.entries(req.headers)) {
    if (!HEADER_NAME.test(name)) throw new ProbeFailure('InvalidSettings', `${ERROR_INVALID_HEADER_NAME}: ${name}`);
    if (!HEADER_VALUE.test(value)) throw new ProbeFailure('InvalidSettings', `${ERROR_INVALID_HEADER_VALUE}: ${name}`);
  }
  const { socket } = await connectGuarded(ctx, {
    host: target.host,
    port: target.port,
    tls: req.url.protocol === 'https:',
    alpnProtocols: req.url.protocol === 'https:' ? ['http/1.1'] : undefined,
    clientCertificate: clientCertificateOf(ctx.credentials),
    signal,
  });
  const limit = ctx.maxResponseBytes > 0 ? ctx.maxResponseBytes : DEFAULT_MAX_RESPONSE_BYTES;
  const headers: OutgoingHttpHeaders = {
    ...req.headers,
    host: req.url.host,
    connection: 'close',
    ...(req.body !== undefined ? { 'content-length': Buffer.byteLength(req.body) } : {}),
  };

  return new Promise<ProbeHttpResponse>((resolve, reject) => {
    let settled = false;
    const finish = (fn: () => void): void => {
      if (settled) return;
      settled = true;
      fn();
    };
    const request = httpRequest({
      method: req.method,
      path: `${req.url.pathname}${req.url.search}`,
      headers,
      setHost: false,
      createConnection: () => socket,
    });
    const onAbort = (): void => {
      request.destroy();
      socket.destroy();
      finish(() => reject(timeoutFailure(target, ctx.timeoutMs, true, signal.reason)));
    };
    // Stays armed after settling, so a body still being discarded is cut off at the deadline too.
    signal.addEventListener('abort', onAbort, { once: true });
    socket.once('close', () => signal.removeEventListener('abort', onAbort));
    request.on('error', (err) => {
      socket.destroy();
      finish(() => reject(classifyNetworkError(err, target, true)));
    });
    request.on('response', (res) => {
      const chunks: Buffer[] = [];
      let received = 0;
      const respond = (truncated: boolean): void =>
        finish(() =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), truncated }),
        );
      if (!req.readBody) respond(false);
      res.on('data', (chunk: Buffer) => {
        const room = limit - received;
        received += chunk.length;
        if (req.readBody && room > 0) chunks.push(room >= chunk.length ? chunk : chunk.subarray(0, room));
        if (received > limit) {
          // Read and discard up to the cap, then hang up: a probe never downloads more.
          respond(true);
          res.destroy();
          socket.destroy();
        }
      });
      res.on('end', () => {
        respond(false);
        socket.destroy();
      });
      res.on('error', (err) => {
        socket.destroy();
        finish(() => reject(classifyNetworkError(err, target, true)));
      });
    });
    request.end(req.body);
  });
}

/** Maps template problems to the reason the user can act on: a missing credential or a setting. */
function templateFailure(err: unknown): ProbeFailure {
  if (err instanceof ProbeFailure) return err;
  if (err instanceof TemplateError) {
    return err.kind === 'missing-credential'
      ? new ProbeFailure('CredentialsMissing', `credential ${err.field.slice('credentials.'.length)} is not set`, {
          cause: err,
        })
      : new ProbeFailure('InvalidSettings', err.message, { cause: err });
  }
  return new ProbeFailure('InvalidSettings', ERROR_INVALID_PROBE_URL, { cause: err });
}

function credential(values: TemplateValues, field: string): string {
  const value = values.credentials[field];
  if (value === undefined || value === '')
    throw new ProbeFailure('CredentialsMissing', `credential ${field} is not set`);
  return value;
}

/** Resolves auth.type, which may itself be a template such as "{{settings.auth}}". */
function authType(auth: HttpAuthSpec | undefined, values: TemplateValues): HttpAuthType {
  const rendered = renderTemplate(auth?.type ?? 'none', values);
  if (!(AUTH_TYPES as readonly string[]).includes(rendered))
    throw new ProbeFailure('InvalidSettings', ERROR_UNKNOWN_AUTH_TYPE);
  return rendered as HttpAuthType;
}

/** Puts the credential where the type says: a header, a bearer token, basic auth or a query parameter. */
function applyAuth(
  auth: HttpAuthSpec | undefined,
  values: TemplateValues,
  url: URL,
  headers: Record<string, string>,
): void {
  const type = authType(auth, values);
  const field = auth?.credential ?? 'token';
  switch (type) {
    case 'none':
      return;
    case 'header': {
      const name = renderTemplate(auth?.headerName ?? '', values);
      if (!HEADER_NAME.test(name)) throw new ProbeFailure('InvalidSettings', ERROR_INVALID_HEADER_NAME);
      headers[name.toLowerCase()] = credential(values, field);
      return;
    }
    case 'bearer':
      headers['authorization'] = `Bearer ${credential(values, field)}`;
      return;
    case 'basic': {
      const userSpec = auth?.usernameField ?? 'username';
      const user = userSpec.includes('{{') ? renderTemplate(userSpec, values) : credential(values, userSpec);
      const password = credential(values, auth?.passwordField ?? 'password');
      headers['authorization'] = `Basic ${Buffer.from(`${user}:${password}`, 'utf8').toString('base64')}`;
      return;
    }
    case 'query': {
      const param = renderTemplate(auth?.queryParam ?? '', values);
      if (param === '') throw new ProbeFailure('InvalidSettings', 'probe auth queryParam is empty');
      url.searchParams.set(param, credential(values, field));
      return;
    }
  }
}

function buildRequest(spec: HttpProbeSpec, ctx: ProbeContext): ProbeHttpRequest {
  const method = spec.method ?? 'GET';
  if (!METHODS.includes(method)) throw new ProbeFailure('InvalidSettings', ERROR_UNSUPPORTED_METHOD);
  const values: TemplateValues = { settings: ctx.settings, credentials: ctx.credentials };
  try {
    const url = renderUrlTemplate(spec.url, values);
    const headers: Record<string, string> = { 'user-agent': PROBE_USER_AGENT, accept: '*/*' };
    for (const [name, tpl] of Object.entries(spec.headers ?? {})) {
      // An optional credential that is absent drops its header instead of failing the probe.
      if (refersToAbsentCredential(tpl, values)) continue;
      headers[name.toLowerCase()] = renderTemplate(tpl, values);
    }
    applyAuth(spec.auth, values, url, headers);
    const body = spec.body !== undefined && spec.body !== '' ? renderTemplate(spec.body, values) : undefined;
    return { url, method, headers, body, readBody: false };
  } catch (err) {
    throw templateFailure(err);
  }
}

/** Classifies a status by the type's expectations; redirects are always unexpected. */
export function outcomeForStatus(
  spec: Pick<HttpProbeSpec, 'successStatuses' | 'authFailureStatuses'>,
  status: number,
  target: ProbeTarget,
): ProbeOutcome {
  const where = describeTarget(target);
  if ((spec.successStatuses ?? [200]).includes(status)) {
    return probeOutcome('Succeeded', `${where} accepted the credentials (HTTP ${status})`);
  }
  if ((spec.authFailureStatuses ?? [401, 403]).includes(status)) {
    return probeOutcome('AuthenticationFailed', `${where} refused the credentials (HTTP ${status})`);
  }
  if (status >= 300 && status < 400) {
    return {
      ...probeOutcome(
        'UnexpectedResponse',
        `${where} answered with a redirect (HTTP ${status}); redirects are not followed`,
      ),
      authenticated: 'False',
    };
  }
  // An answer the type does not expect (404 from a wrong path, 500) cannot confirm the credential:
  // the service is reachable but the connection is not usable, so Authenticated (and Ready) is False.
  const expected = (spec.successStatuses ?? [200]).join(', ');
  return {
    ...probeOutcome(
      'UnexpectedResponse',
      `${where} answered with unexpected HTTP ${status} (expected ${expected}); check the URL settings (base URL, probe path)`,
    ),
    authenticated: 'False',
  };
}

/** Runs a type's declarative HTTP probe. Throws ProbeFailure for anything but an HTTP answer. */
export async function runHttpProbe(spec: HttpProbeSpec, ctx: ProbeContext): Promise<ProbeOutcome> {
  const started = performance.now();
  const request = buildRequest(spec, ctx);
  const response = await sendProbeRequest(ctx, request);
  const outcome = outcomeForStatus(spec, response.status, urlTarget(request.url));
  return { ...outcome, durationMs: Math.round(performance.now() - started) };
}
