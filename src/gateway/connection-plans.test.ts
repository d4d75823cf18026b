import { describe, expect, it } from 'vitest';
import type { ConnectionObject, CredentialSnapshot, TypeObject, WorkspaceObject } from './connection-directory.js';
import { ConnectionPlans } from './connection-plans.js';
import { GatewayError } from './errors.js';
import { requestPlan, upstreamHref } from './upstream-plan.js';

const type = (
  rv: string,
  schema: Record<string, unknown> = { type: 'object', properties: { base: { type: 'string', format: 'uri' } } },
): TypeObject =>
  ({
    metadata: { name: 'api', resourceVersion: rv },
    spec: {
      displayName: 'API',
      category: 'api',
      settingsSchema: schema,
      credentialFields: [{ name: 'token' }],
      gateway: { baseURL: '{{settings.base}}', auth: { type: 'query', queryParam: 'key', credential: 'token' } },
    },
  }) as never;
const connection = (base: unknown): ConnectionObject => ({
  metadata: { name: 'c', namespace: 'ns', uid: 'uid-1' },
  spec: { type: 'api', settings: { base } },
});
const workspace = (cidrs: string[]): WorkspaceObject => ({
  metadata: { name: 'ws', namespace: 'ns' },
  spec: { policy: { egress: { allowCIDRs: cidrs } } },
});
const snapshot = (token: string, version: number): CredentialSnapshot => ({
  revision: String(version),
  values: { token },
  versions: { token: version },
});

describe('ConnectionPlans', () => {
  it('reuses a plan only while the connection, type, workspace and credential snapshot are the very same objects', () => {
    const plans = new ConnectionPlans();
    const conn = connection('https://api.example.com/v1');
    const t = type('1');
    const ws = workspace(['10.0.0.0/8']);
    const first = snapshot('tok-one-111111', 1);
    const plan = plans.plan('ns', conn, t, ws, first);
    expect(plans.plan('ns', conn, t, ws, first)).toBe(plan);
    expect(plan.egress).toEqual({ allowCIDRs: ['10.0.0.0/8'] });
    expect(plan.owner).toEqual({ namespace: 'ns', name: 'c', uid: 'uid-1', credentialVersion: '{"token":1}' });
    // Shared by every request of the plan, and remembered by the egress guard and the pools: never changed.
    expect(Object.isFrozen(plan.egress) && Object.isFrozen(plan.egress.allowCIDRs) && Object.isFrozen(plan.owner)).toBe(
      true,
    );

    // A rotation (new snapshot) is served from the next request on: the old credential is never reused.
    const rotated = plans.plan('ns', conn, t, ws, snapshot('tok-two-222222', 2));
    expect(rotated).not.toBe(plan);
    expect(upstreamHref(requestPlan(rotated.target, '/x', '?key=caller&q=1'))).toBe(
      'https://api.example.com/v1/x?key=tok-two-222222&q=1',
    );
    expect(rotated.owner.credentialVersion).toBe('{"token":2}');

    // A changed workspace policy (a new Workspace object) gives a new egress policy.
    expect(plans.plan('ns', conn, t, workspace([]), first).egress).toEqual({ allowCIDRs: [] });
    // A changed connection (new object) is planned again from its own settings.
    const moved = plans.plan('ns', connection('https://other.example.com'), t, ws, first);
    expect(requestPlan(moved.target, '', '').destination.host).toBe('other.example.com');
  });

  it('refuses settings the type rejects on every request, remembering nothing', () => {
    const plans = new ConnectionPlans();
    const conn = connection(42);
    const t = type('1');
    for (let i = 0; i < 2; i++) {
      expect(() => plans.plan('ns', conn, t, workspace([]), snapshot('tok-one-111111', 1))).toThrow(GatewayError);
    }
  });

  it('shares the rendered headers and secrets between requests, frozen', () => {
    const plans = new ConnectionPlans();
    const plan = plans.plan(
      'ns',
      connection('https://api.example.com'),
      type('1'),
      workspace([]),
      snapshot('tok-one-111111', 1),
    );
    const a = requestPlan(plan.target, '/a', '');
    const b = requestPlan(plan.target, '/b', '');
    expect(a.secrets).toBe(b.secrets);
    expect(Object.isFrozen(a.secrets) && Object.isFrozen(a.headers)).toBe(true);
    expect([a.path, b.path]).toEqual(['/a?key=tok-one-111111', '/b?key=tok-one-111111']);
  });
});
