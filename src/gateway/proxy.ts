import type { IncomingMessage, ServerResponse } from 'node:http';
import type { EgressPolicy } from '../integrations/probe-types.js';
import { GatewayError, GatewayErrorCode, GatewayErrorMessage } from './errors.js';
import { forwardableRequestHeaders, safeResponseHeaders } from './headers.js';
import type { UpstreamClient } from './upstream-client.js';
import type { UpstreamPlan } from './upstream-plan.js';

export const GATEWAY_USER_AGENT = 'atoll-gateway/0.1';

class UpstreamTimeoutError extends Error {
  override readonly name = 'UpstreamTimeoutError';
  constructor() {
    super(GatewayErrorMessage.upstreamTimeout);
  }
}

const TLS_FAILURE = /CERT|SSL|TLS|SIGNATURE|ALTNAME/;

/** Maps a failure before the upstream answered to the gateway's 502/504 answers. */
function upstreamFailure(err: unknown): GatewayError {
  if (err instanceof GatewayError) return err;
  if (err instanceof UpstreamTimeoutError) return new GatewayError(504, GatewayErrorCode.GatewayTimeout, GatewayErrorMessage.upstreamTimeout, { cause: err });
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && TLS_FAILURE.test(code)) {
    return new GatewayError(502, GatewayErrorCode.BadGateway, GatewayErrorMessage.upstreamTLS, { cause: err });
  }
  return new GatewayError(502, GatewayErrorCode.BadGateway, GatewayErrorMessage.upstreamFailed, { cause: err });
}

export interface ProxyOptions {
  client: UpstreamClient;
  egress: EgressPolicy;
  /** Idle time allowed while waiting for the upstream (headers or the next body chunk). */
  timeoutMs: number;
}

/**
 * Sends the caller's request to the planned upstream URL and streams both
 * bodies (piped, never buffered). The caller's credentials and proxy headers
 * are removed, the plan's headers (the injected credential) set, and response
 * headers that echo a secret dropped. Redirects are passed back, not
 * followed. Resolves with the status sent to the caller once the response is
 * done; throws a GatewayError if the upstream failed before answering (the
 * caller has then received nothing yet).
 */
export async function proxyRequest(req: IncomingMessage, res: ServerResponse, plan: UpstreamPlan, opts: ProxyOptions): Promise<number> {
  const target = await opts.client.target(plan.url, opts.egress);
  const headers = {
    ...forwardableRequestHeaders(req.headers, Object.keys(plan.headers)),
    'user-agent': req.headers['user-agent'] ?? GATEWAY_USER_AGENT,
    ...plan.headers,
    host: plan.url.host,
  };

  return new Promise<number>((resolve, reject) => {
    let answered = false;
    const upstream = target.request({ method: req.method, path: `${plan.url.pathname}${plan.url.search}`, headers });
    upstream.setTimeout(opts.timeoutMs, () => upstream.destroy(new UpstreamTimeoutError()));

    const onCallerGone = (): void => {
      if (!res.writableFinished) upstream.destroy();
    };
    res.once('close', onCallerGone);

    upstream.on('error', (err) => {
      if (!answered) {
        answered = true;
        req.unpipe(upstream);
        reject(upstreamFailure(err));
        return;
      }
      // Headers already went out: all we can do is cut the response short.
      res.destroy();
    });

    upstream.on('response', (upstreamRes) => {
      answered = true;
      const status = upstreamRes.statusCode ?? 502;
      res.writeHead(status, safeResponseHeaders(upstreamRes.headers, plan.secrets));
      upstreamRes.pipe(res);
      upstreamRes.on('error', () => res.destroy());
      res.once('close', () => resolve(status));
    });

    req.pipe(upstream);
  });
}
