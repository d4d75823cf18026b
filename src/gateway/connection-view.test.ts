import { describe, expect, it } from 'vitest';
import type { ExternalConnection } from '../api/v1alpha1/index.js';
import type { KubeObject } from '../kube/client.js';
import { connectionView } from './connection-directory.js';

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
