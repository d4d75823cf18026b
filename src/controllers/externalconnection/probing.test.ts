import { describe, expect, it } from 'vitest';
import type { ExternalConnection } from '../../api/v1alpha1/index.js';
import type { KubeObject } from '../../kube/client.js';
import { lastProbeRefreshMs, persistedProbe, publishedProbe } from './probing.js';

type Conn = ExternalConnection & KubeObject;

const at = '2026-12-01T10:00:00.000Z';
function conn(lastProbe: Record<string, unknown> | undefined, authenticatedReason = 'Succeeded'): Conn {
  return {
    apiVersion: 'atoll.dev/v1alpha1',
    kind: 'ExternalConnection',
    metadata: { name: 'c', namespace: 'ns', generation: 2 },
    spec: { type: 'http-api' },
    status: {
      conditions: [
        {
          type: 'Reachable',
          status: 'True',
          reason: 'Succeeded',
          message: 'HTTP 200 from 127.0.0.1:80',
          lastTransitionTime: at,
        },
        {
          type: 'Authenticated',
          status: 'True',
          reason: authenticatedReason,
          message: 'HTTP 200 from 127.0.0.1:80',
          lastTransitionTime: at,
        },
      ],
      ...(lastProbe ? { lastProbe } : {}),
    },
  };
}

/** status.lastProbe as a previous probe wrote it: a success, with its inputs and the test request it answered. */
const LAST_PROBE = {
  time: at,
  durationMs: 12,
  result: 'Succeeded',
  message: 'HTTP 200 from 127.0.0.1:80',
  inputs: 'digest',
  testRequest: 't1',
};

describe('persistedProbe', () => {
  it('rebuilds the result a previous process wrote, inputs and answered test request included', () => {
    const record = persistedProbe(conn(LAST_PROBE));
    expect(record).toEqual({
      subject: 'digest',
      tag: 'digest|t1',
      finishedAt: Date.parse(at),
      outcome: {
        reachable: 'True',
        authenticated: 'True',
        reason: 'Succeeded',
        message: 'HTTP 200 from 127.0.0.1:80',
        durationMs: 12,
      },
    });
  });

  it('adopts nothing written without inputs (an older operator), or whose conditions no longer say what it found', () => {
    expect(persistedProbe(conn({ time: at, durationMs: 12, result: 'Succeeded', message: 'ok' }))).toBeUndefined();
    expect(persistedProbe(conn(undefined))).toBeUndefined();
    expect(
      persistedProbe(conn({ time: at, result: 'Succeeded', inputs: 'digest' }, 'AuthenticationFailed')),
    ).toBeUndefined();
    expect(persistedProbe(conn({ time: 'yesterday', result: 'Succeeded', inputs: 'digest' }))).toBeUndefined();
  });
});

describe('refresh of an unchanged probe result', () => {
  const c = conn(LAST_PROBE);
  /** The latest probe: same request, same outcome, `minutes` after the persisted one. */
  const later = (minutes: number) => ({ ...persistedProbe(c)!, finishedAt: Date.parse(at) + minutes * 60_000 });

  it('waits 5 minutes up to 3,000 connections, then spreads 10 writes a second over all of them', () => {
    expect(lastProbeRefreshMs(0)).toBe(300_000);
    expect(lastProbeRefreshMs(3_000)).toBe(300_000);
    expect(lastProbeRefreshMs(10_000)).toBe(1_000_000);
  });

  it('publishes the persisted result unchanged (no write) while it is younger than the refresh period', () => {
    expect(publishedProbe(c, later(4), lastProbeRefreshMs(100))).toBe(c.status!.lastProbe);
    const refreshed = publishedProbe(c, later(6), lastProbeRefreshMs(100));
    expect(refreshed.time).toBe(new Date(Date.parse(at) + 6 * 60_000).toISOString());
    // With 10,000 connections the same result six minutes on is not written again.
    expect(publishedProbe(c, later(6), lastProbeRefreshMs(10_000))).toBe(c.status!.lastProbe);
    expect(publishedProbe(c, later(17), lastProbeRefreshMs(10_000)).time).not.toBe(at);
  });
});
