import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ExternalConnection } from '../../src/api/v1alpha1/index.js';
import type { KubeObject } from '../../src/kube/client.js';
import { ExternalConnections, Secrets } from '../../src/kube/resources.js';
import { startHttpFixture, type HttpFixture } from '../support/services.js';
import {
  admin,
  condition,
  createWorkspace,
  eventually,
  randomSecret,
  uniqueName,
  userClient,
} from '../support/cluster.js';
import { carrying, gatewayWorkload, LOOPBACK_EGRESS } from './support.js';

type Conn = ExternalConnection & KubeObject;
type Secret = KubeObject & { data?: Record<string, string> };

/**
 * Issue 10.5: a platform offers Secret billing-token to connection billing.
 * A tenant editor (no Secret access) repoints billing's baseURL, or deletes
 * and re-creates billing pointed elsewhere, to make atoll send the Secret to
 * a recording server of its own. Nothing reaches that server; the owner's
 * explicit re-approval is the only way the credential moves; withdrawing the
 * offer stops the gateway within seconds.
 */
describe('attack: exfiltrating an offered Secret by repointing its connection', () => {
  const ns = uniqueName('skr');
  const editors = `${ns}-editors`;
  const token = randomSecret('billing');
  let platform: HttpFixture;
  let attacker: HttpFixture;
  let moved: HttpFixture;
  let call: Awaited<ReturnType<typeof gatewayWorkload>>;
  const connection = (baseURL: string) => ({
    apiVersion: 'atoll.dev/v1alpha1',
    kind: 'ExternalConnection',
    metadata: { name: 'billing', namespace: ns },
    spec: {
      type: 'http-api',
      settings: { baseURL, auth: 'bearer' },
      credentials: { token: { secretKeyRef: { name: 'billing-token', key: 'token' } } },
      probe: { interval: '0' },
    },
  });
  const get = () => admin().get<Conn>(ExternalConnections, 'billing', ns);

  beforeAll(async () => {
    [platform, attacker, moved] = await Promise.all([startHttpFixture(), startHttpFixture(), startHttpFixture()]);
    await createWorkspace(ns, { members: [{ kind: 'Group', name: editors, role: 'editor' }], policy: LOOPBACK_EGRESS });
    await admin().create(Secrets, {
      metadata: { name: 'billing-token', namespace: ns, annotations: { 'atoll.dev/allowed-connections': 'billing' } },
      stringData: { token },
    } as never);
    await admin().create(ExternalConnections, connection(platform.url) as never);
    await eventually('billing Ready', get, (c) => condition(c, 'Ready')?.status === 'True');
    call = await gatewayWorkload(ns);
  });

  afterAll(async () => {
    await Promise.all([platform, attacker, moved].map((f) => f?.stop()));
  });

  it('the offer works where the platform meant it', async () => {
    expect(carrying(platform, token).length).toBeGreaterThan(0); // the probe
    const res = await call('billing');
    expect(res.status).toBe(200);
    expect(carrying(platform, token).length).toBeGreaterThan(1);
  });

  it('an editor repointing baseURL gets DestinationChanged, and nothing reaches the new host', async () => {
    const editor = userClient('mallory', [editors]);
    expect(await editor.tryGet(Secrets, 'billing-token', ns).catch((e: { status?: number }) => e.status)).toBe(403);
    await editor.mergePatch(ExternalConnections, 'billing', ns, { spec: { settings: { baseURL: attacker.url } } });
    const c = await eventually(
      'DestinationChanged',
      get,
      (x) =>
        x.status?.observedGeneration === x.metadata.generation &&
        condition(x, 'CredentialsSealed')?.reason === 'DestinationChanged',
    );
    expect(condition(c, 'Ready')?.status).toBe('False');
    expect(condition(c, 'CredentialsSealed')?.message).toMatch(
      /atoll\.dev\/allowed-connections to "billing@[A-Za-z0-9_-]{12}"/,
    );
    // The credential is no longer in the managed Secret, so neither gateway nor agent can serve it.
    const managed = await admin().get<Secret>(Secrets, 'billing-credentials', ns);
    expect(managed.data?.token).toBeUndefined();
    expect((await call('billing')).status).not.toBe(200);
    expect(attacker.requests).toHaveLength(0);
  });

  it('deleting and re-creating the connection pointed elsewhere does not re-pin the offer', async () => {
    const editor = userClient('mallory', [editors]);
    // The gateway's usage record (flushed in the background) may mark billing in use; the editor may override that.
    await editor.mergePatch(ExternalConnections, 'billing', ns, {
      metadata: { annotations: { 'atoll.dev/allow-delete': 'true' } },
    });
    await editor.delete(ExternalConnections, 'billing', ns);
    await eventually(
      'billing gone',
      () => admin().tryGet(ExternalConnections, 'billing', ns),
      (x) => x === undefined,
    );
    await editor.create(ExternalConnections, connection(attacker.url) as never);
    const c = await eventually(
      'DestinationChanged again',
      get,
      (x) => condition(x, 'CredentialsSealed')?.reason === 'DestinationChanged',
    );
    expect(condition(c, 'Ready')?.status).toBe('False');
    expect((await call('billing')).status).not.toBe(200);
    expect(attacker.requests).toHaveLength(0);
    // The editor cannot approve: approving means writing the Secret's annotation.
    const approve = /"(billing@[A-Za-z0-9_-]{12})"/.exec(condition(c, 'CredentialsSealed')!.message!)![1]!;
    const denied = await editor
      .mergePatch(Secrets, 'billing-token', ns, {
        metadata: { annotations: { 'atoll.dev/allowed-connections': approve } },
      })
      .catch((e: { status?: number }) => e.status);
    expect(denied).toBe(403);
    expect(attacker.requests).toHaveLength(0);
  });

  it("only the Secret's owner moves the credential, by approving the new destination", async () => {
    const editor = userClient('mallory', [editors]);
    await editor.mergePatch(ExternalConnections, 'billing', ns, { spec: { settings: { baseURL: moved.url } } });
    const c = await eventually(
      'DestinationChanged for the move',
      get,
      (x) =>
        x.status?.observedGeneration === x.metadata.generation &&
        condition(x, 'CredentialsSealed')?.reason === 'DestinationChanged',
    );
    const approve = /"(billing@[A-Za-z0-9_-]{12})"/.exec(condition(c, 'CredentialsSealed')!.message!)![1]!;
    await admin().mergePatch(Secrets, 'billing-token', ns, {
      metadata: { annotations: { 'atoll.dev/allowed-connections': approve } },
    });
    await eventually('Ready after approval', get, (x) => condition(x, 'Ready')?.status === 'True');
    expect((await call('billing')).status).toBe(200);
    expect(carrying(moved, token).length).toBeGreaterThan(0);
    expect(attacker.requests).toHaveLength(0);
  });

  it('withdrawing the offer removes the credential; the gateway stops serving it within seconds', async () => {
    expect((await call('billing')).status).toBe(200);
    const before = carrying(moved, token).length;
    await admin().mergePatch(Secrets, 'billing-token', ns, {
      metadata: { annotations: { 'atoll.dev/allowed-connections': null } },
    });
    await eventually(
      'gateway refuses',
      () => call('billing'),
      (r) => r.status !== 200,
      10_000,
    );
    const c = await get();
    expect(condition(c, 'CredentialsSealed')?.reason).toBe('SecretNotFound');
    expect((await admin().get<Secret>(Secrets, 'billing-credentials', ns)).data?.token).toBeUndefined();
    const after = carrying(moved, token).length;
    for (let i = 0; i < 3; i++) expect((await call('billing')).status).not.toBe(200);
    expect(carrying(moved, token).length).toBe(after);
    expect(after).toBeGreaterThanOrEqual(before);
    expect(attacker.requests).toHaveLength(0);
  });

  it('deleting the source Secret does the same', async () => {
    await admin().mergePatch(Secrets, 'billing-token', ns, {
      metadata: { annotations: { 'atoll.dev/allowed-connections': 'billing' } },
    });
    // A bare re-offer keeps the pin of the approved destination (moved), so it works again there.
    await eventually(
      'Ready again',
      get,
      (x) => condition(x, 'Ready')?.status === 'True' || condition(x, 'CredentialsSealed')?.status === 'True',
    );
    expect((await call('billing')).status).toBe(200);
    await admin().delete(Secrets, 'billing-token', ns);
    await eventually(
      'gateway refuses',
      () => call('billing'),
      (r) => r.status !== 200,
      10_000,
    );
    expect((await admin().get<Secret>(Secrets, 'billing-credentials', ns)).data?.token).toBeUndefined();
    expect(attacker.requests).toHaveLength(0);
  });
});
