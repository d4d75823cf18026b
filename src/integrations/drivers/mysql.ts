import { createHash } from 'node:crypto';
import { ProbeFailure, describeTarget, type ProbeTarget } from '../probe-failure.js';
import type { ProbeContext, ProbeDriver, ProbeOutcome } from '../probe-types.js';
import { booleanSetting, portSetting, runWireProbe, stringSetting, withSettings, type WireSession } from './wire-session.js';

/**
 * Probes a MySQL or MariaDB server with the client/server protocol's login only:
 * initial handshake v10, optional TLS upgrade, then mysql_native_password or
 * caching_sha2_password (fast path, and the full path over TLS only: without TLS
 * the server's RSA key could come from anyone in between, so the probe refuses
 * to fetch it and says to enable TLS), following AuthSwitchRequest.
 * It ends with COM_QUIT. Written on node built-ins: a probe needs the handshake only.
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

const CLIENT_LONG_PASSWORD = 0x1;
const CLIENT_LONG_FLAG = 0x4;
const CLIENT_CONNECT_WITH_DB = 0x8;
const CLIENT_PROTOCOL_41 = 0x200;
const CLIENT_SSL = 0x800;
const CLIENT_TRANSACTIONS = 0x2000;
const CLIENT_SECURE_CONNECTION = 0x8000;
const CLIENT_PLUGIN_AUTH = 0x80000;
const CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA = 0x200000;

const MAX_PACKET_SIZE = 16 * 1024 * 1024;
const CHARSET_UTF8MB4_GENERAL_CI = 45;
const COM_QUIT = 0x01;

const NATIVE_PASSWORD = 'mysql_native_password';
const CACHING_SHA2_PASSWORD = 'caching_sha2_password';
const CLEAR_PASSWORD = 'mysql_clear_password';

const FAST_AUTH_SUCCESS = 0x03;
const PERFORM_FULL_AUTHENTICATION = 0x04;

/** Exported for tests: the message names the setting that fixes it. */
export const ERROR_FULL_AUTH_NEEDS_TLS = (where: string): string =>
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
      runWireProbe(ctx, settings.target, (session) => new MysqlLogin(session, ctx, settings).run()),
    );
  }
}

interface Handshake {
  capabilities: number;
  scramble: Buffer;
  plugin: string;
}

/** One login conversation; each method is one step of the protocol. */
class MysqlLogin {
  private readonly where: string;
  private sequence = 0;

  constructor(
    private readonly session: WireSession,
    private readonly ctx: ProbeContext,
    private readonly settings: MysqlSettings,
  ) {
    this.where = describeTarget(settings.target);
  }

  async run(): Promise<string> {
    const handshake = this.parseHandshake(await this.readPacket());
    let capabilities = CLIENT_LONG_PASSWORD | CLIENT_LONG_FLAG | CLIENT_PROTOCOL_41 | CLIENT_TRANSACTIONS
      | CLIENT_SECURE_CONNECTION | CLIENT_PLUGIN_AUTH | CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA;
    if (this.settings.database !== undefined) capabilities |= CLIENT_CONNECT_WITH_DB;
    capabilities &= handshake.capabilities | CLIENT_CONNECT_WITH_DB;

    if (this.settings.tls) {
      if ((handshake.capabilities & CLIENT_SSL) === 0) {
        throw new ProbeFailure('TLSError', `${this.where} does not offer TLS but settings.tls is true`, { reachable: 'True' });
      }
      capabilities |= CLIENT_SSL;
      this.writePacket(clientPreamble(capabilities));
      await this.session.upgradeToTls({ servername: this.settings.target.host, verify: true, trustedCAs: this.ctx.trustedCAs });
    }

    let plugin = handshake.plugin;
    let scramble = handshake.scramble;
    this.writePacket(
      Buffer.concat([
        clientPreamble(capabilities),
        cString(this.settings.user),
        lengthEncoded(this.authResponse(plugin, scramble)),
        this.settings.database !== undefined ? cString(this.settings.database) : Buffer.alloc(0),
        cString(plugin),
      ]),
    );

    for (;;) {
      const packet = await this.readPacket();
      switch (packet[0]) {
        case 0x00:
          this.sequence = 0;
          this.session.close(this.packet(Buffer.from([COM_QUIT])));
          return `logged in to ${this.where} as ${this.settings.user}${this.session.encrypted ? ' over TLS' : ''}`;
        case 0xff:
          throw this.failureFromError(packet);
        case 0xfe: {
          const end = packet.indexOf(0, 1);
          if (end < 0) throw this.unexpected();
          plugin = packet.toString('utf8', 1, end);
          scramble = stripTrailingNul(packet.subarray(end + 1));
          this.writePacket(this.authResponse(plugin, scramble));
          break;
        }
        case 0x01:
          if (plugin !== CACHING_SHA2_PASSWORD) throw this.unexpected();
          this.continueCachingSha2(packet);
          break;
        default:
          throw this.unexpected();
      }
    }
  }

  /** caching_sha2_password's AuthMoreData: fast-auth success, or the full exchange. */
  private continueCachingSha2(packet: Buffer): void {
    if (packet[1] === FAST_AUTH_SUCCESS) return;
    if (packet[1] !== PERFORM_FULL_AUTHENTICATION) throw this.unexpected();
    const password = Buffer.concat([Buffer.from(this.password(), 'utf8'), Buffer.from([0])]);
    if (this.session.encrypted) {
      this.writePacket(password);
      return;
    }
    // Without TLS the only way on is to ask the server for its RSA key and encrypt the password
    // to it; over an unauthenticated channel whoever sits in between answers with their own key
    // and reads the password. So the probe stops here instead of asking.
    throw new ProbeFailure('TLSError', ERROR_FULL_AUTH_NEEDS_TLS(this.where), { reachable: 'True' });
  }

  private authResponse(plugin: string, scramble: Buffer): Buffer {
    switch (plugin) {
      case NATIVE_PASSWORD:
        return nativePasswordScramble(this.optionalPassword(), scramble);
      case CACHING_SHA2_PASSWORD:
        return cachingSha2Scramble(this.optionalPassword(), scramble);
      case CLEAR_PASSWORD:
        if (!this.session.encrypted) {
          throw new ProbeFailure('UnexpectedResponse', `${this.where} asks for the password in cleartext; set settings.tls to true`);
        }
        return Buffer.concat([Buffer.from(this.password(), 'utf8'), Buffer.from([0])]);
      default:
        throw new ProbeFailure('UnexpectedResponse', `${this.where} asks for an unsupported authentication plugin (${printable(plugin)})`);
    }
  }

  private parseHandshake(packet: Buffer): Handshake {
    if (packet[0] === 0xff) throw this.failureFromError(packet);
    if (packet[0] !== 10) throw new ProbeFailure('UnexpectedResponse', `${this.where} does not speak the MySQL protocol`);
    let offset = packet.indexOf(0, 1) + 1; // after server_version
    if (offset === 0 || packet.length < offset + 31) throw this.unexpected();
    offset += 4; // connection id
    const part1 = packet.subarray(offset, offset + 8);
    offset += 9; // auth-plugin-data-part-1 and filler
    const lower = packet.readUInt16LE(offset);
    offset += 2 + 1 + 2; // capability flags (lower), character set, status flags
    const capabilities = (packet.readUInt16LE(offset) << 16 | lower) >>> 0;
    offset += 2;
    const dataLength = packet[offset]!;
    offset += 1 + 10; // auth-plugin-data length and reserved
    if ((capabilities & CLIENT_PROTOCOL_41) === 0 || (capabilities & CLIENT_SECURE_CONNECTION) === 0) {
      throw new ProbeFailure('UnexpectedResponse', `${this.where} runs a MySQL version too old to probe (no protocol 4.1)`);
    }
    const part2Length = Math.max(13, dataLength - 8);
    const part2 = packet.subarray(offset, offset + part2Length);
    offset += part2Length;
    let plugin = NATIVE_PASSWORD;
    if ((capabilities & CLIENT_PLUGIN_AUTH) !== 0 && offset < packet.length) {
      const end = packet.indexOf(0, offset);
      plugin = packet.toString('utf8', offset, end < 0 ? packet.length : end);
    }
    return { capabilities, scramble: Buffer.concat([part1, stripTrailingNul(part2)]), plugin };
  }

  private failureFromError(packet: Buffer): ProbeFailure {
    const code = packet.length >= 3 ? packet.readUInt16LE(1) : 0;
    switch (code) {
      case ER_ACCESS_DENIED_ERROR:
        return new ProbeFailure('AuthenticationFailed', `${this.where} refused the login of ${this.settings.user} (error ${code})`);
      case ER_BAD_DB_ERROR:
        return new ProbeFailure('UnexpectedResponse', `database named by settings.database does not exist on ${this.where} (error ${code})`);
      case ER_DBACCESS_DENIED_ERROR:
        return new ProbeFailure('UnexpectedResponse', `${this.settings.user} may not use the database named by settings.database on ${this.where} (error ${code})`);
      default:
        return new ProbeFailure('UnexpectedResponse', `${this.where} refused the connection (error ${code})`);
    }
  }

  private unexpected(): ProbeFailure {
    return new ProbeFailure('UnexpectedResponse', `${this.where} sent an unexpected packet during login`);
  }

  private optionalPassword(): string {
    return this.ctx.credentials['password'] ?? '';
  }

  private password(): string {
    const password = this.ctx.credentials['password'];
    if (password === undefined || password === '') {
      throw new ProbeFailure('CredentialsMissing', `${this.where} asks for a password but credentials.password is not set`, { reachable: 'True' });
    }
    return password;
  }

  private async readPacket(): Promise<Buffer> {
    const header = await this.session.read(4);
    const length = header.readUIntLE(0, 3);
    this.sequence = (header[3]! + 1) & 0xff;
    return this.session.read(length);
  }

  private packet(payload: Buffer): Buffer {
    const header = Buffer.alloc(4);
    header.writeUIntLE(payload.length, 0, 3);
    header[3] = this.sequence;
    this.sequence = (this.sequence + 1) & 0xff;
    return Buffer.concat([header, payload]);
  }

  private writePacket(payload: Buffer): void {
    this.session.write(this.packet(payload));
  }
}

/** The fixed 32-byte start of both SSLRequest and HandshakeResponse41. */
function clientPreamble(capabilities: number): Buffer {
  const buf = Buffer.alloc(32);
  buf.writeUInt32LE(capabilities >>> 0, 0);
  buf.writeUInt32LE(MAX_PACKET_SIZE, 4);
  buf[8] = CHARSET_UTF8MB4_GENERAL_CI;
  return buf;
}

/** mysql_native_password: SHA1(password) XOR SHA1(scramble + SHA1(SHA1(password))); empty for no password. */
export function nativePasswordScramble(password: string, scramble: Buffer): Buffer {
  if (password === '') return Buffer.alloc(0);
  const stage1 = sha('sha1', Buffer.from(password, 'utf8'));
  const stage2 = sha('sha1', Buffer.concat([scramble, sha('sha1', stage1)]));
  return xor(stage1, stage2);
}

/** caching_sha2_password: SHA256(password) XOR SHA256(SHA256(SHA256(password)) + scramble). */
export function cachingSha2Scramble(password: string, scramble: Buffer): Buffer {
  if (password === '') return Buffer.alloc(0);
  const stage1 = sha('sha256', Buffer.from(password, 'utf8'));
  const stage2 = sha('sha256', Buffer.concat([sha('sha256', stage1), scramble]));
  return xor(stage1, stage2);
}

function sha(algorithm: 'sha1' | 'sha256', data: Buffer): Buffer {
  return createHash(algorithm).update(data).digest();
}

function xor(a: Buffer, b: Buffer): Buffer {
  const out = Buffer.alloc(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i]! ^ b[i]!;
  return out;
}

function stripTrailingNul(data: Buffer): Buffer {
  return data.length > 0 && data[data.length - 1] === 0 ? data.subarray(0, -1) : data;
}

function cString(value: string): Buffer {
  return Buffer.concat([Buffer.from(value, 'utf8'), Buffer.from([0])]);
}

function lengthEncoded(data: Buffer): Buffer {
  if (data.length < 251) return Buffer.concat([Buffer.from([data.length]), data]);
  const prefix = Buffer.alloc(3);
  prefix[0] = 0xfc;
  prefix.writeUInt16LE(data.length, 1);
  return Buffer.concat([prefix, data]);
}

/** Plugin names come from the server: show them only if they look like identifiers. */
function printable(name: string): string {
  return /^[A-Za-z0-9_.-]{1,64}$/.test(name) ? name : 'unknown';
}
