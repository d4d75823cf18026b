/**
 * Every answer the gateway gives besides a proxied response: an HTTP status,
 * a CamelCase code and a constant message. Nothing a caller sent, nothing an
 * upstream answered and no credential is ever interpolated, so error bodies
 * and log lines are safe by construction.
 */
export const GatewayErrorCode = {
  Unauthorized: 'Unauthorized',
  Forbidden: 'Forbidden',
  NotFound: 'NotFound',
  BadRequest: 'BadRequest',
  MethodNotAllowed: 'MethodNotAllowed',
  NotProxyable: 'NotProxyable',
  NotReady: 'NotReady',
  BadGateway: 'BadGateway',
  EgressDenied: 'EgressDenied',
  GatewayTimeout: 'GatewayTimeout',
  Unavailable: 'Unavailable',
  AmbiguousFraming: 'AmbiguousFraming',
  DeliveryNotAllowed: 'DeliveryNotAllowed',
  TooManyRequests: 'TooManyRequests',
  Internal: 'Internal',
} as const;
export type GatewayErrorCode = (typeof GatewayErrorCode)[keyof typeof GatewayErrorCode];

export const GatewayErrorMessage = {
  missingToken: 'a bearer token with audience atoll-gateway is required',
  invalidToken: 'the token is invalid, expired or not meant for atoll-gateway',
  notServiceAccount: 'only ServiceAccount tokens may use the gateway',
  notAllowed:
    'the caller may not use this connection: proxying needs the verb use on it (ClusterRole atoll-connection-user)',
  readCredentialsNotAllowed:
    "the caller may not read this connection's credentials: that needs the verb read-credentials on it (ClusterRole atoll-connection-reader); use alone allows proxying only",
  filesNotAllowedByType:
    "the connection's type does not allow file delivery (its spec.delivery lacks files): use the gateway's proxy instead",
  filesNotAllowedByWorkspace:
    "the workspace policy forbids file delivery (spec.policy.delivery.files is false): use the gateway's proxy instead",
  proxyNotAllowedByType: "the connection's type does not allow proxy delivery (its spec.delivery lacks proxy)",
  framingBoth: 'the request has both Transfer-Encoding and Content-Length; send exactly one',
  framingCoding: "the request's Transfer-Encoding must be exactly chunked (HTTP/1.1 only)",
  framingLength: 'the request must carry at most one Content-Length, a plain decimal number',
  framingFolded: 'the request has a header folded over several lines (obsolete line folding)',
  hostMissing: 'an HTTP/1.1 request needs a Host header',
  bodyNotAllowed: 'the gateway does not forward a body with GET, HEAD, OPTIONS or TRACE; send the request without one',
  tooManyUnknownTokens:
    'too many requests with tokens the gateway has not verified from this address; retry after the time in Retry-After',
  unknownConnection: "no such connection in the caller's namespace",
  unknownRoute: 'no such route',
  invalidPath: 'the proxied path is not allowed',
  methodNotAllowed: 'method not allowed on this route',
  traceNotForwarded:
    'the gateway does not forward TRACE: the service would echo the injected credential back to the caller',
  notProxyable: "the connection's type does not support the gateway",
  noWorkspace: "the caller's namespace is not a workspace",
  noCredentials: 'the connection has no usable credentials yet',
  typeNotAllowed: "the workspace policy does not allow the connection's type",
  invalidSettings: "the connection's settings or type do not render a valid upstream request",
  upstreamFailed: "the connection's service could not be reached",
  upstreamTLS: "the connection's service presented a certificate that is not trusted",
  egressDenied: "the workspace egress policy does not allow the connection's service address",
  upstreamTimeout: "the connection's service did not answer in time",
  reviewUnavailable: 'the Kubernetes API could not check the caller; try again',
  notReady: 'the gateway is starting',
  internal: 'the gateway failed to handle the request',
} as const;
export type GatewayErrorMessage = (typeof GatewayErrorMessage)[keyof typeof GatewayErrorMessage];

/** A refusal or failure the gateway answers with; `cause` is for logs only, never for the response. */
export class GatewayError extends Error {
  constructor(
    readonly status: number,
    readonly code: GatewayErrorCode,
    message: GatewayErrorMessage,
    options?: { cause?: unknown; retryAfterSeconds?: number },
  ) {
    super(message, options);
    this.name = 'GatewayError';
    this.retryAfterSeconds = options?.retryAfterSeconds;
  }

  /** Sent as Retry-After (429). */
  readonly retryAfterSeconds: number | undefined;

  /** The JSON body sent to the caller. */
  body(): { error: { code: GatewayErrorCode; message: string } } {
    return { error: { code: this.code, message: this.message } };
  }
}

export const unauthorized = (
  message: GatewayErrorMessage = GatewayErrorMessage.invalidToken,
  options?: { cause?: unknown },
) => new GatewayError(401, GatewayErrorCode.Unauthorized, message, options);
export const forbidden = (message: GatewayErrorMessage = GatewayErrorMessage.notAllowed) =>
  new GatewayError(403, GatewayErrorCode.Forbidden, message);
export const notFound = (message: GatewayErrorMessage = GatewayErrorMessage.unknownConnection) =>
  new GatewayError(404, GatewayErrorCode.NotFound, message);
export const badRequest = (message: GatewayErrorMessage) => new GatewayError(400, GatewayErrorCode.BadRequest, message);
export const ambiguousFraming = (message: GatewayErrorMessage) =>
  new GatewayError(400, GatewayErrorCode.AmbiguousFraming, message);
export const deliveryNotAllowed = (message: GatewayErrorMessage) =>
  new GatewayError(403, GatewayErrorCode.DeliveryNotAllowed, message);
export const tooManyUnknownTokens = (retryAfterSeconds: number) =>
  new GatewayError(429, GatewayErrorCode.TooManyRequests, GatewayErrorMessage.tooManyUnknownTokens, {
    retryAfterSeconds,
  });
export const notReady = (message: GatewayErrorMessage, options?: { cause?: unknown }) =>
  new GatewayError(503, GatewayErrorCode.NotReady, message, options);
export const reviewUnavailable = (options?: { cause?: unknown }) =>
  new GatewayError(503, GatewayErrorCode.Unavailable, GatewayErrorMessage.reviewUnavailable, options);
