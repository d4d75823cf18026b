import { describe, expect, it } from 'vitest';
import type { ProbeDriver } from '../probe-types.js';
import { DriverRegistry, getDriver } from './index.js';

const fake = (name: string): ProbeDriver => ({
  name,
  probe: async () => ({ reachable: 'True', authenticated: 'True', reason: 'Succeeded', message: '', durationMs: 0 }),
});

describe('driver registry', () => {
  it('ships every built-in driver under its own name', () => {
    for (const name of ['postgresql', 'mysql', 'redis', 's3', 'prometheus']) expect(getDriver(name)?.name).toBe(name);
    expect(getDriver('nope')).toBeUndefined();
  });

  it('refuses a duplicate registration', () => {
    const registry = new DriverRegistry();
    registry.register(fake('x'));
    expect(() => registry.register(fake('x'))).toThrow(/already registered: x/);
    expect(registry.names()).toEqual(['x']);
  });
});
