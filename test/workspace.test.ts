import { describe, expect, it, beforeAll } from 'vitest';
import {
  ExternalConnections,
  Namespaces,
  RoleBindings,
  Roles,
  Secrets,
  SelfSubjectAccessReviews,
  Workspaces,
} from '../src/kube/resources.js';
import type { KubeObject } from '../src/kube/client.js';
import { admin, createWorkspace, eventually, uniqueName, userClient } from './support/cluster.js';

const conn = (name: string, ns: string) => ({
  metadata: { name, namespace: ns },
  spec: {
    type: 'http-api',
    settings: { baseURL: 'https://api.example.com', auth: 'bearer' },
    credentials: { token: { value: 'tok-1234567890abcdef' } },
  },
});

describe('Workspace: tenant RBAC and isolation', () => {
  const a = uniqueName('ws-a');
  const b = uniqueName('ws-b');
  beforeAll(async () => {
    await createWorkspace(a, {
      displayName: 'A',
      members: [
        { kind: 'User', name: 'viewer-a', role: 'viewer' },
        { kind: 'Group', name: 'editors-a', role: 'editor' },
        { kind: 'User', name: 'admin-a', role: 'admin' },
      ],
    });
    await createWorkspace(b, { members: [{ kind: 'User', name: 'editor-b', role: 'editor' }] });
  });

  it('labels the namespace and reports Ready with RBAC and encryption', async () => {
    const ns = await admin().get<KubeObject>(Namespaces, a);
    expect(ns.metadata?.labels?.['atoll.dev/workspace']).toBe(a);
    const ws = await admin().get<
      KubeObject & { status?: { conditions?: Array<{ type: string; status: string }>; identity?: string } }
    >(Workspaces, a, a);
    expect(
      ws.status?.conditions
        ?.filter((c) => c.status === 'True')
        .map((c) => c.type)
        .sort(),
    ).toEqual(['EncryptionReady', 'QuotaReady', 'RBACReady', 'Ready']);
    expect(ws.status?.identity).toBe(ws.metadata?.uid);
  });

  it('gives each member exactly their role', async () => {
    const viewer = userClient('viewer-a');
    await expect(viewer.list(ExternalConnections, { namespace: a })).resolves.toBeDefined();
    await expect(viewer.create(ExternalConnections, conn('by-viewer', a) as never)).rejects.toMatchObject({
      status: 403,
    });

    const editor = userClient('someone', ['editors-a']);
    const created = await editor.create<
      KubeObject & { spec: { credentials: Record<string, { sealed?: string; value?: string }> } }
    >(ExternalConnections, conn('by-editor', a));
    expect(created.spec.credentials.token?.value).toBeUndefined();
    expect(created.spec.credentials.token?.sealed).toMatch(/^atoll:v1:/);
    await expect(
      editor.create(RoleBindings, {
        metadata: { name: 'x', namespace: a },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'atoll-connection-user' },
        subjects: [{ kind: 'ServiceAccount', name: 'app', namespace: a }],
      } as never),
    ).rejects.toMatchObject({ status: 403 });

    const adm = userClient('admin-a');
    await expect(
      adm.create(RoleBindings, {
        metadata: { name: 'app-uses-connections', namespace: a },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'atoll-connection-user' },
        subjects: [{ kind: 'ServiceAccount', name: 'app', namespace: a }],
      } as never),
    ).resolves.toBeDefined();
    // Plaintext delivery is a separate grant the admin may also give.
    await expect(
      adm.create(RoleBindings, {
        metadata: { name: 'app-reads-credentials', namespace: a },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'atoll-connection-reader' },
        subjects: [{ kind: 'ServiceAccount', name: 'app', namespace: a }],
      } as never),
    ).resolves.toBeDefined();
    // ... but cannot bind anything more powerful.
    await expect(
      adm.create(RoleBindings, {
        metadata: { name: 'escalate', namespace: a },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'cluster-admin' },
        subjects: [{ kind: 'User', name: 'admin-a' }],
      } as never),
    ).rejects.toMatchObject({ status: 403 });
    // Tenants read their Workspace but never write it.
    await expect(adm.get(Workspaces, a, a)).resolves.toBeDefined();
    await expect(adm.mergePatch(Workspaces, a, a, { spec: { displayName: 'hijacked' } })).rejects.toMatchObject({
      status: 403,
    });
  });

  it('never lets any tenant role read Secrets', async () => {
    for (const c of [userClient('viewer-a'), userClient('x', ['editors-a']), userClient('admin-a')]) {
      await expect(c.list(Secrets, { namespace: a })).rejects.toMatchObject({ status: 403 });
      await expect(c.get(Secrets, 'by-editor-credentials', a)).rejects.toMatchObject({ status: 403 });
      const review = await c.review<KubeObject & { status?: { allowed?: boolean } }>(SelfSubjectAccessReviews, {
        spec: { resourceAttributes: { namespace: a, verb: 'get', resource: 'secrets' } },
      } as never);
      expect(review.status?.allowed).toBe(false);
    }
  });

  it('keeps workspaces apart: nobody in A reads or lists anything in B', async () => {
    await userClient('editor-b').create(ExternalConnections, conn('b-conn', b) as never);
    for (const c of [userClient('viewer-a'), userClient('x', ['editors-a']), userClient('admin-a')]) {
      await expect(c.list(ExternalConnections, { namespace: b })).rejects.toMatchObject({ status: 403 });
      await expect(c.get(ExternalConnections, 'b-conn', b)).rejects.toMatchObject({ status: 403 });
      await expect(c.get(Workspaces, b, b)).rejects.toMatchObject({ status: 403 });
      await expect(c.list(ExternalConnections)).rejects.toMatchObject({ status: 403 });
    }
    await expect(userClient('editor-b').list(ExternalConnections, { namespace: a })).rejects.toMatchObject({
      status: 403,
    });
  });

  it('refuses a second Workspace in a namespace with a clear message', async () => {
    const err = await admin()
      .create(Workspaces, { metadata: { name: 'second', namespace: a }, spec: {} } as never)
      .catch((e: Error) => e);
    expect(err).toMatchObject({ status: 409 });
    expect(err.message).toContain(`namespace ${a} already has Workspace ${a}`);
  });

  it('refuses malformed resources with messages that name the field', async () => {
    const bad = await admin()
      .create(Workspaces, {
        metadata: { name: 'bad', namespace: b },
        spec: { members: [{ kind: 'Robot', name: 'r2', role: 'viewer' }] },
      } as never)
      .catch((e: Error) => e);
    expect(bad.message).toMatch(/spec\.members\[0\]\.kind/);
    const badConn = await admin()
      .create(ExternalConnections, {
        metadata: { name: 'bad-settings', namespace: a },
        spec: {
          type: 'http-api',
          settings: { baseURL: 'not a url', auth: 'bearer' },
          credentials: { token: { value: 'tok-1234567890abcdef' } },
        },
      } as never)
      .catch((e: Error) => e);
    expect(badConn.message).toMatch(/spec\.settings\.baseURL/);
    const badType = await admin()
      .create(ExternalConnections, {
        metadata: { name: 'bad-type', namespace: a },
        spec: { type: 'no-such-type', credentials: {} },
      } as never)
      .catch((e: Error) => e);
    expect(badType.message).toContain('IntegrationType "no-such-type" does not exist');
  });

  it('removes its RBAC and namespace label when the Workspace is deleted', async () => {
    const c = uniqueName('ws-del');
    await createWorkspace(c, { members: [{ kind: 'User', name: 'u', role: 'editor' }] });
    expect((await admin().list(RoleBindings, { namespace: c })).items.map((r) => r.metadata?.name).sort()).toContain(
      'atoll-editor',
    );
    await admin().delete(Workspaces, c, c);
    await eventually(
      'workspace gone',
      () => admin().tryGet(Workspaces, c, c),
      (w) => w === undefined,
    );
    const roles = await admin().list(Roles, { namespace: c });
    const bindings = await admin().list(RoleBindings, { namespace: c });
    expect(roles.items.filter((r) => r.metadata?.name?.startsWith('atoll-'))).toEqual([]);
    expect(bindings.items.filter((r) => r.metadata?.name?.startsWith('atoll-'))).toEqual([]);
    const ns = await admin().get<KubeObject>(Namespaces, c);
    expect(ns.metadata?.labels?.['atoll.dev/workspace']).toBeUndefined();
  });
});
