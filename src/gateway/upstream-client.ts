import { isIP } from 'node:net';
import { checkServerIdentity, createSecureContext, rootCertificates, type SecureContext } from 'node:tls';
import { buildConnector, Pool } from 'undici';
import { resolveEgress, type Resolver } from '../integrations/egress.js';
import { ProbeFailure } from '../integrations/probe-failure.js';
import type { DialOverride, EgressPolicy } from '../integrations/probe-types.js';
import { GatewayError, GatewayErrorCode, GatewayErrorMessage } from './errors.js';
import type { Destination } from './upstream-plan.js';

export interface UpstreamClientOptions {
  /** Extra PEM CAs trusted besides the system ones (tests, private PKI). */
  upstreamCAs?: string[];
  /** Tests and benchmarks only: connect here instead (the egress check applies to this address). */
  dial?: (host: string, port: number) => DialOverride | undefined;
  resolver?: Resolver;
  /** Idle time allowed for upstream headers and between body chunks. */
  timeoutMs?: number;
}

/**
 * Which connection's credentials a pool's requests carry. Pools are never
 * shared between two keys, so a socket that ever carried one connection's
 * credential only ever carries that connection's requests (same namespace,
 * same object, same credential versions).
 */
export interface PoolOwner {
  namespace: string;
  name: string;
  uid: string;
  /** Credential versions (any rotation yields a new pool; the old one is closed). */
  credentialVersion: string;
}

/** A pool and what its key says, kept beside it so retiring never parses a key. */
interface PoolEntry {
  pool: Pool;
  identity: string;
  version: string;
}

/** The identity and key prefix of an owner object, derived once (plans hand every request the same owner). */
const ownerKeys = new WeakMap<PoolOwner, { identity: string; prefix: string }>();

function keysOf(owner: PoolOwner): { identity: string; prefix: string } {
  let keys = ownerKeys.get(owner);
  if (keys === undefined || !Object.isFrozen(owner)) {
    const identity = JSON.stringify([owner.namespace, owner.name, owner.uid]);
    // A JSON array, so the prefix ends where the destination begins: keys of different owners never collide.
    keys = { identity, prefix: JSON.stringify([identity, owner.credentialVersion]) };
    if (Object.isFrozen(owner)) ownerKeys.set(owner, keys);
  }
  return keys;
}

const MAX_POOLS = 1_000;

/**
 * Opens upstream requests through the egress guard, with undici (strict
 * HTTP/1.1 framing both ways). The upstream host is resolved once per request
 * and every address checked against the workspace's allowCIDRs; the request
 * then connects to exactly that address (so DNS rebinding cannot slip in
 * between), with TLS SNI and certificate verification for the configured host
 * name. Keep-alive pools are keyed by the owning connection AND the checked
 * destination: never shared across connections or workspaces. undici destroys
 * (never reuses) a socket whose exchange ended abnormally: the upstream closed
 * early, the response was not read to its end, or the request was aborted.
 */
export class UpstreamClient {
  readonly #pools = new Map<string, PoolEntry>();
  /** Pool keys per connection identity, to close a connection's pools when its credentials change. */
  readonly #byConnection = new Map<string, Set<string>>();
  readonly #secureContext: SecureContext | undefined;
  readonly #dial: UpstreamClientOptions['dial'];
  readonly #resolver: Resolver | undefined;
  readonly #timeoutMs: number;

  constructor(opts: UpstreamClientOptions = {}) {
    this.#secureContext =
      opts.upstreamCAs !== undefined && opts.upstreamCAs.length > 0
        ? createSecureContext({ ca: [...rootCertificates, ...opts.upstreamCAs] })
        : undefined;
    this.#dial = opts.dial;
    this.#resolver = opts.resolver;
    this.#timeoutMs = opts.timeoutMs ?? 30_000;
  }

  /**
   * Resolves and checks the destination's host, then returns the owner's pool for it; throws a GatewayError (502)
   * when egress is denied or DNS fails.
   */
  async pool(destination: Destination, egress: EgressPolicy, owner: PoolOwner): Promise<Pool> {
    const { hostname: host, port, secure } = destination;
    const override = this.#dial?.(host, port);
    let address: string;
    try {
      address = (await resolveEgress(override?.host ?? host, egress, ...(this.#resolver ? [this.#resolver] : [])))
        .address;
    } catch (err) {
      if (err instanceof ProbeFailure && err.reason === 'EgressDenied') {
        throw new GatewayError(502, GatewayErrorCode.EgressDenied, GatewayErrorMessage.egressDenied, { cause: err });
      }
      throw new GatewayError(502, GatewayErrorCode.BadGateway, GatewayErrorMessage.upstreamFailed, { cause: err });
    }
    const connectPort = override?.port ?? port;
    const { identity, prefix } = keysOf(owner);
    // Host names and addresses hold no space: the fields after the JSON prefix split unambiguously.
    const key = `${prefix} ${secure ? 's' : 'p'} ${address} ${connectPort} ${host}`;
    const entry = this.#pools.get(key);
    if (entry !== undefined) {
      // Most recently used last, so eviction takes the coldest pool.
      this.#pools.delete(key);
      this.#pools.set(key, entry);
      return entry.pool;
    }
    this.#retireStaleVersions(identity, owner.credentialVersion);
    if (this.#pools.size >= MAX_POOLS) this.#retire(this.#pools.keys().next().value as string);
    const pool = this.#newPool(destination.origin, secure, address, connectPort, host);
    this.#pools.set(key, { pool, identity, version: owner.credentialVersion });
    let keys = this.#byConnection.get(identity);
    if (keys === undefined) this.#byConnection.set(identity, (keys = new Set()));
    keys.add(key);
    return pool;
  }

  /** Closes every pool, cutting in-flight requests. */
  async close(): Promise<void> {
    const pools = [...this.#pools.values()].map((e) => e.pool);
    this.#pools.clear();
    this.#byConnection.clear();
    await Promise.all(pools.map((p) => p.destroy().catch(() => undefined)));
  }

  #newPool(origin: string, secure: boolean, address: string, port: number, verifiedName: string): Pool {
    const base = buildConnector({
      timeout: 10_000,
      ...(secure
        ? {
            rejectUnauthorized: true,
            checkServerIdentity: (_name: string, cert: Parameters<typeof checkServerIdentity>[1]) =>
              checkServerIdentity(verifiedName, cert),
            ...(this.#secureContext ? { secureContext: this.#secureContext } : {}),
          }
        : {}),
    });
    const servername = secure && isIP(verifiedName) === 0 ? verifiedName : undefined;
    return new Pool(origin, {
      // Dial exactly the address the egress guard checked, whatever the origin's name resolves to now.
      connect: (options, callback) =>
        base({ ...options, hostname: address, port: String(port), ...(servername ? { servername } : {}) }, callback),
      connections: 256,
      pipelining: 1,
      keepAliveTimeout: 30_000,
      keepAliveMaxTimeout: 60_000,
      headersTimeout: this.#timeoutMs,
      bodyTimeout: this.#timeoutMs,
      maxResponseSize: -1,
    });
  }

  /** A connection whose credentials changed gets fresh pools; the old ones finish their requests and close. */
  #retireStaleVersions(identity: string, version: string): void {
    for (const key of this.#byConnection.get(identity) ?? []) {
      if (this.#pools.get(key)?.version !== version) this.#retire(key);
    }
  }

  #retire(key: string): void {
    const entry = this.#pools.get(key);
    if (entry === undefined) return;
    this.#pools.delete(key);
    const keys = this.#byConnection.get(entry.identity);
    keys?.delete(key);
    if (keys?.size === 0) this.#byConnection.delete(entry.identity);
    void entry.pool.close().catch(() => undefined);
  }
}
