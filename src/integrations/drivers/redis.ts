/**
 * The Redis probe driver: speaks just enough RESP to authenticate and PING.
 * `AUTH password` (or `AUTH username password`, the ACL form, when the
 * `username` setting is set), then `PING`, over TCP or TLS through the egress
 * guard. Server error texts are never copied into messages; only their
 * leading error code (WRONGPASS, NOAUTH, ...) is.
 *
 * Settings: host, port (6379), username (optional), tls (false).
 * Credentials: password (optional: a server without auth is probed with PING alone).
 */
import type { Socket } from 'node:net';
import { connectGuarded, deadlineSignal } from '../egress.js';
import { ProbeFailure, classifyNetworkError, describeTarget, probeOutcome, timeoutFailure } from '../probe-failure.js';
import type { ProbeTarget } from '../probe-failure.js';
import { DEFAULT_MAX_RESPONSE_BYTES } from '../probe-types.js';
import type { ProbeContext, ProbeDriver, ProbeOutcome } from '../probe-types.js';

export const DEFAULT_REDIS_PORT = 6379;
export const ERROR_HOST_REQUIRED = 'setting host is required';

/** One RESP reply line: a simple string (+), an error (-) or something this probe does not expect. */
type RespReply = { kind: 'simple'; text: string } | { kind: 'error'; code: string } | { kind: 'other' };

/** Encodes a command as a RESP array of bulk strings. */
export function encodeCommand(args: string[]): Buffer {
  const parts = [`*${args.length}\r\n`];
  for (const arg of args) parts.push(`$${Buffer.byteLength(arg)}\r\n${arg}\r\n`);
  return Buffer.from(parts.join(''), 'utf8');
}

/** Parses one reply line (without CRLF). Error codes are kept only when they look like RESP codes. */
export function parseReplyLine(line: string): RespReply {
  if (line.startsWith('+')) return { kind: 'simple', text: line.slice(1) };
  if (line.startsWith('-')) {
    const word = line.slice(1).split(' ', 1)[0] ?? '';
    const code = /^[A-Z]{2,32}$/.test(word) ? word : 'ERR';
    // "-ERR invalid password" is how Redis before 6 refuses a password.
    if (code === 'ERR' && /^-ERR invalid (username-)?password/i.test(line)) return { kind: 'error', code: 'WRONGPASS' };
    if (code === 'ERR' && /without any password configured/i.test(line)) return { kind: 'error', code: 'NOPASSWORDSET' };
    return { kind: 'error', code };
  }
  return { kind: 'other' };
}

/** Reads CRLF-terminated reply lines under the probe's deadline and response cap. */
class ReplyReader {
  private buffer = Buffer.alloc(0);
  private received = 0;
  private waiting: { resolve: (line: string) => void; reject: (err: Error) => void } | undefined;
  private failure: Error | undefined;

  constructor(
    private readonly socket: Socket,
    target: ProbeTarget,
    private readonly limit: number,
    timeoutMs: number,
    signal: AbortSignal,
  ) {
    socket.on('data', (chunk: Buffer) => {
      this.received += chunk.length;
      if (this.received > this.limit) {
        this.fail(new ProbeFailure('UnexpectedResponse', `${describeTarget(target)} sent more than ${limit} bytes`));
        return;
      }
      this.buffer = Buffer.concat([this.buffer, chunk]);
      this.deliver();
    });
    socket.on('error', (err) => this.fail(classifyNetworkError(err, target, true)));
    socket.on('close', () =>
      this.fail(new ProbeFailure('UnexpectedResponse', `${describeTarget(target)} closed the connection without answering`)),
    );
    signal.addEventListener('abort', () => this.fail(timeoutFailure(target, timeoutMs, true, signal.reason)), { once: true });
  }

  private fail(err: Error): void {
    this.failure ??= err;
    this.socket.destroy();
    const waiting = this.waiting;
    this.waiting = undefined;
    waiting?.reject(this.failure);
  }

  private deliver(): void {
    if (this.waiting === undefined) return;
    const end = this.buffer.indexOf('\r\n');
    if (end < 0) return;
    const line = this.buffer.subarray(0, end).toString('utf8');
    this.buffer = this.buffer.subarray(end + 2);
    const waiting = this.waiting;
    this.waiting = undefined;
    waiting.resolve(line);
  }

  /** The next reply line; rejects with a ProbeFailure on close, error, overflow or deadline. */
  next(): Promise<RespReply> {
    return new Promise<string>((resolve, reject) => {
      this.waiting = { resolve, reject };
      this.deliver();
      if (this.waiting !== undefined && this.failure !== undefined) this.fail(this.failure);
    }).then(parseReplyLine);
  }
}

interface RedisSettings {
  host: string;
  port: number;
  username?: string;
  tls: boolean;
}

function readSettings(settings: Record<string, unknown>): RedisSettings {
  const { host, port, username, tls } = settings;
  if (typeof host !== 'string' || host === '') throw new ProbeFailure('InvalidSettings', ERROR_HOST_REQUIRED);
  const portNumber = port === undefined ? DEFAULT_REDIS_PORT : Number(port);
  if (!Number.isInteger(portNumber) || portNumber < 1 || portNumber > 65535) {
    throw new ProbeFailure('InvalidSettings', 'setting port must be an integer between 1 and 65535');
  }
  return {
    host,
    port: portNumber,
    ...(typeof username === 'string' && username !== '' ? { username } : {}),
    tls: tls === true,
  };
}

function authReplyOutcome(reply: RespReply, where: string): ProbeOutcome | undefined {
  if (reply.kind === 'simple' && reply.text === 'OK') return undefined;
  if (reply.kind === 'error' && reply.code === 'WRONGPASS') return probeOutcome('AuthenticationFailed', `${where} refused the username or password (WRONGPASS)`);
  if (reply.kind === 'error' && reply.code === 'NOPASSWORDSET') {
    return probeOutcome('AuthenticationFailed', `${where} refused the password: the server has no password configured for this user`);
  }
  if (reply.kind === 'error') return probeOutcome('UnexpectedResponse', `${where} answered AUTH with error ${reply.code}`);
  return probeOutcome('UnexpectedResponse', `${where} did not answer AUTH like a Redis server`);
}

function pingReplyOutcome(reply: RespReply, where: string, authenticated: boolean): ProbeOutcome {
  if (reply.kind === 'simple' && reply.text === 'PONG') {
    return probeOutcome('Succeeded', authenticated ? `${where} accepted the credentials` : `${where} answered PING without authentication`);
  }
  if (reply.kind === 'error' && reply.code === 'NOAUTH') return probeOutcome('AuthenticationFailed', `${where} requires a password (NOAUTH)`);
  if (reply.kind === 'error' && reply.code === 'WRONGPASS') return probeOutcome('AuthenticationFailed', `${where} refused the username or password (WRONGPASS)`);
  if (reply.kind === 'error') {
    return { ...probeOutcome('UnexpectedResponse', `${where} answered PING with error ${reply.code}`), authenticated: authenticated ? 'True' : 'Unknown' };
  }
  return probeOutcome('UnexpectedResponse', `${where} did not answer PING like a Redis server`);
}

/** Probes a Redis server: authenticate if a password is given, then PING. */
export class RedisDriver implements ProbeDriver {
  readonly name = 'redis';

  async probe(ctx: ProbeContext): Promise<ProbeOutcome> {
    const started = performance.now();
    const settings = readSettings(ctx.settings);
    const signal = deadlineSignal(ctx);
    const { socket, target } = await connectGuarded(ctx, { host: settings.host, port: settings.port, tls: settings.tls, signal });
    const where = describeTarget(target);
    const limit = ctx.maxResponseBytes > 0 ? ctx.maxResponseBytes : DEFAULT_MAX_RESPONSE_BYTES;
    const replies = new ReplyReader(socket, target, limit, ctx.timeoutMs, signal);
    try {
      const password = ctx.credentials['password'];
      const authenticate = password !== undefined && password !== '';
      if (authenticate) {
        const args = settings.username !== undefined ? ['AUTH', settings.username, password] : ['AUTH', password];
        socket.write(encodeCommand(args));
        const refused = authReplyOutcome(await replies.next(), where);
        if (refused !== undefined) return { ...refused, durationMs: Math.round(performance.now() - started) };
      }
      socket.write(encodeCommand(['PING']));
      const outcome = pingReplyOutcome(await replies.next(), where, authenticate);
      return { ...outcome, durationMs: Math.round(performance.now() - started) };
    } finally {
      socket.destroy();
    }
  }
}
