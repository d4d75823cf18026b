import http from 'node:http';
import https from 'node:https';
import { isIP } from 'node:net';
import { checkServerIdentity, createSecureContext, rootCertificates, type SecureContext } from 'node:tls';
import { resolveEgress, type Resolver } from '../integrations/egress.js';
import { ProbeFailure } from '../integrations/probe-failure.js';
import type { DialOverride, EgressPolicy } from '../integrations/probe-types.js';
import { GatewayError, GatewayErrorCode, GatewayErrorMessage } from './errors.js';

export interface UpstreamClientOptions {
  /** Extra PEM CAs trusted besides the system ones (tests, private PKI). */
  upstreamCAs?: string[];
  /** Tests and benchmarks only: connect here instead (the egress check applies to this address). */
  dial?: (host: string, port: number) => DialOverride | undefined;
  resolver?: Resolver;
}

/** Where one upstream request connects: an address the egress guard checked, and how to verify it. */
export interface UpstreamTarget {
  request(options: http.RequestOptions): http.ClientRequest;
}

const MAX_AGENTS = 1_000;

/**
 * Opens upstream requests through the egress guard. The upstream host is
 * resolved once per request and every address checked against the
 * workspace's allowCIDRs; the request then connects to exactly that address
 * (so DNS rebinding cannot slip in between), with TLS SNI and certificate
 * verification for the configured host name. Connections are kept alive in
 * pools keyed by (checked address, port, verified name), so a pooled socket
 * is only ever reused for the same checked destination.
 */
export class UpstreamClient {
  readonly #agents = new Map<string, http.Agent>();
  readonly #secureContext: SecureContext | undefined;
  readonly #dial: UpstreamClientOptions['dial'];
  readonly #resolver: Resolver | undefined;

  constructor(opts: UpstreamClientOptions = {}) {
    this.#secureContext = opts.upstreamCAs !== undefined && opts.upstreamCAs.length > 0
      ? createSecureContext({ ca: [...rootCertificates, ...opts.upstreamCAs] })
      : undefined;
    this.#dial = opts.dial;
    this.#resolver = opts.resolver;
  }

  /** Resolves and checks the URL's host; throws a GatewayError (502) when egress is denied or DNS fails. */
  async target(url: URL, egress: EgressPolicy): Promise<UpstreamTarget> {
    const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
    const secure = url.protocol === 'https:';
    const port = url.port !== '' ? Number(url.port) : secure ? 443 : 80;
    const override = this.#dial?.(host, port);
    let address: string;
    try {
      address = (await resolveEgress(override?.host ?? host, egress, ...(this.#resolver ? [this.#resolver] : []))).address;
    } catch (err) {
      if (err instanceof ProbeFailure && err.reason === 'EgressDenied') {
        throw new GatewayError(502, GatewayErrorCode.EgressDenied, GatewayErrorMessage.egressDenied, { cause: err });
      }
      throw new GatewayError(502, GatewayErrorCode.BadGateway, GatewayErrorMessage.upstreamFailed, { cause: err });
    }
    const connectPort = override?.port ?? port;
    const agent = this.#agent(secure, address, connectPort, host);
    const tlsOptions: https.RequestOptions = secure
      ? {
          ...(isIP(host) === 0 ? { servername: host } : {}),
          checkServerIdentity: (_name, cert) => checkServerIdentity(host, cert),
          rejectUnauthorized: true,
          ...(this.#secureContext ? { secureContext: this.#secureContext } : {}),
        }
      : {};
    const lib = secure ? https : http;
    return {
      request: (options) => lib.request({ ...options, ...tlsOptions, host: address, port: connectPort, agent, setHost: false }),
    };
  }

  /** Closes every pooled connection. */
  close(): void {
    for (const agent of this.#agents.values()) agent.destroy();
    this.#agents.clear();
  }

  #agent(secure: boolean, address: string, port: number, verifiedName: string): http.Agent {
    const key = `${secure ? 'https' : 'http'}|${address}|${port}|${verifiedName}`;
    let agent = this.#agents.get(key);
    if (agent === undefined) {
      // Evict the least recently created pool, keeping its in-flight requests alive
      // (Agent.destroy would cut them); only its idle sockets are closed.
      if (this.#agents.size >= MAX_AGENTS) {
        const [oldestKey, oldest] = this.#agents.entries().next().value as [string, http.Agent];
        this.#agents.delete(oldestKey);
        for (const sockets of Object.values(oldest.freeSockets)) for (const socket of sockets ?? []) socket.destroy();
      }
      const options = { keepAlive: true, maxSockets: 256, maxFreeSockets: 32, timeout: 60_000 };
      agent = secure ? new https.Agent(options) : new http.Agent(options);
      this.#agents.set(key, agent);
    }
    return agent;
  }
}
