import { describe, expect, it } from 'vitest';
import { ProbeFailure } from '../probe-failure.js';
import type { ProbeDriver } from '../probe-types.js';
import { DriverRegistry, drivers, getDriver } from './index.js';

const fake = (name: string): ProbeDriver => ({
  name,
  probe: async () => ({ reachable: 'True', authenticated: 'True', reason: 'Succeeded', message: '', durationMs: 0 }),
});

describe('driver registry', () => {
  it('ships every built-in driver under its own name', () => {
    for (const name of ['postgresql', 'mysql', 'redis', 's3', 'prometheus']) expect(getDriver(name)?.name).toBe(name);
    expect(getDriver('nope')).toBeUndefined();
  });

  it('loads each driver on its first probe, and that driver answers', async () => {
    const ctx = { settings: {}, credentials: {}, timeoutMs: 1_000, egress: { allowCIDRs: [] }, maxResponseBytes: 1024 };
    for (const name of drivers.names()) {
      // Each refuses the empty settings (or, for a driver that reads its key first, the missing credential).
      const reason = await getDriver(name)!
        .probe(ctx)
        .then(
          (outcome) => outcome.reason,
          (err: unknown) => (err instanceof ProbeFailure ? err.reason : err),
        );
      expect({ name, reason }).toEqual({
        name,
        reason: name === 'gcp-service-account' ? 'CredentialsMissing' : 'InvalidSettings',
      });
    }
  });

  it('refuses a duplicate registration', () => {
    const registry = new DriverRegistry();
    registry.register(fake('x'));
    expect(() => registry.register(fake('x'))).toThrow(/already registered: x/);
    expect(registry.names()).toEqual(['x']);
  });
});
