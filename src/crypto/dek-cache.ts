import { createHash } from 'node:crypto';
import { canonicalContext, lengthPrefixed } from './binding.js';
import { ownBuffer, unpooledCopy } from './owned-bytes.js';

/**
 * Bounds of the data-key cache (ADR 0029). A cached DEK is dropped (and
 * zeroed) when it is older than `maxAgeMs` (its absolute lifetime), has not
 * been used for `idleMs`, has been used `maxUses` times, or is the least
 * recently used of more than `maxEntries`.
 */
export interface DekCacheOptions {
  maxAgeMs?: number;
  idleMs?: number;
  maxUses?: number;
  maxEntries?: number;
  /** Bound of the sealing cache alone (default `DEK_CACHE_DEFAULTS.maxEncryptionKeys`). */
  maxEncryptionKeys?: number;
  now?: () => number;
}

export type KmsOperation = 'generateDataKey' | 'decryptDataKey';

/** Plain numbers for the lead's Prometheus wiring. */
export interface DekCacheStats {
  kmsCalls: Record<KmsOperation, number>;
  hits: { encrypt: number; decrypt: number };
  misses: { encrypt: number; decrypt: number };
  entries: { encrypt: number; decrypt: number };
}

/** Identifies an unwrapped DEK: the same wrapped bytes under the same key and context. */
export interface DecryptionKeyId {
  provider: string;
  keyId: string;
  wrapped: Buffer;
  context: Record<string, string>;
}

/** Identifies the DEK reused for new seals of one binding under one key. */
export interface EncryptionKeyId {
  provider: string;
  keyId: string;
  context: Record<string, string>;
}

/** A freshly generated data key as the encryption cache holds it. */
export interface EncryptionKey {
  dek: Buffer;
  wrapped: Buffer;
  /** The key id the provider reported (e.g. the ARN behind an alias). */
  keyId: string;
}

/**
 * The idle expiry outlasts the default probe interval (10 m) three times over,
 * so a periodic probe finds its data key still cached; the absolute lifetime
 * bounds how long any unwrapped key stays in memory and how long a disabled
 * KMS key goes unnoticed. A cached DEK costs about 0.5 KiB of heap, so the
 * entry bound (room for the controller's 10,000 connections plus the managed
 * copies sealed in a burst) is about 25 MiB at worst.
 */
export const DEK_CACHE_DEFAULTS = {
  maxAgeMs: 24 * 3_600_000,
  idleMs: 30 * 60_000,
  maxUses: 10_000,
  maxEntries: 50_000,
  /**
   * A sealing DEK is reused only when the same binding (one connection's
   * field under one destination) seals again while it is cached: a burst of
   * rotations. Bounded well below `maxEntries`, since one per connection sealed
   * was 9 MiB of heap at 10,000 connections (ADR 0035); the opening cache,
   * which spares every periodic probe a KMS call, keeps the larger bound.
   */
  maxEncryptionKeys: 1_000,
} as const;

/**
 * Amortises KMS calls (spec section 4: steady state makes no KMS call per
 * reconcile). Two caches: unwrapped DEKs for opening, and one live DEK per
 * (provider, key, binding) for sealing so bursts of seals share a wrap.
 * Concurrent misses for the same key share one KMS call. DEKs are only ever
 * handed to a synchronous `use` callback, so zeroing on eviction can never
 * pull a key out from under a caller.
 */
export class DekCache {
  readonly #decrypting: Slots<Buffer>;
  readonly #encrypting: Slots<EncryptionKey>;

  constructor(options: DekCacheOptions = {}) {
    const bounds = {
      maxAgeMs: options.maxAgeMs ?? DEK_CACHE_DEFAULTS.maxAgeMs,
      idleMs: options.idleMs ?? DEK_CACHE_DEFAULTS.idleMs,
      maxUses: options.maxUses ?? DEK_CACHE_DEFAULTS.maxUses,
      maxEntries: options.maxEntries ?? DEK_CACHE_DEFAULTS.maxEntries,
      now: options.now ?? Date.now,
    };
    this.#decrypting = new Slots(bounds, (dek) => dek, ownBuffer);
    this.#encrypting = new Slots(
      {
        ...bounds,
        maxEntries: Math.min(bounds.maxEntries, options.maxEncryptionKeys ?? DEK_CACHE_DEFAULTS.maxEncryptionKeys),
      },
      (key) => key.dek,
      (key) => ({ ...key, dek: ownBuffer(key.dek), wrapped: unpooledCopy(key.wrapped) }),
    );
  }

  /** Runs `use` with the unwrapped DEK, calling `unwrap` (the KMS) only on a miss. */
  withDecryptionKey<T>(id: DecryptionKeyId, unwrap: () => Promise<Buffer>, use: (dek: Buffer) => T): Promise<T> {
    return this.#decrypting.run(cacheKey('decrypt', id.provider, id.keyId, id.context, id.wrapped), unwrap, use);
  }

  /** Runs `use` with the binding's current sealing DEK, calling `generate` (the KMS) only on a miss. */
  withEncryptionKey<T>(
    id: EncryptionKeyId,
    generate: () => Promise<EncryptionKey>,
    use: (key: EncryptionKey) => T,
  ): Promise<T> {
    return this.#encrypting.run(cacheKey('encrypt', id.provider, id.keyId, id.context), generate, use);
  }

  /**
   * Seeds the decryption cache with a DEK just generated, so opening a value
   * right after sealing it needs no KMS call. Takes ownership of `dek`.
   */
  primeDecryption(id: DecryptionKeyId, dek: Buffer): void {
    this.#decrypting.prime(cacheKey('decrypt', id.provider, id.keyId, id.context, id.wrapped), dek);
  }

  stats(): DekCacheStats {
    return {
      kmsCalls: { generateDataKey: this.#encrypting.loads, decryptDataKey: this.#decrypting.loads },
      hits: { encrypt: this.#encrypting.hits, decrypt: this.#decrypting.hits },
      misses: { encrypt: this.#encrypting.loads, decrypt: this.#decrypting.loads },
      entries: { encrypt: this.#encrypting.size, decrypt: this.#decrypting.size },
    };
  }

  /** Drops and zeroes every cached DEK (shutdown, key compromise drills). */
  clear(): void {
    this.#decrypting.clear();
    this.#encrypting.clear();
  }
}

interface Bounds {
  maxAgeMs: number;
  idleMs: number;
  maxUses: number;
  maxEntries: number;
  now: () => number;
}

interface Entry<V> {
  value: V;
  createdAt: number;
  lastUsedAt: number;
  uses: number;
  evicted: boolean;
}

/** How often a waiter may lose its freshly loaded entry to eviction before it stops caching. */
const MAX_CLAIM_ATTEMPTS = 3;

/** One bounded LRU of DEK-holding values with single-flight loading. */
class Slots<V> {
  readonly #entries = new Map<string, Entry<V>>();
  readonly #flights = new Map<string, Promise<Entry<V>>>();
  readonly #bounds: Bounds;
  readonly #dekOf: (value: V) => Buffer;
  readonly #adopt: (value: V) => V;
  #lastSweep: number;
  hits = 0;
  loads = 0;

  /** `adopt` turns a loaded value into the one the cache keeps: unpooled copies, the loaded key zeroed (owned-bytes.ts). */
  constructor(bounds: Bounds, dekOf: (value: V) => Buffer, adopt: (value: V) => V) {
    this.#bounds = bounds;
    this.#dekOf = dekOf;
    this.#adopt = adopt;
    this.#lastSweep = bounds.now();
  }

  get size(): number {
    return this.#entries.size;
  }

  get #enabled(): boolean {
    const b = this.#bounds;
    return b.maxEntries > 0 && b.maxUses > 0 && b.maxAgeMs > 0 && b.idleMs > 0;
  }

  async run<T>(key: string, load: () => Promise<V>, use: (value: V) => T): Promise<T> {
    this.#sweepIfDue();
    if (this.#enabled) {
      for (let attempt = 0; attempt < MAX_CLAIM_ATTEMPTS; attempt++) {
        const cached = this.#entries.get(key);
        if (cached && this.#claim(key, cached)) {
          this.hits += 1;
          this.#entries.delete(key);
          this.#entries.set(key, cached);
          return use(cached.value);
        }
        let flight = this.#flights.get(key);
        if (flight) this.hits += 1;
        else flight = this.#startFlight(key, load);
        const loaded = await flight;
        if (this.#claim(key, loaded)) return use(loaded.value);
      }
    }
    this.loads += 1;
    const value = await load();
    try {
      return use(value);
    } finally {
      this.#dekOf(value).fill(0);
    }
  }

  prime(key: string, dek: V): void {
    if (!this.#enabled || this.#entries.has(key)) {
      this.#dekOf(dek).fill(0);
      return;
    }
    const now = this.#bounds.now();
    this.#insert(key, { value: this.#adopt(dek), createdAt: now, lastUsedAt: now, uses: 0, evicted: false });
  }

  clear(): void {
    for (const key of [...this.#entries.keys()]) this.#evict(key);
  }

  #startFlight(key: string, load: () => Promise<V>): Promise<Entry<V>> {
    this.loads += 1;
    const flight = load()
      .then((loaded) => {
        const now = this.#bounds.now();
        const entry: Entry<V> = {
          value: this.#adopt(loaded),
          createdAt: now,
          lastUsedAt: now,
          uses: 0,
          evicted: false,
        };
        this.#insert(key, entry);
        return entry;
      })
      .finally(() => this.#flights.delete(key));
    this.#flights.set(key, flight);
    return flight;
  }

  /** Counts one use if the entry is still live and within bounds; evicts it otherwise. */
  #claim(key: string, entry: Entry<V>): boolean {
    if (entry.evicted) return false;
    const now = this.#bounds.now();
    if (this.#expired(entry, now) || entry.uses >= this.#bounds.maxUses) {
      if (this.#entries.get(key) === entry) this.#evict(key);
      return false;
    }
    entry.uses += 1;
    entry.lastUsedAt = now;
    return true;
  }

  #expired(entry: Entry<V>, now: number): boolean {
    return now - entry.createdAt >= this.#bounds.maxAgeMs || now - entry.lastUsedAt >= this.#bounds.idleMs;
  }

  #insert(key: string, entry: Entry<V>): void {
    if (this.#entries.has(key)) this.#evict(key);
    this.#entries.set(key, entry);
    while (this.#entries.size > this.#bounds.maxEntries) {
      const oldest = this.#entries.keys().next().value;
      if (oldest === undefined) break;
      this.#evict(oldest);
    }
  }

  #evict(key: string): void {
    const entry = this.#entries.get(key);
    if (!entry) return;
    this.#entries.delete(key);
    entry.evicted = true;
    this.#dekOf(entry.value).fill(0);
  }

  /** Zeroes expired DEKs that nobody asks for any more, at most every quarter of the shorter expiry. */
  #sweepIfDue(): void {
    const now = this.#bounds.now();
    if (now - this.#lastSweep < Math.min(this.#bounds.maxAgeMs, this.#bounds.idleMs) / 4) return;
    this.#lastSweep = now;
    for (const [key, entry] of this.#entries) {
      if (this.#expired(entry, now)) this.#evict(key);
    }
  }
}

/** SHA-256 over length-prefixed parts, so cache keys hold no key material and cannot collide by concatenation. */
function cacheKey(
  kind: string,
  provider: string,
  keyId: string,
  context: Record<string, string>,
  wrapped?: Buffer,
): string {
  const hash = createHash('sha256');
  hash.update(lengthPrefixed(kind)).update(lengthPrefixed(provider)).update(lengthPrefixed(keyId));
  hash.update(canonicalContext(context));
  if (wrapped) hash.update(lengthPrefixed(wrapped));
  return hash.digest('base64url');
}
