import { describe, expect, it } from 'vitest';
import { resolveEgress, type ResolvedAddress } from './egress.js';
import type { EgressPolicy } from './probe-types.js';

/**
 * Red-team checks of the egress decision memo (ADR 0030): a remembered answer
 * for one address must never stand in for another address, for a narrowed
 * policy, or for a policy that can still change.
 */
const frozenPolicy = (cidrs: string[]): EgressPolicy =>
  Object.freeze({ allowCIDRs: Object.freeze([...cidrs]) as string[] });

/** A resolver whose answer the test changes between requests (DNS rebinding). */
function rebinding(first: ResolvedAddress[]): {
  answer: ResolvedAddress[];
  resolve: (h: string) => Promise<ResolvedAddress[]>;
} {
  const state = { answer: first, resolve: async () => state.answer };
  return state;
}

describe('egress memo under attack', () => {
  it('refuses a name rebound to a disallowed address on the next request under the same frozen policy', async () => {
    const policy = frozenPolicy(['10.0.0.0/8']);
    const dns = rebinding([{ address: '10.1.2.3', family: 4 }]);
    await expect(resolveEgress('api.example', policy, dns.resolve)).resolves.toEqual({
      address: '10.1.2.3',
      family: 4,
    });
    for (const address of ['192.168.1.1', '127.0.0.1', '169.254.169.254', '::ffff:192.168.1.1', '::ffff:a9fe:a9fe']) {
      dns.answer = [{ address, family: address.includes(':') ? 6 : 4 }];
      await expect(resolveEgress('api.example', policy, dns.resolve), address).rejects.toMatchObject({
        reason: 'EgressDenied',
      });
    }
    // A remembered allowed address does not carry a denied one answered beside it.
    dns.answer = [
      { address: '10.1.2.3', family: 4 },
      { address: '192.168.1.1', family: 4 },
    ];
    await expect(resolveEgress('api.example', policy, dns.resolve)).rejects.toMatchObject({ reason: 'EgressDenied' });
  });

  it('a narrowed policy (a new frozen object) refuses at once what the old one allowed and remembered', async () => {
    const wide = frozenPolicy(['10.0.0.0/8']);
    await expect(resolveEgress('10.1.2.3', wide)).resolves.toMatchObject({ address: '10.1.2.3' });
    const narrowed = frozenPolicy(['10.9.0.0/16']);
    await expect(resolveEgress('10.1.2.3', narrowed)).rejects.toMatchObject({ reason: 'EgressDenied' });
    // The old policy's memo is its own: it still answers for itself only.
    await expect(resolveEgress('10.1.2.3', wide)).resolves.toMatchObject({ address: '10.1.2.3' });
  });

  it('a policy that can still change (not frozen) is decided afresh after an in-place change', async () => {
    const policy: EgressPolicy = { allowCIDRs: ['10.0.0.0/8'] };
    await expect(resolveEgress('10.1.2.3', policy)).resolves.toMatchObject({ address: '10.1.2.3' });
    policy.allowCIDRs.length = 0;
    await expect(resolveEgress('10.1.2.3', policy)).rejects.toMatchObject({ reason: 'EgressDenied' });
    // A frozen object whose list is not frozen is not remembered either.
    const half = Object.freeze({ allowCIDRs: ['10.0.0.0/8'] });
    await expect(resolveEgress('10.1.2.3', half)).resolves.toMatchObject({ address: '10.1.2.3' });
    half.allowCIDRs.pop();
    await expect(resolveEgress('10.1.2.3', half)).rejects.toMatchObject({ reason: 'EgressDenied' });
  });

  it('more distinct addresses than the memo holds are each still checked', async () => {
    const policy = frozenPolicy(['10.0.0.0/24']);
    for (let i = 0; i < 600; i++) {
      const address = `10.0.${i >> 8}.${i & 255}`;
      const allowed = i < 256;
      const outcome = resolveEgress(address, policy);
      if (allowed) await expect(outcome, address).resolves.toMatchObject({ address });
      else await expect(outcome, address).rejects.toMatchObject({ reason: 'EgressDenied' });
    }
  });
});
