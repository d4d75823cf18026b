import { describe, expect, it } from 'vitest';
import type { IntegrationTypeObject } from './probe-types.js';
import { isAbsoluteUri, isHostname, validateSettings } from './settings.js';

function redisType(generation = 1, portMax = 65535): IntegrationTypeObject {
  return {
    metadata: { name: 'redis', generation },
    spec: {
      settingsSchema: {
        type: 'object',
        additionalProperties: false,
        required: ['host'],
        properties: {
          host: { type: 'string', format: 'hostname' },
          port: { type: 'integer', minimum: 1, maximum: portMax, default: 6379 },
          tls: { type: 'boolean', default: false },
          mode: { type: 'string', enum: ['a', 'b'] },
          url: { type: 'string', format: 'uri' },
        },
      },
    },
  };
}

describe('validateSettings', () => {
  it('applies defaults to a copy and leaves the input alone', () => {
    const input = { host: 'cache.internal' };
    const result = validateSettings(redisType(), input);
    expect(result).toEqual({ ok: true, settings: { host: 'cache.internal', port: 6379, tls: false }, errors: [] });
    expect(input).toEqual({ host: 'cache.internal' });
  });

  it('names every offending field and what is wrong', () => {
    const result = validateSettings(redisType(), { port: 70000, tls: 'yes', mode: 'c', extra: 1, url: 'not a uri' });
    expect(result.ok).toBe(false);
    const byField = Object.fromEntries(result.errors.map((e) => [e.field, e.message]));
    expect(byField['spec.settings.host']).toBe('spec.settings.host is required');
    expect(byField['spec.settings.port']).toBe('spec.settings.port must be <= 65535');
    expect(byField['spec.settings.tls']).toBe('spec.settings.tls must be boolean');
    expect(byField['spec.settings.mode']).toBe('spec.settings.mode must be one of: "a", "b"');
    expect(byField['spec.settings.extra']).toMatch(
      /^spec.settings.extra is not a known setting of this type \(known settings: host, port, .*\)$/,
    );
    expect(byField['spec.settings.url']).toBe('spec.settings.url must be a valid uri');
  });

  it('checks the hostname format itself', () => {
    expect(validateSettings(redisType(), { host: 'bad_host!' }).errors).toEqual([
      { field: 'spec.settings.host', message: 'spec.settings.host must be a valid hostname' },
    ]);
  });

  it('rejects settings that are not an object', () => {
    expect(validateSettings(redisType(), ['x']).errors[0]?.field).toBe('spec.settings');
    expect(validateSettings(redisType(), 'x').ok).toBe(false);
  });

  it('compiles per type version: a new generation sees the new schema, the old one stays cached', () => {
    expect(validateSettings(redisType(7, 65535), { host: 'h', port: 9000 }).ok).toBe(true);
    expect(validateSettings(redisType(8, 8000), { host: 'h', port: 9000 }).ok).toBe(false);
    expect(validateSettings(redisType(7, 65535), { host: 'h', port: 9000 }).ok).toBe(true);
  });

  it('accepts a bare spec and settings when there is no schema', () => {
    expect(
      validateSettings({ settingsSchema: { type: 'object', properties: { a: { default: 1 } } } }, undefined),
    ).toEqual({ ok: true, settings: { a: 1 }, errors: [] });
    expect(validateSettings({ spec: {} }, { anything: true }).ok).toBe(true);
  });

  it('reports an invalid schema against the type, not the settings', () => {
    const broken: IntegrationTypeObject = {
      metadata: { name: 'broken', generation: 1 },
      spec: { settingsSchema: { type: 'no-such-type' } },
    };
    expect(validateSettings(broken, {}).errors).toEqual([
      { field: 'spec.settingsSchema', message: 'the IntegrationType has an invalid settingsSchema' },
    ]);
  });
});

describe('formats', () => {
  it('hostname: RFC 1123 names and IP literals', () => {
    for (const ok of ['a', 'db.example.com', 'db.example.com.', 'x-1.y', '10.0.0.1', '::1'])
      expect(isHostname(ok)).toBe(true);
    for (const bad of ['', '-a.com', 'a-.com', 'a..b', 'a_b.com', 'a/b', `${'a'.repeat(64)}.com`, 'http://x'])
      expect(isHostname(bad)).toBe(false);
  });

  it('uri: absolute with a scheme', () => {
    for (const ok of ['https://x.example/p?q=1', 'http://127.0.0.1:9090', 'redis://h:6379'])
      expect(isAbsoluteUri(ok)).toBe(true);
    for (const bad of ['x.example/p', '/relative', 'http://a b', 'https://']) expect(isAbsoluteUri(bad)).toBe(false);
  });

  it('says what a pattern-checked setting should look like instead of printing the regular expression', () => {
    const type = {
      spec: {
        displayName: 'x',
        category: 'api',
        probe: { driver: 'x' },
        settingsSchema: {
          type: 'object',
          properties: {
            baseURL: {
              type: 'string',
              description: 'Scheme, host and optional path, without a trailing slash',
              pattern: '^https?://[^/]+(/.*[^/])?$',
            },
          },
        },
      },
    };
    const result = validateSettings(type, { baseURL: 'https://api.example.com/' });
    expect(result.errors[0]?.message).toBe(
      'spec.settings.baseURL is not in the form this setting expects: Scheme, host and optional path, without a trailing slash',
    );
    expect(result.errors[0]?.message).not.toContain('^https');
  });
});
