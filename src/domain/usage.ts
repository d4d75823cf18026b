import type { ConnectionUsage, UsageActiveStream, UsageConsumer } from '../api/v1alpha1/index.js';

/**
 * `status.usage` of an ExternalConnection: pure rules shared by the gateway
 * (which records and merges), the webhook (which refuses deleting a
 * connection in use) and the CLI (which shows it). See
 * docs/adr/0015-usage-merge.md for why counts travel as per-replica deltas.
 */

export type Via = UsageConsumer['via'];

/** Consumers kept in status, most recent first. */
export const MAX_CONSUMERS = 20;
/** Replica sequence markers kept (enough for every live replica and recent restarts). */
export const MAX_REPLICAS = 16;
/** Stream entries kept (replica × ServiceAccount). */
export const MAX_STREAM_ENTRIES = 64;
const HOUR_MS = 3_600_000;
const WINDOW_HOURS = 24;

/** What one replica observed for one consumer since its last applied flush. */
export interface ConsumerDelta {
  serviceAccount: string;
  via: Via;
  lastUsedAtMs: number;
  requestsByHour: Record<string, number>;
}

/** What one replica observed for one connection since its last applied flush; keyed `<serviceAccount>|<via>`. */
export type UsageDelta = Record<string, ConsumerDelta>;

/** UTC hour bucket key, `YYYY-MM-DDTHH`. */
export function hourKey(ms: number): string {
  const hour = Math.floor(ms / HOUR_MS);
  // Called on every proxied request: format each hour once.
  if (hour !== lastHour) {
    lastHour = hour;
    lastHourKey = new Date(hour * HOUR_MS).toISOString().slice(0, 13);
  }
  return lastHourKey;
}
let lastHour = Number.NaN;
let lastHourKey = '';

/** RFC 3339 without milliseconds, as Kubernetes writes times. */
export function rfc3339(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');
}

function consumerKey(serviceAccount: string, via: Via): string {
  return `${serviceAccount}|${via}`;
}

/** Adds `requests` uses (0 = "still in use", e.g. an open stream) by a consumer at `nowMs`. */
export function recordUse(delta: UsageDelta, serviceAccount: string, via: Via, nowMs: number, requests = 1): void {
  const key = consumerKey(serviceAccount, via);
  const entry = (delta[key] ??= { serviceAccount, via, lastUsedAtMs: nowMs, requestsByHour: {} });
  entry.lastUsedAtMs = Math.max(entry.lastUsedAtMs, nowMs);
  if (requests > 0) {
    const hour = hourKey(nowMs);
    entry.requestsByHour[hour] = (entry.requestsByHour[hour] ?? 0) + requests;
  }
}

/** a + b, without modifying either. */
export function combineDeltas(a: UsageDelta, b: UsageDelta): UsageDelta {
  const out: UsageDelta = {};
  for (const d of [a, b]) {
    for (const c of Object.values(d)) {
      for (const [hour, n] of Object.entries(c.requestsByHour)) recordUseAt(out, c, hour, n);
      recordUse(out, c.serviceAccount, c.via, c.lastUsedAtMs, 0);
    }
  }
  return out;
}

function recordUseAt(out: UsageDelta, c: ConsumerDelta, hour: string, n: number): void {
  const key = consumerKey(c.serviceAccount, c.via);
  const entry = (out[key] ??= {
    serviceAccount: c.serviceAccount,
    via: c.via,
    lastUsedAtMs: c.lastUsedAtMs,
    requestsByHour: {},
  });
  entry.requestsByHour[hour] = (entry.requestsByHour[hour] ?? 0) + n;
}

export function isEmptyDelta(delta: UsageDelta): boolean {
  return Object.keys(delta).length === 0;
}

/** True when the stored usage already holds this replica's flush `sequence` (its write landed though we saw no answer). */
export function alreadyApplied(stored: ConnectionUsage | undefined, replica: string, sequence: number): boolean {
  const mine = stored?.replicas?.find((r) => r.name === replica);
  return mine !== undefined && mine.sequence >= sequence;
}

export interface MergeInput {
  /** This replica's counts not yet in `stored`. */
  delta: UsageDelta;
  replica: string;
  /** Sequence number of this flush (strictly increasing per replica). */
  sequence: number;
  /** This replica's open streams right now, by ServiceAccount (replaces its previous entries). */
  streams: Record<string, number>;
  /** How long a stream entry counts without renewal. */
  streamTtlMs: number;
  nowMs: number;
}

/**
 * Merges one replica's flush into the stored usage. Counts are added (each
 * replica adds only what it counted since its last applied flush, so nothing
 * is counted twice), times take the maximum, hour buckets older than 24 h
 * are dropped, stream entries of this replica are replaced and those of
 * others kept until they expire. Pure: the caller writes the result with the
 * resourceVersion it read, and retries the merge on a conflict.
 */
export function mergeUsage(stored: ConnectionUsage | undefined, input: MergeInput): ConnectionUsage {
  const { nowMs } = input;
  const oldest = hourKey(nowMs - (WINDOW_HOURS - 1) * HOUR_MS);
  const consumers = new Map<string, UsageConsumer>();
  for (const c of stored?.consumers ?? [])
    consumers.set(consumerKey(c.serviceAccount, c.via), { ...c, requestsByHour: { ...(c.requestsByHour ?? {}) } });
  const totalsByHour: Record<string, number> = { ...(stored?.totals?.requestsByHour ?? {}) };
  let requests = stored?.totals?.requests ?? 0;

  for (const d of Object.values(input.delta)) {
    const key = consumerKey(d.serviceAccount, d.via);
    const c = consumers.get(key) ?? {
      serviceAccount: d.serviceAccount,
      via: d.via,
      lastUsedAt: rfc3339(d.lastUsedAtMs),
      requestsByHour: {},
    };
    c.lastUsedAt = rfc3339(Math.max(Date.parse(c.lastUsedAt) || 0, d.lastUsedAtMs));
    for (const [hour, n] of Object.entries(d.requestsByHour)) {
      requests += n;
      totalsByHour[hour] = (totalsByHour[hour] ?? 0) + n;
      c.requestsByHour![hour] = (c.requestsByHour![hour] ?? 0) + n;
    }
    consumers.set(key, c);
  }

  const listed = [...consumers.values()]
    .map((c) => {
      const byHour = recentHours(c.requestsByHour ?? {}, oldest);
      return { ...c, requests24h: sum(byHour), requestsByHour: byHour };
    })
    .sort(
      (a, b) =>
        Date.parse(b.lastUsedAt) - Date.parse(a.lastUsedAt) ||
        a.serviceAccount.localeCompare(b.serviceAccount) ||
        a.via.localeCompare(b.via),
    )
    .slice(0, MAX_CONSUMERS);
  const totalsRecent = recentHours(totalsByHour, oldest);
  const lastUsedMs = Math.max(
    Date.parse(stored?.lastUsedAt ?? '') || 0,
    ...Object.values(input.delta).map((d) => d.lastUsedAtMs),
  );

  const streams: UsageActiveStream[] = (stored?.activeStreams ?? []).filter(
    (s) => s.replica !== input.replica && Date.parse(s.expiresAt) > nowMs,
  );
  for (const [serviceAccount, n] of Object.entries(input.streams)) {
    if (n > 0)
      streams.push({
        replica: input.replica,
        serviceAccount,
        streams: n,
        expiresAt: rfc3339(nowMs + input.streamTtlMs),
      });
  }
  streams.sort((a, b) => Date.parse(b.expiresAt) - Date.parse(a.expiresAt));

  const replicas = [
    { name: input.replica, sequence: input.sequence, flushedAt: new Date(nowMs).toISOString() },
    ...(stored?.replicas ?? []).filter(
      (r) => r.name !== input.replica && (Date.parse(r.flushedAt ?? '') || 0) > nowMs - WINDOW_HOURS * HOUR_MS,
    ),
  ].slice(0, MAX_REPLICAS);

  return {
    ...(lastUsedMs > 0 ? { lastUsedAt: rfc3339(lastUsedMs) } : {}),
    consumers: listed,
    totals: { requests, requests24h: sum(totalsRecent), consumers: listed.length, requestsByHour: totalsRecent },
    activeStreams: streams.slice(0, MAX_STREAM_ENTRIES),
    replicas,
  };
}

function recentHours(byHour: Record<string, number>, oldest: string): Record<string, number> {
  return Object.fromEntries(
    Object.entries(byHour)
      .filter(([hour]) => hour >= oldest)
      .sort(([a], [b]) => a.localeCompare(b)),
  );
}

function sum(byHour: Record<string, number>): number {
  return Object.values(byHour).reduce((a, b) => a + b, 0);
}

/** Why a connection counts as in use right now: consumers seen within the window, and ServiceAccounts streaming. */
export interface ActiveUse {
  recent: UsageConsumer[];
  streaming: string[];
}

/** The uses that protect a connection from deletion; empty lists mean it may go. */
export function activeUse(usage: ConnectionUsage | undefined, nowMs: number, windowMs: number): ActiveUse {
  const recent =
    windowMs > 0 ? (usage?.consumers ?? []).filter((c) => (Date.parse(c.lastUsedAt) || 0) > nowMs - windowMs) : [];
  const streaming = [
    ...new Set(
      (usage?.activeStreams ?? [])
        .filter((s) => s.streams > 0 && Date.parse(s.expiresAt) > nowMs)
        .map((s) => s.serviceAccount),
    ),
  ].sort();
  return { recent, streaming };
}

export function inUse(use: ActiveUse): boolean {
  return use.recent.length > 0 || use.streaming.length > 0;
}

/**
 * True when an update of a connection changed nothing but `status.usage`
 * (and the bookkeeping that comes with any write): watchers that do not
 * care about use skip it, so a gateway flush every minute per connection
 * does not wake them.
 */
export function onlyUsageChanged(
  obj: { metadata?: object; status?: object },
  old?: { metadata?: object; status?: object },
): boolean {
  if (old === undefined) return false;
  const strip = (o: { metadata?: object; status?: object }) => {
    const { resourceVersion: _rv, managedFields: _mf, ...metadata } = (o.metadata ?? {}) as Record<string, unknown>;
    const { usage: _usage, ...status } = (o.status ?? {}) as Record<string, unknown>;
    return JSON.stringify({ ...o, metadata, status });
  };
  return strip(obj) === strip(old);
}
