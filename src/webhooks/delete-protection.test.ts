import { describe, expect, it } from 'vitest';
import type { AdmissionRequest } from './admission.js';
import { checkConnectionDelete, type DeleteProtectionDeps } from './delete-protection.js';

const NOW = Date.parse('2026-12-01T12:00:00Z');

function deps(terminating = false): DeleteProtectionDeps & { events: string[] } {
  const events: string[] = [];
  return {
    events,
    windowMs: 24 * 3_600_000,
    now: () => NOW,
    namespaceTerminating: async () => terminating,
    connectionsIn: () => [],
    record: async (about, _t, reason, message) => void events.push(`${about.kind} ${reason} ${message}`),
  };
}

function del(usage: object | undefined, annotations?: Record<string, string>, dryRun = false): AdmissionRequest {
  return {
    uid: 'u1',
    kind: { group: 'atoll.dev', version: 'v1alpha1', kind: 'ExternalConnection' },
    operation: 'DELETE',
    namespace: 'acme',
    name: 'billing',
    dryRun,
    userInfo: { username: 'bob' },
    oldObject: {
      metadata: { name: 'billing', namespace: 'acme', uid: 'x', annotations },
      spec: {},
      status: usage ? { usage } : {},
    },
  };
}

const recent = { consumers: [{ serviceAccount: 'billing-worker', via: 'proxy', lastUsedAt: '2026-12-01T11:00:00Z' }] };

describe('delete protection', () => {
  it('refuses a delete while in use, naming the consumers and how to proceed', async () => {
    const d = deps();
    const res = await checkConnectionDelete(del(recent), d);
    expect(res.allowed).toBe(false);
    expect(res.status?.message).toContain('serviceaccount billing-worker (proxy, last used 2026-12-01T11:00:00Z)');
    expect(res.status?.message).toContain('atoll.dev/allow-delete=true');
    expect(d.events).toEqual([expect.stringContaining('ExternalConnection DeleteRefused delete by bob refused')]);
  });

  it('counts a streaming agent even outside the window', async () => {
    const res = await checkConnectionDelete(
      del({
        activeStreams: [{ replica: 'gw', serviceAccount: 'db-agent', streams: 1, expiresAt: '2026-12-01T12:02:00Z' }],
      }),
      { ...deps(), windowMs: 0 },
    );
    expect(res.status?.message).toContain('db-agent (agent streaming now)');
  });

  it('lets the delete through with the annotation, an old use, or a terminating namespace, and records the actor', async () => {
    const d = deps();
    expect((await checkConnectionDelete(del(recent, { 'atoll.dev/allow-delete': 'true' }), d)).allowed).toBe(true);
    expect(
      (
        await checkConnectionDelete(
          del({ consumers: [{ serviceAccount: 'a', via: 'proxy', lastUsedAt: '2026-11-29T00:00:00Z' }] }),
          d,
        )
      ).allowed,
    ).toBe(true);
    const t = deps(true);
    expect((await checkConnectionDelete(del(recent), t)).allowed).toBe(true);
    expect(d.events[0]).toContain('ConnectionDeleted deleted by bob with atoll.dev/allow-delete while in use');
    expect(t.events[0]).toContain(
      'Namespace DeletedWithNamespace connection billing deleted with namespace acme by bob',
    );
  });

  it('records nothing on a dry run', async () => {
    const d = deps();
    expect((await checkConnectionDelete(del(recent, undefined, true), d)).allowed).toBe(false);
    expect(d.events).toEqual([]);
  });
});
