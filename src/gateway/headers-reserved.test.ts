import type { IncomingHttpHeaders } from 'node:http';
import { describe, expect, it } from 'vitest';
import { forwardableRequestHeaders } from './headers.js';
import { planConnection, requestPlan } from './upstream-plan.js';

/**
 * Red-team checks of the reserved header names memoised per plan headers
 * object (ADR 0030): a caller can never send a header the gateway injects,
 * whatever the case, repetition or Connection listing, and a rotation's new
 * plan reserves its own names.
 */
const gateway = {
  baseURL: 'https://api.example.com/',
  headers: { 'X-Api-Key': '{{ credentials.token }}', 'X-Tenant': 'fixed' },
  auth: { type: 'bearer', credential: 'token' },
} as const;

function target(token: string) {
  return planConnection(gateway, { settings: {}, credentials: { token } });
}

describe('reserved injected header names under attack', () => {
  it('drops every caller copy of an injected header: case variants as Node delivers them, arrays, Connection-listed', () => {
    const plan = requestPlan(target('tok-aaaaaaaa'), '/x', '');
    expect(Object.isFrozen(plan.headers)).toBe(true);
    expect(Object.keys(plan.headers).sort()).toEqual(['authorization', 'x-api-key', 'x-tenant']);
    const attacks: IncomingHttpHeaders[] = [
      { 'x-api-key': 'attacker', authorization: 'Bearer attacker' },
      { 'x-api-key': ['attacker', 'attacker2'], 'x-tenant': 'other' },
      { connection: 'x-api-key', 'x-api-key': 'attacker' },
      { connection: 'keep-alive, X-Tenant', 'x-tenant': 'other', 'proxy-authorization': 'Basic eA==' },
    ];
    // Repeated with the same (frozen) plan headers object, so the memo answers from the second round on.
    for (let round = 0; round < 3; round++) {
      for (const caller of attacks) {
        const out = forwardableRequestHeaders(caller, plan.headers);
        for (const name of Object.keys(out)) expect(Object.keys(plan.headers), name).not.toContain(name.toLowerCase());
        expect(JSON.stringify(out)).not.toContain('attacker');
        expect(out).not.toHaveProperty('x-tenant');
        expect(out).not.toHaveProperty('proxy-authorization');
      }
    }
  });

  it('a new plan (rotation, changed type) reserves its own names, not a remembered set', () => {
    const first = requestPlan(target('tok-aaaaaaaa'), '/x', '');
    forwardableRequestHeaders({}, first.headers);
    const other = planConnection(
      { baseURL: 'https://api.example.com/', headers: { 'X-Other-Key': '{{ credentials.token }}' } },
      { settings: {}, credentials: { token: 'tok-bbbbbbbb' } },
    );
    const out = forwardableRequestHeaders({ 'x-other-key': 'attacker', 'x-api-key': 'passes' }, other.headers);
    expect(out).toEqual({ 'x-api-key': 'passes' });
  });

  it('an unfrozen names object is read afresh on every call', () => {
    const names: Record<string, string> = { 'x-one': 'v' };
    expect(forwardableRequestHeaders({ 'x-one': 'a', 'x-two': 'b' }, names)).toEqual({ 'x-two': 'b' });
    names['x-two'] = 'v';
    expect(forwardableRequestHeaders({ 'x-one': 'a', 'x-two': 'b' }, names)).toEqual({});
    expect(forwardableRequestHeaders({ 'x-one': 'a', 'x-two': 'b' }, ['X-Two'])).toEqual({ 'x-one': 'a' });
  });
});
