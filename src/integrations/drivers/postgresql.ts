import { createHash } from 'node:crypto';
import { clientCertificateOf } from '../egress.js';
import { ProbeFailure, describeTarget, type ProbeTarget } from '../probe-failure.js';
import type { ProbeContext, ProbeDriver, ProbeOutcome } from '../probe-types.js';
import { ScramClient, ScramError } from './scram-sha-256.js';
import { enumSetting, portSetting, runWireProbe, stringSetting, withSettings, type WireSession } from './wire-session.js';

/**
 * Probes a PostgreSQL server by speaking just enough of the v3 frontend/backend
 * protocol to log in (startup, optional SSLRequest, cleartext / MD5 /
 * SCRAM-SHA-256 authentication) and then says goodbye at ReadyForQuery. Written
 * on node built-ins: a probe needs the handshake, not a client library.
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

const PROTOCOL_VERSION_3 = 196608;
const SSL_REQUEST_CODE = 80877103;
const APPLICATION_NAME = 'atoll-probe';
/** Frontend messages are tiny; a backend message larger than this during login is not PostgreSQL. */
const MAX_MESSAGE_BYTES = 16 * 1024;

const AUTH_OK = 0;
const AUTH_CLEARTEXT = 3;
const AUTH_MD5 = 5;
const AUTH_SASL = 10;
const AUTH_SASL_CONTINUE = 11;
const AUTH_SASL_FINAL = 12;

const SQLSTATE_INVALID_PASSWORD = '28P01';
const SQLSTATE_INVALID_AUTHORIZATION = '28000';
const SQLSTATE_INVALID_CATALOG = '3D000';

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
      runWireProbe(ctx, settings.target, (session) => new PostgresLogin(session, ctx, settings).run()),
    );
  }
}

/** One login conversation; each method is one step of the protocol. */
class PostgresLogin {
  private readonly where: string;

  constructor(
    private readonly session: WireSession,
    private readonly ctx: ProbeContext,
    private readonly settings: PostgresqlSettings,
  ) {
    this.where = describeTarget(settings.target);
  }

  async run(): Promise<string> {
    if (this.settings.sslmode !== 'disable') await this.negotiateSsl();
    this.session.write(startupMessage(this.settings.user, this.settings.database));
    await this.authenticate();
    await this.awaitReadyForQuery();
    this.session.close(frontendMessage('X', Buffer.alloc(0)));
    const tls = this.session.encrypted ? ' over TLS' : '';
    return `logged in to ${this.where} as ${this.settings.user}${tls}`;
  }

  private async negotiateSsl(): Promise<void> {
    const request = Buffer.alloc(8);
    request.writeInt32BE(8, 0);
    request.writeInt32BE(SSL_REQUEST_CODE, 4);
    this.session.write(request);
    const answer = (await this.session.read(1)).toString('latin1');
    if (answer === 'N') {
      if (this.settings.sslmode === 'prefer') return; // libpq: fall back to an unencrypted connection
      throw new ProbeFailure('TLSError', `${this.where} does not accept SSL connections but settings.sslmode is ${this.settings.sslmode}`, {
        reachable: 'True',
      });
    }
    if (answer !== 'S') throw new ProbeFailure('UnexpectedResponse', `${this.where} answered the SSL request with something other than PostgreSQL`);
    await this.session.upgradeToTls({
      servername: this.settings.target.host,
      verify: this.settings.sslmode === 'verify-full' || this.settings.sslmode === 'verify-ca',
      verifyHostname: this.settings.sslmode === 'verify-full',
      trustedCAs: this.ctx.trustedCAs,
      clientCertificate: clientCertificateOf(this.ctx.credentials),
    });
  }

  private async authenticate(): Promise<void> {
    let scram: ScramClient | undefined;
    for (;;) {
      const message = await this.readMessage();
      if (message.type !== 'R') {
        this.unexpected(message);
        continue;
      }
      const code = message.body.readInt32BE(0);
      const data = message.body.subarray(4);
      switch (code) {
        case AUTH_OK:
          return;
        case AUTH_CLEARTEXT:
          // Whoever answers on an unencrypted connection (the server, or anyone on the path) would read it.
          if (!this.session.encrypted) {
            throw new ProbeFailure('UnexpectedResponse', `${this.where} asked for the password in clear text over an unencrypted connection; atoll does not send it. Use sslmode require or verify-full, or scram-sha-256 on the server`);
          }
          this.session.write(frontendMessage('p', cString(this.password())));
          break;
        case AUTH_MD5:
          this.session.write(frontendMessage('p', cString(md5Password(this.password(), this.settings.user, data.subarray(0, 4)))));
          break;
        case AUTH_SASL: {
          const mechanisms = data.toString('utf8').split('\0').filter(Boolean);
          if (!mechanisms.includes('SCRAM-SHA-256')) {
            throw new ProbeFailure('UnexpectedResponse', `${this.where} offers no supported SASL mechanism`);
          }
          scram = new ScramClient(this.password());
          const first = Buffer.from(scram.clientFirstMessage, 'utf8');
          this.session.write(frontendMessage('p', Buffer.concat([cString('SCRAM-SHA-256'), int32(first.length), first])));
          break;
        }
        case AUTH_SASL_CONTINUE:
          if (!scram) throw new ProbeFailure('UnexpectedResponse', `${this.where} continued a SASL exchange that was not started`);
          this.session.write(frontendMessage('p', Buffer.from(await this.scramStep(() => scram!.respond(data.toString('utf8'))), 'utf8')));
          break;
        case AUTH_SASL_FINAL:
          if (!scram) throw new ProbeFailure('UnexpectedResponse', `${this.where} finished a SASL exchange that was not started`);
          await this.scramStep(async () => scram!.verify(data.toString('utf8')));
          break;
        default:
          throw new ProbeFailure('UnexpectedResponse', `${this.where} asks for an unsupported authentication method (code ${code})`);
      }
    }
  }

  private async scramStep<T>(step: () => Promise<T>): Promise<T> {
    try {
      return await step();
    } catch (err) {
      if (err instanceof ScramError) throw new ProbeFailure('UnexpectedResponse', `SCRAM with ${this.where} failed: ${err.message}`, { cause: err });
      throw err;
    }
  }

  private async awaitReadyForQuery(): Promise<void> {
    for (;;) {
      const message = await this.readMessage();
      if (message.type === 'Z') return;
      this.unexpected(message);
    }
  }

  /** ParameterStatus, BackendKeyData, notices and protocol negotiation are skipped; errors end the probe. */
  private unexpected(message: BackendMessage): void {
    if (message.type === 'E') throw this.failureFromError(message.body);
    if (!'SKNv'.includes(message.type)) {
      throw new ProbeFailure('UnexpectedResponse', `${this.where} sent an unexpected message during login`);
    }
  }

  private failureFromError(body: Buffer): ProbeFailure {
    const code = errorFields(body).get('C') ?? '';
    const sqlstate = /^[0-9A-Z]{5}$/.test(code) ? code : 'unknown';
    switch (sqlstate) {
      case SQLSTATE_INVALID_PASSWORD:
      case SQLSTATE_INVALID_AUTHORIZATION:
        return new ProbeFailure('AuthenticationFailed', `${this.where} refused the login of ${this.settings.user} (SQLSTATE ${sqlstate})`);
      case SQLSTATE_INVALID_CATALOG:
        return new ProbeFailure('UnexpectedResponse', `database named by settings.database does not exist on ${this.where} (SQLSTATE ${sqlstate})`);
      default:
        return new ProbeFailure('UnexpectedResponse', `${this.where} refused the connection (SQLSTATE ${sqlstate})`);
    }
  }

  private password(): string {
    const password = this.ctx.credentials['password'];
    if (password === undefined || password === '') {
      throw new ProbeFailure('CredentialsMissing', `${this.where} asks for a password but credentials.password is not set`, { reachable: 'True' });
    }
    return password;
  }

  private async readMessage(): Promise<BackendMessage> {
    const header = await this.session.read(5);
    const type = String.fromCharCode(header[0]!);
    const length = header.readInt32BE(1);
    if (length < 4 || length > MAX_MESSAGE_BYTES) {
      throw new ProbeFailure('UnexpectedResponse', `${this.where} does not speak the PostgreSQL protocol`);
    }
    return { type, body: await this.session.read(length - 4) };
  }
}

interface BackendMessage {
  type: string;
  body: Buffer;
}

function startupMessage(user: string, database: string): Buffer {
  const params = Buffer.concat(
    [['user', user], ['database', database], ['application_name', APPLICATION_NAME]].flatMap(([k, v]) => [cString(k!), cString(v!)]),
  );
  const body = Buffer.concat([int32(PROTOCOL_VERSION_3), params, Buffer.from([0])]);
  return Buffer.concat([int32(body.length + 4), body]);
}

function frontendMessage(type: string, body: Buffer): Buffer {
  return Buffer.concat([Buffer.from(type, 'latin1'), int32(body.length + 4), body]);
}

/** PostgreSQL's MD5 scheme: "md5" + md5(md5(password + user) + salt). */
function md5Password(password: string, user: string, salt: Buffer): string {
  const inner = createHash('md5').update(password + user, 'utf8').digest('hex');
  return 'md5' + createHash('md5').update(Buffer.concat([Buffer.from(inner, 'latin1'), salt])).digest('hex');
}

/** ErrorResponse fields by their one-letter code; only the SQLSTATE ('C') is ever shown. */
function errorFields(body: Buffer): Map<string, string> {
  const fields = new Map<string, string>();
  let offset = 0;
  while (offset < body.length && body[offset] !== 0) {
    const code = String.fromCharCode(body[offset]!);
    const end = body.indexOf(0, offset + 1);
    if (end < 0) break;
    fields.set(code, body.toString('utf8', offset + 1, end));
    offset = end + 1;
  }
  return fields;
}

function cString(value: string): Buffer {
  return Buffer.concat([Buffer.from(value, 'utf8'), Buffer.from([0])]);
}

function int32(value: number): Buffer {
  const buf = Buffer.alloc(4);
  buf.writeInt32BE(value, 0);
  return buf;
}
