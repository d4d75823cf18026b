/**
 * The Redis probe driver, on node-redis (@redis/client): `AUTH password` (or
 * `AUTH username password`, the ACL form, when the `username` setting is set)
 * as the client's handshake, then `PING`, over TCP or TLS to the egress
 * guard's checked address. Server error texts are never copied into messages;
 * only their leading error code (WRONGPASS, NOAUTH, ...) is.
 *
 * Settings: host, port (6379), username (optional), tls (false).
 * Credentials: password (optional: a server without auth is probed with PING alone).
 */
import { createClient, ErrorReply } from '@redis/client';
import type { PinnedDialer } from '../egress.js';
import { ProbeFailure, describeTarget, type ProbeTarget } from '../probe-failure.js';
import type { ProbeContext, ProbeDriver, ProbeOutcome } from '../probe-types.js';
import {
  booleanSetting,
  portSetting,
  runPinnedProbe,
  stringSetting,
  tlsConnectOptions,
  withSettings,
} from './driver-support.js';

const DEFAULT_REDIS_PORT = 6379;

interface RedisSettings {
  target: ProbeTarget;
  username?: string;
  tls: boolean;
}

function readSettings(settings: Record<string, unknown>): RedisSettings {
  const username = settings['username'];
  return {
    target: { host: stringSetting(settings, 'host'), port: portSetting(settings, 'port', DEFAULT_REDIS_PORT) },
    ...(typeof username === 'string' && username !== '' ? { username } : {}),
    tls: booleanSetting(settings, 'tls', false),
  };
}

/**
 * The error code of a Redis error reply, kept only when it looks like one.
 * Redis before 6 refuses a password with "ERR invalid password", and a server
 * without any password with "ERR ... without any password configured".
 */
export function errorCode(message: string): string {
  const word = message.split(' ', 1)[0] ?? '';
  const code = /^[A-Z]{2,32}$/.test(word) ? word : 'ERR';
  if (code === 'ERR' && /^ERR invalid (username-)?password/i.test(message)) return 'WRONGPASS';
  if (code === 'ERR' && /without any password configured/i.test(message)) return 'NOPASSWORDSET';
  return code;
}

/** The phase a reply error came from decides what it means. */
class ReplyFailure extends Error {
  constructor(
    readonly phase: 'AUTH' | 'PING',
    readonly code: string,
  ) {
    super(`${phase} answered ${code}`);
  }
}

function replyFailure(reply: ReplyFailure, where: string, authenticated: boolean): ProbeFailure {
  if (reply.code === 'WRONGPASS')
    return new ProbeFailure('AuthenticationFailed', `${where} refused the username or password (WRONGPASS)`);
  if (reply.code === 'NOPASSWORDSET')
    return new ProbeFailure(
      'AuthenticationFailed',
      `${where} refused the password: the server has no password configured for this user`,
    );
  if (reply.code === 'NOAUTH') return new ProbeFailure('AuthenticationFailed', `${where} requires a password (NOAUTH)`);
  return new ProbeFailure('UnexpectedResponse', `${where} answered ${reply.phase} with error ${reply.code}`, {
    authenticated: reply.phase === 'PING' && authenticated ? 'True' : 'Unknown',
  });
}

/** Probes a Redis server: authenticate if a password is given, then PING. */
export class RedisDriver implements ProbeDriver {
  readonly name = 'redis';

  probe(ctx: ProbeContext): Promise<ProbeOutcome> {
    return withSettings(ctx, readSettings, (settings) => {
      const where = describeTarget(settings.target);
      const password = ctx.credentials['password'];
      const authenticate = password !== undefined && password !== '';
      let secured = false;
      return runPinnedProbe(
        ctx,
        settings.target,
        async (dialer, signal) => {
          const client = createClient({
            RESP: 2,
            // No CLIENT SETINFO: a probe sends AUTH and PING, nothing the server could refuse for other reasons.
            disableClientInfo: true,
            ...(authenticate
              ? { password, ...(settings.username !== undefined ? { username: settings.username } : {}) }
              : {}),
            socket: socketOptions(ctx, settings, dialer),
          });
          client.on('error', () => undefined); // failures arrive through the awaited calls
          client.on('connect', () => {
            dialer.markConnected();
            secured = settings.tls;
          });
          const stop = (): void => void client.destroy();
          signal.addEventListener('abort', stop, { once: true });
          try {
            await client.connect().catch((err: unknown) => {
              throw err instanceof ErrorReply ? new ReplyFailure('AUTH', errorCode(err.message)) : err;
            });
            const pong = await client.ping().catch((err: unknown) => {
              throw err instanceof ErrorReply ? new ReplyFailure('PING', errorCode(err.message)) : err;
            });
            if (pong !== 'PONG')
              throw new ProbeFailure('UnexpectedResponse', `${where} did not answer PING like a Redis server`);
            return authenticate ? `${where} accepted the credentials` : `${where} answered PING without authentication`;
          } finally {
            signal.removeEventListener('abort', stop);
            client.destroy();
          }
        },
        {
          classify: (err, dialer) => {
            if (err instanceof ReplyFailure) return replyFailure(err, where, authenticate);
            const code = (err as { code?: unknown } | null)?.code;
            // node-redis's own errors (socket closed, unparsable reply) carry no code: something answered, but not Redis.
            return typeof code !== 'string' && dialer.connected
              ? new ProbeFailure('UnexpectedResponse', `${where} did not answer like a Redis server`, { cause: err })
              : undefined;
          },
          timeout: (dialer) =>
            settings.tls && dialer.connected && !secured
              ? new ProbeFailure(
                  'TLSError',
                  `connected to ${where} but the TLS handshake got no answer within ${ctx.timeoutMs} ms; if the server does not use TLS on this port, turn TLS off in spec.settings (tls: false)`,
                  { reachable: 'True' },
                )
              : undefined,
        },
      );
    });
  }
}

/**
 * Where node-redis connects. Plain TCP: the checked address itself (an IP, so
 * no lookup happens). TLS: a socket from the pinned dialer, which node-redis
 * wraps, verified against settings.host.
 */
function socketOptions(ctx: ProbeContext, settings: RedisSettings, dialer: PinnedDialer) {
  const common = { reconnectStrategy: false as const, connectTimeout: ctx.timeoutMs + 1_000 };
  if (!settings.tls)
    return { ...common, host: dialer.address.host, port: dialer.address.port, family: dialer.address.family };
  return {
    ...common,
    tls: true as const,
    socket: dialer.open(),
    ...tlsConnectOptions({ servername: settings.target.host, verify: true, trustedCAs: ctx.trustedCAs }),
  };
}
