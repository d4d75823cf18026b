import { describe, expect, it } from 'vitest';
import { CONNECTION_COUNT, connectionLimit, connectionQuota, quotaEnforcing, quotaInForce } from './connection-quota.js';

describe('connection quota', () => {
  it('takes spec.policy.maxConnections, else the operator default (0 is a limit, not unset)', () => {
    expect(connectionLimit({ spec: { policy: { maxConnections: 3 } } }, 500)).toMatchObject({ limit: 3, source: 'spec.policy.maxConnections' });
    expect(connectionLimit({ spec: { policy: { maxConnections: 0 } } }, 500).limit).toBe(0);
    expect(connectionLimit({ spec: {} }, 500).limit).toBe(500);
  });

  it('counts ExternalConnections in the namespace', () => {
    expect(connectionQuota('acme', 3, {}).spec).toEqual({ hard: { [CONNECTION_COUNT]: '3' } });
  });

  it('is in force only once the quota controller has written the same hard limit and a usage', () => {
    const q = connectionQuota('acme', 3, {});
    expect(quotaInForce(q, 3)).toBe(false);
    expect(quotaInForce({ ...q, status: { hard: { [CONNECTION_COUNT]: '2' }, used: { [CONNECTION_COUNT]: '0' } } }, 3)).toBe(false);
    expect(quotaInForce({ ...q, status: { hard: { [CONNECTION_COUNT]: '3' }, used: { [CONNECTION_COUNT]: '0' } } }, 3)).toBe(true);
  });

  it('is enforcing, at some limit, only once the quota controller has written a hard limit and a usage', () => {
    const q = connectionQuota('acme', 3, {});
    expect(quotaEnforcing(undefined)).toBe(false);
    expect(quotaEnforcing(q)).toBe(false);
    expect(quotaEnforcing({ ...q, status: { hard: { [CONNECTION_COUNT]: '2' } } })).toBe(false);
    expect(quotaEnforcing({ ...q, status: { hard: { [CONNECTION_COUNT]: '2' }, used: { [CONNECTION_COUNT]: '0' } } })).toBe(true);
  });
});
