import pg from 'pg';
import { clientCertificateOf, type PinnedDialer } from '../egress.js';
import { ProbeFailure, describeTarget, type ProbeTarget } from '../probe-failure.js';
import type { ProbeContext, ProbeDriver, ProbeOutcome } from '../probe-types.js';
import {
  enumSetting,
  portSetting,
  runPinnedProbe,
  stringSetting,
  tlsConnectOptions,
  withSettings,
} from './driver-support.js';

/**
 * Probes a PostgreSQL server by logging in with `pg` (startup, optional
 * SSLRequest, cleartext / MD5 / SCRAM-SHA-256) and ending the session at
 * ReadyForQuery. The socket comes from the egress guard's pinned dialer, so
 * `pg` only ever reaches the address that was checked.
 *
 * sslmode follows libpq: `disable` never encrypts; `prefer` encrypts when the
 * server offers it; `require` encrypts without checking the certificate;
 * `verify-ca` checks the chain (system CAs plus ctx.trustedCAs); `verify-full`
 * also checks that the certificate names `settings.host`. A server that
 * refuses SSL under `require`/`verify-*` is a `TLSError`. A cleartext password
 * is never sent over an unencrypted connection, whatever the mode.
 */

const SSL_MODES = ['disable', 'prefer', 'require', 'verify-ca', 'verify-full'] as const;
type SslMode = (typeof SSL_MODES)[number];

interface PostgresqlSettings {
  target: ProbeTarget;
  database: string;
  user: string;
  sslmode: SslMode;
}

const APPLICATION_NAME = 'atoll-probe';

const SQLSTATE_INVALID_PASSWORD = '28P01';
const SQLSTATE_INVALID_AUTHORIZATION = '28000';
const SQLSTATE_INVALID_CATALOG = '3D000';

/** What pg says, as an Error message of its own (not the server's), when the server answers the SSLRequest with 'N'. */
const PG_SSL_REFUSED = 'The server does not support SSL connections';
const PG_SSL_GARBLED = 'There was an error establishing an SSL connection';

function readSettings(settings: Record<string, unknown>): PostgresqlSettings {
  const user = stringSetting(settings, 'user');
  return {
    target: { host: stringSetting(settings, 'host'), port: portSetting(settings, 'port', 5432) },
    // libpq's default: a database named like the user.
    database: settings['database'] === undefined ? user : stringSetting(settings, 'database'),
    user,
    sslmode: enumSetting(settings, 'sslmode', SSL_MODES, 'disable'),
  };
}

/** The code-backed `postgresql` probe driver. */
export class PostgresqlDriver implements ProbeDriver {
  readonly name = 'postgresql';

  probe(ctx: ProbeContext): Promise<ProbeOutcome> {
    return withSettings(ctx, readSettings, (settings) =>
      runPinnedProbe(
        ctx,
        settings.target,
        async (dialer) => {
          try {
            return await login(ctx, settings, dialer, settings.sslmode !== 'disable');
          } catch (err) {
            // libpq's prefer: a server without SSL gets an unencrypted login instead.
            if (settings.sslmode === 'prefer' && err instanceof Error && err.message === PG_SSL_REFUSED)
              return login(ctx, settings, dialer, false);
            throw err;
          }
        },
        { classify: (err, dialer) => classify(err, settings, dialer) },
      ),
    );
  }
}

/** One login with pg; resolves with the success message. */
async function login(
  ctx: ProbeContext,
  settings: PostgresqlSettings,
  dialer: PinnedDialer,
  ssl: boolean,
): Promise<string> {
  const where = describeTarget(settings.target);
  let encrypted = false;
  let cleartextRequested = false;
  const client = new pg.Client({
    host: settings.target.host,
    port: settings.target.port,
    user: settings.user,
    database: settings.database,
    application_name: APPLICATION_NAME,
    stream: () => dialer.socket(),
    ssl: ssl ? sslOptions(ctx, settings) : false,
    // Asked for only when the server wants a password, so a missing one is reported only then.
    password: () => {
      // Whoever answers on an unencrypted connection (the server, or anyone on the path) would read it.
      if (cleartextRequested && !encrypted) {
        throw new ProbeFailure(
          'UnexpectedResponse',
          `${where} asked for the password in clear text over an unencrypted connection; atoll does not send it. Use sslmode require or verify-full, or scram-sha-256 on the server`,
        );
      }
      const password = ctx.credentials['password'];
      if (password === undefined || password === '') {
        throw new ProbeFailure(
          'CredentialsMissing',
          `${where} asks for a password but credentials.password is not set`,
          { reachable: 'True' },
        );
      }
      return password;
    },
  });
  client.on('error', () => undefined); // failures arrive through connect(); later ones do not matter
  // Registered before pg's own handlers (attached in connect), so these run first.
  client.connection.on('sslconnect', () => {
    encrypted = true;
  });
  client.connection.on('authenticationCleartextPassword', () => {
    cleartextRequested = true;
  });
  await client.connect();
  await client.end();
  return `logged in to ${where} as ${settings.user}${encrypted ? ' over TLS' : ''}`;
}

function sslOptions(ctx: ProbeContext, settings: PostgresqlSettings): pg.ClientConfig['ssl'] {
  const verify = settings.sslmode === 'verify-full' || settings.sslmode === 'verify-ca';
  return tlsConnectOptions({
    servername: settings.target.host,
    verify,
    verifyHostname: settings.sslmode === 'verify-full',
    trustedCAs: ctx.trustedCAs,
    clientCertificate: clientCertificateOf(ctx.credentials),
  });
}

/** pg's errors as probe reasons: the SQLSTATE and pg's own SSL answers; a server's message text is never shown. */
function classify(err: unknown, settings: PostgresqlSettings, dialer: PinnedDialer): ProbeFailure | undefined {
  const where = describeTarget(settings.target);
  if (err instanceof pg.DatabaseError) {
    const sqlstate = /^[0-9A-Z]{5}$/.test(err.code ?? '') ? (err.code as string) : 'unknown';
    switch (sqlstate) {
      case SQLSTATE_INVALID_PASSWORD:
      case SQLSTATE_INVALID_AUTHORIZATION:
        return new ProbeFailure(
          'AuthenticationFailed',
          `${where} refused the login of ${settings.user} (SQLSTATE ${sqlstate})`,
        );
      case SQLSTATE_INVALID_CATALOG:
        return new ProbeFailure(
          'UnexpectedResponse',
          `database named by settings.database does not exist on ${where} (SQLSTATE ${sqlstate})`,
        );
      default:
        return new ProbeFailure('UnexpectedResponse', `${where} refused the connection (SQLSTATE ${sqlstate})`);
    }
  }
  if (!(err instanceof Error) || 'code' in err) return undefined; // socket and TLS errors: the shared rules
  if (err.message === PG_SSL_REFUSED) {
    return new ProbeFailure(
      'TLSError',
      `${where} does not accept SSL connections but settings.sslmode is ${settings.sslmode}`,
      { reachable: 'True' },
    );
  }
  if (err.message === PG_SSL_GARBLED) {
    return new ProbeFailure(
      'UnexpectedResponse',
      `${where} answered the SSL request with something other than PostgreSQL`,
      { cause: err },
    );
  }
  if (err.message.startsWith('SASL:')) {
    return new ProbeFailure('UnexpectedResponse', `SCRAM with ${where} failed`, { cause: err });
  }
  // pg's own protocol errors ("Connection terminated unexpectedly", ...): something answered, but not PostgreSQL as expected.
  return dialer.responded
    ? new ProbeFailure('UnexpectedResponse', `${where} does not speak the PostgreSQL protocol`, { cause: err })
    : undefined;
}
