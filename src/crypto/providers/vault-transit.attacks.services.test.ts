import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { inspect } from 'node:util';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadOperatorConfig } from '../../config/operator-config.js';
import { createTransitKey, startVault, tokenWithPolicy, transitPolicy, type VaultServer } from '../../dev/vault.js';
import { checkSealedValues } from '../../webhooks/connection-guards.js';
import type { AdmissionRequest } from '../../webhooks/admission.js';
import { encryptionContext, managedCopy, type Binding } from '../binding.js';
import { DekCache } from '../dek-cache.js';
import { Envelope } from '../envelope.js';
import { formatEnvelope, parseEnvelope } from '../envelope-format.js';
import { CiphertextRejectedError, KeyNotFoundError, KmsAccessDeniedError, KmsUnavailableError } from '../errors.js';
import { VaultTransitMessage, VaultTransitProvider } from './vault-transit.js';

/**
 * Red team (issue 15): what a tenant who writes `spec.credentials.*.sealed`
 * (and so picks the envelope's key id), or a network attacker between the
 * operator and Vault, can make the vault-transit provider do. Each case
 * asserts the attack fails and what Vault itself received (its audit log).
 */
const binding: Binding = {
  namespace: 'acme',
  workspace: 'acme-7f3c',
  connection: 'pg',
  field: 'password',
  destination: 'dest-1',
};
const context = encryptionContext(binding);

let vault: VaultServer;
let keyId: string;
let tokenFile: string;
let auditDir: string;
const providers: VaultTransitProvider[] = [];

function provider(): VaultTransitProvider {
  const p = new VaultTransitProvider({
    address: vault.address,
    caPem: vault.caPem!,
    auth: { method: 'token', tokenFile },
    requestTimeoutMs: 2_000,
  });
  providers.push(p);
  return p;
}

/** Requests Vault received on a path, from its file audit device (paths are logged in clear, tokens HMAC'd). */
function auditedRequests(apiPath: string): number {
  return readFileSync(path.join(auditDir, 'audit.log'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { type: string; request?: { path?: string } })
    .filter((e) => e.type === 'request' && e.request?.path === apiPath).length;
}

beforeAll(async () => {
  vault = await startVault();
  auditDir = mkdtempSync(path.join(tmpdir(), 'atoll-vault-audit-'));
  await vault.api('PUT', 'sys/audit/file', { type: 'file', options: { file_path: path.join(auditDir, 'audit.log') } });
  keyId = await createTransitKey(vault, 'atoll');
  await createTransitKey(vault, 'other');
  ({ file: tokenFile } = await tokenWithPolicy(vault, 'atoll-controller', transitPolicy(keyId)));
});

afterAll(async () => {
  for (const p of providers) await p.close();
  await vault?.destroy();
  if (auditDir) rmSync(auditDir, { recursive: true, force: true });
});

describe('attack: a tenant-chosen key id in a sealed value', () => {
  it('a key outside the operator policy is denied without a login per attempt (BROKE: every 403 forced a new login)', async () => {
    const p = provider();
    const { wrapped } = await p.generateDataKey(keyId, context);
    const before = auditedRequests('transit/decrypt/other');
    for (let i = 0; i < 5; i++) {
      await expect(p.decryptDataKey('transit/keys/other', wrapped, context)).rejects.toBeInstanceOf(
        KmsAccessDeniedError,
      );
    }
    // The token file did not change, so a denial is final: one request per attempt, not two.
    expect(auditedRequests('transit/decrypt/other') - before).toBe(5);
    // The operator's own key still works with the token it holds.
    expect((await p.decryptDataKey(keyId, wrapped, context)).length).toBe(32);
  });

  it('key ids naming another Vault path never reach Vault (held)', async () => {
    const p = provider();
    const { wrapped } = await p.generateDataKey(keyId, context);
    for (const id of [
      'transit/keys/..',
      '../transit/keys/atoll',
      'transit/./keys/atoll',
      'transit/keys/atoll/../other',
      'transit/keys/%2e%2e',
      'transit/keys/atoll?x=1',
      'transit/keys/atoll#',
      '/transit/keys/atoll',
    ]) {
      const err = await p.decryptDataKey(id, wrapped, context).catch((e: unknown) => e);
      expect(err, id).toBeInstanceOf(KeyNotFoundError);
      expect((err as Error).message).toBe(VaultTransitMessage.invalidKeyId);
    }
    expect(auditedRequests('sys/decrypt/atoll') + auditedRequests('transit/decrypt/..')).toBe(0);
  });

  it('admission refuses a vault-transit key id of the wrong shape, naming the field (BROKE: any text was admitted)', async () => {
    const envelope = new Envelope({ providers: new Map([['vault-transit', provider()]]), cache: new DekCache() });
    const sealed = await envelope.seal('x', binding, { provider: 'vault-transit', keyId });
    const withKeyId = (id: string) => formatEnvelope({ ...parseEnvelope(sealed), keyId: id });
    const admit = (value: string) =>
      checkSealedValues(
        {
          operation: 'CREATE',
          object: { spec: { credentials: { token: { sealed: value } } } },
        } as unknown as AdmissionRequest,
        ['local', 'vault-transit'],
      );
    expect(admit(sealed)).toBeUndefined();
    expect(admit(withKeyId('other-transit/keys/atoll'))).toBeUndefined();
    for (const id of [
      '../../sys/keys/x',
      'transit/keys/..',
      'transit/keys/a\nInjected: condition text',
      'arn:aws:kms:us-east-1:123456789012:key/1',
    ]) {
      expect(admit(withKeyId(id)), id).toBe(
        'spec.credentials.token.sealed names a key id that is not a vault-transit key id; seal the value in this cluster with atoll seal',
      );
    }
  });

  it('a wrapped key replayed into another copy (spec -> managed, or an older managed version) is refused by Vault (held)', async () => {
    const p = provider();
    const spec = { ...binding, copy: 'spec' };
    const managedV1 = { ...binding, copy: managedCopy('uid-1', 1) };
    const { wrapped } = await p.generateDataKey(keyId, encryptionContext(managedV1));
    for (const other of [
      spec,
      { ...binding, copy: managedCopy('uid-1', 2) },
      { ...binding, copy: managedCopy('uid-2', 1) },
      { ...binding, format: 1 as const },
    ]) {
      await expect(p.decryptDataKey(keyId, wrapped, encryptionContext(other))).rejects.toBeInstanceOf(
        CiphertextRejectedError,
      );
    }
  });
});

describe('attack: a network attacker between the operator and Vault', () => {
  const base = {
    ATOLL_KMS_PROVIDER: 'vault-transit',
    ATOLL_KMS_KEY_ID: 'transit/keys/atoll',
    ATOLL_VAULT_ROLE: 'atoll-controller',
  };

  it('a plain http:// Vault address off loopback is refused at startup, naming the variable (BROKE: accepted silently)', () => {
    for (const address of ['http://vault.vault.svc:8200', 'http://10.0.0.7:8200', 'HTTP://vault:8200']) {
      expect(() => loadOperatorConfig({ ...base, ATOLL_VAULT_ADDR: address }), address).toThrow(
        /ATOLL_VAULT_ADDR must be an https:\/\/ URL/,
      );
    }
    for (const address of [
      'https://vault.vault.svc:8200',
      'http://127.0.0.1:8200',
      'http://localhost:8200',
      'http://[::1]:8200',
    ]) {
      expect(loadOperatorConfig({ ...base, ATOLL_VAULT_ADDR: address }).kms.vault?.address, address).toBe(address);
    }
  });

  /** A loopback HTTP server standing in for what sits between the operator and Vault; records what it received. */
  async function listen(handler: http.RequestListener): Promise<{
    url: string;
    received: { url: string; headers: http.IncomingHttpHeaders; body: string }[];
    close(): Promise<void>;
  }> {
    const received: { url: string; headers: http.IncomingHttpHeaders; body: string }[] = [];
    const server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        received.push({ url: req.url ?? '', headers: req.headers, body });
        handler(req, res);
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return {
      url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      received,
      close: () => new Promise((r) => server.close(() => r())),
    };
  }

  it('a redirect (a standby or a hijacked proxy) is not followed: the token goes nowhere else (held)', async () => {
    const elsewhere = await listen((_req, res) => res.end('{}'));
    const redirector = await listen((req, res) => {
      res.writeHead(307, { location: `${elsewhere.url}${req.url}` });
      res.end();
    });
    const token = `hvs.${'R'.repeat(24)}`;
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'atoll-vault-token-')), 'token');
    writeFileSync(file, token);
    const p = new VaultTransitProvider({
      address: redirector.url,
      auth: { method: 'token', tokenFile: file },
      requestTimeoutMs: 2_000,
    });
    providers.push(p);
    try {
      const err = await p.generateDataKey('transit/keys/atoll', context).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(KmsUnavailableError);
      expect(redirector.received).toHaveLength(1);
      expect(elsewhere.received).toHaveLength(0);
      expect(inspect(err, { depth: 10 })).not.toContain(token);
    } finally {
      await redirector.close();
      await elsewhere.close();
    }
  });

  it('a proxy echoing the Vault token or the ServiceAccount JWT in its error body does not put it in our errors (BROKE: copied into the message)', async () => {
    const echo = await listen((req, res) => {
      res.writeHead(400, { 'content-type': 'application/json' });
      const sent = req.headers['x-vault-token'] ?? '';
      res.end(
        JSON.stringify({
          errors: [`bad request header x-vault-token=${String(sent)}`, `body was ${echo.received.at(-1)?.body ?? ''}`],
        }),
      );
    });
    const dir = mkdtempSync(path.join(tmpdir(), 'atoll-vault-token-'));
    const token = `hvs.${'T'.repeat(24)}`;
    const jwt = `eyJhbGciOiJSUzI1NiJ9.${'J'.repeat(40)}.${'S'.repeat(40)}`;
    writeFileSync(path.join(dir, 'token'), token);
    writeFileSync(path.join(dir, 'jwt'), jwt);
    const byToken = new VaultTransitProvider({
      address: echo.url,
      auth: { method: 'token', tokenFile: path.join(dir, 'token') },
      requestTimeoutMs: 2_000,
    });
    const byJwt = new VaultTransitProvider({
      address: echo.url,
      auth: { method: 'kubernetes', role: 'atoll-controller', jwtFile: path.join(dir, 'jwt') },
      requestTimeoutMs: 2_000,
    });
    providers.push(byToken, byJwt);
    try {
      const errs = [
        await byToken.generateDataKey('transit/keys/atoll', context).catch((e: unknown) => e),
        await byJwt.generateDataKey('transit/keys/atoll', context).catch((e: unknown) => e),
      ];
      // The echo really carried both secrets back.
      expect(echo.received.some((r) => r.headers['x-vault-token'] === token)).toBe(true);
      expect(echo.received.some((r) => r.body.includes(jwt))).toBe(true);
      for (const err of errs) {
        expect(err).toBeInstanceOf(Error);
        for (const text of [inspect(err, { depth: 10 }), JSON.stringify(err), String(err)]) {
          expect(text).not.toContain(token);
          expect(text).not.toContain(jwt);
        }
      }
    } finally {
      await echo.close();
    }
  });
});
