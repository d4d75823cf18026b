import { createHash } from 'node:crypto';
import type { CredentialSource } from '../../api/v1alpha1/index.js';
import { Reason } from '../../api/v1alpha1/index.js';
import { managedCopy, SPEC_COPY, type Binding } from '../../crypto/binding.js';
import { CryptoError, CryptoErrorMessage, CryptoErrorReason } from '../../crypto/errors.js';
import { fingerprint, placeFingerprint, sameFingerprint } from '../../crypto/fingerprint.js';
import { credentialHint } from '../../crypto/hint.js';
import type { KeyRef } from '../../crypto/kms-provider.js';
import type { CryptoSetup } from '../../crypto/setup.js';
import type { Secret } from '../context.js';
import type { VerifiedCopies } from './verified-copies.js';
import { OFFER_PINS_ANNOTATION } from '../../api/v1alpha1/well-known.js';
import { REBIND_CANNOT_CONFIRM, type FieldState } from '../../domain/credentials-state.js';

/**
 * A Secret made by someone else (a person, External Secrets Operator) is used
 * only if its owner opted in by naming the connection: tenants who may edit
 * connections must not be able to read arbitrary Secrets of their namespace
 * through atoll (tenant roles never read Secrets). An entry `<connection>@<digest
 * prefix>` approves one destination explicitly (re-approval after a move).
 */
export const ALLOWED_CONNECTIONS_ANNOTATION = 'atoll.dev/allowed-connections';

const NEVER_SOURCES = new Set(['kubernetes.io/service-account-token', 'atoll.dev/sealed']);
/** Characters of a destination digest an owner writes to approve it. */
export const APPROVAL_PREFIX_CHARS = 12;

/** How a Secret offers itself to a connection: not at all, to whatever destination is pinned, or to one destination. */
export type Offer = { kind: 'none' } | { kind: 'open' } | { kind: 'destination'; prefix: string };

export function offerTo(secret: Secret, connection: string): Offer {
  if (NEVER_SOURCES.has(secret.type ?? '')) return { kind: 'none' };
  const list = secret.metadata?.annotations?.[ALLOWED_CONNECTIONS_ANNOTATION];
  if (list === undefined) return { kind: 'none' };
  let offer: Offer = { kind: 'none' };
  for (const entry of list.split(',').map((x) => x.trim())) {
    const [name, prefix] = entry.split('@', 2) as [string, string | undefined];
    if (name !== '*' && name !== connection) continue;
    if (prefix !== undefined && prefix.length > 0) return { kind: 'destination', prefix };
    offer = { kind: 'open' };
  }
  return offer;
}

/** The destination each connection was first allowed to send this Secret to (written by the operator). */
export function offerPins(secret: Secret): Record<string, string> {
  try {
    const pins = JSON.parse(secret.metadata?.annotations?.[OFFER_PINS_ANNOTATION] ?? '{}') as unknown;
    // Own string entries only, without a prototype: a connection named `constructor` has no pin until one is written.
    const entries =
      pins && typeof pins === 'object' && !Array.isArray(pins)
        ? Object.entries(pins).filter(([, v]) => typeof v === 'string')
        : [];
    return Object.assign(Object.create(null) as Record<string, string>, Object.fromEntries(entries));
  } catch {
    return Object.create(null) as Record<string, string>;
  }
}

export type SourceReader = (name: string) => Promise<Secret | undefined>;
/** Records on a source Secret that `connection` may send it to `destination` (a merge patch by the operator). */
export type PinWriter = (secretName: string, pins: Record<string, string>) => Promise<void>;

export interface ResolvedField {
  field: string;
  /**
   * The credential, opened only when something needs it (a probe): a managed
   * copy already verified by this process is not opened again (no KMS call).
   */
  reveal: () => Promise<string>;
  /** The managed copy (binding format 2, copy managed/<uid>/<version>). */
  ciphertext: string;
  state: FieldState;
  rotated: boolean;
  /** The destination moved and a rebind confirmed it. */
  rebound: boolean;
}

/**
 * A credential problem the user must fix; KMS outages are thrown instead, to
 * be retried. `keep` problems leave the field's managed copy in place (a
 * destination change waiting for confirmation: nothing is deleted, nothing
 * is served); the others remove it, so the gateway and agent stop serving it.
 */
export class CredentialProblem extends Error {
  constructor(
    readonly reason: string,
    message: string,
    readonly keep = false,
  ) {
    super(message);
  }
}

/** Everything about a connection that every field's resolution needs. */
export interface FieldContext {
  crypto: CryptoSetup;
  namespace: string;
  workspace: string;
  connection: string;
  /** The connection object's uid: managed copies of one incarnation never open in another. */
  uid: string;
  /** Binding format 2 digest of the current type and settings. */
  destination: string;
  /** Binding format 1 digest, to open values sealed before format 2. */
  legacyDestination: string;
  /** Digest of the connection's settings as written (see settingsDigest). */
  settings: string;
  typeName: string;
  typeGeneration?: number;
  key: KeyRef;
  /** Current value of `atoll.dev/rebind-requested`, if any. */
  rebind?: string;
  readSource: SourceReader;
  writePins: PinWriter;
  now: Date;
  /** Managed copies this process has opened and checked: unchanged bytes are not opened again. */
  verified?: VerifiedCopies;
}

export interface PreviousField {
  state?: FieldState;
  /** The managed Secret's ciphertext of this field. */
  ciphertext?: string;
  /** `status.credentials.<f>.version`: the operator wrote it, no tenant can lower it. */
  statusVersion?: number;
}

/**
 * Whether a rebind request confirms the move away from the pinned destination.
 * `atoll rebind` exists for moves made by an IntegrationType edit (spec 3.3);
 * a move made by the connection's own settings must come with the credential
 * supplied again, or an editor who never knew it could send it anywhere
 * (admission alone can be walked around: a placeholder `sealed` with the new
 * settings, then the original value back). States pinned before the settings
 * digest was recorded cannot tell and accept the confirmation.
 */
function rebindConfirms(ctx: FieldContext, st: FieldState | undefined): boolean {
  if (ctx.rebind === undefined || ctx.rebind === st?.rebind) return false;
  return st?.settings === undefined || st.settings === ctx.settings;
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('base64url');
}

/**
 * Turns one credential source into the managed copy the managed Secret
 * holds. An unchanged source whose managed copy opens to the recorded
 * fingerprint keeps its copy and version (the spec's value is not opened,
 * so a retired key is never needed); a changed credential is a rotation
 * (version + 1); a key change re-wraps the copy without a new version.
 */
export async function resolveField(
  ctx: FieldContext,
  field: string,
  source: CredentialSource,
  previous: PreviousField,
): Promise<ResolvedField> {
  if (source.sealed !== undefined) return fromSealed(ctx, field, source.sealed, previous);
  if (source.secretKeyRef) return fromSecret(ctx, field, source.secretKeyRef, previous);
  throw new CredentialProblem(
    Reason.CredentialsMissing,
    `spec.credentials.${field} has no sealed value or secretKeyRef`,
  );
}

function specBinding(ctx: FieldContext, field: string, destination: string): Binding {
  return {
    namespace: ctx.namespace,
    workspace: ctx.workspace,
    connection: ctx.connection,
    field,
    destination,
    copy: SPEC_COPY,
  };
}

function managedBinding(ctx: FieldContext, field: string, destination: string, version: number): Binding {
  return {
    namespace: ctx.namespace,
    workspace: ctx.workspace,
    connection: ctx.connection,
    field,
    destination,
    copy: managedCopy(ctx.uid, version),
  };
}

function pinnedState(previous: PreviousField): FieldState | undefined {
  return previous.state?.format === 2 ? previous.state : undefined;
}

async function fromSealed(
  ctx: FieldContext,
  field: string,
  sealed: string,
  previous: PreviousField,
): Promise<ResolvedField> {
  const st = pinnedState(previous);
  const sourceId = `sealed:${sha256(sealed)}`;
  const confirmed = rebindConfirms(ctx, st);
  if (st?.source === sourceId && st.destination && previous.ciphertext) {
    if (st.destination !== ctx.destination && !confirmed) throw destinationChanged(ctx, field, st);
    const copy = await verifyCopy(ctx, field, previous.ciphertext, st);
    if (copy !== undefined) {
      return finish(ctx, field, {
        plaintext: copy,
        sourceId,
        previous,
        rebound: st.destination !== ctx.destination,
        verifiedCopy: true,
        spec: { sealed, current: st.sealed === undefined },
      });
    }
    // The managed copy was altered or rolled back: repair it from the source below.
  }
  const opened = await openSpecValue(ctx, field, sealed, st, confirmed);
  // Admission seals every value afresh (ADR 0012), so a re-applied value arrives as a new spec
  // ciphertext: when it opens to the credential the verified managed copy holds (same keyed
  // fingerprint), keep that copy.
  const sameAsCopy =
    st?.destination === ctx.destination &&
    !opened.rebound &&
    previous.ciphertext !== undefined &&
    sameFingerprint(
      st.fingerprint,
      placeFingerprint(ctx.crypto.fingerprintKey, placeOf(ctx, field), opened.plaintext),
    ) &&
    (await verifyCopy(ctx, field, previous.ciphertext, st)) !== undefined;
  return finish(ctx, field, {
    plaintext: opened.plaintext,
    sourceId,
    previous,
    rebound: opened.rebound,
    verifiedCopy: sameAsCopy,
    spec: { sealed, current: opened.current },
  });
}

function placeOf(ctx: FieldContext, field: string) {
  return { namespace: ctx.namespace, workspace: ctx.workspace, connection: ctx.connection, field };
}

/** A credential known only by its verified managed copy: fingerprint and hint as recorded, opened on demand. */
interface KnownCopy {
  fingerprint: string;
  hint: string;
  /** Set when this reconcile opened the copy anyway (first sight since the process started). */
  plaintext?: string;
  reveal: () => Promise<string>;
}

/**
 * Whether the managed copy opens to the recorded credential (undefined when
 * not). Exactly these bytes, already checked by this process under the same
 * binding and state, are not opened again: a steady-state reconcile makes no
 * KMS call however short the data-key cache. Any change to the Secret's data
 * or state annotation changes the bytes compared, so a rolled-back or altered
 * copy is still opened, found out and repaired.
 */
async function verifyCopy(
  ctx: FieldContext,
  field: string,
  ciphertext: string,
  st: FieldState,
): Promise<KnownCopy | undefined> {
  const reveal = async () => {
    const plaintext = await openManagedCopy(ctx, field, ciphertext, st);
    if (plaintext === undefined)
      throw new Error(
        `the managed copy of ${field} no longer opens to the recorded credential; it is re-made on the next reconcile`,
      );
    return plaintext;
  };
  const known = { fingerprint: st.fingerprint, hint: st.hint, reveal };
  if (ctx.verified?.has(ctx, field, ciphertext, st)) return known;
  const plaintext = await openManagedCopy(ctx, field, ciphertext, st);
  if (plaintext === undefined) return undefined;
  ctx.verified?.remember(ctx, field, ciphertext, st);
  return { ...known, plaintext };
}

/** Opens the managed copy under the pinned destination and version; undefined when it is not the recorded credential. */
async function openManagedCopy(
  ctx: FieldContext,
  field: string,
  ciphertext: string,
  st: FieldState,
): Promise<string | undefined> {
  try {
    const plaintext = await ctx.crypto.envelope.open(
      ciphertext,
      managedBinding(ctx, field, st.destination!, st.version),
    );
    if (sameFingerprint(st.fingerprint, placeFingerprint(ctx.crypto.fingerprintKey, placeOf(ctx, field), plaintext)))
      return plaintext;
  } catch (err) {
    if (isRetryable(err)) throw err;
  }
  ctx.verified?.forget(ctx, field);
  return undefined;
}

/**
 * Opens a value of the spec: sealed for the current destination (format 2),
 * or, where no pin says otherwise, a value sealed before format 2. A value
 * sealed for the pinned previous destination opens only once a rebind confirms.
 */
async function openSpecValue(
  ctx: FieldContext,
  field: string,
  sealed: string,
  st: FieldState | undefined,
  confirmed: boolean,
): Promise<{ plaintext: string; current: boolean; rebound: boolean }> {
  const { envelope } = ctx.crypto;
  let first: unknown;
  try {
    return {
      plaintext: await envelope.open(sealed, specBinding(ctx, field, ctx.destination)),
      current: true,
      rebound: false,
    };
  } catch (err) {
    if (isRetryable(err)) throw err;
    if (!(err instanceof CryptoError) && !isKeyIdShapeError(err)) throw err;
    if (!isBindingMismatch(err)) throw ciphertextRejected(ctx, field, sealed, err);
    first = err;
  }
  if (!st?.destination || st.destination === ctx.destination) {
    const legacy: Binding = {
      namespace: ctx.namespace,
      workspace: ctx.workspace,
      connection: ctx.connection,
      field,
      destination: ctx.legacyDestination,
      format: 1,
    };
    try {
      return { plaintext: await envelope.open(sealed, legacy), current: false, rebound: false };
    } catch (err) {
      if (isRetryable(err)) throw err;
    }
  }
  if (st?.destination && st.destination !== ctx.destination) {
    let plaintext: string | undefined;
    try {
      plaintext = await envelope.open(sealed, specBinding(ctx, field, st.destination));
    } catch (err) {
      if (isRetryable(err)) throw err;
    }
    if (plaintext !== undefined) {
      if (!confirmed) throw destinationChanged(ctx, field, st);
      return { plaintext, current: false, rebound: true };
    }
  }
  throw ciphertextRejected(ctx, field, sealed, first);
}

async function fromSecret(
  ctx: FieldContext,
  field: string,
  ref: { name: string; key: string },
  previous: PreviousField,
): Promise<ResolvedField> {
  const secret = await ctx.readSource(ref.name);
  const offer = secret ? offerTo(secret, ctx.connection) : ({ kind: 'none' } as Offer);
  // One message for "missing" and "not offered", so an editor cannot probe which Secrets exist.
  if (!secret || offer.kind === 'none') {
    throw new CredentialProblem(
      Reason.SecretNotFound,
      `spec.credentials.${field}.secretKeyRef: Secret ${ref.name} does not exist in this namespace or does not offer itself to this connection; its owner must annotate it ${ALLOWED_CONNECTIONS_ANNOTATION}: "${ctx.connection}" (or "*")`,
    );
  }
  const approve = `${ctx.connection}@${ctx.destination.slice(0, APPROVAL_PREFIX_CHARS)}`;
  const sourceId = `secret:${ref.name}/${ref.key}`;
  const st = pinnedState(previous);
  const pins = offerPins(secret);
  const pinned = pins[ctx.connection] ?? (st?.source === sourceId ? st.destination : undefined);
  if (
    offer.kind === 'destination'
      ? !ctx.destination.startsWith(offer.prefix)
      : pinned !== undefined && pinned !== ctx.destination
  ) {
    throw new CredentialProblem(
      Reason.DestinationChanged,
      `spec.credentials.${field}.secretKeyRef: Secret ${ref.name} was offered to this connection for another destination (the connection's settings or its IntegrationType ${ctx.typeName} changed where credentials go); it is not used until the Secret's owner approves the new destination by setting the entry for this connection in ${ALLOWED_CONNECTIONS_ANNOTATION} to "${approve}"`,
    );
  }
  const raw = secret.data?.[ref.key];
  if (raw === undefined)
    throw new CredentialProblem(
      Reason.SecretKeyNotFound,
      `spec.credentials.${field}.secretKeyRef: Secret ${ref.name} has no key ${ref.key}`,
    );
  if (pins[ctx.connection] !== ctx.destination)
    await ctx.writePins(ref.name, { ...pins, [ctx.connection]: ctx.destination });
  const plaintext = Buffer.from(raw, 'base64').toString('utf8');
  // The copy is kept only if it still opens to what was recorded (a rolled-back Secret is re-made).
  const verifiedCopy =
    st?.source === sourceId &&
    st.destination === ctx.destination &&
    previous.ciphertext !== undefined &&
    (await verifyCopy(ctx, field, previous.ciphertext, st)) !== undefined;
  return finish(ctx, field, { plaintext, sourceId, previous, rebound: false, verifiedCopy });
}

interface Outcome {
  /** The credential as opened, or a verified managed copy known by its fingerprint. */
  plaintext: string | KnownCopy;
  sourceId: string;
  previous: PreviousField;
  rebound: boolean;
  /** The managed copy opened to the recorded credential in this reconcile (only then may it be kept). */
  verifiedCopy?: boolean;
  /** For sealed sources: the spec value, and whether it is format 2 for the current destination. */
  spec?: { sealed: string; current: boolean };
}

async function finish(ctx: FieldContext, field: string, o: Outcome): Promise<ResolvedField> {
  const { crypto, key } = ctx;
  const place = placeOf(ctx, field);
  const opened = typeof o.plaintext === 'string' ? o.plaintext : o.plaintext.plaintext;
  const fp =
    opened !== undefined
      ? placeFingerprint(crypto.fingerprintKey, place, opened)
      : (o.plaintext as KnownCopy).fingerprint;
  const reveal = opened !== undefined ? () => Promise.resolve(opened) : (o.plaintext as KnownCopy).reveal;
  const prev = o.previous.state;
  // A known copy always comes with a format 2 state (it was pinned), so the legacy branch has the plaintext.
  const unchanged =
    prev === undefined
      ? false
      : prev.format === 2
        ? sameFingerprint(prev.fingerprint, fp)
        : opened !== undefined &&
          sameFingerprint(
            prev.fingerprint,
            fingerprint(crypto.fingerprintKey, { ...place, destination: ctx.legacyDestination, format: 1 }, opened),
          );
  // The status version (operator-written) keeps a rolled-back annotation from lowering the version.
  const base = Math.max(prev?.version ?? 0, o.previous.statusVersion ?? 0);
  const version = unchanged ? Math.max(base, 1) : base + 1;
  const st = pinnedState(o.previous);
  const reuse =
    o.verifiedCopy === true &&
    !o.rebound &&
    o.previous.ciphertext !== undefined &&
    st !== undefined &&
    st.version === version &&
    crypto.envelope.isWrappedWith(o.previous.ciphertext, key);
  const ciphertext = reuse
    ? o.previous.ciphertext!
    : await crypto.envelope.seal(await reveal(), managedBinding(ctx, field, ctx.destination, version), key);

  // Git's copy: publish a replacement when spec's value needs an old key, an old binding or an old destination.
  let published: string | undefined;
  if (o.spec) {
    const stale = o.rebound || !o.spec.current || !crypto.envelope.isWrappedWith(o.spec.sealed, key);
    const kept =
      st?.sealed !== undefined &&
      !o.rebound &&
      st.destination === ctx.destination &&
      crypto.envelope.isWrappedWith(st.sealed, key) &&
      sameFingerprint(st.fingerprint, fp);
    if (stale)
      published = kept
        ? st.sealed
        : await crypto.envelope.seal(await reveal(), specBinding(ctx, field, ctx.destination), key);
  }
  const state: FieldState = {
    fingerprint: fp,
    version,
    updatedAt: unchanged && prev ? prev.updatedAt : ctx.now.toISOString(),
    keyId: crypto.envelope.describe(ciphertext).keyId,
    hint: opened !== undefined ? credentialHint(opened) : (o.plaintext as KnownCopy).hint,
    format: 2,
    destination: ctx.destination,
    source: o.sourceId,
    ...(ctx.typeGeneration !== undefined ? { typeGeneration: ctx.typeGeneration } : {}),
    ...(published !== undefined ? { sealed: published } : {}),
    // Every value seen is spent: a confirmation given before a change never confirms a later one.
    ...(ctx.rebind !== undefined ? { rebind: ctx.rebind } : {}),
    settings: ctx.settings,
  };
  return { field, reveal, ciphertext, state, rotated: !unchanged, rebound: o.rebound };
}

function destinationChanged(ctx: FieldContext, field: string, st: FieldState): CredentialProblem {
  if (st.settings !== undefined && st.settings !== ctx.settings) {
    return new CredentialProblem(
      Reason.DestinationChanged,
      `spec.settings of this connection changed where its credentials go; spec.credentials.${field} is bound to the previous destination and is not used. ${REBIND_CANNOT_CONFIRM} ${ctx.typeName}: supply the credential again for the new settings (set spec.credentials.${field}.value, or a value made by atoll seal), or restore the previous settings`,
      true,
    );
  }
  const typeChange =
    st.typeGeneration !== undefined && ctx.typeGeneration !== undefined && st.typeGeneration !== ctx.typeGeneration
      ? `IntegrationType ${ctx.typeName} changed (generation ${st.typeGeneration} → ${ctx.typeGeneration}) where or how its credentials are sent`
      : `the destination of this connection changed (its settings or IntegrationType ${ctx.typeName})`;
  return new CredentialProblem(
    Reason.DestinationChanged,
    `${typeChange}; spec.credentials.${field} is bound to the previous destination and is not used. Review the change (kubectl get integrationtype ${ctx.typeName} -o yaml), then confirm with atoll rebind ${ctx.connection} -n ${ctx.namespace}, or supply the credential again`,
    true,
  );
}

/** Errors that say the value is fine but was sealed for another binding (worth trying the legacy format). */
function isBindingMismatch(err: unknown): boolean {
  return err instanceof CryptoError && err.reason === CryptoErrorReason.CiphertextRejected;
}

function isRetryable(err: unknown): boolean {
  return err instanceof CryptoError && err.retryable;
}

const KEY_ID_SHAPE_ERRORS = new Set<string>([CryptoErrorMessage.invalidLocalKeyId]);

function isKeyIdShapeError(err: unknown): boolean {
  return err instanceof TypeError && KEY_ID_SHAPE_ERRORS.has(err.message);
}

/** A terminal failure that comes from the ciphertext itself, said plainly with the fix. */
function ciphertextRejected(ctx: FieldContext, field: string, sealed: string, err: unknown): CredentialProblem {
  const at = `spec.credentials.${field}.sealed`;
  const fix = `seal it again for this connection with atoll seal (or supply value)`;
  let named: { provider: string; keyId: string } | undefined;
  try {
    named = ctx.crypto.envelope.describe(sealed);
  } catch {
    named = undefined;
  }
  let why: string;
  if (!named || (err instanceof CryptoError && err.reason === CryptoErrorReason.MalformedCiphertext))
    why = 'is not an atoll ciphertext';
  else if (err instanceof CryptoError && err.reason === CryptoErrorReason.ProviderNotRegistered)
    why = `names KMS provider "${named.provider}", which this operator is not configured with`;
  else if (err instanceof CryptoError && err.reason === CryptoErrorReason.KeyNotFound)
    why = `is wrapped by key ${named.keyId}, which does not exist or is disabled`;
  else if (isKeyIdShapeError(err)) why = `names a key id that is not a ${named.provider} key id`;
  else
    why =
      'was not sealed for this workspace, connection, field and destination (pointing a connection at another host, port or type requires supplying its credentials again)';
  return new CredentialProblem(Reason.CiphertextRejected, `${at} ${why} and cannot be used here; ${fix}`);
}
