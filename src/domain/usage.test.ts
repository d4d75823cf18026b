import { describe, expect, it } from 'vitest';
import {
  activeUse,
  alreadyApplied,
  combineDeltas,
  hourKey,
  inUse,
  MAX_CONSUMERS,
  mergeUsage,
  onlyUsageChanged,
  recordUse,
  type UsageDelta,
} from './usage.js';

const T0 = Date.parse('2026-12-01T12:30:00Z');
const HOUR = 3_600_000;

function delta(uses: Array<[string, 'proxy' | 'files', number, number?]>): UsageDelta {
  const d: UsageDelta = {};
  for (const [sa, via, at, n] of uses) recordUse(d, sa, via, at, n ?? 1);
  return d;
}

const base = { replica: 'gw-a', streams: {}, streamTtlMs: 180_000 };

describe('status.usage merge', () => {
  it('adds each replica delta once: two replicas counting the same consumer sum, times take the maximum', () => {
    const a = mergeUsage(undefined, { ...base, delta: delta([['billing', 'proxy', T0, 3]]), sequence: 1, nowMs: T0 });
    const b = mergeUsage(a, {
      ...base,
      replica: 'gw-b',
      delta: delta([
        ['billing', 'proxy', T0 - 5000, 2],
        ['report', 'files', T0 + 1000],
      ]),
      sequence: 1,
      nowMs: T0 + 1000,
    });
    expect(b.consumers).toEqual([
      {
        serviceAccount: 'report',
        via: 'files',
        lastUsedAt: '2026-12-01T12:30:01Z',
        requests24h: 1,
        requestsByHour: { '2026-12-01T12': 1 },
      },
      {
        serviceAccount: 'billing',
        via: 'proxy',
        lastUsedAt: '2026-12-01T12:30:00Z',
        requests24h: 5,
        requestsByHour: { '2026-12-01T12': 5 },
      },
    ]);
    expect(b.totals).toMatchObject({ requests: 6, requests24h: 6, consumers: 2 });
    expect(b.lastUsedAt).toBe('2026-12-01T12:30:01Z');
    expect(b.replicas?.map((r) => [r.name, r.sequence])).toEqual([
      ['gw-b', 1],
      ['gw-a', 1],
    ]);
    expect(alreadyApplied(b, 'gw-a', 1)).toBe(true);
    expect(alreadyApplied(b, 'gw-a', 2)).toBe(false);
  });

  it('drops hour buckets older than 24 h from the 24 h counts, keeps them in the all-time total', () => {
    const old = mergeUsage(undefined, {
      ...base,
      delta: delta([['billing', 'proxy', T0 - 30 * HOUR, 7]]),
      sequence: 1,
      nowMs: T0 - 30 * HOUR,
    });
    const now = mergeUsage(old, { ...base, delta: delta([['billing', 'proxy', T0, 1]]), sequence: 2, nowMs: T0 });
    expect(now.consumers?.[0]).toMatchObject({ requests24h: 1, requestsByHour: { [hourKey(T0)]: 1 } });
    expect(now.totals).toMatchObject({ requests: 8, requests24h: 1 });
  });

  it('keeps the most recent consumers only', () => {
    const uses = Array.from(
      { length: MAX_CONSUMERS + 5 },
      (_, i) => [`sa-${i}`, 'proxy', T0 + i * 1000] as [string, 'proxy', number],
    );
    const u = mergeUsage(undefined, { ...base, delta: delta(uses), sequence: 1, nowMs: T0 + 60_000 });
    expect(u.consumers).toHaveLength(MAX_CONSUMERS);
    expect(u.consumers?.[0]?.serviceAccount).toBe(`sa-${MAX_CONSUMERS + 4}`);
    expect(u.totals?.requests24h).toBe(MAX_CONSUMERS + 5);
  });

  it('replaces its own stream entries, keeps other replicas until they expire', () => {
    const a = mergeUsage(undefined, { ...base, delta: {}, streams: { agent: 2 }, sequence: 1, nowMs: T0 });
    const b = mergeUsage(a, {
      ...base,
      replica: 'gw-b',
      delta: {},
      streams: { other: 1 },
      sequence: 1,
      nowMs: T0 + 1000,
    });
    expect(b.activeStreams?.map((s) => [s.replica, s.serviceAccount, s.streams]).sort()).toEqual([
      ['gw-a', 'agent', 2],
      ['gw-b', 'other', 1],
    ]);
    const closed = mergeUsage(b, { ...base, delta: {}, streams: {}, sequence: 2, nowMs: T0 + 2000 });
    expect(closed.activeStreams?.map((s) => s.replica)).toEqual(['gw-b']);
    expect(activeUse(closed, T0 + 2000, 0).streaming).toEqual(['other']);
    expect(activeUse(closed, T0 + 1000 + 180_001, 0).streaming).toEqual([]);
  });

  it('combines deltas without losing counts', () => {
    const c = combineDeltas(
      delta([['x', 'proxy', T0, 2]]),
      delta([
        ['x', 'proxy', T0 + 10, 3],
        ['y', 'files', T0, 0],
      ]),
    );
    expect(c['x|proxy']).toEqual({
      serviceAccount: 'x',
      via: 'proxy',
      lastUsedAtMs: T0 + 10,
      requestsByHour: { [hourKey(T0)]: 5 },
    });
    expect(c['y|files']?.requestsByHour).toEqual({});
  });

  it('counts a connection as in use within the window or while streaming', () => {
    const u = mergeUsage(undefined, { ...base, delta: delta([['billing', 'proxy', T0]]), sequence: 1, nowMs: T0 });
    expect(inUse(activeUse(u, T0 + 23 * HOUR, 24 * HOUR))).toBe(true);
    expect(inUse(activeUse(u, T0 + 25 * HOUR, 24 * HOUR))).toBe(false);
    expect(inUse(activeUse(u, T0, 0))).toBe(false);
    expect(inUse(activeUse(undefined, T0, 24 * HOUR))).toBe(false);
  });

  it('tells a usage-only update from any other', () => {
    const a = {
      metadata: { name: 'x', resourceVersion: '1' },
      spec: { type: 't' },
      status: { conditions: [], usage: { lastUsedAt: 'a' } },
    };
    expect(
      onlyUsageChanged(
        { ...a, metadata: { name: 'x', resourceVersion: '2' }, status: { conditions: [], usage: { lastUsedAt: 'b' } } },
        a,
      ),
    ).toBe(true);
    expect(onlyUsageChanged({ ...a, status: { conditions: [{ type: 'Ready' }], usage: { lastUsedAt: 'b' } } }, a)).toBe(
      false,
    );
    expect(onlyUsageChanged(a, undefined)).toBe(false);
  });
});
