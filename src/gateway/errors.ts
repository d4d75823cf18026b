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
  Internal: 'Internal',
} as const;
export type GatewayErrorCode = (typeof GatewayErrorCode)[keyof typeof GatewayErrorCode];

export const GatewayErrorMessage = {
  missingToken: 'a bearer token with audience atoll-gateway is required',
  invalidToken: 'the token is invalid, expired or not meant for atoll-gateway',
  notServiceAccount: 'only ServiceAccount tokens may use the gateway',
  notAllowed: 'the caller may not use this connection',
  unknownConnection: 'no such connection in the caller\'s namespace',
  unknownRoute: 'no such route',
  invalidPath: 'the proxied path is not allowed',
  methodNotAllowed: 'method not allowed on this route',
  notProxyable: 'the connection\'s type does not support the gateway',
  noWorkspace: 'the caller\'s namespace is not a workspace',
  noCredentials: 'the connection has no usable credentials yet',
  typeNotAllowed: 'the workspace policy does not allow the connection\'s type',
  invalidSettings: 'the connection\'s settings or type do not render a valid upstream request',
  upstreamFailed: 'the connection\'s service could not be reached',
  upstreamTLS: 'the connection\'s service presented a certificate that is not trusted',
  egressDenied: 'the workspace egress policy does not allow the connection\'s service address',
  upstreamTimeout: 'the connection\'s service did not answer in time',
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
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'GatewayError';
  }

  /** The JSON body sent to the caller. */
  body(): { error: { code: GatewayErrorCode; message: string } } {
    return { error: { code: this.code, message: this.message } };
  }
}

export const unauthorized = (message: GatewayErrorMessage = GatewayErrorMessage.invalidToken, options?: { cause?: unknown }) =>
  new GatewayError(401, GatewayErrorCode.Unauthorized, message, options);
export const forbidden = (message: GatewayErrorMessage = GatewayErrorMessage.notAllowed) =>
  new GatewayError(403, GatewayErrorCode.Forbidden, message);
export const notFound = (message: GatewayErrorMessage = GatewayErrorMessage.unknownConnection) =>
  new GatewayError(404, GatewayErrorCode.NotFound, message);
export const badRequest = (message: GatewayErrorMessage) => new GatewayError(400, GatewayErrorCode.BadRequest, message);
export const notReady = (message: GatewayErrorMessage, options?: { cause?: unknown }) =>
  new GatewayError(503, GatewayErrorCode.NotReady, message, options);
export const reviewUnavailable = (options?: { cause?: unknown }) =>
  new GatewayError(503, GatewayErrorCode.Unavailable, GatewayErrorMessage.reviewUnavailable, options);
