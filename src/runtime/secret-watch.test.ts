import { afterEach, describe, expect, it } from 'vitest';
import { capturedLogger, FakeKubeApi, until } from '../../test/support/fake-kube-api.js';
import { Secrets } from '../kube/resources.js';
import { MANAGED_SECRETS, SecretWatch } from './secret-watch.js';
import { stripForCache } from './informer.js';

let api: FakeKubeApi | undefined;
let secrets: SecretWatch | undefined;
afterEach(async () => {
  await secrets?.stop();
  await api?.close();
  api = secrets = undefined;
});

const secret = (name: string, namespace = 'ns') => ({
  metadata: { name, namespace, managedFields: [{ manager: 'kubectl' }] },
  data: { token: 'dg==' },
});
const selectors = (api: FakeKubeApi) =>
  api.requests
    .filter((r) => r.method === 'GET' && r.path.endsWith('/secrets'))
    .map((r) => `${r.path} ${r.query.get('labelSelector') ?? ''}${r.query.get('fieldSelector') ?? ''}`);

describe('SecretWatch', () => {
  it("watches only atoll's Secrets of a workspace namespace, and a referenced Secret by name while a connection names it", async () => {
    api = await FakeKubeApi.start();
    api.upsert(Secrets, secret('app-credentials'));
    api.upsert(Secrets, secret('tenant-src'));
    secrets = new SecretWatch(api.client(), capturedLogger().log, { view: stripForCache });
    const seen: string[] = [];
    secrets.on((event, s) => seen.push(`${event} ${s.metadata?.name}`));

    secrets.watch('ns');
    // A reference in a namespace that is not a workspace namespace starts nothing (no access there).
    secrets.setReferences('other/conn', ['other/tenant-src']);
    secrets.setReferences('ns/conn', ['ns/tenant-src']);
    await until('both watches open', () => api!.openWatches === 2);
    expect(new Set(selectors(api))).toEqual(
      new Set([
        `/api/v1/namespaces/ns/secrets ${MANAGED_SECRETS}`,
        '/api/v1/namespaces/ns/secrets metadata.name=tenant-src',
      ]),
    );
    expect(secrets.watchCount()).toEqual({ managed: 1, referenced: 1 });

    // The narrow watch answers for its Secret, stripped of managedFields; a change to it reaches the handlers.
    await until('the referenced Secret is cached', () => secrets!.synced('ns', 'tenant-src'));
    expect(secrets.get('ns', 'tenant-src')?.metadata).toEqual({
      name: 'tenant-src',
      namespace: 'ns',
      resourceVersion: expect.any(String),
    });
    api.upsert(Secrets, { ...secret('tenant-src'), data: { token: 'dzI=' } });
    await until('the change is delivered', () => secrets!.get('ns', 'tenant-src')?.data?.token === 'dzI=');
    expect(seen).toContain('update tenant-src');

    // A miss in the label-selected cache proves nothing (a tenant Secret of that name is not cached): read it instead.
    expect(secrets.synced('ns', 'not-cached')).toBe(false);

    // No connection names it any more: its watch stops.
    secrets.setReferences('ns/conn', []);
    expect(secrets.watchCount()).toEqual({ managed: 1, referenced: 0 });
    await until('the narrow watch is closed', () => api!.openWatches === 1);
  });

  it('stops the namespace and its referenced watches when the namespace is no longer a workspace', async () => {
    api = await FakeKubeApi.start();
    secrets = new SecretWatch(api.client(), capturedLogger().log, { view: stripForCache });
    secrets.watch('ns');
    secrets.watch('kept');
    secrets.setReferences('ns/conn', ['ns/tenant-src']);
    expect(secrets.watchCount()).toEqual({ managed: 2, referenced: 1 });
    secrets.unwatch('ns');
    expect(secrets.watchCount()).toEqual({ managed: 1, referenced: 0 });
    expect(secrets.watching('kept')).toBe(true);
    secrets.unwatch('kept');
    expect(secrets.watchCount()).toEqual({ managed: 0, referenced: 0 });
    expect(secrets.watching('ns')).toBe(false);
  });
});
