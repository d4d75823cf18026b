import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { packageRoot } from '../dev/binaries.js';
import {
  changedDestinationParts,
  destinationDigest,
  destinationParts,
  legacyDestinationDigest,
  legacyDestinationSettings,
} from './destination.js';
import type { IntegrationTypeObject } from './probe-types.js';

const type = (name: string) =>
  parse(readFileSync(path.join(packageRoot(), 'config', 'types', `${name}.yaml`), 'utf8')) as IntegrationTypeObject;

describe('destination of a connection', () => {
  it('covers host, port and TLS of drivers, not the database', () => {
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

  it('takes scheme, host and port of a URL setting; its path only where the type declares it', () => {
    const api = type('http-api');
    const d = destinationDigest(api, { baseURL: 'https://api.example.com/v1' });
    expect(destinationDigest(api, { baseURL: 'https://api.example.com/v2' })).toBe(d);
    expect(destinationDigest(api, { baseURL: 'https://api.example.com:443/v1', probePath: '/me' })).toBe(d);
    expect(destinationDigest(api, { baseURL: 'http://api.example.com/v1' })).not.toBe(d);
    expect(destinationDigest(api, { baseURL: 'https://api.example.com:8443/v1' })).not.toBe(d);
    expect(destinationDigest(api, { baseURL: 'https://evil.example.com/v1' })).not.toBe(d);
    const withPath = { ...api, spec: { ...api.spec, destination: { includePath: true } } } as IntegrationTypeObject;
    expect(destinationDigest(withPath, { baseURL: 'https://api.example.com/v2' })).not.toBe(
      destinationDigest(withPath, { baseURL: 'https://api.example.com/v1' }),
    );
  });

  it('covers how a credential is presented (auth placement, header and query names)', () => {
    const api = type('http-api');
    const d = destinationDigest(api, { baseURL: 'https://api.example.com', auth: 'header' });
    expect(destinationDigest(api, { baseURL: 'https://api.example.com', auth: 'query' })).not.toBe(d);
    expect(
      destinationDigest(api, { baseURL: 'https://api.example.com', auth: 'header', headerName: 'X-Other' }),
    ).not.toBe(d);
  });

  it('binds the type: its name and every rule that decides where or how credentials go', () => {
    const dd = type('datadog');
    const settings = { site: 'datadoghq.eu' };
    const d = destinationDigest(dd, settings);
    expect(destinationDigest({ ...dd, metadata: { name: 'datadog-copy' } }, settings)).not.toBe(d);
    const redirected = structuredClone(dd);
    redirected.spec.probe!.http!.url = 'https://attacker.example/{{settings.site}}';
    expect(destinationDigest(redirected, settings)).not.toBe(d);
    const reheadered = structuredClone(dd) as IntegrationTypeObject & {
      spec: { gateway: { auth: Record<string, string> } };
    };
    reheadered.spec.gateway.auth = { ...reheadered.spec.gateway.auth, headerName: 'X-Logged' };
    expect(destinationDigest(reheadered, settings)).not.toBe(d);
    // Cosmetic edits do not move credentials.
    expect(destinationDigest({ ...dd, spec: { ...dd.spec, ...{ description: 'other words' } } }, settings)).toBe(d);
  });

  it('refuses cross-type replay: alike settings of two types give different digests', () => {
    const settings = { host: 'db.example.com', port: 6379, tls: true };
    expect(destinationDigest(type('redis'), settings)).not.toBe(destinationDigest(type('mysql'), settings));
  });

  it('names what changed, for admission messages', () => {
    const api = type('http-api');
    const before = destinationParts(api, { baseURL: 'https://api.example.com' });
    const after = destinationParts(api, { baseURL: 'https://evil.example.com' });
    expect(changedDestinationParts(before, after)).toEqual(['gateway URL', 'probe URL']);
  });

  it('keeps the binding format 1 digest as it was, so older values still open', () => {
    expect(legacyDestinationSettings(type('http-api'))).toEqual(expect.arrayContaining(['auth', 'baseURL']));
    expect(legacyDestinationSettings(type('postgresql'))).not.toContain('database');
    expect(legacyDestinationDigest(type('http-api'), { baseURL: 'https://api.example.com' })).toBe(
      legacyDestinationDigest(type('http-api'), { baseURL: 'https://api.example.com', auth: 'bearer' }),
    );
  });
});

describe('destination declared by a type', () => {
  it('URL-valued driver settings count by scheme, host and port', () => {
    const prom = type('prometheus');
    const d = destinationDigest(prom, { url: 'https://prom.example.com/api' });
    expect(destinationDigest(prom, { url: 'https://prom.example.com/other' })).toBe(d);
    expect(destinationDigest(prom, { url: 'https://evil.example.com/api' })).not.toBe(d);
  });

  it('the built-in driver types declare what the default would be', () => {
    for (const name of ['postgresql', 'mysql', 'redis', 's3', 'prometheus']) {
      const t = type(name) as IntegrationTypeObject & { spec: { destination?: { settings?: string[] } } };
      const { destination, ...undeclared } = t.spec;
      expect(destination?.settings?.length).toBeGreaterThan(0);
      const settings = { host: 'h.example.com', url: 'https://h.example.com' };
      const parts = (x: IntegrationTypeObject) =>
        Object.keys(destinationParts(x, settings))
          .filter((k) => k.startsWith('spec.settings.'))
          .sort();
      expect(parts(t)).toEqual(parts({ ...t, spec: undeclared }));
    }
  });
});

describe('destination digest stability', () => {
  it('does not depend on the order of keys (the API server returns its own)', () => {
    const api = type('http-api');
    const reordered = structuredClone(api);
    const auth = reordered.spec.probe!.http!.auth! as unknown as Record<string, unknown>;
    reordered.spec.probe!.http!.auth = Object.fromEntries(Object.entries(auth).reverse()) as never;
    expect(destinationDigest(reordered, { baseURL: 'https://a.example.com' })).toBe(
      destinationDigest(api, { baseURL: 'https://a.example.com' }),
    );
  });
});
