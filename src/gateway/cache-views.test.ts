import { describe, expect, it } from 'vitest';
import type { ExternalConnection } from '../api/v1alpha1/index.js';
import type { KubeObject } from '../kube/client.js';
import type { Secret } from '../controllers/context.js';
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
  it('keeps the type, the connection label, the owners, the data and each field’s version and format; no other annotation text', () => {
    expect(managedSecretView(secret)).toEqual({
      metadata: {
        name: 'github-credentials',
        namespace: 'team-a',
        resourceVersion: '77',
        labels: { 'atoll.dev/connection': 'github' },
      },
      type: 'atoll.dev/sealed',
      data: { apiKey: 'YXRvbGw6djE6Li4u', legacy: 'bGVnYWN5' },
      owners: ['u-1'],
      fields: { apiKey: { version: 3, format: 2 }, legacy: { version: 1 } },
    });
  });

  it('reads a version or format it cannot trust as absent, and unreadable state as no fields', () => {
    const odd = { apiKey: { version: '3', format: '2' }, other: { version: 2.5, format: 2 } };
    const withOdd = {
      ...secret,
      metadata: { ...secret.metadata, annotations: { 'atoll.dev/credentials': JSON.stringify(odd) } },
    };
    // A non-integer version is kept as read: the gateway refuses it where it opens (Number.isSafeInteger).
    expect(managedSecretView(withOdd).fields).toEqual({ apiKey: {}, other: { version: 2.5, format: 2 } });
    const garbled = {
      ...secret,
      metadata: { ...secret.metadata, annotations: { 'atoll.dev/credentials': '{not json' } },
    };
    expect(managedSecretView(garbled).fields).toEqual({});
    const bare = { ...secret, metadata: { name: 'x', namespace: 'team-a' } };
    expect(managedSecretView(bare)).toMatchObject({ owners: [], fields: {}, metadata: { name: 'x' } });
  });
});
