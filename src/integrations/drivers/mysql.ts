import mysql from 'mysql2';
import mysqlPromise from 'mysql2/promise';
import type { AuthPlugin } from 'mysql2';
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

/**
 * Probes a MySQL or MariaDB server by logging in with `mysql2` (handshake v10,
 * optional TLS, mysql_native_password or caching_sha2_password, following
 * AuthSwitchRequest) and ending with COM_QUIT. The socket comes from the egress
 * guard's pinned dialer, so `mysql2` only ever reaches the address that was checked.
 *
 * The password-sending plugins are wrapped: caching_sha2_password's full
 * authentication and sha256_password send the password only over TLS; without
 * TLS the server's RSA key could come from anyone in between, so the probe never
 * asks for it and says to enable TLS. mysql_clear_password likewise needs TLS.
 *
 * `tls: true` verifies the certificate chain (system CAs plus ctx.trustedCAs) and
 * that it names `settings.host`, like a browser would; a server that does not offer
 * TLS is a `TLSError`.
 */

interface MysqlSettings {
  target: ProbeTarget;
  database: string | undefined;
  user: string;
  tls: boolean;
}

/** caching_sha2_password's AuthMoreData asking for the password itself (the account is not in the server's cache). */
const PERFORM_FULL_AUTHENTICATION = Buffer.from([0x04]);

/** The message names the setting that fixes it. */
const ERROR_FULL_AUTH_NEEDS_TLS = (where: string): string =>
  `${where} asks for caching_sha2_password full authentication, which sends the password; atoll sends it only over TLS and never fetches the server's RSA key over an unencrypted connection: set settings.tls to true (or log in once over TLS so the server caches the account)`;

const ER_DBACCESS_DENIED_ERROR = 1044;
const ER_ACCESS_DENIED_ERROR = 1045;
const ER_BAD_DB_ERROR = 1049;

function readSettings(settings: Record<string, unknown>): MysqlSettings {
  return {
    target: { host: stringSetting(settings, 'host'), port: portSetting(settings, 'port', 3306) },
    database: settings['database'] === undefined ? undefined : stringSetting(settings, 'database'),
    user: stringSetting(settings, 'user'),
    tls: booleanSetting(settings, 'tls', false),
  };
}

/** The code-backed `mysql` probe driver (MySQL 5.7+, 8.x and MariaDB). */
export class MysqlDriver implements ProbeDriver {
  readonly name = 'mysql';

  probe(ctx: ProbeContext): Promise<ProbeOutcome> {
    return withSettings(ctx, readSettings, (settings) =>
      runPinnedProbe(ctx, settings.target, (dialer) => login(ctx, settings, dialer), {
        classify: (err, dialer) => classify(err, settings, dialer),
      }),
    );
  }
}

async function login(ctx: ProbeContext, settings: MysqlSettings, dialer: PinnedDialer): Promise<string> {
  const where = describeTarget(settings.target);
  const connection = await mysqlPromise.createConnection({
    host: settings.target.host,
    port: settings.target.port,
    user: settings.user,
    password: ctx.credentials['password'] ?? '',
    ...(settings.database !== undefined ? { database: settings.database } : {}),
    stream: () => dialer.open(),
    connectTimeout: ctx.timeoutMs + 1_000, // the probe's own deadline fires first and says what stalled
    connectAttributes: { program_name: 'atoll-probe' },
    // A fresh object per probe: mysql2 keys its TLS session cache on it, so no probe resumes another's verified session.
    ...(settings.tls ? { ssl: sslOptions(ctx, settings) } : {}),
    authPlugins: passwordPlugins(ctx, settings, where),
  });
  connection.on('error', () => undefined); // the outcome is decided; late socket errors do not matter
  await connection.end();
  return `logged in to ${where} as ${settings.user}${settings.tls ? ' over TLS' : ''}`;
}

/** mysql2's ssl options: its own names for Node's (verifyIdentity checks the certificate names settings.host). */
function sslOptions(ctx: ProbeContext, settings: MysqlSettings): mysql.SslOptions {
  const { ca } = tlsConnectOptions({ servername: settings.target.host, verify: true, trustedCAs: ctx.trustedCAs });
  return { ...(ca !== undefined ? { ca: ca as string[] } : {}), rejectUnauthorized: true, verifyIdentity: true };
}

/**
 * The plugins that would send the password, wrapped so that they do it only over
 * TLS (mysql2 requires TLS whenever ssl is set, so settings.tls means encrypted).
 */
function passwordPlugins(ctx: ProbeContext, settings: MysqlSettings, where: string): Record<string, AuthPlugin> {
  const password = (): string => {
    const value = ctx.credentials['password'];
    if (value === undefined || value === '') {
      throw new ProbeFailure('CredentialsMissing', `${where} asks for a password but credentials.password is not set`, {
        reachable: 'True',
      });
    }
    return value;
  };
  const cachingSha2 = mysql.authPlugins.caching_sha2_password({});
  return {
    caching_sha2_password: (metadata) => {
      const step = cachingSha2(metadata);
      return (data) => {
        if (PERFORM_FULL_AUTHENTICATION.equals(data)) {
          // Without TLS the only way on is to ask the server for its RSA key and encrypt the password to it;
          // over an unauthenticated channel whoever sits in between answers with their own key.
          if (!settings.tls)
            throw new ProbeFailure('TLSError', ERROR_FULL_AUTH_NEEDS_TLS(where), { reachable: 'True' });
          password();
        }
        return step(data);
      };
    },
    sha256_password: () => () => {
      if (!settings.tls)
        throw new ProbeFailure(
          'TLSError',
          `${where} asks for sha256_password, which sends the password; atoll sends it only over TLS: set settings.tls to true`,
          { reachable: 'True' },
        );
      return Buffer.from(`${password()}\0`, 'utf8');
    },
    mysql_clear_password: () => () => {
      if (!settings.tls)
        throw new ProbeFailure(
          'UnexpectedResponse',
          `${where} asks for the password in cleartext; set settings.tls to true`,
        );
      return Buffer.from(`${password()}\0`, 'utf8');
    },
  };
}

/** mysql2's errors as probe reasons: the server's error number, never its message text. */
function classify(err: unknown, settings: MysqlSettings, dialer: PinnedDialer): ProbeFailure | undefined {
  const where = describeTarget(settings.target);
  const { errno, sqlState, code } = (err ?? {}) as { errno?: unknown; sqlState?: unknown; code?: unknown };
  if (typeof errno === 'number' && typeof sqlState === 'string') {
    switch (errno) {
      case ER_ACCESS_DENIED_ERROR:
        return new ProbeFailure(
          'AuthenticationFailed',
          `${where} refused the login of ${settings.user} (error ${errno})`,
        );
      case ER_BAD_DB_ERROR:
        return new ProbeFailure(
          'UnexpectedResponse',
          `database named by settings.database does not exist on ${where} (error ${errno})`,
        );
      case ER_DBACCESS_DENIED_ERROR:
        return new ProbeFailure(
          'UnexpectedResponse',
          `${settings.user} may not use the database named by settings.database on ${where} (error ${errno})`,
        );
      default:
        return new ProbeFailure('UnexpectedResponse', `${where} refused the connection (error ${errno})`);
    }
  }
  if (code === 'HANDSHAKE_NO_SSL_SUPPORT') {
    return new ProbeFailure('TLSError', `${where} does not offer TLS but settings.tls is true`, { reachable: 'True' });
  }
  // mysql2 replaces the TLS error's own code (certificate untrusted, name mismatch, ...) with this one.
  if (code === 'HANDSHAKE_SSL_ERROR')
    return new ProbeFailure(
      'TLSError',
      `TLS handshake with ${where} failed (certificate not trusted or not issued for settings.host)`,
      { cause: err },
    );
  // mysql2's own protocol errors (PROTOCOL_*, unknown plugins, malformed packets): something answered, but not MySQL as expected.
  const protocolError = typeof code !== 'string' || code.startsWith('PROTOCOL_') || code === 'AUTH_SWITCH_PLUGIN_ERROR';
  return protocolError && dialer.responded
    ? new ProbeFailure('UnexpectedResponse', `${where} did not complete the MySQL login`, { cause: err })
    : undefined;
}
