import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import type { IntegrationType, Workspace } from '../api/v1alpha1/index.js';
import { createProviderRegistry, Envelope, InMemoryKeyRingStore } from '../crypto/index.js';
import { KeyedTokenBucket } from '../runtime/keyed-token-bucket.js';
import type { CryptoSetup } from '../crypto/setup.js';
import { destinationDigest } from '../integrations/destination.js';
import { createLogger } from '../runtime/logger.js';
import { packageRoot } from '../dev/binaries.js';
import type { AdmissionRequest, JsonPatchOp } from './admission.js';
import { scrubLastApplied, sealConnection } from './sealing.js';

const LAST_APPLIED = 'kubectl.kubernetes.io/last-applied-configuration';
const httpApi = parse(
  readFileSync(path.join(packageRoot(), 'config', 'types', 'http-api.yaml'), 'utf8'),
) as IntegrationType;
const settings = { baseURL: 'https://api.example.com', auth: 'bearer' };
const ws = {
  apiVersion: 'atoll.dev/v1alpha1',
  kind: 'Workspace',
  metadata: { name: 'acme', namespace: 'acme', uid: 'uid-1' },
  spec: {},
} as Workspace;

const envelope = new Envelope({ providers: createProviderRegistry({ local: { store: new InMemoryKeyRingStore() } }) });
const crypto: CryptoSetup = {
  envelope,
  fingerprintKey: Buffer.alloc(32, 1),
  defaultKey: { provider: 'local', keyId: 'local/default' },
  keyFor: () => ({ provider: 'local', keyId: 'local/default' }),
};
const deps = {
  crypto,
  log: createLogger({ level: 'silent' }),
  workspaceOf: async (ns: string) => (ns === 'acme' ? ws : undefined),
  integrationType: async (n: string) => (n === 'http-api' ? httpApi : undefined),
};
const binding = {
  namespace: 'acme',
  workspace: 'uid-1',
  connection: 'billing',
  field: 'token',
  destination: destinationDigest(httpApi, settings),
};

function request(
  op: 'CREATE' | 'UPDATE',
  credentials: Record<string, unknown>,
  extra: { oldCredentials?: Record<string, unknown>; annotations?: Record<string, string>; name?: string } = {},
): AdmissionRequest {
  const object = {
    metadata: { name: extra.name ?? 'billing', namespace: 'acme', annotations: extra.annotations },
    spec: { type: 'http-api', settings, credentials },
  };
  return {
    uid: 'u1',
    kind: { group: 'atoll.dev', version: 'v1alpha1', kind: 'ExternalConnection' },
    operation: op,
    namespace: 'acme',
    name: 'billing',
    object,
    oldObject: extra.oldCredentials
      ? { ...object, spec: { ...object.spec, credentials: extra.oldCredentials } }
      : undefined,
  };
}

const patchOf = (r: { patch?: string }) =>
  JSON.parse(Buffer.from(r.patch ?? 'W10=', 'base64').toString()) as JsonPatchOp[];

describe('sealing admission', () => {
  it('replaces a value with a sealed value that opens only under its binding', async () => {
    const res = await sealConnection(request('CREATE', { token: { value: 'tok-1234567890' } }), deps);
    expect(res.allowed).toBe(true);
    const op = patchOf(res).find((o) => o.path === '/spec/credentials/token')!;
    const sealed = (op.value as { sealed: string }).sealed;
    expect(await envelope.open(sealed, binding)).toBe('tok-1234567890');
    await expect(envelope.open(sealed, { ...binding, destination: 'elsewhere' })).rejects.toMatchObject({
      reason: 'CiphertextRejected',
    });
  });

  it('refuses a field the type does not declare before sealing anything (each field would cost a KMS data key)', async () => {
    let sealed = 0;
    const counting: CryptoSetup = {
      ...crypto,
      envelope: {
        seal: async (...a: Parameters<Envelope['seal']>) => {
          sealed++;
          return envelope.seal(...a);
        },
      } as unknown as Envelope,
    };
    const credentials = Object.fromEntries(
      Array.from({ length: 100 }, (_, i) => [`f${i}`, { value: 'tok-1234567890' }]),
    );
    const res = await sealConnection(request('CREATE', { token: { value: 'tok-1234567890' }, ...credentials }), {
      ...deps,
      crypto: counting,
    });
    expect(res).toMatchObject({
      allowed: false,
      status: {
        code: 422,
        message:
          'spec.credentials.f0: type "http-api" has no credential field "f0"; its fields are: token, username, password, clientCertificate, clientKey',
      },
    });
    expect(sealed).toBe(0);
  });

  it('never opens the stored ciphertext: the same value is sealed afresh, exactly as a wrong guess is', async () => {
    const stored = await envelope.seal('tok-1234567890', binding, crypto.defaultKey);
    const opened: string[] = [];
    const spy = { seal: envelope.seal.bind(envelope), open: async (sealed: string) => void opened.push(sealed) };
    const watching: CryptoSetup = { ...crypto, envelope: spy as unknown as Envelope };
    const answer = async (guess: string) => {
      const res = await sealConnection(
        request(
          'UPDATE',
          { token: { value: guess, sealed: stored } },
          { oldCredentials: { token: { sealed: stored } } },
        ),
        { ...deps, crypto: watching },
      );
      return {
        res,
        sealed: (patchOf(res).find((o) => o.path === '/spec/credentials/token')!.value as { sealed: string }).sealed,
      };
    };
    const right = await answer('tok-1234567890');
    const wrong = await answer('tok-0000000000');
    expect(opened).toEqual([]);
    for (const a of [right, wrong]) {
      expect(a.sealed).not.toBe(stored);
      expect(a.res).toMatchObject({ allowed: true, patchType: 'JSONPatch' });
    }
    expect(await envelope.open(right.sealed, binding)).toBe('tok-1234567890');
  });

  it('limits sealing per namespace with a 429 that names the limit and when to retry', async () => {
    let t = 0;
    const limiter = new KeyedTokenBucket({ ratePerSecond: 0.5, burst: 2 }, () => t);
    const limited = { ...deps, limiter };
    const create = () => sealConnection(request('CREATE', { token: { value: 'tok-1234567890' } }), limited);
    expect((await create()).allowed).toBe(true);
    expect((await create()).allowed).toBe(true);
    const refused = await create();
    expect(refused).toMatchObject({
      allowed: false,
      status: { code: 429, reason: 'TooManyRequests', details: { retryAfterSeconds: 2 } },
    });
    expect(refused.status?.message).toBe(
      'too many credential values sealed in namespace acme: the limit is 30 per minute with bursts of 2 (server-side dry runs included); nothing was stored, retry in 2s',
    );
    // Another namespace has its own budget.
    expect(limiter.take('other').allowed).toBe(true);
    t += 2000;
    expect((await create()).allowed).toBe(true);
  });

  it('refuses ambiguous or bad input with messages that never echo the value', async () => {
    const other = await envelope.seal('x-1234567890', binding, crypto.defaultKey);
    const both = await sealConnection(request('CREATE', { token: { value: 'tok-1234567890', sealed: other } }), deps);
    expect(both).toMatchObject({
      allowed: false,
      status: { message: 'spec.credentials.token: set exactly one of value, sealed or secretKeyRef' },
    });
    const ctl = await sealConnection(request('CREATE', { token: { value: 'tok-123\n' } }), deps);
    expect(ctl.status?.message).toContain('control characters');
    expect(ctl.status?.message).not.toContain('tok-123');
    const gen = await sealConnection(request('CREATE', { token: { value: 'tok-1234567890' } }, { name: '' }), deps);
    expect(gen.status?.message).toContain('metadata.name is required');
    const noWs = await sealConnection(
      { ...request('CREATE', { token: { value: 'tok-1234567890' } }), namespace: 'nowhere' },
      deps,
    );
    expect(noWs.status?.message).toContain('has no Workspace');
  });

  it('scrubs the plaintext from kubectl last-applied-configuration', async () => {
    const annotation = JSON.stringify({ spec: { credentials: { token: { value: 'tok-1234567890' } } } });
    const res = await sealConnection(
      request('CREATE', { token: { value: 'tok-1234567890' } }, { annotations: { [LAST_APPLIED]: annotation } }),
      deps,
    );
    const op = patchOf(res).find((o) => o.path.includes('last-applied'))!;
    expect(op.op).toBe('replace');
    expect(String(op.value)).not.toContain('tok-1234567890');
    expect(String(op.value)).toContain('"sealed":"atoll:v1:');
    expect(scrubLastApplied('{not json "value": "tok"', {})).toBeUndefined();
  });
});
