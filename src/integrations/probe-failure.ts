/**
 * How probe code reports a failed probe: throw a ProbeFailure carrying the
 * reason and a message built only from non-secret facts; runProbe turns it into
 * a ProbeOutcome. Socket and TLS errors are classified here, in one place, by
 * their error code, never by their text (which may quote a request).
 */
import type { ConditionStatus, ProbeOutcome, ProbeReason } from './probe-types.js';

/** What each reason says about the two conditions unless the failure says otherwise. */
const CONDITIONS_BY_REASON: Record<ProbeReason, { reachable: ConditionStatus; authenticated: ConditionStatus }> = {
  Succeeded: { reachable: 'True', authenticated: 'True' },
  AuthenticationFailed: { reachable: 'True', authenticated: 'False' },
  UnexpectedResponse: { reachable: 'True', authenticated: 'Unknown' },
  Unreachable: { reachable: 'False', authenticated: 'Unknown' },
  // A timeout before the connection was established; see timeoutFailure for the connected case.
  Timeout: { reachable: 'False', authenticated: 'Unknown' },
  // We may have reached *something*, but not a service we can verify: not usably reachable.
  TLSError: { reachable: 'False', authenticated: 'Unknown' },
  DNSError: { reachable: 'False', authenticated: 'Unknown' },
  EgressDenied: { reachable: 'False', authenticated: 'Unknown' },
  InvalidSettings: { reachable: 'Unknown', authenticated: 'Unknown' },
  CredentialsMissing: { reachable: 'Unknown', authenticated: 'Unknown' },
};

export interface ProbeFailureOptions {
  cause?: unknown;
  reachable?: ConditionStatus;
  authenticated?: ConditionStatus;
}

/** A probe result other than success. The message must never contain a credential. */
export class ProbeFailure extends Error {
  readonly reason: ProbeReason;
  readonly reachable: ConditionStatus;
  readonly authenticated: ConditionStatus;

  constructor(reason: ProbeReason, message: string, opts: ProbeFailureOptions = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'ProbeFailure';
    this.reason = reason;
    this.reachable = opts.reachable ?? CONDITIONS_BY_REASON[reason].reachable;
    this.authenticated = opts.authenticated ?? CONDITIONS_BY_REASON[reason].authenticated;
  }

  toOutcome(durationMs: number): ProbeOutcome {
    return {
      reachable: this.reachable,
      authenticated: this.authenticated,
      reason: this.reason,
      message: this.message,
      durationMs,
    };
  }
}

/** Builds an outcome with the default conditions of its reason. */
export function probeOutcome(reason: ProbeReason, message: string, durationMs = 0): ProbeOutcome {
  return { ...CONDITIONS_BY_REASON[reason], reason, message, durationMs };
}

/** A network endpoint as shown in messages: host (as configured, never an IP we resolved it to) and port. */
export interface ProbeTarget {
  host: string;
  port: number;
}

export function describeTarget(target: ProbeTarget): string {
  return target.host.includes(':') ? `[${target.host}]:${target.port}` : `${target.host}:${target.port}`;
}

/**
 * A deadline passed. Connected but silent means the service may be fine and
 * the protocol stalled, so Reachable is Unknown rather than False.
 */
export function timeoutFailure(
  target: ProbeTarget,
  timeoutMs: number,
  connected: boolean,
  cause?: unknown,
): ProbeFailure {
  const where = describeTarget(target);
  return connected
    ? new ProbeFailure('Timeout', `connected to ${where} but got no answer within ${timeoutMs} ms`, {
        cause,
        reachable: 'Unknown',
      })
    : new ProbeFailure('Timeout', `could not connect to ${where} within ${timeoutMs} ms`, { cause });
}

const UNREACHABLE_CODES: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  EPIPE: 'connection closed',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  EHOSTDOWN: 'host down',
  ENETDOWN: 'network down',
  EADDRNOTAVAIL: 'address not available',
  ECONNABORTED: 'connection aborted',
};

const DNS_CODES = new Set(['ENOTFOUND', 'EAI_AGAIN', 'EAI_FAIL', 'EAI_NONAME', 'ENODATA', 'ESERVFAIL', 'EREFUSED']);

/** OpenSSL verification results that Node surfaces as error codes. */
const CERTIFICATE_CODES = new Set([
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_CRL',
  'UNABLE_TO_DECRYPT_CERT_SIGNATURE',
  'UNABLE_TO_DECRYPT_CRL_SIGNATURE',
  'UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY',
  'CERT_SIGNATURE_FAILURE',
  'CRL_SIGNATURE_FAILURE',
  'CERT_NOT_YET_VALID',
  'CERT_HAS_EXPIRED',
  'CRL_NOT_YET_VALID',
  'CRL_HAS_EXPIRED',
  'ERROR_IN_CERT_NOT_BEFORE_FIELD',
  'ERROR_IN_CERT_NOT_AFTER_FIELD',
  'ERROR_IN_CRL_LAST_UPDATE_FIELD',
  'ERROR_IN_CRL_NEXT_UPDATE_FIELD',
  'OUT_OF_MEM',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'CERT_CHAIN_TOO_LONG',
  'CERT_REVOKED',
  'INVALID_CA',
  'PATH_LENGTH_EXCEEDED',
  'INVALID_PURPOSE',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'HOSTNAME_MISMATCH',
]);

function errorCode(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' ? code : undefined;
}

/** True for errors raised by certificate verification or the TLS handshake. */
export function isTlsError(err: unknown): boolean {
  const code = errorCode(err);
  if (code === undefined) return false;
  return CERTIFICATE_CODES.has(code) || code.startsWith('ERR_TLS_') || code.startsWith('ERR_SSL_') || code === 'EPROTO';
}

/** Error codes are constants chosen by Node/OpenSSL, safe to show; anything else is dropped. */
function safeCode(code: string | undefined): string {
  return code !== undefined && /^[A-Z0-9_]{2,64}$/.test(code) ? ` (${code})` : '';
}

/**
 * Classifies an error from connecting to or talking with a target. `connected`
 * says whether the TCP connection had been established when it happened.
 * Only the error code reaches the message; the error itself stays as `cause`.
 */
export function classifyNetworkError(err: unknown, target: ProbeTarget, connected: boolean): ProbeFailure {
  if (err instanceof ProbeFailure) return err;
  const code = errorCode(err);
  const where = describeTarget(target);
  if (isTlsError(err)) {
    return new ProbeFailure('TLSError', `TLS handshake with ${where} failed${safeCode(code)}`, { cause: err });
  }
  if (code !== undefined && code in UNREACHABLE_CODES) {
    return new ProbeFailure('Unreachable', `${UNREACHABLE_CODES[code]} by ${where}${safeCode(code)}`, { cause: err });
  }
  if (code !== undefined && DNS_CODES.has(code)) {
    return new ProbeFailure('DNSError', `could not resolve ${target.host}${safeCode(code)}`, { cause: err });
  }
  if (code === 'ETIMEDOUT') {
    return new ProbeFailure('Timeout', `connection to ${where} timed out${safeCode(code)}`, {
      cause: err,
      reachable: connected ? 'Unknown' : 'False',
    });
  }
  if (code !== undefined && code.startsWith('HPE_')) {
    return new ProbeFailure('UnexpectedResponse', `${where} did not answer with valid HTTP${safeCode(code)}`, {
      cause: err,
    });
  }
  return new ProbeFailure(
    connected ? 'UnexpectedResponse' : 'Unreachable',
    `${connected ? 'connection to' : 'could not connect to'} ${where} failed${safeCode(code)}`,
    { cause: err, reachable: connected ? 'Unknown' : 'False' },
  );
}
