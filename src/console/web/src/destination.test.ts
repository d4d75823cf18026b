import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { changedDestinationParts, destinationParts } from '../../../integrations/destination.js';
import { packageRoot } from '../../../dev/binaries.js';
import { changedDestination } from './destination';
import type { IntegrationType } from './types';

const dir = path.join(packageRoot(), 'config', 'types');
const builtins = new Map(
  readdirSync(dir)
    .filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml')
    .map((f) => {
      const t = parse(readFileSync(path.join(dir, f), 'utf8')) as IntegrationType;
      return [t.metadata.name, t] as const;
    }),
);

/** Edits a person makes in the form, and whether the server's binding moves for each. */
const edits: Array<[type: string, before: Record<string, unknown>, after: Record<string, unknown>]> = [
  [
    'http-api',
    { baseURL: 'https://a.example/v1', auth: 'bearer' },
    { baseURL: 'https://a.example/v2', auth: 'bearer' },
  ],
  ['http-api', { baseURL: 'https://a.example', auth: 'bearer' }, { baseURL: 'https://b.example', auth: 'bearer' }],
  ['http-api', { baseURL: 'https://a.example', auth: 'bearer' }, { baseURL: 'https://a.example:8443', auth: 'bearer' }],
  [
    'http-api',
    { baseURL: 'https://a.example', auth: 'bearer' },
    { baseURL: 'https://a.example', auth: 'query', queryParam: 'key' },
  ],
  ['postgresql', { host: 'db.a', user: 'app', database: 'one' }, { host: 'db.a', user: 'app', database: 'two' }],
  ['postgresql', { host: 'db.a', user: 'app' }, { host: 'db.b', user: 'app' }],
  ['postgresql', { host: 'db.a', user: 'app' }, { host: 'db.a', user: 'app', sslmode: 'disable' }],
  ['redis', { host: 'r.a' }, { host: 'r.a', tls: false }],
  ['datadog', { site: 'datadoghq.com' }, { site: 'datadoghq.eu' }],
];

describe('destination settings in the browser', () => {
  it.each(edits)(
    'agree with the server’s binding on whether an edit of %s moves the destination (%j → %j)',
    (name, before, after) => {
      const type = builtins.get(name)!;
      const server = changedDestinationParts(
        destinationParts(type as never, before),
        destinationParts(type as never, after),
      );
      expect(changedDestination(type, before, after).length > 0).toBe(server.length > 0);
    },
  );

  it('name the destination settings a change touches, defaults included', () => {
    const http = builtins.get('http-api')!;
    expect(
      changedDestination(http, { baseURL: 'https://a.example' }, { baseURL: 'https://a.example', auth: 'bearer' }),
    ).toEqual([]);
    expect(changedDestination(http, { baseURL: 'https://a.example' }, { baseURL: 'https://b.example' })).toEqual([
      'baseURL',
    ]);
    expect(changedDestination(http, { baseURL: 'https://a.example/x' }, { baseURL: 'https://a.example/y' })).toEqual(
      [],
    );
  });
});
