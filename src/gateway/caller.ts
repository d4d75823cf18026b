import { forbidden, GatewayErrorMessage, unauthorized, type GatewayError } from './errors.js';

/** The audience every gateway token must carry; a token minted for anything else is refused. */
export const GATEWAY_AUDIENCE = 'atoll-gateway';

/** A workload the gateway has authenticated. Its namespace comes from the token and nothing else. */
export interface Caller {
  username: string;
  uid: string;
  groups: string[];
  extra: Record<string, string[]>;
  namespace: string;
  serviceAccount: string;
}

/** The part of TokenReview.status the decision reads. */
export interface TokenReviewStatus {
  authenticated?: boolean;
  audiences?: string[];
  error?: string;
  user?: { username?: string; uid?: string; groups?: string[]; extra?: Record<string, string[]> };
}

const SA_PREFIX = 'system:serviceaccount:';
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

/** `system:serviceaccount:<ns>:<sa>` → its parts; anything else (users, nodes, malformed) → undefined. */
export function parseServiceAccountUsername(username: string): { namespace: string; name: string } | undefined {
  if (!username.startsWith(SA_PREFIX)) return undefined;
  const parts = username.slice(SA_PREFIX.length).split(':');
  if (parts.length !== 2) return undefined;
  const [namespace, name] = parts as [string, string];
  if (!DNS_LABEL.test(namespace) || !DNS_SUBDOMAIN.test(name)) return undefined;
  return { namespace, name };
}

/**
 * Decides who is calling from a TokenReview answer. Pure, so every branch is
 * unit-tested: not authenticated or not for atoll-gateway → 401; a person
 * (or anything but a ServiceAccount) → 403, because the gateway exists for
 * workloads and a person's namespace is not implied by their identity.
 */
export function callerFromTokenReview(
  status: TokenReviewStatus | undefined,
  audience = GATEWAY_AUDIENCE,
): Caller | GatewayError {
  if (status?.authenticated !== true) return unauthorized();
  if (!(status.audiences ?? []).includes(audience)) return unauthorized();
  const username = status.user?.username ?? '';
  const sa = parseServiceAccountUsername(username);
  if (sa === undefined) return forbidden(GatewayErrorMessage.notServiceAccount);
  // Frozen: a cached decision is shared by every request with the token, and its authorization key is derived once.
  return Object.freeze({
    username,
    uid: status.user?.uid ?? '',
    groups: Object.freeze([...(status.user?.groups ?? [])]) as string[],
    extra: Object.freeze({ ...(status.user?.extra ?? {}) }),
    namespace: sa.namespace,
    serviceAccount: sa.name,
  });
}

/**
 * The bearer token of a request, or undefined. Only the `Bearer` scheme is
 * accepted and the token must be a plausible JWT-ish string (no whitespace),
 * so garbage never reaches the API server.
 */
export function bearerToken(authorization: string | undefined): string | undefined {
  if (authorization === undefined) return undefined;
  const match = /^Bearer\s+([A-Za-z0-9._~+/=-]+)\s*$/i.exec(authorization);
  if (match === null) return undefined;
  const token = match[1] as string;
  return token.length <= 16_384 ? token : undefined;
}

/**
 * Seconds since the epoch at which a JWT says it expires, read without
 * verifying it (the TokenReview verifies). Used only to cap how long a
 * positive decision is cached, so a token is never honoured past its expiry.
 */
export function unverifiedExpiry(token: string): number | undefined {
  const payload = token.split('.')[1];
  if (payload === undefined) return undefined;
  try {
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { exp?: unknown };
    return typeof claims.exp === 'number' && Number.isFinite(claims.exp) ? claims.exp : undefined;
  } catch {
    return undefined;
  }
}
