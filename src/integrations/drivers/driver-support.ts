import net from 'node:net';
import tls from 'node:tls';
import { deadlineSignal, pinnedDialer, type PinnedDialer } from '../egress.js';
import {
  ProbeFailure,
  classifyNetworkError,
  describeTarget,
  probeOutcome,
  timeoutFailure,
  type ProbeTarget,
} from '../probe-failure.js';
import type { ProbeContext, ProbeOutcome } from '../probe-types.js';

/**
 * What the client-library drivers (PostgreSQL, MySQL, Redis, S3) share: settings
 * readers, one deadline, an egress-pinned dialer, and the mapping from whatever
 * went wrong to a ProbeOutcome. The protocols themselves are the libraries' job.
 *
 * Timeout choice: a deadline that expires before the TCP connection is established
 * reports `reachable: False`; one that expires after (the server accepted but stalled
 * mid-protocol) reports `reachable: Unknown`, since something answered but we
 * cannot tell whether it is the service.
 */

/**
 * Maps anything a conversation threw to a ProbeFailure. Resets after the server
 * already answered mean it hung up on us mid-protocol, which is a response, not
 * unreachability; everything else is classified by the shared network rules.
 */
function toProbeFailure(
  err: unknown,
  target: ProbeTarget,
  progress: { connected: boolean; responded: boolean },
): ProbeFailure {
  if (err instanceof ProbeFailure) return err;
  const code = (err as NodeJS.ErrnoException | null)?.code;
  if (progress.responded && (code === 'ECONNRESET' || code === 'EPIPE')) {
    return new ProbeFailure(
      'UnexpectedResponse',
      `${describeTarget(target)} closed the connection during the handshake (${code})`,
      { cause: err },
    );
  }
  return classifyNetworkError(err, target, progress.connected);
}

/** TLS options for a given verification mode; `servername` is the name from the settings, never the dialled address. */
interface TlsVerification {
  servername: string;
  /** Verify the certificate chain against trusted CAs. */
  verify: boolean;
  /** Also check that the certificate names `servername` (default: same as `verify`). */
  verifyHostname?: boolean;
  trustedCAs?: string[];
  /** A TLS client certificate and key (PEM) to present. */
  clientCertificate?: { cert: string; key: string };
}

/** Node TLS options: system CAs plus the context's extra CAs, SNI for names only, hostname checked only when verifying. */
export function tlsConnectOptions(options: TlsVerification): tls.ConnectionOptions {
  const name = options.servername.replace(/^\[(.*)\]$/, '$1');
  const sni = net.isIP(name) === 0 ? name : undefined;
  return {
    ...(sni ? { servername: sni } : {}),
    rejectUnauthorized: options.verify,
    ...(options.trustedCAs?.length ? { ca: [...tls.rootCertificates, ...options.trustedCAs] } : {}),
    ...(options.clientCertificate ?? {}),
    checkServerIdentity:
      options.verify && options.verifyHostname !== false
        ? (_host, cert) => tls.checkServerIdentity(name, cert)
        : () => undefined,
  };
}

/** Milliseconds since `startedAt`, rounded. */
export function elapsedSince(startedAt: number): number {
  return Math.round(performance.now() - startedAt);
}

/** How a driver refines the shared failure mapping. */
interface ProbeHooks {
  /** A library error as a probe failure; undefined leaves it to the shared network rules. */
  classify?: (err: unknown, dialer: PinnedDialer) => ProbeFailure | undefined;
  /** The failure to report when the deadline passes; undefined for the shared timeout rule. */
  timeout?: (dialer: PinnedDialer) => ProbeFailure | undefined;
}

/**
 * Runs `converse` with a dialer pinned to the egress-checked address of `target`
 * (see pinnedDialer) under the probe's deadline, and turns its result or failure
 * into a ProbeOutcome. `converse` returns the success message and throws a
 * ProbeFailure (or a library error, classified by `hooks.classify` and then the
 * shared network rules). Every socket is destroyed when the probe settles.
 */
export async function runPinnedProbe(
  ctx: ProbeContext,
  target: ProbeTarget,
  converse: (dialer: PinnedDialer, signal: AbortSignal) => Promise<string>,
  hooks: ProbeHooks = {},
): Promise<ProbeOutcome> {
  const startedAt = performance.now();
  const signal = deadlineSignal(ctx);
  let dialer: PinnedDialer | undefined;
  let onAbort: (() => void) | undefined;
  try {
    dialer = await pinnedDialer(ctx, target);
    const pinned = dialer;
    const stalled = new Promise<never>((_resolve, reject) => {
      onAbort = () =>
        reject(hooks.timeout?.(pinned) ?? timeoutFailure(target, ctx.timeoutMs, pinned.connected, signal.reason));
      if (signal.aborted) onAbort();
      else signal.addEventListener('abort', onAbort, { once: true });
    });
    const conversation = converse(pinned, signal);
    conversation.catch(() => undefined); // settled by the race below; a late rejection is not unhandled
    return probeOutcome('Succeeded', await Promise.race([conversation, stalled]), elapsedSince(startedAt));
  } catch (err) {
    const failure =
      err instanceof ProbeFailure
        ? err
        : (dialer?.overflow ??
          (dialer ? hooks.classify?.(err, dialer) : undefined) ??
          toProbeFailure(err, target, {
            connected: dialer?.connected ?? false,
            responded: dialer?.responded ?? false,
          }));
    return failure.toOutcome(elapsedSince(startedAt));
  } finally {
    if (onAbort) signal.removeEventListener('abort', onAbort);
    dialer?.destroyAll();
  }
}

/**
 * Reads a driver's settings and runs it, reporting malformed settings as
 * `InvalidSettings` without touching the network. Settings arrive validated
 * against the type's schema; this guards drivers used directly (tests, benchmarks)
 * or behind a custom IntegrationType whose schema is looser.
 */
export async function withSettings<T>(
  ctx: ProbeContext,
  read: (settings: Record<string, unknown>) => T,
  run: (settings: T) => Promise<ProbeOutcome>,
): Promise<ProbeOutcome> {
  let settings: T;
  try {
    settings = read(ctx.settings);
  } catch (err) {
    if (err instanceof ProbeFailure) return err.toOutcome(0);
    throw err;
  }
  return run(settings);
}

/** A required non-empty string setting. */
export function stringSetting(settings: Record<string, unknown>, name: string): string {
  const value = settings[name];
  if (typeof value !== 'string' || value === '')
    throw new ProbeFailure('InvalidSettings', `settings.${name} must be a non-empty string`);
  return value;
}

/** An optional string setting restricted to `allowed`, `fallback` when absent. */
export function enumSetting<T extends string>(
  settings: Record<string, unknown>,
  name: string,
  allowed: readonly T[],
  fallback: T,
): T {
  const value = settings[name] ?? fallback;
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    throw new ProbeFailure('InvalidSettings', `settings.${name} must be one of ${allowed.join(', ')}`);
  }
  return value as T;
}

/** An optional TCP port setting, `fallback` when absent. */
export function portSetting(settings: Record<string, unknown>, name: string, fallback: number): number {
  const value = settings[name] ?? fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > 65535) {
    throw new ProbeFailure('InvalidSettings', `settings.${name} must be a port between 1 and 65535`);
  }
  return value;
}

/** An optional boolean setting, `fallback` when absent. */
export function booleanSetting(settings: Record<string, unknown>, name: string, fallback: boolean): boolean {
  const value = settings[name] ?? fallback;
  if (typeof value !== 'boolean') throw new ProbeFailure('InvalidSettings', `settings.${name} must be a boolean`);
  return value;
}
