import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import type { IntegrationType } from '../api/v1alpha1/index.js';
import { createProviderRegistry, Envelope, InMemoryKeyRingStore } from '../crypto/index.js';
import { packageRoot } from '../dev/binaries.js';
import type { AdmissionRequest } from './admission.js';
import { checkDestinationChange, checkSealedValues, stampRebind, withPatch } from './connection-guards.js';

const httpApi = parse(
  readFileSync(path.join(packageRoot(), 'config', 'types', 'http-api.yaml'), 'utf8'),
) as IntegrationType;
const envelope = new Envelope({ providers: createProviderRegistry({ local: { store: new InMemoryKeyRingStore() } }) });

function update(
  oldSpec: Record<string, unknown>,
  newSpec: Record<string, unknown>,
  annotations: { old?: Record<string, string>; new?: Record<string, string> } = {},
  user = 'erin',
): AdmissionRequest {
  return {
    uid: 'u',
    kind: { group: 'atoll.dev', version: 'v1alpha1', kind: 'ExternalConnection' },
    operation: 'UPDATE',
    namespace: 'acme',
    userInfo: { username: user },
    object: {
      metadata: { name: 'billing', namespace: 'acme', annotations: annotations.new },
      spec: { type: 'http-api', ...newSpec },
    },
    oldObject: {
      metadata: { name: 'billing', namespace: 'acme', annotations: annotations.old },
      spec: { type: 'http-api', ...oldSpec },
    },
  };
}

describe('admission: destination changes (issue 17.2)', () => {
  const creds = { token: { sealed: 'atoll:v1:local:x' } };
  it('refuses a host change that keeps the sealed credentials, naming the setting and the fix', () => {
    const r = checkDestinationChange(
      update(
        { settings: { baseURL: 'https://api.example.com' }, credentials: creds },
        { settings: { baseURL: 'https://evil.example.com' }, credentials: creds },
      ),
      httpApi,
    );
    expect(r.deny).toContain(
      'spec.settings.baseURL changes where this connection sends its credentials (gateway URL, probe URL)',
    );
    expect(r.deny).toContain('spec.credentials.token is sealed for the previous destination');
    expect(r.deny).toContain('set spec.credentials.<field>.value beside the new settings');
  });

  it('allows a path-only change, a change that supplies the credentials, and warns for secretKeyRef', () => {
    expect(
      checkDestinationChange(
        update(
          { settings: { baseURL: 'https://api.example.com/v1' }, credentials: creds },
          { settings: { baseURL: 'https://api.example.com/v2' }, credentials: creds },
        ),
        httpApi,
      ),
    ).toEqual({ warnings: [] });
    expect(
      checkDestinationChange(
        update(
          { settings: { baseURL: 'https://a.example.com' }, credentials: creds },
          { settings: { baseURL: 'https://b.example.com' }, credentials: { token: { sealed: 'atoll:v1:local:y' } } },
        ),
        httpApi,
      ).deny,
    ).toBeUndefined();
    const ref = { token: { secretKeyRef: { name: 'src', key: 'token' } } };
    const r = checkDestinationChange(
      update(
        { settings: { baseURL: 'https://a.example.com' }, credentials: ref },
        { settings: { baseURL: 'https://b.example.com' }, credentials: ref },
      ),
      httpApi,
    );
    expect(r.deny).toBeUndefined();
    expect(r.warnings[0]).toContain('until the owner of Secret src approves the new destination');
  });
});

describe('admission: sealed values that can never open (issue 10.4)', () => {
  it('refuses malformed values, unknown providers and foreign key ids, and leaves unchanged values alone', async () => {
    const good = await envelope.seal(
      'tok-123456789',
      { namespace: 'acme', workspace: 'w', connection: 'billing', field: 'token', destination: 'd' },
      { provider: 'local', keyId: 'local/default' },
    );
    const p = good.split(':');
    const req = (sealed: string, old?: string) =>
      update({ credentials: old ? { token: { sealed: old } } : {} }, { credentials: { token: { sealed } } });
    expect(checkSealedValues(req(good), ['local'])).toBeUndefined();
    expect(checkSealedValues(req('atoll:v1:local:abc'), ['local'])).toContain(
      'spec.credentials.token.sealed is not a complete atoll ciphertext',
    );
    expect(
      checkSealedValues(req([...p.slice(0, 2), 'vault', ...p.slice(3)].join(':')), ['local', 'aws-kms']),
    ).toContain('names KMS provider "vault", which this atoll is not configured with (it has: local, aws-kms)');
    const foreign = [
      ...p.slice(0, 3),
      Buffer.from('arn:aws:kms:us-east-1:123456789012:key/abc').toString('base64url'),
      ...p.slice(4),
    ].join(':');
    expect(checkSealedValues(req(foreign), ['local'])).toContain('names a key id that is not a local key id');
    expect(checkSealedValues(req('atoll:v1:local:abc', 'atoll:v1:local:abc'), ['local'])).toBeUndefined();
  });
});

describe('admission: who asked for a rebind', () => {
  it('records the authenticated user, and puts back any other change', () => {
    expect(stampRebind(update({}, {}, { new: { 'atoll.dev/rebind-requested': 't1' } }))).toEqual([
      { op: 'add', path: '/metadata/annotations/atoll.dev~1rebind-requested-by', value: 'erin' },
    ]);
    expect(
      stampRebind(
        update({}, {}, { new: { 'atoll.dev/rebind-requested': 't1', 'atoll.dev/rebind-requested-by': 'admin' } }),
      ),
    ).toEqual([{ op: 'replace', path: '/metadata/annotations/atoll.dev~1rebind-requested-by', value: 'erin' }]);
    const old = { 'atoll.dev/rebind-requested': 't1', 'atoll.dev/rebind-requested-by': 'erin' };
    expect(
      stampRebind(update({}, {}, { old, new: { ...old, 'atoll.dev/rebind-requested-by': 'admin' } }, 'mallory')),
    ).toEqual([{ op: 'replace', path: '/metadata/annotations/atoll.dev~1rebind-requested-by', value: 'erin' }]);
    expect(stampRebind(update({}, {}, { new: { 'atoll.dev/rebind-requested-by': 'admin' } }))).toEqual([
      { op: 'remove', path: '/metadata/annotations/atoll.dev~1rebind-requested-by' },
    ]);
    expect(stampRebind(update({}, {}, { old, new: old }))).toEqual([]);
  });

  it('adds operations to an allowing response only', () => {
    const ops = [{ op: 'add' as const, path: '/x', value: 1 }];
    expect(JSON.parse(Buffer.from(withPatch({ uid: 'u', allowed: true }, ops).patch!, 'base64').toString())).toEqual(
      ops,
    );
    expect(withPatch({ uid: 'u', allowed: false }, ops).patch).toBeUndefined();
  });
});
