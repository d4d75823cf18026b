import { hash } from 'node:crypto';
import type { KubeClient, KubeObject } from '../kube/client.js';
import { SubjectAccessReviews, TokenReviews } from '../kube/resources.js';
import { GROUP, EXTERNAL_CONNECTION } from '../api/v1alpha1/index.js';
import {
  callerFromTokenReview,
  GATEWAY_AUDIENCE,
  unverifiedExpiry,
  type Caller,
  type TokenReviewStatus,
} from './caller.js';
import { GatewayError, reviewUnavailable, tooManyUnknownTokens } from './errors.js';
import { SourceLimiter } from './source-limiter.js';
import { TtlCache } from './ttl-cache.js';

export interface AuthorizerOptions {
  client: KubeClient;
  audience?: string;
  /** How long TokenReview and SubjectAccessReview answers are reused. */
  cacheTtlMs?: number;
  /** Upper bound of cached decisions of each kind. */
  cacheSize?: number;
  /** TokenReviews of tokens not in the cache, per source address; default burst 30, 3 per second. */
  unknownTokens?: { burst: number; perSecond: number };
  now?: () => number;
}

type TokenDecision = Caller | GatewayError;

/** The RBAC verbs the gateway checks on an ExternalConnection. */
export type ConnectionVerb = 'use' | 'read-credentials';

interface ReviewObject extends KubeObject {
  spec?: Record<string, unknown>;
  status?: TokenReviewStatus & { allowed?: boolean; denied?: boolean };
}

const callerKeys = new WeakMap<Caller, string>();

function callerKey(caller: Caller): string {
  let key = callerKeys.get(caller);
  if (key === undefined) {
    key = JSON.stringify([caller.username, caller.uid, caller.groups, caller.namespace]);
    if (Object.isFrozen(caller) && Object.isFrozen(caller.groups)) callerKeys.set(caller, key);
  }
  return key;
}

/**
 * Authentication (TokenReview with the gateway's audience) and authorization
 * (SubjectAccessReview for a verb on one ExternalConnection) against
 * the real API server, so RBAC stays the single source of truth. Answers are
 * cached for a few seconds, keyed by a hash of the token (never the token),
 * which bounds how long a revoked grant keeps working.
 */
export class GatewayAuthorizer {
  readonly #client: KubeClient;
  readonly #audience: string;
  readonly #ttlMs: number;
  readonly #now: () => number;
  readonly #tokens: TtlCache<TokenDecision>;
  readonly #access: TtlCache<boolean>;
  readonly #unknownTokens: SourceLimiter;
  readonly #reviewing = new Map<string, Promise<TokenDecision>>();

  constructor(opts: AuthorizerOptions) {
    this.#client = opts.client;
    this.#audience = opts.audience ?? GATEWAY_AUDIENCE;
    this.#ttlMs = opts.cacheTtlMs ?? 10_000;
    this.#now = opts.now ?? Date.now;
    this.#tokens = new TtlCache(opts.cacheSize ?? 10_000, this.#now);
    this.#access = new TtlCache(opts.cacheSize ?? 10_000, this.#now);
    this.#unknownTokens = new SourceLimiter({ ...(opts.unknownTokens ?? { burst: 30, perSecond: 3 }), now: this.#now });
  }

  /**
   * The caller behind a bearer token, or a 401/403 GatewayError (thrown).
   * A token not in the cache costs `source` one TokenReview from its budget
   * (429 once spent), refunded when the token is valid. Concurrent requests
   * with the same new token share one review (and one budget token).
   * `source` may be given as a function: it is then only worked out for a
   * token not in the cache.
   */
  async authenticate(token: string, source?: string | (() => string)): Promise<Caller> {
    // One-shot SHA-256: the same key as a Hash object's, without allocating one per request.
    const key = hash('sha256', token, 'base64url');
    let decision = this.#tokens.get(key);
    if (decision === undefined) {
      if (typeof source === 'function') source = source();
      let pending = this.#reviewing.get(key);
      if (pending === undefined) {
        if (source !== undefined) {
          const wait = this.#unknownTokens.take(source);
          if (wait > 0) throw tooManyUnknownTokens(wait);
        }
        pending = this.#review(key, token).finally(() => this.#reviewing.delete(key));
        this.#reviewing.set(key, pending);
        decision = await pending;
        if (typeof source === 'string' && !(decision instanceof GatewayError)) this.#unknownTokens.refund(source);
      } else {
        decision = await pending;
      }
    }
    if (decision instanceof GatewayError) throw decision;
    return decision;
  }

  async #review(key: string, token: string): Promise<TokenDecision> {
    let review: ReviewObject;
    try {
      review = await this.#client.review<ReviewObject>(TokenReviews, {
        metadata: {},
        spec: { token, audiences: [this.#audience] },
      });
    } catch (err) {
      throw reviewUnavailable({ cause: err });
    }
    const decision = callerFromTokenReview(review.status, this.#audience);
    this.#tokens.set(key, decision, this.#cacheLifetime(token, decision));
    return decision;
  }

  /**
   * Whether the caller holds `verb` (`use` to proxy, `read-credentials` for
   * plaintext delivery) on the connection `name` in ITS OWN namespace.
   * There is deliberately no namespace parameter: whatever RBAC grants in
   * other namespaces, the gateway only ever asks about the token's one.
   * `name` undefined asks about every connection of the namespace at once.
   */
  async may(caller: Caller, verb: ConnectionVerb, name: string | undefined): Promise<boolean> {
    // The caller's part of the key is serialised once per (cached, frozen) caller; verb and name cannot hold a newline.
    const key = `${callerKey(caller)}\n${verb}\n${name ?? ''}`;
    const cached = this.#access.get(key);
    if (cached !== undefined) return cached;
    let review: ReviewObject;
    try {
      review = await this.#client.review<ReviewObject>(SubjectAccessReviews, {
        metadata: {},
        spec: {
          user: caller.username,
          uid: caller.uid,
          groups: caller.groups,
          extra: caller.extra,
          resourceAttributes: {
            group: GROUP,
            resource: EXTERNAL_CONNECTION.plural,
            verb,
            namespace: caller.namespace,
            ...(name === undefined ? {} : { name }),
          },
        },
      });
    } catch (err) {
      throw reviewUnavailable({ cause: err });
    }
    const allowed = review.status?.allowed === true && review.status.denied !== true;
    this.#access.set(key, allowed, this.#ttlMs);
    return allowed;
  }

  /** Never cache a positive answer past the token's own expiry. */
  #cacheLifetime(token: string, decision: TokenDecision): number {
    if (decision instanceof GatewayError) return this.#ttlMs;
    const exp = unverifiedExpiry(token);
    return exp === undefined ? this.#ttlMs : Math.min(this.#ttlMs, exp * 1000 - this.#now());
  }
}
