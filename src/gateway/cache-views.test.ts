import { describe, expect, it } from 'vitest';
import type { ExternalConnection } from '../api/v1alpha1/index.js';
import type { KubeObject, SecretObject as Secret } from '../kube/client.js';
import { connectionView, managedSecretView } from './cache-views.js';

const full = {
  apiVersion: 'atoll.dev/v1alpha1',
  kind: 'ExternalConnection',
  metadata: {
    name: 'github',
    namespace: 'team-a',
    uid: 'u-1',
    resourceVersion: '42',
    generation: 3,
    creationTimestamp: '2026-12-02T00:00:00Z',
    annotations: { 'atoll.dev/last-change-by': '{"user":"alice"}' },
  },
  spec: {
    type: 'github',
    displayName: 'GitHub',
    settings: { baseURL: 'https://api.github.com' },
    credentials: { token: { sealed: 'atoll:v1:…' } },
  },
  status: {
    conditions: [
      { type: 'CredentialsSealed', status: 'True', reason: 'Sealed', message: 'm', lastTransitionTime: 't' },
      { type: 'Ready', status: 'True', reason: 'Succeeded', message: 'ok', lastTransitionTime: 't' },
    ],
    credentials: { token: { version: 2, hint: '…9c25', keyId: 'k', updatedAt: 't', sealed: 'atoll:v1:…' } },
    credentialHint: '…9c25',
    lastProbe: { result: 'Succeeded', message: 'ok', time: 't', inputs: 'x' },
    secretName: 'github-credentials',
  },
} as unknown as ExternalConnection & KubeObject;

describe("the gateway's view of a connection", () => {
  it('keeps exactly what the gateway reads: names, type, settings, Ready, the hint and the version floors', () => {
    expect(connectionView(full)).toEqual({
      metadata: { name: 'github', namespace: 'team-a', uid: 'u-1', resourceVersion: '42' },
      spec: { type: 'github', displayName: 'GitHub', settings: { baseURL: 'https://api.github.com' } },
      status: {
        conditions: [{ type: 'Ready', status: 'True' }],
        credentialHint: '…9c25',
        credentials: { token: { version: 2 } },
      },
    });
  });

  it('a connection without status or Ready has none in its view', () => {
    const { status: _status, ...fresh } = full;
    expect(connectionView(fresh as ExternalConnection & KubeObject).status).toBeUndefined();
    const sealing = { ...full, status: { conditions: [full.status!.conditions![0]!] } };
    expect(connectionView(sealing as ExternalConnection & KubeObject).status).toEqual({});
  });
});

const state = {
  apiKey: {
    fingerprint: 'f'.repeat(64),
    version: 3,
    updatedAt: '2026-12-02T00:00:00Z',
    keyId: 'arn:aws:kms:eu-west-1:111122223333:key/k',
    hint: '…9c25',
    format: 2,
    destination: 'd'.repeat(64),
    source: `sealed:${'s'.repeat(64)}`,
    sealed: 'atoll:v1:local:a2V5:d3JhcHBlZA:bm9uY2U:Y2lwaGVydGV4dA',
  },
  legacy: { fingerprint: 'f', version: 1, updatedAt: 't', keyId: 'k', hint: 'h' },
};
const secret: Secret = {
  apiVersion: 'v1',
  kind: 'Secret',
  type: 'atoll.dev/sealed',
  metadata: {
    name: 'github-credentials',
    namespace: 'team-a',
    uid: 's-1',
    resourceVersion: '77',
    creationTimestamp: '2026-12-02T00:00:00Z',
    labels: { 'app.kubernetes.io/managed-by': 'atoll', 'atoll.dev/connection': 'github' },
    annotations: { 'atoll.dev/credentials': JSON.stringify(state) },
    ownerReferences: [
      { apiVersion: 'atoll.dev/v1alpha1', kind: 'ExternalConnection', name: 'github', uid: 'u-1', controller: true },
    ],
    managedFields: [{ manager: 'atoll' }],
  },
  data: { apiKey: 'YXRvbGw6djE6Li4u', legacy: 'bGVnYWN5' },
};

describe("the gateway's view of a managed Secret", () => {
  it('keeps the type, the connection label, the owners and each sealed copy with its version and format; no other annotation text', () => {
    expect(managedSecretView(secret)).toEqual({
      metadata: {
        name: 'github-credentials',
        namespace: 'team-a',
        resourceVersion: '77',
        labels: { 'atoll.dev/connection': 'github' },
      },
      type: 'atoll.dev/sealed',
      owners: ['u-1'],
      copies: [
        { field: 'apiKey', data: 'YXRvbGw6djE6Li4u', version: 3, format: 2 },
        { field: 'legacy', data: 'bGVnYWN5', version: 1 },
      ],
    });
  });

  it('reads a version or format it cannot trust as absent', () => {
    const odd = { apiKey: { version: '3', format: '2' }, legacy: { version: 2.5, format: 2 } };
    const view = managedSecretView(withState(JSON.stringify(odd)));
    // A non-integer version is kept as read: the gateway refuses it where it opens (Number.isSafeInteger).
    expect(view.copies).toEqual([
      { field: 'apiKey', data: 'YXRvbGw6djE6Li4u' },
      { field: 'legacy', data: 'bGVnYWN5', version: 2.5, format: 2 },
    ]);
  });

  it.each([
    ['JSON null', 'null'],
    ['an array', '[{"format":2,"version":9}]'],
    ['a string', '"format"'],
    ['a number', '7'],
    ['not JSON', '{not json'],
    ['entries that are not objects', '{"apiKey":null,"legacy":[2]}'],
  ])('builds a view, with no state, from an annotation that is %s', (_what, annotation) => {
    expect(managedSecretView(withState(annotation)).copies).toEqual([
      { field: 'apiKey', data: 'YXRvbGw6djE6Li4u' },
      { field: 'legacy', data: 'bGVnYWN5' },
    ]);
  });

  it('gives fields named like Object.prototype members only the state written for them', () => {
    const hostile = {
      ...secret,
      metadata: {
        ...secret.metadata,
        annotations: { 'atoll.dev/credentials': JSON.stringify({ ['__proto__']: { format: 2, version: 4 } }) },
      },
      data: { ['__proto__']: 'eA==', constructor: 'eQ==', toString: 'eg==' },
    };
    expect(managedSecretView(hostile).copies).toEqual([
      { field: '__proto__', data: 'eA==', version: 4, format: 2 },
      { field: 'constructor', data: 'eQ==' },
      { field: 'toString', data: 'eg==' },
    ]);
    expect(Object.prototype).not.toHaveProperty('format');
  });

  it('keeps no copies of a Secret that is not the managed copy of the connection it names', () => {
    const named = (name: string, type?: string): Secret => ({
      ...secret,
      ...(type === undefined ? {} : { type }),
      metadata: { ...secret.metadata, name },
    });
    expect(managedSecretView(named('other-credentials'))).toMatchObject({ owners: [], copies: [] });
    expect(managedSecretView(named('github-credentials', 'Opaque'))).toMatchObject({
      type: 'Opaque',
      owners: [],
      copies: [],
    });
    const unlabelled = { ...secret, metadata: { ...secret.metadata, labels: {} } };
    expect(managedSecretView(unlabelled).copies).toEqual([]);
    const bare = { metadata: { name: 'x', namespace: 'team-a' } };
    expect(managedSecretView(bare)).toEqual({ metadata: { name: 'x', namespace: 'team-a' }, owners: [], copies: [] });
  });
});

function withState(annotation: string): Secret {
  return { ...secret, metadata: { ...secret.metadata, annotations: { 'atoll.dev/credentials': annotation } } };
}
