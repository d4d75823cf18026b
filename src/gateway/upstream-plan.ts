import type { CredentialPlacement, GatewaySpec } from '../api/v1alpha1/index.js';
import {
  refersToAbsentCredential,
  renderTemplate,
  renderUrlTemplate,
  TemplateError,
  type TemplateValues,
} from '../integrations/templates.js';
import { GatewayError, GatewayErrorMessage, notReady } from './errors.js';

/** The upstream origin of a connection, read off its rendered base URL once (per plan, not per request). */
export interface Destination {
  /** `scheme://host[:port]`, as the URL serialises it. */
  origin: string;
  /** The Host header: host and non-default port. */
  host: string;
  /** The host name or address without IPv6 brackets: what is resolved, checked and verified. */
  hostname: string;
  port: number;
  secure: boolean;
}

/** Where a proxied request goes and what the gateway adds to it. */
export interface UpstreamPlan {
  destination: Destination;
  /** The request target sent upstream: path and query, as the URL serialises them. */
  path: string;
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
  /** Its origin, parsed once. */
  destination: Destination;
  /** Its path without trailing slashes, and its query without `?`: what each request's path and query extend. */
  basePath: string;
  baseQuery: string;
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
    const base = renderUrlTemplate(gateway.baseURL, values);
    const target: ConnectionTarget = {
      base,
      destination: destinationOf(base),
      basePath: base.pathname.replace(/\/+$/, ''),
      baseQuery: base.search.startsWith('?') ? base.search.slice(1) : '',
      headers: {},
      secrets: [],
    };
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

function destinationOf(base: URL): Destination {
  const secure = base.protocol === 'https:';
  return Object.freeze({
    origin: base.origin,
    host: base.host,
    hostname: base.hostname.replace(/^\[(.*)\]$/, '$1'),
    port: base.port !== '' ? Number(base.port) : secure ? 443 : 80,
    secure,
  });
}

/**
 * Characters the WHATWG URL path and query setters leave as they are:
 * printable ASCII minus those they percent-encode (space, `"`, `#`, `<`,
 * `>`, `` ` ``, `{`, `}` and `?` in a path; `'` in the query of a special
 * scheme) and minus `\`, which a special scheme's path reads as `/`. A
 * request made only of these (and whose query does not start with `?`, which
 * the setter strips) is joined as strings, exactly as the URL would serialise
 * it, without parsing a URL per request (ADR 0030).
 */
const PLAIN_PATH = /^[!$%&'()*+,\-./0-9:;=@A-Z[\]^_a-z|~]*$/;
const PLAIN_QUERY = /^(?!\?)[!$%&()*+,\-./0-9:;=?@A-Z[\\\]^_a-z|~`{}]*$/;

/**
 * One proxied request's upstream: the base URL (its path prefix kept) with
 * the caller's path and query appended, then a query credential set. `path`
 * is the still-encoded path after `/proxy` (already checked for dot
 * segments); `search` is the caller's query string including `?`, or empty.
 * A caller's query parameter of the same name as a query credential is
 * replaced.
 */
export function requestPlan(target: ConnectionTarget, path: string, search: string): UpstreamPlan {
  const { base, destination } = target;
  const callerQuery = search.startsWith('?') ? search.slice(1) : search;
  const joinedPath = target.basePath + (path === '' ? '' : path.startsWith('/') ? path : `/${path}`);
  const { baseQuery } = target;
  const query = baseQuery === '' ? callerQuery : callerQuery === '' ? baseQuery : `${baseQuery}&${callerQuery}`;
  let requestTarget: string;
  if (target.query === undefined && PLAIN_PATH.test(joinedPath) && PLAIN_QUERY.test(query)) {
    requestTarget = `${joinedPath === '' ? '/' : joinedPath}${query === '' ? '' : `?${query}`}`;
  } else {
    const url = new URL(base.href);
    url.pathname = joinedPath;
    url.search = query;
    url.hash = '';
    if (target.query !== undefined) url.searchParams.set(target.query.param, target.query.value);
    requestTarget = `${url.pathname}${url.search}`;
  }
  return { destination, path: requestTarget, headers: target.headers, secrets: target.secrets };
}

/** The URL a plan sends its request to (tests, messages). */
export function upstreamHref(plan: UpstreamPlan): string {
  return `${plan.destination.origin}${plan.path}`;
}

/** Plans the upstream request of a proxied call in one step (planConnection, then requestPlan). */
export function planUpstream(gateway: GatewaySpec, values: TemplateValues, path: string, search: string): UpstreamPlan {
  return requestPlan(planConnection(gateway, values), path, search);
}

/**
 * Checks the part of a URL after `/proxy`: decoded dot segments, with or
 * without path parameters (which would climb out of the base URL's path
 * prefix), backslashes (which some servers
 * read as `/`), encoded slashes' decoded twins and control characters are
 * refused. Returns true when the path may be forwarded as is.
 */
export function isForwardablePath(path: string): boolean {
  if (/[\\\u0000-\u001f\u007f]/.test(path)) return false;
  // Without a percent sign nothing decodes: only literal dot segments remain to be refused.
  if (!path.includes('%')) return !/(^|\/)\.\.?(;[^/]*)?(\/|$)/.test(path);
  for (const segment of path.split('/')) {
    let decoded: string;
    try {
      decoded = decodeURIComponent(segment);
    } catch {
      return false;
    }
    if (isDotSegment(decoded) || /[\\/\u0000-\u001f\u007f]/.test(decoded)) return false;
  }
  return true;
}

/**
 * `.` or `..`, also with path parameters (`..;jsessionid=1`): servlet containers (Tomcat, Jetty, Spring)
 * drop everything from `;` before resolving a segment, so `..;` climbs as `..` does.
 */
function isDotSegment(segment: string): boolean {
  const name = segment.split(';', 1)[0];
  return name === '.' || name === '..';
}
