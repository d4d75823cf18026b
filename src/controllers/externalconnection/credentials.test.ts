import { describe, expect, it } from 'vitest';
import { managedCopy } from '../../crypto/binding.js';
import { createProviderRegistry, Envelope, fingerprint, InMemoryKeyRingStore } from '../../crypto/index.js';
import type { CryptoSetup } from '../../crypto/setup.js';
import type { Secret } from '../context.js';
import {
  CredentialProblem,
  resolveField,
  type FieldContext,
  type PreviousField,
  type ResolvedField,
} from './credentials.js';
import { DekCache } from '../../crypto/dek-cache.js';
import { VerifiedCopies } from './verified-copies.js';

const envelope = new Envelope({ providers: createProviderRegistry({ local: { store: new InMemoryKeyRingStore() } }) });
const KEY = { provider: 'local', keyId: 'local/default' };
const NEW_KEY = { provider: 'local', keyId: 'local/next' };
const crypto: CryptoSetup = { envelope, fingerprintKey: Buffer.alloc(32, 3), defaultKey: KEY, keyFor: () => KEY };
const place = { namespace: 'acme', workspace: 'uid-ws', connection: 'billing' };

function context(over: Partial<FieldContext> = {}): FieldContext {
  return {
    crypto,
    ...place,
    uid: 'uid-conn',
    destination: 'dest-A',
    legacyDestination: 'legacy-A',
    settings: 'settings-A',
    typeName: 'http-api',
    typeGeneration: 1,
    key: KEY,
    readSource: async () => undefined,
    writePins: async () => undefined,
    now: new Date('2026-01-01T00:00:00Z'),
    ...over,
  };
}
const spec = (value: string, destination = 'dest-A') =>
  envelope.seal(value, { ...place, field: 'token', destination }, KEY);
const previousOf = (r: ResolvedField, statusVersion?: number): PreviousField => ({
  state: r.state,
  ciphertext: r.ciphertext,
  ...(statusVersion !== undefined ? { statusVersion } : {}),
});
async function problem(p: Promise<unknown>): Promise<CredentialProblem> {
  const err = await p.catch((e: unknown) => e);
  expect(err).toBeInstanceOf(CredentialProblem);
  return err as CredentialProblem;
}

describe('resolveField', () => {
  it('makes a managed copy bound to the connection uid and version, never the spec value itself', async () => {
    const sealed = await spec('tok-aaaaaaaaaaaa');
    const r = await resolveField(context(), 'token', { sealed }, {});
    expect(r.ciphertext).not.toBe(sealed);
    expect(r.state).toMatchObject({ version: 1, format: 2, destination: 'dest-A' });
    expect(
      await envelope.open(r.ciphertext, {
        ...place,
        field: 'token',
        destination: 'dest-A',
        copy: managedCopy('uid-conn', 1),
      }),
    ).toBe('tok-aaaaaaaaaaaa');
    await expect(
      envelope.open(r.ciphertext, { ...place, field: 'token', destination: 'dest-A' }),
    ).rejects.toMatchObject({ reason: 'CiphertextRejected' });
  });

  it('keeps an unchanged copy without opening spec again, and repairs a copy replaced by the spec value', async () => {
    const sealed = await spec('tok-bbbbbbbbbbbb');
    const first = await resolveField(context(), 'token', { sealed }, {});
    const again = await resolveField(context(), 'token', { sealed }, previousOf(first));
    expect(again.ciphertext).toBe(first.ciphertext);
    expect(again.rotated).toBe(false);
    const repaired = await resolveField(context(), 'token', { sealed }, { state: first.state, ciphertext: sealed });
    expect(repaired.ciphertext).not.toBe(sealed);
    expect(repaired.state.version).toBe(1);
  });

  it('never lets a rolled-back annotation lower the version', async () => {
    const v1 = await resolveField(context(), 'token', { sealed: await spec('tok-old-111111111') }, {});
    const v2 = await resolveField(context(), 'token', { sealed: await spec('tok-new-222222222') }, previousOf(v1));
    expect(v2.state.version).toBe(2);
    const healed = await resolveField(
      context(),
      'token',
      { sealed: await spec('tok-new-222222222') },
      previousOf(v1, 2),
    );
    expect(healed.state.version).toBe(3);
    expect(healed.state.hint).toBe(v2.state.hint);
  });

  it('stops at DestinationChanged when the destination moved, and re-seals once a rebind confirms', async () => {
    const sealed = await spec('tok-cccccccccccc');
    const first = await resolveField(context(), 'token', { sealed }, {});
    const moved = context({ destination: 'dest-B', typeGeneration: 2 });
    const p = await problem(resolveField(moved, 'token', { sealed }, previousOf(first)));
    expect(p.reason).toBe('DestinationChanged');
    expect(p.keep).toBe(true);
    expect(p.message).toContain('IntegrationType http-api changed (generation 1 → 2)');
    expect(p.message).toContain('atoll rebind billing -n acme');
    const rebound = await resolveField(
      context({ destination: 'dest-B', typeGeneration: 2, rebind: 't1' }),
      'token',
      { sealed },
      previousOf(first),
    );
    expect(rebound).toMatchObject({ rebound: true, rotated: false });
    expect(rebound.state).toMatchObject({ version: 1, destination: 'dest-B', rebind: 't1' });
    expect(await envelope.open(rebound.state.sealed!, { ...place, field: 'token', destination: 'dest-B' })).toBe(
      'tok-cccccccccccc',
    );
    // A confirmation is spent: the same annotation value does not confirm a later change.
    const p2 = await problem(
      resolveField(context({ destination: 'dest-C', rebind: 't1' }), 'token', { sealed }, previousOf(rebound)),
    );
    expect(p2.reason).toBe('DestinationChanged');
  });

  it("a rebind does not confirm a move made by the connection's own settings (only a type change)", async () => {
    const sealed = await spec('tok-gggggggggggg');
    const first = await resolveField(context(), 'token', { sealed }, {});
    // The editor pointed the connection elsewhere (settings changed) and asks for a rebind.
    const p = await problem(
      resolveField(
        context({ destination: 'dest-evil', settings: 'settings-evil', rebind: 't9' }),
        'token',
        { sealed },
        previousOf(first),
      ),
    );
    expect(p).toMatchObject({ reason: 'DestinationChanged', keep: true });
    expect(p.message).toContain(
      'A rebind confirms only a change of IntegrationType http-api: supply the credential again',
    );
    // Also when the managed copy is gone (a placeholder value in between removed it) and the original value is back.
    const p2 = await problem(
      resolveField(
        context({ destination: 'dest-evil', settings: 'settings-evil', rebind: 't9' }),
        'token',
        { sealed },
        { state: first.state },
      ),
    );
    expect(p2.reason).toBe('DestinationChanged');
  });

  it('opens values sealed before binding format 2 and publishes a current one, without a new version', async () => {
    const legacy = await envelope.seal(
      'tok-legacy-0000001',
      { ...place, field: 'token', destination: 'legacy-A', format: 1 },
      KEY,
    );
    const legacyState = {
      fingerprint: fingerprint(
        crypto.fingerprintKey,
        { ...place, field: 'token', destination: 'legacy-A', format: 1 },
        'tok-legacy-0000001',
      ),
      version: 4,
      updatedAt: 'x',
      keyId: KEY.keyId,
      hint: '',
    };
    const r = await resolveField(context(), 'token', { sealed: legacy }, { state: legacyState, ciphertext: legacy });
    expect(r.state.version).toBe(4);
    expect(r.rotated).toBe(false);
    expect(await envelope.open(r.state.sealed!, { ...place, field: 'token', destination: 'dest-A' })).toBe(
      'tok-legacy-0000001',
    );
  });

  it('after a key change re-wraps the copy from the copy and publishes the value for Git', async () => {
    const sealed = await spec('tok-dddddddddddd');
    const first = await resolveField(context(), 'token', { sealed }, {});
    const rotated = await resolveField(context({ key: NEW_KEY }), 'token', { sealed }, previousOf(first));
    expect(envelope.describe(rotated.ciphertext).keyId).toBe('local/next');
    expect(envelope.describe(rotated.state.sealed!).keyId).toBe('local/next');
    expect(rotated.state.version).toBe(1);
  });

  it('says clearly when a ciphertext itself is unusable (CiphertextRejected, never retried)', async () => {
    const good = await spec('tok-eeeeeeeeeeee');
    const parts = good.split(':');
    const cases: Array<[string, string]> = [
      ['atoll:v1:nope', 'is not an atoll ciphertext'],
      [[...parts.slice(0, 2), 'vault', ...parts.slice(3)].join(':'), 'names KMS provider "vault"'],
      [
        [...parts.slice(0, 3), Buffer.from('not-a-local-id').toString('base64url'), ...parts.slice(4)].join(':'),
        'names a key id that is not a local key id',
      ],
      [
        [...parts.slice(0, 3), Buffer.from('local/missing').toString('base64url'), ...parts.slice(4)].join(':'),
        'does not exist or is disabled',
      ],
      [
        await spec('tok-eeeeeeeeeeee', 'dest-other'),
        'was not sealed for this workspace, connection, field and destination',
      ],
    ];
    for (const [sealed, says] of cases) {
      const p = await problem(resolveField(context(), 'token', { sealed }, {}));
      expect(p.reason).toBe('CiphertextRejected');
      expect(p.keep).toBe(false);
      expect(p.message).toContain(says);
    }
  });

  it('a connection named after an Object.prototype member (constructor) has no pin until one is written', async () => {
    const secret: Secret = {
      metadata: { name: 'src', annotations: { 'atoll.dev/allowed-connections': 'constructor' } },
      data: { token: Buffer.from('tok-hhhhhhhhhhhh').toString('base64') },
    };
    const pins: Array<Record<string, string>> = [];
    const ctx = context({
      connection: 'constructor',
      readSource: async () => secret,
      writePins: async (_n, p) => void pins.push(p),
    });
    const r = await resolveField(ctx, 'token', { secretKeyRef: { name: 'src', key: 'token' } }, {});
    expect(r.state.destination).toBe('dest-A');
    expect(JSON.parse(JSON.stringify(pins.at(-1)))).toEqual({ constructor: 'dest-A' });
  });

  it('pins an offered Secret to its first destination; only an explicit approval moves it', async () => {
    let secret: Secret = {
      metadata: { name: 'src', annotations: { 'atoll.dev/allowed-connections': 'billing' } },
      data: { token: Buffer.from('tok-ffffffffffff').toString('base64') },
    };
    const pins: Array<Record<string, string>> = [];
    const ctx = (destination: string) =>
      context({ destination, readSource: async () => secret, writePins: async (_n, p) => void pins.push(p) });
    const first = await resolveField(ctx('dest-A'), 'token', { secretKeyRef: { name: 'src', key: 'token' } }, {});
    expect(pins.at(-1)).toEqual({ billing: 'dest-A' });
    secret = {
      ...secret,
      metadata: {
        ...secret.metadata,
        annotations: { ...secret.metadata!.annotations, 'atoll.dev/offer-pins': JSON.stringify({ billing: 'dest-A' }) },
      },
    };
    const p = await problem(
      resolveField(
        ctx('dest-B-123456789'),
        'token',
        { secretKeyRef: { name: 'src', key: 'token' } },
        previousOf(first),
      ),
    );
    expect(p).toMatchObject({ reason: 'DestinationChanged', keep: false });
    expect(p.message).toContain('"billing@dest-B-12345"');
    // A new connection object (deleted and re-created) has no managed state, but the pin on the Secret still holds.
    expect(
      (
        await problem(
          resolveField(ctx('dest-B-123456789'), 'token', { secretKeyRef: { name: 'src', key: 'token' } }, {}),
        )
      ).reason,
    ).toBe('DestinationChanged');
    secret = {
      ...secret,
      metadata: {
        ...secret.metadata,
        annotations: { ...secret.metadata!.annotations, 'atoll.dev/allowed-connections': 'billing@dest-B-12345' },
      },
    };
    const approved = await resolveField(
      ctx('dest-B-123456789'),
      'token',
      { secretKeyRef: { name: 'src', key: 'token' } },
      previousOf(first),
    );
    expect(approved.state.destination).toBe('dest-B-123456789');
    expect(pins.at(-1)).toEqual({ billing: 'dest-B-123456789' });
  });

  describe('verified managed copies (issue #12.3)', () => {
    // A data-key cache that forgets at once: every open would be a KMS call.
    const cache = new DekCache({ maxAgeMs: 1 });
    const uncached = new Envelope({
      providers: createProviderRegistry({ local: { store: new InMemoryKeyRingStore() } }),
      cache,
    });
    const kmsCalls = () => cache.stats().kmsCalls.decryptDataKey + cache.stats().kmsCalls.generateDataKey;
    const ctxOf = (verified: VerifiedCopies, over: Partial<FieldContext> = {}) =>
      context({ crypto: { ...crypto, envelope: uncached }, verified, ...over });
    const sealedFor = (value: string) => uncached.seal(value, { ...place, field: 'token', destination: 'dest-A' }, KEY);

    it('opens an unchanged copy once per process: later reconciles make no KMS call until a probe reveals it', async () => {
      const verified = new VerifiedCopies();
      const sealed = await sealedFor('tok-steady-000001');
      const first = await resolveField(ctxOf(verified), 'token', { sealed }, {});
      const opened = await resolveField(ctxOf(verified), 'token', { sealed }, previousOf(first));
      expect(opened.ciphertext).toBe(first.ciphertext);
      const before = kmsCalls();
      for (let i = 0; i < 5; i++) {
        const again = await resolveField(ctxOf(verified), 'token', { sealed }, previousOf(opened));
        expect(again).toMatchObject({ ciphertext: first.ciphertext, rotated: false, state: opened.state });
      }
      expect(kmsCalls() - before).toBe(0);
      // The credential is still there for a probe: opened on demand.
      const last = await resolveField(ctxOf(verified), 'token', { sealed }, previousOf(opened));
      expect(await last.reveal()).toBe('tok-steady-000001');
      expect(kmsCalls() - before).toBe(1);
    });

    it('still opens (and repairs) a copy whose bytes changed, and a copy of another connection object', async () => {
      const verified = new VerifiedCopies();
      const sealed = await sealedFor('tok-steady-000002');
      const first = await resolveField(ctxOf(verified), 'token', { sealed }, {});
      await resolveField(ctxOf(verified), 'token', { sealed }, previousOf(first));
      // A rolled-back/foreign copy under the same state: not the verified bytes, so it is opened, fails, and is re-made.
      const repaired = await resolveField(
        ctxOf(verified),
        'token',
        { sealed },
        { state: first.state, ciphertext: sealed },
      );
      expect(repaired.ciphertext).not.toBe(sealed);
      // The same bytes for a connection object with another uid are not taken as verified.
      const before = kmsCalls();
      const other = await resolveField(ctxOf(verified, { uid: 'uid-other' }), 'token', { sealed }, previousOf(first));
      expect(kmsCalls() - before).toBeGreaterThan(0);
      expect(other.ciphertext).not.toBe(first.ciphertext);
    });
  });
});
