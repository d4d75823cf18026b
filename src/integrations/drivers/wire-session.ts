import net from 'node:net';
import tls from 'node:tls';
import { connectGuarded, deadlineSignal } from '../egress.js';
import { ProbeFailure, classifyNetworkError, probeOutcome, describeTarget, timeoutFailure, type ProbeTarget } from '../probe-failure.js';
import type { ProbeContext, ProbeOutcome } from '../probe-types.js';

/**
 * The plumbing the wire-protocol drivers (PostgreSQL, MySQL) share: one egress-checked
 * TCP connection under one deadline, exact-length reads bounded by
 * `maxResponseBytes`, an in-place TLS upgrade, and the mapping from whatever went
 * wrong to a `ProbeOutcome`. Protocol code then reads as the protocol's own steps.
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
export function toProbeFailure(err: unknown, target: ProbeTarget, progress: { connected: boolean; responded: boolean }): ProbeFailure {
  if (err instanceof ProbeFailure) return err;
  const code = (err as NodeJS.ErrnoException | null)?.code;
  if (progress.responded && (code === 'ECONNRESET' || code === 'EPIPE')) {
    return new ProbeFailure('UnexpectedResponse', `${describeTarget(target)} closed the connection during the handshake (${code})`, { cause: err });
  }
  return classifyNetworkError(err, target, progress.connected);
}

/** TLS options for a given verification mode; `servername` is the name from the settings, never the dialled address. */
export interface TlsUpgradeOptions {
  servername: string;
  /** Verify the certificate chain against trusted CAs. */
  verify: boolean;
  /** Also check that the certificate names `servername` (default: same as `verify`). */
  verifyHostname?: boolean;
  trustedCAs?: string[];
  /** A TLS client certificate and key (PEM) to present. */
  clientCertificate?: { cert: string; key: string };
}

/** Builds node's TLS options: system CAs plus the context's extra CAs, hostname checked only when verifying. */
export function tlsConnectOptions(options: TlsUpgradeOptions): tls.ConnectionOptions {
  const name = options.servername.replace(/^\[(.*)\]$/, '$1');
  const sni = net.isIP(name) === 0 ? name : undefined;
  return {
    ...(sni ? { servername: sni } : {}),
    rejectUnauthorized: options.verify,
    ...(options.trustedCAs?.length ? { ca: [...tls.rootCertificates, ...options.trustedCAs] } : {}),
    ...(options.clientCertificate ?? {}),
    checkServerIdentity: options.verify && options.verifyHostname !== false ? (_host, cert) => tls.checkServerIdentity(name, cert) : () => undefined,
  };
}

/**
 * One TCP (optionally TLS-upgraded) conversation with exact-length reads. Created by
 * `runWireProbe`; a driver only reads, writes and upgrades.
 */
export class WireSession {
  private socket: net.Socket;
  private buffer: Buffer = Buffer.alloc(0);
  private received = 0;
  private pending: { length: number; resolve: (b: Buffer) => void; reject: (e: Error) => void } | undefined;
  private failure: Error | undefined;
  private readonly onData = (chunk: Buffer): void => this.accept(chunk);
  private readonly onError = (err: Error): void => this.fail(err);
  private readonly onClose = (): void => this.fail(new ProbeFailure('UnexpectedResponse', 'server closed the connection during the handshake'));
  private closed = false;
  /** True once the transport is encrypted. */
  encrypted = false;

  constructor(
    socket: net.Socket,
    private readonly maxResponseBytes: number,
  ) {
    this.socket = socket;
    this.attach();
  }

  /** Resolves with exactly `length` bytes, or rejects when the connection fails or the size bound is exceeded. */
  read(length: number): Promise<Buffer> {
    if (this.received + length > this.maxResponseBytes + this.buffer.length) {
      return Promise.reject(new ProbeFailure('UnexpectedResponse', `response exceeded ${this.maxResponseBytes} bytes`));
    }
    if (this.buffer.length >= length) return Promise.resolve(this.take(length));
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.pending = { length, resolve, reject };
    });
  }

  write(data: Buffer): void {
    this.socket.write(data);
  }

  /**
   * Replaces the plain socket by a TLS one over the same connection. Bytes the server
   * sent before the handshake would be unauthenticated plaintext injected ahead of
   * TLS (CVE-2021-23214 style), so their presence fails the probe.
   */
  async upgradeToTls(options: TlsUpgradeOptions): Promise<void> {
    if (this.buffer.length > 0) throw new ProbeFailure('TLSError', 'server sent unexpected data before the TLS handshake');
    this.detach();
    const secure = tls.connect({ socket: this.socket, ...tlsConnectOptions(options) });
    this.socket = secure;
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error): void => reject(new ProbeFailure('TLSError', tlsFailureMessage(err), { cause: err }));
      secure.once('error', onError);
      secure.once('secureConnect', () => {
        secure.off('error', onError);
        resolve();
      });
    });
    this.encrypted = true;
    this.attach();
  }

  /** Whether the server has sent anything yet (a reset before that means nothing was listening properly). */
  get responded(): boolean {
    return this.received > 0;
  }

  /**
   * Sends `goodbye` (the protocol's polite terminate message, if any) and half-closes,
   * so the server logs a clean disconnect; the socket is destroyed shortly after in
   * case the server never closes its side. Never throws: the outcome is decided.
   */
  close(goodbye?: Buffer): void {
    if (this.closed) return;
    this.closed = true;
    this.detach();
    const socket = this.socket;
    socket.on('error', () => undefined);
    if (socket.writable) {
      if (goodbye) socket.end(goodbye);
      else socket.end();
    }
    setTimeout(() => socket.destroy(), 1000).unref();
  }

  /** Tears the connection down at once; a no-op after `close`. */
  destroy(): void {
    if (this.closed) return;
    this.closed = true;
    this.detach();
    this.socket.on('error', () => undefined);
    this.socket.destroy();
  }

  private attach(): void {
    this.socket.on('data', this.onData);
    this.socket.on('error', this.onError);
    this.socket.on('close', this.onClose);
  }

  private detach(): void {
    this.socket.off('data', this.onData);
    this.socket.off('error', this.onError);
    this.socket.off('close', this.onClose);
  }

  private accept(chunk: Buffer): void {
    this.received += chunk.length;
    if (this.received > this.maxResponseBytes) {
      this.fail(new ProbeFailure('UnexpectedResponse', `response exceeded ${this.maxResponseBytes} bytes`));
      this.socket.destroy();
      return;
    }
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    const pending = this.pending;
    if (pending && this.buffer.length >= pending.length) {
      this.pending = undefined;
      pending.resolve(this.take(pending.length));
    }
  }

  private take(length: number): Buffer {
    const out = this.buffer.subarray(0, length);
    this.buffer = this.buffer.subarray(length);
    return out;
  }

  private fail(err: Error): void {
    this.failure ??= err;
    const pending = this.pending;
    this.pending = undefined;
    pending?.reject(this.failure);
  }
}

function tlsFailureMessage(err: Error): string {
  const code = (err as NodeJS.ErrnoException).code;
  return code ? `TLS handshake failed (${code})` : 'TLS handshake failed';
}

/** Milliseconds since `startedAt`, rounded. */
export function elapsedSince(startedAt: number): number {
  return Math.round(performance.now() - startedAt);
}

/**
 * Runs `converse` over an egress-checked connection to `target` (see connectGuarded)
 * under the probe's deadline and abort signal, and turns its result or failure into
 * a ProbeOutcome. `converse` returns the success message and throws a ProbeFailure
 * for anything else.
 */
export async function runWireProbe(
  ctx: ProbeContext,
  target: ProbeTarget,
  converse: (session: WireSession) => Promise<string>,
): Promise<ProbeOutcome> {
  const startedAt = performance.now();
  const signal = deadlineSignal(ctx);
  let session: WireSession | undefined;
  let onAbort: (() => void) | undefined;
  const conversation = (async () => {
    const { socket } = await connectGuarded(ctx, { host: target.host, port: target.port, signal });
    socket.setNoDelay(true);
    session = new WireSession(socket, ctx.maxResponseBytes);
    const stalled = new Promise<never>((_resolve, reject) => {
      onAbort = () => reject(timeoutFailure(target, ctx.timeoutMs, true, signal.reason));
      if (signal.aborted) onAbort();
      else signal.addEventListener('abort', onAbort, { once: true });
    });
    return Promise.race([converse(session), stalled]);
  })();

  try {
    return probeOutcome('Succeeded', await conversation, elapsedSince(startedAt));
  } catch (err) {
    const connected = session !== undefined;
    return toProbeFailure(err, target, { connected, responded: session?.responded ?? false }).toOutcome(elapsedSince(startedAt));
  } finally {
    if (onAbort) signal.removeEventListener('abort', onAbort);
    session?.destroy();
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
  if (typeof value !== 'string' || value === '') throw new ProbeFailure('InvalidSettings', `settings.${name} must be a non-empty string`);
  return value;
}

/** An optional string setting restricted to `allowed`, `fallback` when absent. */
export function enumSetting<T extends string>(settings: Record<string, unknown>, name: string, allowed: readonly T[], fallback: T): T {
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
