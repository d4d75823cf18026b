import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { Agent, request } from 'undici';
import { canonicalContext, encryptionContext, type Binding } from '../binding.js';
import { formatEnvelope, parseEnvelope } from '../envelope-format.js';
import {
  CiphertextRejectedError,
  CryptoErrorMessage,
  KeyNotFoundError,
  KmsAccessDeniedError,
  KmsUnavailableError,
  type CryptoError,
} from '../errors.js';
import { DATA_KEY_BYTES, type GeneratedDataKey, type KmsProvider } from '../kms-provider.js';
import { loadOnce } from '../../util/load-once.js';
import { redactSecrets } from '../../util/redact.js';

export const VAULT_TRANSIT_PROVIDER_NAME = 'vault-transit';

/** Constant texts of this provider's errors (nothing from Vault's answer is ever interpolated). */
export const VaultTransitMessage = {
  sealed: 'Vault is sealed; the operation will be retried once an operator unseals it',
  notDerived:
    'the Transit key is not a derived key (derived=true), so Vault would ignore the binding context; create the key with derived=true',
  retiredVersion:
    "the data key was wrapped by a Transit key version below the key's min_decryption_version (retired); supply the credential again",
  invalidKeyId: 'a vault-transit key id must look like <transit mount>/keys/<key name>, e.g. transit/keys/atoll',
  loginFailed: "Vault refused the operator's login (Kubernetes auth role, audience or ServiceAccount binding)",
  credentialsUnreadable: 'the Vault token or ServiceAccount token file could not be read',
} as const;

export type VaultAuth =
  | {
      method: 'kubernetes';
      /** Vault role of the Kubernetes auth method bound to this component's ServiceAccount. */
      role: string;
      /** Projected ServiceAccount token (audience set by the projection); re-read at every login because the kubelet rotates it. */
      jwtFile: string;
      /** Mount path of the Kubernetes auth method (default `kubernetes`). */
      mount?: string;
    }
  | {
      method: 'token';
      /** A file holding a Vault token (e.g. written by Vault Agent); re-read at every refresh. */
      tokenFile: string;
    };

export interface VaultTransitProviderOptions {
  /** Vault's address, e.g. https://vault.vault.svc:8200. */
  address: string;
  auth: VaultAuth;
  /** PEM of the CA(s) that sign Vault's serving certificate; the system roots when omitted. */
  caPem?: string;
  /** Vault Enterprise / OpenBao namespace, sent as X-Vault-Namespace. */
  namespace?: string;
  /** Per-request timeout in ms (default 5000), so an outage fails fast instead of stalling reconciles. */
  requestTimeoutMs?: number;
  /** TCP/TLS connect timeout in ms (default 2000). */
  connectTimeoutMs?: number;
  /** How long a token read from a file is used before the file is read again (default 60 s). */
  tokenFileRefreshMs?: number;
  now?: () => number;
}

/** What Vault answered: status and its `errors` array (kept only as an error's `cause`). */
export class VaultResponseError extends Error {
  constructor(
    readonly status: number,
    readonly errors: string[],
  ) {
    // Vault's error texts name paths and policies, never tokens or key material.
    super(`Vault answered ${status}: ${errors.join('; ').slice(0, 300)}`);
    this.name = 'VaultResponseError';
  }
}

interface Token {
  value: string;
  refreshAt: number;
}

const TRANSIT_CIPHERTEXT = /^vault:v([1-9][0-9]{0,9}):[A-Za-z0-9+/]+={0,2}$/;
const KEY_ID = /^((?:[A-Za-z0-9_.-]+\/)*[A-Za-z0-9_.-]+)\/keys\/([A-Za-z0-9_.-]+)$/;
const DERIVATION_CHECK = 'atoll.dev/derivation-check';
/** Least time between two logins forced by a 403 (an expired or revoked token is renewed by the first). */
const FORCED_LOGIN_INTERVAL_MS = 10_000;

/**
 * HashiCorp Vault (or OpenBao) Transit: data keys from `datakey/plaintext`
 * and `decrypt`, both with the binding as the `context` of a derived key
 * (`derived=true`), so Vault itself derives a different key per binding and a
 * wrapped data key copied elsewhere fails at Vault, as AWS KMS enforces its
 * EncryptionContext. Key ids are `<mount>/keys/<name>`; the Transit key
 * version travels inside the wrapped key (`vault:vN:`), so a Transit rotation
 * keeps the key id and `rewrapDataKey` moves a wrapped key to the newest
 * version without the operator ever seeing it. Authenticates with the
 * Kubernetes auth method (its ServiceAccount token) or a token file, logging
 * in again when the token nears expiry or Vault answers 403. Failures map to
 * the crypto layer's typed errors; anything unexpected is KmsUnavailable
 * (retried, fail closed).
 */
export class VaultTransitProvider implements KmsProvider {
  readonly name = VAULT_TRANSIT_PROVIDER_NAME;
  readonly #address: URL;
  readonly #auth: VaultAuth;
  readonly #namespace: string | undefined;
  /** undici loads on first use: ~20 MiB a process without this provider need not carry (ADR 0035). */
  readonly #undici: () => Promise<Http>;
  #http: Promise<Http> | undefined;
  readonly #timeoutMs: number;
  readonly #tokenFileRefreshMs: number;
  readonly #now: () => number;
  #token: Token | undefined;
  #login: Promise<Token> | undefined;
  #lastForcedLogin = -Infinity;
  /** Keys proven derived: a context change makes Vault refuse (checked once per key per process). */
  readonly #derived = new Set<string>();

  constructor(options: VaultTransitProviderOptions) {
    this.#address = new URL(options.address);
    this.#auth = options.auth;
    this.#namespace = options.namespace || undefined;
    this.#timeoutMs = options.requestTimeoutMs ?? 5_000;
    this.#tokenFileRefreshMs = options.tokenFileRefreshMs ?? 60_000;
    this.#now = options.now ?? Date.now;
    const agentOptions: Agent.Options = {
      connect: { timeout: options.connectTimeoutMs ?? 2_000, ...(options.caPem ? { ca: options.caPem } : {}) },
      headersTimeout: this.#timeoutMs,
      bodyTimeout: this.#timeoutMs,
    };
    const load = loadOnce(async () => {
      const { Agent, request } = await import('undici');
      return { agent: new Agent(agentOptions), request };
    });
    this.#undici = () => (this.#http = load());
  }

  async generateDataKey(keyId: string, context: Record<string, string>): Promise<GeneratedDataKey> {
    const { mount, key } = parseVaultKeyId(keyId);
    const data = await this.#call(`${mount}/datakey/plaintext/${key}`, {
      context: transitContext(context),
      bits: DATA_KEY_BYTES * 8,
    });
    const ciphertext = data.ciphertext;
    const plaintext = unpooledKey(data.plaintext);
    if (typeof ciphertext !== 'string' || !TRANSIT_CIPHERTEXT.test(ciphertext) || plaintext.length !== DATA_KEY_BYTES) {
      plaintext.fill(0);
      throw new KmsUnavailableError();
    }
    const wrapped = Buffer.from(ciphertext, 'utf8');
    if (!this.#derived.has(keyId)) {
      try {
        await this.#assertDerived(mount, key, ciphertext, context);
      } catch (err) {
        plaintext.fill(0);
        throw err;
      }
      this.#derived.add(keyId);
    }
    return { plaintext, wrapped, keyId };
  }

  async decryptDataKey(keyId: string, wrapped: Buffer, context: Record<string, string>): Promise<Buffer> {
    const { mount, key } = parseVaultKeyId(keyId);
    const ciphertext = transitCiphertext(wrapped);
    const data = await this.#call(`${mount}/decrypt/${key}`, { ciphertext, context: transitContext(context) });
    const plaintext = unpooledKey(data.plaintext);
    if (plaintext.length !== DATA_KEY_BYTES) {
      plaintext.fill(0);
      throw new CiphertextRejectedError();
    }
    return plaintext;
  }

  /**
   * Re-wraps a wrapped data key under the newest version of its Transit key
   * (Transit `rewrap`): Vault decrypts and encrypts inside itself, so the
   * data key never leaves Vault. Same binding context, same key id.
   */
  async rewrapDataKey(keyId: string, wrapped: Buffer, context: Record<string, string>): Promise<Buffer> {
    const { mount, key } = parseVaultKeyId(keyId);
    const data = await this.#call(`${mount}/rewrap/${key}`, {
      ciphertext: transitCiphertext(wrapped),
      context: transitContext(context),
    });
    if (typeof data.ciphertext !== 'string' || !TRANSIT_CIPHERTEXT.test(data.ciphertext))
      throw new KmsUnavailableError();
    return Buffer.from(data.ciphertext, 'utf8');
  }

  /** Closes the connection pool (tests, shutdown). */
  async close(): Promise<void> {
    const http = await this.#http?.catch(() => undefined);
    await http?.agent.close();
  }

  /**
   * Fails closed on a key created without `derived=true`: Transit then ignores
   * `context`, and Vault would no longer enforce the binding. Unwrapping the
   * fresh data key under a context nobody uses must be refused by Vault.
   */
  async #assertDerived(mount: string, key: string, ciphertext: string, context: Record<string, string>): Promise<void> {
    const probe = { ...context, [DERIVATION_CHECK]: randomBytes(16).toString('hex') };
    let data: Record<string, unknown>;
    try {
      data = await this.#call(`${mount}/decrypt/${key}`, { ciphertext, context: transitContext(probe) });
    } catch (err) {
      if (err instanceof CiphertextRejectedError) return;
      throw err;
    }
    if (typeof data.plaintext === 'string') Buffer.from(data.plaintext, 'base64').fill(0);
    throw new KeyNotFoundError(VaultTransitMessage.notDerived);
  }

  /** One authenticated Transit call; a 403 once forces a fresh login (expired or revoked token). */
  async #call(path: string, body: Record<string, unknown>): Promise<Record<string, unknown>> {
    for (let attempt = 0; ; attempt++) {
      const token = await this.#currentToken();
      const res = await this.#request(path, body, token.value);
      if (res.status === 403 && attempt === 0 && (await this.#mayLogInAgain(token))) {
        if (this.#token === token) this.#token = undefined;
        continue;
      }
      if (res.status >= 200 && res.status < 300) return res.data;
      throw vaultError(res.status, res.errors);
    }
  }

  /**
   * A 403 is also what a key outside the policy answers, and a tenant picks
   * the key id of a sealed value: so a 403 retries only with a token that can
   * differ, a changed token file, or a Kubernetes login at most once per
   * interval. Such values then cannot make every open cost a login (and a
   * TokenReview) nor drop the token the other calls share.
   */
  async #mayLogInAgain(token: Token): Promise<boolean> {
    if (this.#auth.method === 'token') {
      const current = await readFile(this.#auth.tokenFile, 'utf8').then(
        (t) => t.trim(),
        () => '',
      );
      return current !== '' && current !== token.value;
    }
    if (this.#now() - this.#lastForcedLogin < FORCED_LOGIN_INTERVAL_MS) return false;
    this.#lastForcedLogin = this.#now();
    return true;
  }

  async #currentToken(): Promise<Token> {
    const token = this.#token;
    if (token && this.#now() < token.refreshAt) return token;
    this.#login ??= this.#authenticate().finally(() => (this.#login = undefined));
    return this.#login;
  }

  async #authenticate(): Promise<Token> {
    const auth = this.#auth;
    let secret: string;
    try {
      secret = (await readFile(auth.method === 'token' ? auth.tokenFile : auth.jwtFile, 'utf8')).trim();
    } catch (err) {
      throw new KmsAccessDeniedError({ cause: new Error(VaultTransitMessage.credentialsUnreadable, { cause: err }) });
    }
    if (!secret) throw new KmsAccessDeniedError({ cause: new Error(VaultTransitMessage.credentialsUnreadable) });
    if (auth.method === 'token') {
      this.#token = { value: secret, refreshAt: this.#now() + this.#tokenFileRefreshMs };
      return this.#token;
    }
    const res = await this.#request(
      `auth/${auth.mount ?? 'kubernetes'}/login`,
      { role: auth.role, jwt: secret },
      undefined,
    );
    const login = res.auth as { client_token?: unknown; lease_duration?: unknown } | undefined;
    if (res.status === 400 || res.status === 403)
      throw new KmsAccessDeniedError({ cause: new VaultResponseError(res.status, res.errors) });
    if (res.status < 200 || res.status >= 300) throw vaultError(res.status, res.errors);
    if (typeof login?.client_token !== 'string' || !login.client_token) throw new KmsUnavailableError();
    const leaseSeconds =
      typeof login.lease_duration === 'number' && login.lease_duration > 0 ? login.lease_duration : 600;
    // Log in again at 80% of the lease, well before Vault stops honouring the token.
    this.#token = { value: login.client_token, refreshAt: this.#now() + leaseSeconds * 800 };
    return this.#token;
  }

  async #request(path: string, body: Record<string, unknown>, token: string | undefined): Promise<VaultAnswer> {
    const headers: Record<string, string> = { 'content-type': 'application/json', 'x-vault-request': 'true' };
    if (token) headers['x-vault-token'] = token;
    if (this.#namespace) headers['x-vault-namespace'] = this.#namespace;
    try {
      const { agent, request } = await this.#undici();
      const res = await request(new URL(`/v1/${path}`, this.#address), {
        method: 'POST',
        headers,
        body: JSON.stringify(body),
        dispatcher: agent,
        signal: AbortSignal.timeout(this.#timeoutMs),
      });
      let parsed: { data?: unknown; auth?: unknown; errors?: unknown } = {};
      try {
        parsed = (await res.body.json()) as typeof parsed;
      } catch {
        /* an empty or non-JSON body (a proxy's error page): the status decides */
      }
      // Vault never echoes a token, but a proxy in front of it may: our errors (and logs) must not carry it.
      const secrets = [token, typeof body.jwt === 'string' ? body.jwt : undefined];
      const errors = (
        Array.isArray(parsed?.errors) ? parsed.errors.filter((e): e is string => typeof e === 'string') : []
      ).map((e) => redactSecrets(e, secrets));
      const data = parsed?.data && typeof parsed.data === 'object' ? (parsed.data as Record<string, unknown>) : {};
      return { status: res.statusCode, data, auth: parsed?.auth, errors };
    } catch (err) {
      if (err instanceof KmsUnavailableError) throw err;
      throw new KmsUnavailableError(CryptoErrorMessage.kmsUnavailable, { cause: err });
    }
  }
}

interface VaultAnswer {
  status: number;
  data: Record<string, unknown>;
  auth: unknown;
  errors: string[];
}

/** Splits `<mount>/keys/<name>` into Transit's mount path and key name. */
export function parseVaultKeyId(keyId: string): { mount: string; key: string } {
  const m = KEY_ID.exec(keyId);
  if (!m || m[1]!.split('/').some((s) => s === '.' || s === '..') || m[2] === '.' || m[2] === '..') {
    throw new KeyNotFoundError(VaultTransitMessage.invalidKeyId);
  }
  return { mount: m[1]!, key: m[2]! };
}

/** The Transit key version a wrapped data key was wrapped with (`vault:vN:...`). */
export function transitKeyVersion(wrapped: Buffer): number {
  return Number(TRANSIT_CIPHERTEXT.exec(transitCiphertext(wrapped))![1]);
}

/**
 * Moves an envelope's wrapped data key to the newest Transit key version,
 * keeping its nonce and AES-GCM ciphertext: the value itself is not touched,
 * so no plaintext and no data key reaches this process. Used after a Transit
 * key rotation, before raising the key's `min_decryption_version`.
 */
export async function rewrapEnvelope(
  provider: VaultTransitProvider,
  sealed: string,
  binding: Binding,
): Promise<string> {
  const parsed = parseEnvelope(sealed);
  if (parsed.provider !== provider.name) throw new CiphertextRejectedError(CryptoErrorMessage.wrongKey);
  const wrapped = await provider.rewrapDataKey(parsed.keyId, parsed.wrapped, encryptionContext(binding));
  return formatEnvelope({
    provider: parsed.provider,
    keyId: parsed.keyId,
    wrapped,
    nonce: parsed.nonce,
    ciphertext: parsed.ciphertext,
  });
}

/** Transit's context: base64 of the canonical, length-prefixed binding (same bytes on every call). */
function transitContext(context: Record<string, string>): string {
  return canonicalContext(context).toString('base64');
}

function transitCiphertext(wrapped: Buffer): string {
  const text = wrapped.toString('latin1');
  if (!TRANSIT_CIPHERTEXT.test(text)) throw new CiphertextRejectedError();
  return text;
}

/**
 * One place that turns a Vault answer into a typed crypto error. Vault has no
 * error codes, so a 400 is told apart by its documented texts; anything not
 * recognised is an unavailable KMS: retryable and fail-closed.
 */
export function vaultError(status: number, errors: string[]): CryptoError {
  const cause = new VaultResponseError(status, errors);
  const text = errors.join('\n');
  if (status === 403 || status === 401) return new KmsAccessDeniedError({ cause });
  if (status === 503 && /sealed/i.test(text)) return new KmsUnavailableError(VaultTransitMessage.sealed, { cause });
  if (status === 429) return new KmsUnavailableError(CryptoErrorMessage.kmsThrottled, { cause });
  if (status === 400) {
    if (/encryption key not found/i.test(text)) return new KeyNotFoundError(CryptoErrorMessage.keyNotFound, { cause });
    if (/too old/i.test(text)) return new CiphertextRejectedError(VaultTransitMessage.retiredVersion, { cause });
    if (/message authentication failed|invalid ciphertext|version is too new|unable to decrypt/i.test(text)) {
      return new CiphertextRejectedError(CryptoErrorMessage.ciphertextRejected, { cause });
    }
    return new KeyNotFoundError(CryptoErrorMessage.keyNotUsable, { cause });
  }
  if (status === 404) return new KeyNotFoundError(CryptoErrorMessage.keyNotFound, { cause });
  return new KmsUnavailableError(CryptoErrorMessage.kmsUnavailable, { cause });
}

/**
 * Decodes a base64 data key into an allocation of its own: `Buffer.from`
 * would place it in Node's shared 8 KiB pool, which a cached key would keep
 * alive for as long as it is cached (ADR 0029).
 */
function unpooledKey(b64: unknown): Buffer {
  if (typeof b64 !== 'string') return Buffer.alloc(0);
  const pooled = Buffer.from(b64, 'base64');
  const own = Buffer.alloc(pooled.length); // never pooled
  pooled.copy(own);
  pooled.fill(0);
  return own;
}

interface Http {
  agent: Agent;
  request: typeof request;
}
