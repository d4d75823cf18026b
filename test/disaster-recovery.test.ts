import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parse, stringify } from 'yaml';
import type { ExternalConnection, Workspace } from '../src/api/v1alpha1/index.js';
import type { KubeClient, KubeObject } from '../src/kube/client.js';
import { ExternalConnections, Namespaces, Secrets, Workspaces } from '../src/kube/resources.js';
import { FINGERPRINT_SECRET, KEY_RING_SECRET } from '../src/crypto/secret-key-ring-store.js';
import {
  admin,
  condition,
  createWorkspace,
  eventually,
  kubectl,
  randomSecret,
  uniqueName,
  userClient,
} from './support/cluster.js';
import { OPERATOR_NAMESPACE, startIsolatedAtoll, type IsolatedAtoll } from './support/operator-fixture.js';

type Conn = ExternalConnection & KubeObject;
type Ws = Workspace & KubeObject;
type Secret = KubeObject & { data?: Record<string, string>; type?: string };

/**
 * Disaster recovery: sealed manifests kept in Git survive rebuilding a
 * Workspace (and a whole cluster) exactly when the platform chose a stable
 * workspace identity and kept the KMS key; without either, the old
 * ciphertext is refused and nothing else is harmed.
 */

const CONNECTION = 'billing-api';

function connectionWithValue(ns: string, value: string) {
  return {
    apiVersion: 'atoll.dev/v1alpha1',
    kind: 'ExternalConnection',
    metadata: { name: CONNECTION, namespace: ns },
    spec: {
      type: 'http-api',
      settings: { baseURL: 'https://api.example.com', auth: 'bearer' },
      credentials: { token: { value } },
      probe: { interval: '0' },
    },
  };
}

/**
 * Seals through the GitOps path (server-side dry-run create) and keeps only
 * what a user commits: no uid, timestamps or status from this cluster.
 */
async function sealForGit(ns: string, plaintext: string, kubeconfig?: string): Promise<string> {
  const r = await kubectl(['create', '--dry-run=server', '-o', 'yaml', '-f', '-'], {
    input: stringify(connectionWithValue(ns, plaintext)),
    ...(kubeconfig ? { kubeconfig } : {}),
  });
  expect(r.code, r.stderr).toBe(0);
  expect(r.stdout).not.toContain(plaintext);
  const dry = parse(r.stdout) as Conn;
  expect(dry.spec.credentials?.token?.sealed).toMatch(/^atoll:v1:local:/);
  return stringify({
    apiVersion: dry.apiVersion,
    kind: dry.kind,
    metadata: { name: dry.metadata.name, namespace: dry.metadata.namespace },
    spec: dry.spec,
  });
}

async function applyFromGit(git: string, kubeconfig?: string): Promise<void> {
  const r = await kubectl(['apply', '-f', '-'], { input: git, ...(kubeconfig ? { kubeconfig } : {}) });
  expect(r.code, r.stderr).toBe(0);
}

/** The connection once the reconciler has judged its current generation. */
function judged(client: KubeClient, ns: string, timeoutMs = 30_000): Promise<Conn> {
  return eventually(
    `${ns}/${CONNECTION} reconciled`,
    () => client.get<Conn>(ExternalConnections, CONNECTION, ns),
    (c) =>
      c.status?.observedGeneration === c.metadata?.generation &&
      ['True', 'False'].includes(condition(c, 'CredentialsSealed')?.status ?? ''),
    timeoutMs,
  );
}

async function gone(what: string, get: () => Promise<unknown>, timeoutMs = 90_000): Promise<void> {
  await eventually(what, get, (v) => v === undefined, timeoutMs);
}

/** Deletes the connection, the Workspace and the Namespace, waiting until each is really gone. */
async function tearDownWorkspace(ns: string): Promise<void> {
  const c = admin();
  await c.delete(ExternalConnections, CONNECTION, ns);
  await gone(`${ns}/${CONNECTION} deleted`, () => c.tryGet(ExternalConnections, CONNECTION, ns));
  await c.delete(Workspaces, ns, ns);
  await gone(`workspace ${ns} deleted`, () => c.tryGet(Workspaces, ns, ns));
  await c.delete(Namespaces, ns);
  // kube-controller-manager's namespace controller empties it (managed Secret, Roles) and removes it.
  await gone(`namespace ${ns} deleted`, () => c.tryGet(Namespaces, ns));
}

describe('disaster recovery: rebuilding a workspace', () => {
  it('a platform-chosen identity keeps sealed manifests from Git valid after the Workspace and Namespace are rebuilt', async () => {
    const ns = uniqueName('dr-stable');
    const identity = uniqueName('acme-billing');
    const plaintext = randomSecret('drstable');
    const before = await createWorkspace(ns, { encryption: { identity } });
    expect(before.status?.identity).toBe(identity);

    const git = await sealForGit(ns, plaintext);
    await applyFromGit(git);
    const first = await judged(admin(), ns);
    expect(condition(first, 'CredentialsSealed')).toMatchObject({ status: 'True' });
    expect(first.status?.credentials?.token?.hint).toBe(`…${plaintext.slice(-4)}`);

    await tearDownWorkspace(ns);
    const rebuilt = await createWorkspace(ns, { encryption: { identity } });
    expect(rebuilt.metadata?.uid).not.toBe(before.metadata?.uid);
    expect(rebuilt.status?.identity).toBe(identity);

    await applyFromGit(git);
    const after = await judged(admin(), ns);
    expect(condition(after, 'CredentialsSealed')).toMatchObject({ status: 'True' });
    expect(after.status?.credentials?.token?.hint).toBe(first.status?.credentials?.token?.hint);
    // The sealed value from Git is used as it is, and the managed Secret is back.
    expect(after.spec.credentials?.token?.sealed).toBe((parse(git) as Conn).spec.credentials?.token?.sealed);
    const managed = await admin().get<Secret>(Secrets, `${CONNECTION}-credentials`, ns);
    expect(Buffer.from(managed.data!.token!, 'base64').toString()).toMatch(/^atoll:v1:local:/);
  });

  it('without an identity (bound to the Workspace UID) a rebuilt workspace inherits nothing: the old sealed value is refused', async () => {
    const ns = uniqueName('dr-uid');
    const plaintext = randomSecret('druid');
    const before = await createWorkspace(ns);
    expect(before.status?.identity).toBe(before.metadata?.uid);

    const git = await sealForGit(ns, plaintext);
    await applyFromGit(git);
    expect(condition(await judged(admin(), ns), 'CredentialsSealed')).toMatchObject({ status: 'True' });

    await tearDownWorkspace(ns);
    const rebuilt = await createWorkspace(ns);
    expect(rebuilt.status?.identity).toBe(rebuilt.metadata?.uid);
    expect(rebuilt.status?.identity).not.toBe(before.status?.identity);

    await applyFromGit(git);
    const after = await judged(admin(), ns);
    expect(condition(after, 'CredentialsSealed')).toMatchObject({ status: 'False', reason: 'CiphertextRejected' });
    expect(condition(after, 'CredentialsSealed')?.message).toContain('atoll seal');
    expect(condition(after, 'Ready')).toMatchObject({ status: 'False', reason: 'CiphertextRejected' });
    // Refused, not rewritten: the object still holds exactly what Git holds, and nothing was sealed from it.
    expect(after.spec.credentials?.token?.sealed).toBe((parse(git) as Conn).spec.credentials?.token?.sealed);
    expect(await admin().tryGet(Secrets, `${CONNECTION}-credentials`, ns)).toBeUndefined();
    expect(after.status?.credentials?.token).toBeUndefined();
  });
});

describe('disaster recovery: who may choose the identity', () => {
  const ns = uniqueName('dr-rbac');
  const identity = uniqueName('acme-ops');
  beforeAll(async () => {
    await createWorkspace(ns, {
      encryption: { identity },
      members: [
        { kind: 'Group', name: `${ns}-editors`, role: 'editor' },
        { kind: 'User', name: `${ns}-admin`, role: 'admin' },
      ],
    });
  });

  it('tenants cannot set or change the identity: they cannot write Workspaces at all', async () => {
    for (const tenant of [userClient('someone', [`${ns}-editors`]), userClient(`${ns}-admin`)]) {
      await expect(
        tenant.mergePatch(Workspaces, ns, ns, { spec: { encryption: { identity: 'stolen-identity' } } }),
      ).rejects.toMatchObject({ status: 403 });
      await expect(
        tenant.create(Workspaces, {
          metadata: { name: 'second', namespace: ns },
          spec: { encryption: { identity: 'stolen-identity' } },
        } as never),
      ).rejects.toMatchObject({ status: 403 });
    }
    expect((await admin().get<Ws>(Workspaces, ns, ns)).spec.encryption?.identity).toBe(identity);
  });

  it('the CRD refuses changing or removing an identity once set, saying why', async () => {
    const changed = await admin()
      .mergePatch(Workspaces, ns, ns, { spec: { encryption: { identity: 'another-identity' } } })
      .catch((e: unknown) => e);
    expect(changed).toMatchObject({ status: 422 });
    expect((changed as Error).message).toContain('spec.encryption.identity is immutable once set');
    expect((changed as Error).message).toContain('would no longer decrypt');

    const removed = await admin()
      .mergePatch(Workspaces, ns, ns, { spec: { encryption: { identity: null } } })
      .catch((e: unknown) => e);
    expect(removed).toMatchObject({ status: 422 });
    expect((removed as Error).message).toContain('spec.encryption.identity is immutable once set');
    expect((await admin().get<Ws>(Workspaces, ns, ns)).spec.encryption?.identity).toBe(identity);
  });

  it('a UID-bound workspace may pin only the identity it already uses', async () => {
    const other = uniqueName('dr-pin');
    const ws = await createWorkspace(other);
    const refused = await admin()
      .mergePatch(Workspaces, other, other, { spec: { encryption: { identity: 'brand-new-identity' } } })
      .catch((e: unknown) => e);
    expect(refused).toMatchObject({ status: 422 });
    expect((refused as Error).message).toContain(
      `can only be set to the identity this workspace already uses ("${ws.metadata.uid}")`,
    );
    // Pinning the UID it already uses keeps every existing ciphertext valid, and is allowed.
    const pinned = await admin().mergePatch<Ws>(Workspaces, other, other, {
      spec: { encryption: { identity: ws.metadata.uid } },
    });
    expect(pinned.spec.encryption?.identity).toBe(ws.metadata.uid);
  });
});

describe('disaster recovery: rebuilding the whole cluster (local KMS provider)', () => {
  const ns = uniqueName('dr-cluster');
  const identity = uniqueName('acme-payments');
  const plaintext = randomSecret('drcluster');
  let git: string;
  let keyRingBackup: string;
  let second: IsolatedAtoll | undefined;
  let kubeconfig2: string;

  beforeAll(async () => {
    // Cluster 1 (the shared dev instance): a workspace with a stable identity and a sealed manifest in "Git".
    await createWorkspace(ns, { encryption: { identity } });
    git = await sealForGit(ns, plaintext);
    await applyFromGit(git);
    expect(condition(await judged(admin(), ns), 'CredentialsSealed')).toMatchObject({ status: 'True' });
    // The backup: the local provider's key ring, as `kubectl get secret -o yaml` would save it.
    const r = await kubectl(['get', 'secret', KEY_RING_SECRET, '-n', OPERATOR_NAMESPACE, '-o', 'yaml']);
    expect(r.code, r.stderr).toBe(0);
    keyRingBackup = r.stdout;

    // Cluster 2: a fresh control plane and operator; nothing carried over yet.
    second = await startIsolatedAtoll({ controllerManager: false });
    kubeconfig2 = second.cp.adminKubeconfigPath;
  });

  afterAll(async () => {
    await second?.stop();
  });

  it('without the key ring the old sealed value is refused (CiphertextRejected) and kept as it is', async () => {
    const client = second!.client;
    await createWorkspace(ns, { encryption: { identity } }, client);
    await applyFromGit(git, kubeconfig2);
    const c = await judged(client, ns);
    expect(condition(c, 'CredentialsSealed')).toMatchObject({ status: 'False', reason: 'CiphertextRejected' });
    expect(c.spec.credentials?.token?.sealed).toBe((parse(git) as Conn).spec.credentials?.token?.sealed);
    expect(await client.tryGet(Secrets, `${CONNECTION}-credentials`, ns)).toBeUndefined();
    // The fresh cluster made its own, different key ring.
    const fresh = await client.get<Secret>(Secrets, KEY_RING_SECRET, OPERATOR_NAMESPACE);
    const original = parse(keyRingBackup) as Secret;
    expect(fresh.data).not.toEqual(original.data);
  });

  it('restoring the key-ring Secret makes the same Git manifest decrypt there, with the same hint', async () => {
    const client = second!.client;
    await second!.stopOperator();
    // Restore as documented: strip cluster-specific metadata, replace the Secret, (re)start the operator.
    const saved = parse(keyRingBackup) as Secret;
    const restore = stringify({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: KEY_RING_SECRET, namespace: OPERATOR_NAMESPACE, labels: saved.metadata?.labels },
      type: saved.type,
      data: saved.data,
    });
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'atoll-dr-')), 'atoll-local-kms.yaml');
    writeFileSync(file, restore, { mode: 0o600 });
    const replaced = await kubectl(['replace', '--force', '-f', file], { kubeconfig: kubeconfig2 });
    expect(replaced.code, replaced.stderr).toBe(0);
    expect((await client.get<Secret>(Secrets, KEY_RING_SECRET, OPERATOR_NAMESPACE)).data).toEqual(saved.data);
    await second!.start();

    // The very object that was refused (never re-applied, never edited) now decrypts.
    const c = await eventually(
      `${ns}/${CONNECTION} sealed after restore`,
      () => client.get<Conn>(ExternalConnections, CONNECTION, ns),
      (x) => condition(x, 'CredentialsSealed')?.status === 'True',
      60_000,
    );
    expect(c.status?.credentials?.token?.hint).toBe(`…${plaintext.slice(-4)}`);
    expect(c.status?.credentials?.token?.version).toBe(1);
    const managed = await client.get<Secret>(Secrets, `${CONNECTION}-credentials`, ns);
    expect(Buffer.from(managed.data!.token!, 'base64').toString()).toMatch(/^atoll:v1:local:/);
    // The fingerprint key was not restored and is not needed to decrypt: cluster 2 made its own.
    expect(await client.tryGet(Secrets, FINGERPRINT_SECRET, OPERATOR_NAMESPACE)).toBeDefined();

    // And re-applying from Git is a no-op sync: applied unchanged, still sealed.
    await applyFromGit(git, kubeconfig2);
    const again = await judged(client, ns);
    expect(condition(again, 'CredentialsSealed')).toMatchObject({ status: 'True' });
  });

  it('never logged the credential in the second cluster', () => {
    const lines = second!.logLines().join('\n');
    expect(lines.length).toBeGreaterThan(0);
    expect(lines).not.toContain(plaintext);
  });
});
