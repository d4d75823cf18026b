import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';

/** RFC 9110 §7.6.1 connection-specific headers, never forwarded in either direction. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

/**
 * Request headers the caller may not pass on: its own credentials (the
 * gateway token, cookies), anything a proxy or load balancer would claim
 * about the client, `host`, which names the gateway rather than the service,
 * and `expect` (the gateway's own server already answered 100-continue; the
 * upstream request carries its body with explicit framing).
 */
const CALLER_ONLY = new Set(['authorization', 'cookie', 'forwarded', 'host', 'x-real-ip', 'via', 'expect']);

function isConnectionScoped(name: string, connectionTokens: ReadonlySet<string>): boolean {
  return HOP_BY_HOP.has(name) || connectionTokens.has(name) || name.startsWith('proxy-');
}

const NO_TOKENS: ReadonlySet<string> = new Set();

/** The header names a Connection header lists (RFC 9110 §7.6.1), lower-case. */
function connectionTokensOf(headers: IncomingHttpHeaders): ReadonlySet<string> {
  const value = headers.connection;
  if (value === undefined) return NO_TOKENS;
  const tokens = new Set<string>();
  for (const part of (Array.isArray(value) ? value.join(',') : value).split(',')) {
    const token = part.trim().toLowerCase();
    if (token !== '') tokens.add(token);
  }
  return tokens;
}

/** Lower-cased injected names per plan headers object: a connection's plan hands every request the same one. */
const reservedOf = new WeakMap<object, ReadonlySet<string>>();

function reservedNames(injected: Iterable<string> | Readonly<Record<string, string>>): ReadonlySet<string> {
  const known = reservedOf.get(injected);
  if (known !== undefined) return known;
  const names = Symbol.iterator in injected ? [...injected] : Object.keys(injected);
  const reserved = new Set(names.map((n) => n.toLowerCase()));
  if (Object.isFrozen(injected)) reservedOf.set(injected, reserved);
  return reserved;
}

/**
 * The caller's request headers minus everything the upstream must not see
 * (see CALLER_ONLY, hop-by-hop, Proxy-*, X-Forwarded-*) and minus the names
 * the gateway itself sets (`injected`: the names, or the plan's headers
 * object), so a caller can never override or append to an injected
 * credential.
 */
export function forwardableRequestHeaders(
  headers: IncomingHttpHeaders,
  injected: Iterable<string> | Readonly<Record<string, string>>,
): OutgoingHttpHeaders {
  const tokens = connectionTokensOf(headers);
  const reserved = reservedNames(injected);
  const out: OutgoingHttpHeaders = {};
  for (const name of Object.keys(headers)) {
    const value = headers[name];
    if (value === undefined) continue;
    if (
      isConnectionScoped(name, tokens) ||
      CALLER_ONLY.has(name) ||
      name.startsWith('x-forwarded-') ||
      reserved.has(name)
    )
      continue;
    out[name] = value;
  }
  return out;
}

/**
 * The upstream's response headers minus hop-by-hop ones and minus any header
 * whose value contains a secret (the credential itself, its URL-encoded form,
 * or a whole injected header value such as `Basic …`): services that echo
 * request headers or put the API key into a Location must not hand the
 * credential to the component.
 */
export function safeResponseHeaders(headers: IncomingHttpHeaders, secrets: readonly string[]): OutgoingHttpHeaders {
  const tokens = connectionTokensOf(headers);
  const needles = secretNeedles(secrets);
  const out: OutgoingHttpHeaders = {};
  for (const name of Object.keys(headers)) {
    const value = headers[name];
    if (value === undefined || isConnectionScoped(name, tokens)) continue;
    if (typeof value === 'string' ? containsAny(value, needles) : value.some((v) => containsAny(v, needles))) continue;
    out[name] = value;
  }
  return out;
}

function containsAny(value: string, needles: readonly string[]): boolean {
  for (const needle of needles) if (value.includes(needle)) return true;
  return false;
}

/** Needles per secrets list: a connection's plan hands every request the same list, so they are derived once. */
const needlesOf = new WeakMap<readonly string[], string[]>();

/** Secrets and their encoded forms worth searching for; very short values would match everything. */
export function secretNeedles(secrets: readonly string[]): string[] {
  const known = needlesOf.get(secrets);
  if (known !== undefined) return known;
  const needles = new Set<string>();
  for (const secret of secrets) {
    if (secret.length < 4) continue;
    needles.add(secret);
    needles.add(encodeURIComponent(secret));
    needles.add(new URLSearchParams({ v: secret }).toString().slice(2));
  }
  const list = [...needles];
  needlesOf.set(secrets, list);
  return list;
}
