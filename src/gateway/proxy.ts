import { EventEmitter } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { errors as undiciErrors, type Dispatcher } from 'undici';
import type { EgressPolicy } from '../integrations/probe-types.js';
import { GatewayError, GatewayErrorCode, GatewayErrorMessage } from './errors.js';
import type { RequestBody } from './framing.js';
import { forwardableRequestHeaders, safeResponseHeaders } from './headers.js';
import type { PoolOwner, UpstreamClient } from './upstream-client.js';
import type { UpstreamPlan } from './upstream-plan.js';

export const GATEWAY_USER_AGENT = 'atoll-gateway/0.1';

const TLS_FAILURE = /CERT|SSL|TLS|SIGNATURE|ALTNAME/;

/** Maps a failure before the upstream answered to the gateway's 502/504 answers. */
function upstreamFailure(err: unknown): GatewayError {
  if (err instanceof GatewayError) return err;
  if (
    err instanceof undiciErrors.HeadersTimeoutError ||
    err instanceof undiciErrors.BodyTimeoutError ||
    err instanceof undiciErrors.ConnectTimeoutError
  ) {
    return new GatewayError(504, GatewayErrorCode.GatewayTimeout, GatewayErrorMessage.upstreamTimeout, { cause: err });
  }
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && TLS_FAILURE.test(code)) {
    return new GatewayError(502, GatewayErrorCode.BadGateway, GatewayErrorMessage.upstreamTLS, { cause: err });
  }
  return new GatewayError(502, GatewayErrorCode.BadGateway, GatewayErrorMessage.upstreamFailed, { cause: err });
}

export interface ProxyOptions {
  client: UpstreamClient;
  egress: EgressPolicy;
  /** Whose credentials the request carries: picks the connection's own keep-alive pool. */
  owner: PoolOwner;
  /** The request body as the framing check found it. */
  body: RequestBody;
}

/**
 * Sends the caller's request to the planned upstream URL and streams both
 * bodies (never buffered). The caller's credentials and proxy headers are
 * removed, the plan's headers (the injected credential) set, and response
 * headers that echo a secret dropped. A body is forwarded with explicit
 * framing (its Content-Length, or chunked); none is sent when the caller sent
 * none. Redirects are passed back, not followed. Resolves with the status
 * sent to the caller once the response is done; throws a GatewayError if the
 * upstream failed before answering (the caller has then received nothing).
 * If the caller goes away first, the upstream request is aborted, which
 * destroys its socket rather than returning it to the pool.
 */
export async function proxyRequest(
  req: IncomingMessage,
  res: ServerResponse,
  plan: UpstreamPlan,
  opts: ProxyOptions,
): Promise<number> {
  const pool = await opts.client.pool(plan.destination, opts.egress, opts.owner);
  const headers = forwardableRequestHeaders(req.headers, plan.headers) as Record<string, string | string[]>;
  headers['user-agent'] = req.headers['user-agent'] ?? GATEWAY_USER_AGENT;
  for (const name of Object.keys(plan.headers)) headers[name] = plan.headers[name] as string;
  headers.host = plan.destination.host;
  if (opts.body.kind === 'length') headers['content-length'] = String(opts.body.length);
  else if (headers['content-length'] !== undefined) delete headers['content-length'];
  return new Promise<number>((resolve, reject) => {
    // undici's abort signal may be any emitter of 'abort': cheaper than an AbortController per request (ADR 0030).
    const callerGone = new EventEmitter();
    let answer: Dispatcher.ResponseData | undefined;
    res.once('close', () => {
      if (answer === undefined) {
        if (!res.writableFinished) callerGone.emit('abort');
        return;
      }
      // Anything left unread (caller gone, upstream cut short) is destroyed, never pooled.
      if (!answer.body.readableEnded) answer.body.destroy();
      resolve(answer.statusCode);
    });
    pool.request(
      {
        method: req.method as Dispatcher.HttpMethod,
        path: plan.path,
        headers,
        body: opts.body.kind === 'none' ? null : req,
        signal: callerGone,
      },
      (err, data) => {
        if (err !== null) {
          reject(upstreamFailure(err));
          return;
        }
        try {
          res.writeHead(data.statusCode, safeResponseHeaders(data.headers, plan.secrets));
        } catch (headErr) {
          // An upstream header Node refuses to send: a 500 (nothing was sent), as when this threw after an await.
          data.body.destroy();
          reject(headErr instanceof Error ? headErr : new Error(String(headErr)));
          return;
        }
        answer = data;
        data.body.on('error', () => res.destroy());
        data.body.pipe(res);
      },
    );
  });
}
