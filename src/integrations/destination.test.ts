import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { packageRoot } from '../testing/binaries.js';
import { destinationDigest, destinationSettings } from './destination.js';
import type { IntegrationTypeObject } from './probe-types.js';

const type = (name: string) => parse(readFileSync(path.join(packageRoot(), 'config', 'types', `${name}.yaml`), 'utf8')) as IntegrationTypeObject;

describe('destination of a connection', () => {
  it('covers URL template settings of HTTP types and host/port/TLS of drivers', () => {
    expect(destinationSettings(type('http-api'))).toEqual(expect.arrayContaining(['auth', 'baseURL']));
    expect(destinationSettings(type('datadog'))).toContain('site');
    expect(destinationSettings(type('postgresql'))).toEqual(expect.arrayContaining(['host', 'port', 'sslmode']));
    expect(destinationSettings(type('postgresql'))).not.toContain('database');
  });

  it('changes when the credential would go elsewhere, and only then', () => {
    const pg = type('postgresql');
    const base = { host: 'db.example.com', port: 5432, database: 'app', user: 'app', sslmode: 'verify-full' };
    const d = destinationDigest(pg, base);
    expect(destinationDigest(pg, { ...base, database: 'other' })).toBe(d);
    expect(destinationDigest(pg, { ...base, host: 'evil.example.com' })).not.toBe(d);
    expect(destinationDigest(pg, { ...base, sslmode: 'disable' })).not.toBe(d);
    // Defaults count as set: spelling out the default port changes nothing.
    const { port: _p, ...noPort } = base;
    expect(destinationDigest(pg, noPort)).toBe(d);
  });
});
