import { createHash, createHmac, pbkdf2, randomBytes, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';

/**
 * The client side of SCRAM-SHA-256 (RFC 5802 / RFC 7677) without channel binding,
 * as PostgreSQL speaks it. Kept apart from the wire code so the RFC's own test
 * vector can check it, and so a server that cannot prove it knows the password
 * (a wrong server signature) is caught here rather than trusted.
 */

const pbkdf2Async = promisify(pbkdf2);

/** PBKDF2 rounds above this are refused: a hostile server could otherwise make a probe burn CPU for minutes. */
export const MAX_SCRAM_ITERATIONS = 1_000_000;

/** `n,,`: the GS2 header for "client does not support channel binding". */
const GS2_HEADER = 'n,,';

export class ScramError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ScramError';
  }
}

/** One SCRAM exchange; create it, send `clientFirstMessage`, then feed the server's two messages in order. */
export class ScramClient {
  readonly clientFirstMessage: string;
  private readonly clientFirstBare: string;
  private expectedServerSignature: Buffer | undefined;

  constructor(
    private readonly password: string,
    private readonly clientNonce: string = randomBytes(18).toString('base64'),
    username = '',
  ) {
    this.clientFirstBare = `n=${saslName(username)},r=${clientNonce}`;
    this.clientFirstMessage = GS2_HEADER + this.clientFirstBare;
  }

  /** Answers the server-first-message with the client-final-message (carrying the proof). */
  async respond(serverFirstMessage: string): Promise<string> {
    const attributes = parseAttributes(serverFirstMessage);
    const nonce = attributes.get('r');
    const salt = attributes.get('s');
    const iterations = Number(attributes.get('i'));
    if (!nonce || !salt || !nonce.startsWith(this.clientNonce) || nonce.length <= this.clientNonce.length) {
      throw new ScramError('server-first-message is malformed or does not extend the client nonce');
    }
    if (!Number.isInteger(iterations) || iterations < 1 || iterations > MAX_SCRAM_ITERATIONS) {
      throw new ScramError('server-first-message asks for an unacceptable iteration count');
    }

    const saltedPassword = await pbkdf2Async(this.password.normalize('NFKC'), Buffer.from(salt, 'base64'), iterations, 32, 'sha256');
    const clientKey = hmac(saltedPassword, 'Client Key');
    const storedKey = createHash('sha256').update(clientKey).digest();
    const clientFinalWithoutProof = `c=${Buffer.from(GS2_HEADER).toString('base64')},r=${nonce}`;
    const authMessage = `${this.clientFirstBare},${serverFirstMessage},${clientFinalWithoutProof}`;
    const clientSignature = hmac(storedKey, authMessage);
    const proof = Buffer.alloc(clientKey.length);
    for (let i = 0; i < proof.length; i++) proof[i] = clientKey[i]! ^ clientSignature[i]!;
    this.expectedServerSignature = hmac(hmac(saltedPassword, 'Server Key'), authMessage);
    return `${clientFinalWithoutProof},p=${proof.toString('base64')}`;
  }

  /** Checks the server-final-message; throws unless the server proved it holds the password's verifier. */
  verify(serverFinalMessage: string): void {
    const attributes = parseAttributes(serverFinalMessage);
    if (attributes.has('e')) throw new ScramError('server rejected the SCRAM exchange');
    const signature = Buffer.from(attributes.get('v') ?? '', 'base64');
    const expected = this.expectedServerSignature;
    if (!expected || signature.length !== expected.length || !timingSafeEqual(signature, expected)) {
      throw new ScramError('server signature does not match: the server does not know the password');
    }
  }
}

function hmac(key: Buffer, data: string): Buffer {
  return createHmac('sha256', key).update(data, 'utf8').digest();
}

function saslName(name: string): string {
  return name.replace(/=/g, '=3D').replace(/,/g, '=2C');
}

function parseAttributes(message: string): Map<string, string> {
  const attributes = new Map<string, string>();
  for (const part of message.split(',')) {
    const eq = part.indexOf('=');
    if (eq === 1) attributes.set(part[0]!, part.slice(2));
  }
  return attributes;
}
