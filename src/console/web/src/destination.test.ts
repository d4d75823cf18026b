import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { destinationSettings as serverDestinationSettings } from '../../../integrations/destination.js';
import { packageRoot } from '../../../testing/binaries.js';
import { changedDestination, destinationSettings } from './destination';
import type { IntegrationType } from './types';

const dir = path.join(packageRoot(), 'config', 'types');
const builtins = readdirSync(dir).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml').map((f) => parse(readFileSync(path.join(dir, f), 'utf8')) as IntegrationType);

describe('destination settings in the browser', () => {
  it.each(builtins.map((t) => [t.metadata.name, t] as const))('match the server’s binding for %s', (_name, type) => {
    expect(destinationSettings(type)).toEqual(serverDestinationSettings(type as never));
  });

  it('name the destination settings a change touches, defaults included', () => {
    const http = builtins.find((t) => t.metadata.name === 'http-api')!;
    expect(changedDestination(http, { baseURL: 'https://a.example' }, { baseURL: 'https://a.example', auth: 'bearer' })).toEqual([]);
    expect(changedDestination(http, { baseURL: 'https://a.example' }, { baseURL: 'https://b.example' })).toEqual(['baseURL']);
    expect(changedDestination(http, { baseURL: 'https://a.example' }, { baseURL: 'https://a.example', auth: 'query' })).toEqual(['auth']);
  });
});
