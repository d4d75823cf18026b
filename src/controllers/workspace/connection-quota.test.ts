import { describe, expect, it } from 'vitest';
import {
  CONNECTION_COUNT,
  connectionLimit,
  countOf,
  connectionQuota,
  quotaEnforcing,
  quotaInForce,
} from './connection-quota.js';

describe('connection quota', () => {
  it('takes spec.policy.maxConnections, else the operator default (0 is a limit, not unset)', () => {
    expect(connectionLimit({ spec: { policy: { maxConnections: 3 } } }, 500)).toMatchObject({
      limit: 3,
      source: 'spec.policy.maxConnections',
    });
    expect(connectionLimit({ spec: { policy: { maxConnections: 0 } } }, 500).limit).toBe(0);
    expect(connectionLimit({ spec: {} }, 500).limit).toBe(500);
  });

  it('counts ExternalConnections in the namespace', () => {
    expect(connectionQuota('acme', 3, {}).spec).toEqual({ hard: { [CONNECTION_COUNT]: '3' } });
  });

  it('is in force only once the quota controller has written the same hard limit and a usage', () => {
    const q = connectionQuota('acme', 3, {});
    expect(quotaInForce(q, 3)).toBe(false);
    expect(
      quotaInForce({ ...q, status: { hard: { [CONNECTION_COUNT]: '2' }, used: { [CONNECTION_COUNT]: '0' } } }, 3),
    ).toBe(false);
    expect(
      quotaInForce({ ...q, status: { hard: { [CONNECTION_COUNT]: '3' }, used: { [CONNECTION_COUNT]: '0' } } }, 3),
    ).toBe(true);
  });

  it('reads the hard limit in the canonical form the API server writes (10000 is "10k")', () => {
    const q = connectionQuota('acme', 10_000, {});
    expect(
      quotaInForce(
        { ...q, status: { hard: { [CONNECTION_COUNT]: '10k' }, used: { [CONNECTION_COUNT]: '0' } } },
        10_000,
      ),
    ).toBe(true);
    expect(
      quotaInForce({ ...q, status: { hard: { [CONNECTION_COUNT]: '1k' }, used: { [CONNECTION_COUNT]: '0' } } }, 10_000),
    ).toBe(false);
    expect(countOf('1e3')).toBe(1000);
    expect(countOf('500')).toBe(500);
    expect(countOf('1.5k')).toBeUndefined();
    expect(countOf(undefined)).toBeUndefined();
  });

  it('is enforcing, at some limit, only once the quota controller has written a hard limit and a usage', () => {
    const q = connectionQuota('acme', 3, {});
    expect(quotaEnforcing(undefined)).toBe(false);
    expect(quotaEnforcing(q)).toBe(false);
    expect(quotaEnforcing({ ...q, status: { hard: { [CONNECTION_COUNT]: '2' } } })).toBe(false);
    expect(
      quotaEnforcing({ ...q, status: { hard: { [CONNECTION_COUNT]: '2' }, used: { [CONNECTION_COUNT]: '0' } } }),
    ).toBe(true);
  });
});
