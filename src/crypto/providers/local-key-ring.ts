import { randomBytes } from 'node:crypto';
import { ConflictError, CryptoErrorMessage } from '../errors.js';

/**
 * The local provider's key-encryption keys: named keys, each with numbered
 * AES-256 versions and one primary. New wraps use the primary; every version
 * still unwraps, so rotation never strands an existing ciphertext.
 * Immutable: changes produce a new ring.
 */
export interface KeyRing {
  readonly keys: ReadonlyMap<string, LocalKey>;
  /** Opaque optimistic-concurrency token set by the store on load (e.g. a Secret's resourceVersion). */
  readonly revision?: string;
}

export interface LocalKey {
  readonly primary: number;
  readonly versions: ReadonlyMap<number, Buffer>;
}

/**
 * Persistence of the key ring, kept abstract so the crypto layer does not
 * depend on the kube client. The production store is a Secret in the
 * operator's namespace (data from {@link keyRingToSecretData}).
 */
export interface KeyRingStore {
  /** The stored ring with its `revision`, or undefined when none exists yet. */
  load(): Promise<KeyRing | undefined>;
  /**
   * Writes `ring` if the stored ring is still `previous` (compare revisions;
   * `previous` undefined means "create, must not exist"). Throws
   * {@link ConflictError} otherwise.
   */
  save(ring: KeyRing, previous: KeyRing | undefined): Promise<void>;
}

export const KEK_BYTES = 32;
const KEY_NAME = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const LOCAL_KEY_ID_PREFIX = 'local/';
const FORMAT_ENTRY = 'keyring.format';
const FORMAT_VERSION = '1';
const VERSION_ENTRY = /^([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)\.v([1-9][0-9]{0,8})$/;
const PRIMARY_ENTRY = /^([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)\.primary$/;

export function emptyKeyRing(): KeyRing {
  return { keys: new Map() };
}

/** `local/<name>` → `<name>`; the name is a DNS label so it can be a Secret data key part. */
export function localKeyName(keyId: string): string {
  const name = keyId.startsWith(LOCAL_KEY_ID_PREFIX) ? keyId.slice(LOCAL_KEY_ID_PREFIX.length) : '';
  if (!KEY_NAME.test(name)) throw new TypeError(CryptoErrorMessage.invalidLocalKeyId);
  return name;
}

export function localKeyId(name: string): string {
  return LOCAL_KEY_ID_PREFIX + name;
}

/** A ring with a new random version of `name` (created if absent), made primary. */
export function withNewKeyVersion(ring: KeyRing, name: string): { ring: KeyRing; version: number } {
  if (!KEY_NAME.test(name)) throw new TypeError(CryptoErrorMessage.invalidLocalKeyId);
  const existing = ring.keys.get(name);
  const version = existing ? Math.max(...existing.versions.keys()) + 1 : 1;
  const versions = new Map(existing?.versions ?? []);
  versions.set(version, randomBytes(KEK_BYTES));
  const keys = new Map(ring.keys);
  keys.set(name, { primary: version, versions });
  return { ring: { keys, ...(ring.revision === undefined ? {} : { revision: ring.revision }) }, version };
}

/**
 * Secret `data` for a ring: `<name>.v<N>` holds each version's key material,
 * `<name>.primary` the primary version number, `keyring.format` the layout
 * version. Values are base64, as Secret `data` requires.
 */
export function keyRingToSecretData(ring: KeyRing): Record<string, string> {
  const data: Record<string, string> = { [FORMAT_ENTRY]: b64(FORMAT_VERSION) };
  for (const [name, key] of [...ring.keys].sort(([a], [b]) => a.localeCompare(b))) {
    data[`${name}.primary`] = b64(String(key.primary));
    for (const [version, material] of [...key.versions].sort(([a], [b]) => a - b)) {
      data[`${name}.v${version}`] = material.toString('base64');
    }
  }
  return data;
}

/** Parses Secret `data` back into a ring; throws on anything unexpected rather than guess. */
export function keyRingFromSecretData(data: Record<string, string>, revision?: string): KeyRing {
  const corrupt = () => new Error(CryptoErrorMessage.keyRingCorrupt);
  if (data[FORMAT_ENTRY] === undefined || fromB64(data[FORMAT_ENTRY]).toString('utf8') !== FORMAT_VERSION)
    throw corrupt();
  const primaries = new Map<string, number>();
  const versions = new Map<string, Map<number, Buffer>>();
  for (const [entry, value] of Object.entries(data)) {
    if (entry === FORMAT_ENTRY) continue;
    const primary = PRIMARY_ENTRY.exec(entry);
    const version = VERSION_ENTRY.exec(entry);
    if (primary?.[1]) {
      const n = Number(fromB64(value).toString('utf8'));
      if (!Number.isSafeInteger(n) || n < 1) throw corrupt();
      primaries.set(primary[1], n);
    } else if (version?.[1] && version[3]) {
      const material = fromB64(value);
      if (material.length !== KEK_BYTES) throw corrupt();
      const byVersion = versions.get(version[1]) ?? new Map<number, Buffer>();
      byVersion.set(Number(version[3]), material);
      versions.set(version[1], byVersion);
    } else {
      throw corrupt();
    }
  }
  const keys = new Map<string, LocalKey>();
  for (const [name, primary] of primaries) {
    const byVersion = versions.get(name);
    if (!byVersion?.has(primary)) throw corrupt();
    keys.set(name, { primary, versions: byVersion });
  }
  if ([...versions.keys()].some((name) => !primaries.has(name))) throw corrupt();
  return { keys, ...(revision === undefined ? {} : { revision }) };
}

/**
 * Adds a new primary version of local key `name` (creating the key if it does
 * not exist) with optimistic concurrency, retrying on conflicts. Old versions
 * keep unwrapping; other replicas' providers pick the new primary up when
 * they next re-read the ring (`refreshIntervalMs`, or an unknown version).
 * Returns the new version number.
 */
export async function rotateLocalKey(store: KeyRingStore, name: string): Promise<number> {
  return updateKeyRing(
    store,
    (ring) => withNewKeyVersion(ring, name).ring,
    (ring) => ring.keys.get(name)?.primary ?? 0,
  );
}

/**
 * Makes sure local key `name` exists, creating version 1 if needed; safe when
 * several operator replicas race (the loser reloads and finds the key).
 */
export async function ensureLocalKey(store: KeyRingStore, name: string): Promise<KeyRing> {
  for (let attempt = 0; attempt < MAX_CONFLICT_RETRIES; attempt++) {
    const current = await store.load();
    if (current?.keys.has(name)) return current;
    try {
      await store.save(withNewKeyVersion(current ?? emptyKeyRing(), name).ring, current);
    } catch (err) {
      if (!(err instanceof ConflictError)) throw err;
    }
  }
  const ring = await store.load();
  if (ring?.keys.has(name)) return ring;
  throw new ConflictError();
}

const MAX_CONFLICT_RETRIES = 5;

async function updateKeyRing<T>(
  store: KeyRingStore,
  change: (ring: KeyRing) => KeyRing,
  result: (ring: KeyRing) => T,
): Promise<T> {
  let lastConflict: unknown;
  for (let attempt = 0; attempt < MAX_CONFLICT_RETRIES; attempt++) {
    const current = await store.load();
    const next = change(current ?? emptyKeyRing());
    try {
      await store.save(next, current);
      return result(next);
    } catch (err) {
      if (!(err instanceof ConflictError)) throw err;
      lastConflict = err;
    }
  }
  throw new ConflictError({ cause: lastConflict });
}

/**
 * A {@link KeyRingStore} in memory that still goes through the Secret
 * serialisation, so unit tests exercise the same bytes a Secret would hold.
 */
export class InMemoryKeyRingStore implements KeyRingStore {
  #data: Record<string, string> | undefined;
  #revision = 0;

  async load(): Promise<KeyRing | undefined> {
    return this.#data ? keyRingFromSecretData(this.#data, String(this.#revision)) : undefined;
  }

  async save(ring: KeyRing, previous: KeyRing | undefined): Promise<void> {
    const expected = this.#data ? String(this.#revision) : undefined;
    if (previous?.revision !== expected) throw new ConflictError();
    this.#data = keyRingToSecretData(ring);
    this.#revision += 1;
  }

  /** The raw Secret data, for tests that inspect what would be persisted. */
  secretData(): Record<string, string> | undefined {
    return this.#data ? { ...this.#data } : undefined;
  }
}

function b64(text: string): string {
  return Buffer.from(text, 'utf8').toString('base64');
}

function fromB64(value: string): Buffer {
  return Buffer.from(value, 'base64');
}
