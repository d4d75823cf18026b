import type { CredentialPlacement, GatewaySpec } from '../api/v1alpha1/index.js';
import {
  refersToAbsentCredential,
  renderTemplate,
  renderUrlTemplate,
  TemplateError,
  type TemplateValues,
} from '../integrations/templates.js';
import { GatewayError, GatewayErrorMessage, notReady } from './errors.js';

/** Where a proxied request goes and what the gateway adds to it. */
export interface UpstreamPlan {
  url: URL;
  /** Headers the gateway sets (lower-case names); callers' headers of these names are dropped. */
  headers: Record<string, string>;
  /** Every plaintext that went into the request, for scrubbing response headers. */
  secrets: string[];
}

const AUTH_TYPES = new Set(['header', 'bearer', 'basic', 'query', 'none']);
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const HEADER_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

function invalid(cause?: unknown): Error {
  return notReady(GatewayErrorMessage.invalidSettings, { cause });
}

function credential(values: TemplateValues, field: string): string {
  const value = values.credentials[field];
  if (value === undefined || value === '') throw notReady(GatewayErrorMessage.noCredentials);
  return value;
}

function setHeader(headers: Record<string, string>, name: string, value: string): void {
  if (!HEADER_NAME.test(name) || !HEADER_VALUE.test(value)) throw invalid();
  headers[name.toLowerCase()] = value;
}

/** Where one connection's requests go and what the gateway adds to each, before the caller's path and query. */
export interface ConnectionTarget {
  /** The rendered `spec.gateway.baseURL`. */
  base: URL;
  /** Headers the gateway sets (lower-case names). */
  headers: Record<string, string>;
  /** Every plaintext that goes into a request. */
  secrets: string[];
  /** A query credential: set on each request's URL, replacing a caller's parameter of that name. */
  query?: { param: string; value: string };
}

/** Puts the credential where `spec.gateway.auth` says (header / bearer / basic / query / none). */
function applyAuth(auth: CredentialPlacement | undefined, values: TemplateValues, target: ConnectionTarget): void {
  const type = renderTemplate(auth?.type ?? 'none', values);
  if (!AUTH_TYPES.has(type)) throw invalid();
  const field = auth?.credential ?? 'token';
  switch (type) {
    case 'header': {
      const value = credential(values, field);
      setHeader(target.headers, renderTemplate(auth?.headerName ?? '', values), value);
      target.secrets.push(value);
      return;
    }
    case 'bearer': {
      const value = credential(values, field);
      setHeader(target.headers, 'authorization', `Bearer ${value}`);
      target.secrets.push(value);
      return;
    }
    case 'basic': {
      const userSpec = auth?.usernameField ?? 'username';
      const user = userSpec.includes('{{') ? renderTemplate(userSpec, values) : credential(values, userSpec);
      const password = credential(values, auth?.passwordField ?? 'password');
      const encoded = Buffer.from(`${user}:${password}`, 'utf8').toString('base64');
      setHeader(target.headers, 'authorization', `Basic ${encoded}`);
      target.secrets.push(password, encoded);
      if (!userSpec.includes('{{')) target.secrets.push(user);
      return;
    }
    case 'query': {
      const param = renderTemplate(auth?.queryParam ?? '', values);
      if (param === '') throw invalid();
      const value = credential(values, field);
      target.query = { param, value };
      target.secrets.push(value);
      return;
    }
    default:
      return;
  }
}

/**
 * Renders what a connection's proxied requests share: the base URL, the
 * credential's placement and `spec.gateway.headers`. Depends only on the
 * type, the settings and the credentials, so the gateway computes it once per
 * version of those (ConnectionPlans) rather than once per request.
 */
export function planConnection(gateway: GatewaySpec, values: TemplateValues): ConnectionTarget {
  try {
    const target: ConnectionTarget = { base: renderUrlTemplate(gateway.baseURL, values), headers: {}, secrets: [] };
    for (const [name, tpl] of Object.entries(gateway.headers ?? {})) {
      if (refersToAbsentCredential(tpl, values)) continue;
      const value = renderTemplate(tpl, values);
      setHeader(target.headers, name, value);
      for (const field of Object.keys(values.credentials)) {
        if (tpl.includes(`credentials.${field}`)) target.secrets.push(values.credentials[field] as string, value);
      }
    }
    applyAuth(gateway.auth, values, target);
    // Shared by every request of the plan (and the key of its needles in headers.ts): never changed after this.
    Object.freeze(target.headers);
    Object.freeze(target.secrets);
    return target;
  } catch (err) {
    if (err instanceof TemplateError) {
      throw err.kind === 'missing-credential'
        ? notReady(GatewayErrorMessage.noCredentials, { cause: err })
        : invalid(err);
    }
    if (err instanceof GatewayError) throw err;
    throw invalid(err);
  }
}

/**
 * One proxied request's upstream: the base URL (its path prefix kept) with
 * the caller's path and query appended, then a query credential set. `path`
 * is the still-encoded path after `/proxy` (already checked for dot
 * segments); `search` is the caller's query string including `?`, or empty.
 * A caller's query parameter of the same name as a query credential is
 * replaced.
 */
export function requestPlan(target: ConnectionTarget, path: string, search: string): UpstreamPlan {
  const { base } = target;
  const url = new URL(base.href);
  url.pathname = base.pathname.replace(/\/+$/, '') + (path === '' ? '' : path.startsWith('/') ? path : `/${path}`);
  const callerQuery = search.startsWith('?') ? search.slice(1) : search;
  const baseQuery = base.search.startsWith('?') ? base.search.slice(1) : '';
  url.search = [baseQuery, callerQuery].filter((q) => q !== '').join('&');
  url.hash = '';
  if (target.query !== undefined) url.searchParams.set(target.query.param, target.query.value);
  return { url, headers: target.headers, secrets: target.secrets };
}

/** Plans the upstream request of a proxied call in one step (planConnection, then requestPlan). */
export function planUpstream(gateway: GatewaySpec, values: TemplateValues, path: string, search: string): UpstreamPlan {
  return requestPlan(planConnection(gateway, values), path, search);
}

/**
 * Checks the part of a URL after `/proxy`: decoded dot segments (which would
 * climb out of the base URL's path prefix), backslashes (which some servers
 * read as `/`), encoded slashes' decoded twins and control characters are
 * refused. Returns true when the path may be forwarded as is.
 */
export function isForwardablePath(path: string): boolean {
  if (/[\\\u0000-\u001f\u007f]/.test(path)) return false;
  for (const segment of path.split('/')) {
    let decoded: string;
    try {
      decoded = decodeURIComponent(segment);
    } catch {
      return false;
    }
    if (decoded === '.' || decoded === '..' || /[\\/\u0000-\u001f\u007f]/.test(decoded)) return false;
  }
  return true;
}
