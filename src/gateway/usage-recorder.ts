import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { ExternalConnection } from '../api/v1alpha1/index.js';
import {
  alreadyApplied,
  combineDeltas,
  isEmptyDelta,
  mergeUsage,
  recordUse,
  type UsageDelta,
  type Via,
} from '../domain/usage.js';
import type { KubeClient, KubeObject } from '../kube/client.js';
import { isConflict, isNotFound } from '../kube/errors.js';
import { ExternalConnections } from '../kube/resources.js';
import { describeError } from '../runtime/describe-error.js';
import type { Logger } from '../runtime/logger.js';

type Conn = ExternalConnection & KubeObject;

export interface UsageRecorderOptions {
  client: KubeClient;
  log: Logger;
  /** Minimum time between two status writes of one connection by this replica; default 60 s. */
  flushIntervalMs?: number;
  /** This process's identity in `status.usage.replicas`; default `<POD_NAME or host>-<random>`. */
  replica?: string;
  now?: () => number;
}

/** A delta written (or being written) under a sequence number, kept until the stored usage shows it landed. */
interface Chunk {
  sequence: number;
  delta: UsageDelta;
}

interface ConnectionUsageState {
  namespace: string;
  name: string;
  uid: string | undefined;
  pending: UsageDelta;
  unconfirmed: Chunk[];
  /** Open credential streams by ServiceAccount. */
  streams: Map<string, number>;
  /** Whether status holds stream entries of ours that a flush must renew or remove. */
  streamsStored: boolean;
  dirty: boolean;
  lastFlushAt: number;
}

const MAX_CONFLICT_RETRIES = 5;
const SHUTDOWN_FLUSH_MS = 5_000;

/** A process-unique replica name: a restarted pod is a new writer, so its sequence numbers never collide with its past. */
export function replicaIdentity(base = process.env.POD_NAME ?? hostname()): string {
  return `${base.slice(0, 200)}-${randomBytes(3).toString('hex')}`;
}

/**
 * Records who uses each connection through this gateway replica and writes
 * it to `status.usage` at most once per connection per flush interval (and
 * on shutdown). Counting is in memory and O(1) per request; a flush reads
 * the connection, merges this replica's delta into what other replicas
 * wrote (see mergeUsage) and replaces the status at the resourceVersion it
 * read, retrying on a conflict. Only callers that were already
 * authenticated and authorized to `use` the connection are recorded, so a
 * stranger cannot fill the consumer list or block a delete.
 */
export class UsageRecorder {
  readonly #client: KubeClient;
  readonly #log: Logger;
  readonly #intervalMs: number;
  readonly #replica: string;
  readonly #now: () => number;
  readonly #states = new Map<string, ConnectionUsageState>();
  #sequence = 0;
  #timer: NodeJS.Timeout | undefined;
  #tick: Promise<void> | undefined;
  #closed = false;

  constructor(opts: UsageRecorderOptions) {
    this.#client = opts.client;
    this.#log = opts.log.child({ component: 'usage' });
    this.#intervalMs = opts.flushIntervalMs ?? 60_000;
    this.#replica = opts.replica ?? replicaIdentity();
    this.#now = opts.now ?? Date.now;
  }

  get replica(): string {
    return this.#replica;
  }

  start(): void {
    this.#timer = setInterval(
      () => {
        if (this.#tick === undefined) this.#tick = this.#flushDue().finally(() => (this.#tick = undefined));
      },
      Math.min(1000, this.#intervalMs),
    );
    this.#timer.unref();
  }

  /** One use of `connection` by `serviceAccount` (a proxied request, or a credential delivery). */
  record(namespace: string, connection: string, uid: string | undefined, serviceAccount: string, via: Via): void {
    if (this.#closed) return;
    const state = this.#state(namespace, connection, uid);
    recordUse(state.pending, serviceAccount, via, this.#now());
    state.dirty = true;
  }

  /** An agent credential stream opened; call the returned function when it closes. */
  streamOpened(namespace: string, connection: string, uid: string | undefined, serviceAccount: string): () => void {
    const state = this.#state(namespace, connection, uid);
    state.streams.set(serviceAccount, (state.streams.get(serviceAccount) ?? 0) + 1);
    state.dirty = true;
    let open = true;
    return () => {
      if (!open) return;
      open = false;
      const n = (state.streams.get(serviceAccount) ?? 1) - 1;
      if (n > 0) state.streams.set(serviceAccount, n);
      else state.streams.delete(serviceAccount);
      recordUse(state.pending, serviceAccount, 'files', this.#now(), 0);
      state.dirty = true;
    };
  }

  /** Stops the timer and writes everything not yet written (streams are gone with the process). Bounded in time. */
  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#timer);
    await this.#tick;
    for (const state of this.#states.values()) {
      if (state.streams.size > 0) state.dirty = true;
      state.streams.clear();
    }
    const all = [...this.#states.values()].filter((s) => s.dirty || s.streamsStored || s.unconfirmed.length > 0);
    await Promise.race([
      (async () => {
        for (const state of all) await this.#flushSafely(state);
      })(),
      new Promise((r) => setTimeout(r, SHUTDOWN_FLUSH_MS).unref()),
    ]);
  }

  #state(namespace: string, name: string, uid: string | undefined): ConnectionUsageState {
    const key = `${namespace}/${name}`;
    let state = this.#states.get(key);
    if (state !== undefined && uid !== undefined && state.uid !== undefined && state.uid !== uid) {
      // A new connection of the same name: the old one's counts are not its history.
      state = undefined;
    }
    if (state === undefined) {
      state = {
        namespace,
        name,
        uid,
        pending: {},
        unconfirmed: [],
        streams: new Map(),
        streamsStored: false,
        dirty: false,
        lastFlushAt: 0,
      };
      this.#states.set(key, state);
    }
    state.uid ??= uid;
    return state;
  }

  async #flushDue(): Promise<void> {
    const now = this.#now();
    for (const [key, state] of [...this.#states.entries()]) {
      if (this.#closed) return;
      // Open streams are renewed every interval, so their entries never expire while the agent is connected.
      const wanted = state.dirty || state.streams.size > 0 || state.unconfirmed.length > 0 || state.streamsStored;
      if (!wanted) {
        // Idle and fully written: forget it (the rate limit only needs the last interval's flush time).
        if (now - state.lastFlushAt >= this.#intervalMs) this.#states.delete(key);
        continue;
      }
      if (now - state.lastFlushAt < this.#intervalMs) continue;
      await this.#flushSafely(state);
    }
  }

  async #flushSafely(state: ConnectionUsageState): Promise<void> {
    try {
      await this.#flush(state);
    } catch (err) {
      this.#log.warn(
        { namespace: state.namespace, connection: state.name, error: describeError(err) },
        'usage flush failed; counts kept for the next flush',
      );
    }
  }

  async #flush(state: ConnectionUsageState): Promise<void> {
    const key = `${state.namespace}/${state.name}`;
    state.lastFlushAt = this.#now();
    state.dirty = false;
    const chunk: Chunk = { sequence: ++this.#sequence, delta: state.pending };
    state.pending = {};
    state.unconfirmed.push(chunk);
    const streams = Object.fromEntries(state.streams);
    for (const sa of state.streams.keys()) recordUse(chunk.delta, sa, 'files', this.#now(), 0);

    for (let attempt = 0; attempt <= MAX_CONFLICT_RETRIES; attempt++) {
      const conn = await this.#client.tryGet<Conn>(ExternalConnections, state.name, state.namespace);
      if (conn === undefined || (state.uid !== undefined && conn.metadata?.uid !== state.uid)) {
        if (this.#states.get(key) === state) this.#states.delete(key);
        return;
      }
      const stored = conn.status?.usage;
      // A write whose answer was lost may have landed: its sequence in status says so, and it is not added again.
      state.unconfirmed = state.unconfirmed.filter((c) => !alreadyApplied(stored, this.#replica, c.sequence));
      const delta = state.unconfirmed.reduce<UsageDelta>((acc, c) => combineDeltas(acc, c.delta), {});
      if (isEmptyDelta(delta) && Object.keys(streams).length === 0 && !state.streamsStored) {
        state.unconfirmed = [];
        return;
      }
      const usage = mergeUsage(stored, {
        delta,
        replica: this.#replica,
        sequence: chunk.sequence,
        streams,
        streamTtlMs: 3 * this.#intervalMs,
        nowMs: this.#now(),
      });
      try {
        await this.#client.replace(
          ExternalConnections,
          { ...conn, status: { ...conn.status, usage } },
          { subresource: 'status' },
        );
        state.unconfirmed = [];
        state.streamsStored = Object.keys(streams).length > 0;
        return;
      } catch (err) {
        if (isNotFound(err)) {
          if (this.#states.get(key) === state) this.#states.delete(key);
          return;
        }
        if (!isConflict(err)) throw err;
      }
    }
    throw new Error('status.usage write conflicted repeatedly');
  }
}
