import { describe, expect, it, beforeAll } from 'vitest';
import { readFileSync } from 'node:fs';
import { stringify } from 'yaml';
import { CoreEvents, ExternalConnections, Secrets, Workspaces } from '../src/kube/resources.js';
import type { KubeObject } from '../src/kube/client.js';
import type { ExternalConnection } from '../src/api/v1alpha1/index.js';
import {
  admin,
  condition,
  createWorkspace,
  devState,
  etcdDump,
  eventually,
  kubectl,
  randomSecret,
  uniqueName,
  userClient,
} from './support/cluster.js';

type Conn = ExternalConnection & KubeObject;
type Secret = KubeObject & { data?: Record<string, string>; type?: string };

function manifest(
  ns: string,
  name: string,
  credentials: Record<string, unknown>,
  settings: Record<string, unknown> = { baseURL: 'https://api.example.com', auth: 'bearer' },
) {
  return {
    apiVersion: 'atoll.dev/v1alpha1',
    kind: 'ExternalConnection',
    metadata: { name, namespace: ns },
    spec: { type: 'http-api', settings, credentials, probe: { interval: '0' } },
  };
}

/** The plaintext and the base64 of it at all three alignments (as it would sit inside a larger base64 blob). */
function forms(p: string): string[] {
  const out = [p];
  for (let pad = 0; pad < 3; pad++) {
    const enc = Buffer.from('x'.repeat(pad) + p).toString('base64');
    const skip = Math.ceil((pad * 4) / 3) + 1;
    out.push(enc.slice(skip, skip + 24));
  }
  return out;
}

function expectAbsent(haystack: string, plaintext: string, where: string) {
  for (const f of forms(plaintext))
    expect(haystack.includes(f), `${where} contains a form of the plaintext`).toBe(false);
}

const sealedOf = (c: Conn, field: string) => c.spec.credentials?.[field]?.sealed;

async function ready(ns: string, name: string): Promise<Conn> {
  return eventually(
    `${name} sealed`,
    () => admin().get<Conn>(ExternalConnections, name, ns),
    (c) =>
      condition(c, 'CredentialsSealed')?.status === 'True' && c.status?.observedGeneration === c.metadata.generation,
  );
}

describe('credentials: no plaintext at rest (invariant 1)', () => {
  const ns = uniqueName('creds');
  beforeAll(async () => {
    await createWorkspace(ns, { policy: { egress: { allowCIDRs: [] } } });
  });

  it('client-side apply, server-side apply and create never store the plaintext anywhere', async () => {
    const plaintexts: string[] = [];
    const ways: Array<[string, string[]]> = [
      ['csa', ['apply', '-f', '-']],
      ['ssa', ['apply', '--server-side', '-f', '-']],
      ['create', ['create', '-f', '-']],
    ];
    for (const [name, args] of ways) {
      const p = randomSecret(`p${name}`);
      plaintexts.push(p);
      const r = await kubectl(args, { input: stringify(manifest(ns, `leak-${name}`, { token: { value: p } })) });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout + r.stderr).not.toContain(p);
    }
    // Re-apply the client-side one unchanged: the annotation path is exercised twice.
    const again = await kubectl(['apply', '-f', '-'], {
      input: stringify(manifest(ns, 'leak-csa', { token: { value: plaintexts[0]! } })),
    });
    expect(again.code, again.stderr).toBe(0);
    for (const [name] of ways) await ready(ns, `leak-${name}`);

    const objects = await admin().list<Conn>(ExternalConnections, { namespace: ns });
    const secrets = await admin().list<Secret>(Secrets, { namespace: ns });
    const events = await admin().list(CoreEvents, { namespace: ns });
    const etcd = await etcdDump();
    const metrics = await (await fetch(devState().controller.metrics)).text();
    const log = readFileSync(devState().log, 'utf8');
    const objectsJson = JSON.stringify(objects);
    expect(objectsJson).toContain('kubectl.kubernetes.io/last-applied-configuration');
    expect(objectsJson).toContain('managedFields');
    expect(etcd).toContain(`/atoll.dev/externalconnections/${ns}/leak-csa`);
    for (const p of plaintexts) {
      expectAbsent(objectsJson, p, 'objects (spec, status, annotations, managedFields)');
      expectAbsent(JSON.stringify(secrets), p, 'Secrets');
      expectAbsent(JSON.stringify(events), p, 'Events');
      expectAbsent(etcd, p, 'the raw etcd keyspace');
      expectAbsent(metrics, p, 'metrics');
      expectAbsent(log, p, 'operator logs');
    }
  });

  it('server-side dry-run create returns the object sealed and stores nothing', async () => {
    const p = randomSecret('dry');
    const r = await kubectl(['create', '--dry-run=server', '-o', 'yaml', '-f', '-'], {
      input: stringify(manifest(ns, 'dry-run', { token: { value: p } })),
    });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/sealed: atoll:v1:/);
    expect(r.stdout).not.toContain(p);
    expect(await admin().tryGet(ExternalConnections, 'dry-run', ns)).toBeUndefined();
    // The sealed output is ready for Git: applying it yields a working connection.
    const applied = await kubectl(['apply', '-f', '-'], { input: r.stdout });
    expect(applied.code, applied.stderr).toBe(0);
    const c = await ready(ns, 'dry-run');
    expect(c.status?.credentials?.token?.hint).toBe(`…${p.slice(-4)}`);
  });
});

describe('credentials: binding, hints, rotation', () => {
  const a = uniqueName('bind-a');
  const b = uniqueName('bind-b');
  beforeAll(async () => {
    await createWorkspace(a, { members: [{ kind: 'Group', name: `${a}-editors`, role: 'editor' }] });
    await createWorkspace(b);
  });

  it('rejects a sealed value copied to another workspace, connection or field (invariant 3)', async () => {
    const p = randomSecret('bound');
    await admin().create(
      ExternalConnections,
      manifest(
        a,
        'origin',
        { username: { value: 'svc-user-0001' }, password: { value: p } },
        { baseURL: 'https://api.example.com', auth: 'basic' },
      ) as never,
    );
    const origin = await ready(a, 'origin');
    const stolen = sealedOf(origin, 'password')!;
    expect(stolen).toMatch(/^atoll:v1:/);

    const copies: Array<[string, string, Record<string, unknown>]> = [
      [b, 'origin', { username: { value: 'svc-user-0001' }, password: { sealed: stolen } }], // same names, other workspace
      [a, 'other-connection', { username: { value: 'svc-user-0001' }, password: { sealed: stolen } }], // other connection
      [a, 'other-field', { username: { sealed: stolen }, password: { value: 'another-password-01' } }], // other field
    ];
    for (const [ns, name, credentials] of copies) {
      await admin().create(
        ExternalConnections,
        manifest(ns, name, credentials, { baseURL: 'https://api.example.com', auth: 'basic' }) as never,
      );
      const c = await eventually(
        `${ns}/${name} rejected`,
        () => admin().get<Conn>(ExternalConnections, name, ns),
        (x) => condition(x, 'CredentialsSealed')?.status === 'False',
      );
      expect(condition(c, 'CredentialsSealed')?.reason).toBe('CiphertextRejected');
      expect(condition(c, 'Ready')).toMatchObject({ status: 'False', reason: 'CiphertextRejected' });
      expect(condition(c, 'CredentialsSealed')?.message).toMatch(/spec\.credentials\.(password|username)\.sealed/);
      // The owner's value is never used there: no managed Secret was written.
      expect(await admin().tryGet(Secrets, `${name}-credentials`, ns)).toBeUndefined();
    }
  });

  it('binds credentials to their destination: repointing a connection needs its credentials again', async () => {
    const p = randomSecret('dest');
    await admin().create(ExternalConnections, manifest(a, 'pointed', { token: { value: p } }) as never);
    await ready(a, 'pointed');
    const before = await admin().get<Secret>(Secrets, 'pointed-credentials', a);

    // An editor points it at a server of their choosing without supplying the credential: refused at
    // admission, naming what changed and the fix.
    const editor = userClient('someone', [`${a}-editors`]);
    const refused = await editor
      .mergePatch(ExternalConnections, 'pointed', a, {
        spec: { settings: { baseURL: 'https://collector.attacker.example' } },
      })
      .catch((e: Error) => e);
    expect((refused as Error).message).toContain(
      'spec.settings.baseURL changes where this connection sends its credentials',
    );
    expect((refused as Error).message).toContain('spec.credentials.token is sealed for the previous destination');
    expect((refused as Error).message).toContain('set spec.credentials.<field>.value beside the new settings');
    expect((await admin().get<Conn>(ExternalConnections, 'pointed', a)).spec.settings?.baseURL).toBe(
      'https://api.example.com',
    );
    expect((await admin().get<Secret>(Secrets, 'pointed-credentials', a)).data).toEqual(before.data);

    // Only scheme, host and port are the destination of http-api: a path-only change breaks nothing (issue 17.2).
    await editor.mergePatch(ExternalConnections, 'pointed', a, {
      spec: { settings: { baseURL: 'https://api.example.com/v2' } },
    });
    const moved = await eventually(
      'still sealed after a path change',
      () => admin().get<Conn>(ExternalConnections, 'pointed', a),
      (c) =>
        c.status?.observedGeneration === c.metadata.generation && condition(c, 'CredentialsSealed')?.status === 'True',
    );
    expect(moved.status?.credentials?.token?.version).toBe(1);

    // Supplying the credential with the new destination in the same change is fine.
    const q = randomSecret('dest2');
    await admin().mergePatch(ExternalConnections, 'pointed', a, {
      spec: { settings: { baseURL: 'https://api2.example.com' }, credentials: { token: { value: q, sealed: null } } },
    });
    const ok = await eventually(
      'sealed for the new destination',
      () => admin().get<Conn>(ExternalConnections, 'pointed', a),
      (c) =>
        condition(c, 'CredentialsSealed')?.status === 'True' && c.status?.observedGeneration === c.metadata.generation,
    );
    expect(ok.status?.credentials?.token?.hint).toBe(`…${q.slice(-4)}`);
  });

  it('never overwrites a Secret it does not manage, and never inherits an orphaned one', async () => {
    const planted = await admin().create<Secret>(Secrets, {
      metadata: { name: 'foreign-credentials', namespace: a },
      stringData: { token: 'not-atolls' },
    } as never);
    await admin().create(ExternalConnections, manifest(a, 'foreign', { token: { value: randomSecret('f') } }) as never);
    const c = await eventually(
      'name clash reported',
      () => admin().get<Conn>(ExternalConnections, 'foreign', a),
      (x) => condition(x, 'CredentialsSealed')?.reason === 'PolicyViolation',
    );
    expect(condition(c, 'CredentialsSealed')?.message).toContain(
      'Secret foreign-credentials already exists and is not managed by atoll',
    );
    const foreign = await admin().get<Secret>(Secrets, 'foreign-credentials', a);
    expect(Buffer.from(foreign.data!.token!, 'base64').toString()).toBe('not-atolls');
    // Never written at all (the operator's create of its managed Secret found the name taken, ADR 0031).
    expect(foreign.metadata?.resourceVersion).toBe(planted.metadata?.resourceVersion);
    expect(foreign.metadata?.labels ?? {}).toEqual({});

    const v1 = randomSecret('o1');
    await admin().create(ExternalConnections, manifest(a, 'reborn', { token: { value: v1 } }) as never);
    await ready(a, 'reborn');
    await admin().delete(ExternalConnections, 'reborn', a, { propagationPolicy: 'Orphan' });
    await eventually(
      'deleted',
      () => admin().tryGet(ExternalConnections, 'reborn', a),
      (x) => x === undefined,
    );
    const v2 = randomSecret('o2');
    const again = await admin().create<Conn>(
      ExternalConnections,
      manifest(a, 'reborn', { token: { value: v2 } }) as never,
    );
    const sealed = await eventually(
      'rewritten for the new owner',
      () => admin().get<Secret>(Secrets, 'reborn-credentials', a),
      (x) => x.metadata?.ownerReferences?.[0]?.uid === again.metadata?.uid,
    );
    expect(JSON.parse(sealed.metadata!.annotations!['atoll.dev/credentials']!).token.version).toBe(1);
    const conn = await ready(a, 'reborn');
    expect(conn.status?.credentials?.token?.hint).toBe(`…${v2.slice(-4)}`);
  });

  it('shows at most 4 trailing characters, none under 8 (invariant 5)', async () => {
    const cases: Array<[string, string]> = [
      ['short7x', ''],
      ['abcdefgh', '…gh'],
      ['abcdefghijkl', '…jkl'],
      ['abcdefghijklmnopqrstuvwxyz', '…wxyz'],
    ];
    for (const [i, [value, hint]] of cases.entries()) {
      await admin().create(ExternalConnections, manifest(a, `hint-${i}`, { token: { value } }) as never);
      const c = await ready(a, `hint-${i}`);
      expect(c.status?.credentials?.token?.hint ?? '').toBe(hint);
      expect(c.status?.credentialHint ?? '').toBe(hint);
    }
  });

  it('rotates immediately and keeps unchanged values without churn (invariant 6)', async () => {
    const v1 = randomSecret('v1');
    const v2 = randomSecret('v2');
    const apply = (v: string) =>
      kubectl(['apply', '-f', '-'], { input: stringify(manifest(a, 'rotating', { token: { value: v } })) });
    expect((await apply(v1)).code).toBe(0);
    const first = await ready(a, 'rotating');
    expect(first.status?.credentials?.token?.version).toBe(1);
    const s1 = await admin().get<Secret>(Secrets, 'rotating-credentials', a);
    const ct1 = Buffer.from(s1.data!.token!, 'base64').toString();

    // Re-applying the same plaintext (a GitOps sync): admission never decrypts, so the spec gets a
    // fresh sealed value, but the controller recognises the value by its keyed fingerprint: same
    // version, hint and managed Secret, no rotation Event.
    expect((await apply(v1)).code).toBe(0);
    const resealed = await admin().get<Conn>(ExternalConnections, 'rotating', a);
    expect(sealedOf(resealed, 'token')).not.toBe(sealedOf(first, 'token'));
    const same = await ready(a, 'rotating');
    expect(same.metadata.generation).toBeGreaterThan(first.metadata.generation!);
    expect(same.status?.credentials?.token).toEqual(first.status?.credentials?.token);
    // The managed copy is kept (same ciphertext); only its bookkeeping notes the new spec value.
    expect((await admin().get<Secret>(Secrets, 'rotating-credentials', a)).data?.token).toBe(s1.data?.token);
    const noRotation = await admin().list<KubeObject & { reason?: string; involvedObject?: { name?: string } }>(
      CoreEvents,
      { namespace: a },
    );
    expect(
      noRotation.items.filter((e) => e.reason === 'CredentialRotated' && e.involvedObject?.name === 'rotating'),
    ).toEqual([]);

    expect((await apply(v2)).code).toBe(0);
    const rotated = await eventually(
      'version 2',
      () => admin().get<Conn>(ExternalConnections, 'rotating', a),
      (c) => c.status?.credentials?.token?.version === 2,
    );
    expect(rotated.status?.credentials?.token?.hint).toBe(`…${v2.slice(-4)}`);
    const s2 = await admin().get<Secret>(Secrets, 'rotating-credentials', a);
    const ct2 = Buffer.from(s2.data!.token!, 'base64').toString();
    expect(ct2).not.toBe(ct1);
    expect(JSON.stringify(s2)).not.toContain(ct1);
    expect(s2.type).toBe('atoll.dev/sealed');
    expect(s2.metadata?.labels).toMatchObject({
      'app.kubernetes.io/managed-by': 'atoll',
      'atoll.dev/connection': 'rotating',
    });
    expect(s2.metadata?.ownerReferences?.[0]).toMatchObject({
      kind: 'ExternalConnection',
      name: 'rotating',
      controller: true,
    });
    const events = await admin().list<KubeObject & { reason?: string; message?: string }>(CoreEvents, { namespace: a });
    expect(events.items.some((e) => e.reason === 'CredentialRotated' && e.message?.includes('version 2'))).toBe(true);
  });

  it('accepts a value over a stored credential from every client path, without echoing it', async () => {
    const first = randomSecret('mix0');
    const body = (v: string) => stringify(manifest(a, 'mixed-paths', { token: { value: v } }));
    expect((await kubectl(['apply', '--server-side', '-f', '-'], { input: body(first) })).code).toBe(0);
    await ready(a, 'mixed-paths');
    const steps: Array<[string, string[]]> = [
      ['ssa again, same value', ['apply', '--server-side', '-f', '-']],
      ['client-side after server-side', ['apply', '-f', '-']],
      [
        'server-side after client-side (kubectl needs --force-conflicts to take over)',
        ['apply', '--server-side', '--force-conflicts', '-f', '-'],
      ],
    ];
    let version = 1;
    for (const [what, args] of steps) {
      const v = what.includes('same value') ? first : randomSecret('mix');
      const r = await kubectl(args, { input: body(v) });
      expect(r.code, `${what}: ${r.stderr}`).toBe(0);
      expect(r.stdout + r.stderr).not.toContain(v);
      if (v !== first) version++;
      const c = await eventually(
        what,
        () => admin().get<Conn>(ExternalConnections, 'mixed-paths', a),
        (x) =>
          x.status?.credentials?.token?.version === version && x.status?.observedGeneration === x.metadata.generation,
      );
      expect(c.spec.credentials?.token?.value).toBeUndefined();
      expect(c.status?.credentials?.token?.hint).toBe(`…${v.slice(-4)}`);
    }
    // A JSON patch that adds a value beside the stored sealed value rotates it too.
    const patched = randomSecret('jp');
    const r = await kubectl([
      'patch',
      'externalconnection',
      'mixed-paths',
      '-n',
      a,
      '--type=json',
      '-p',
      JSON.stringify([{ op: 'add', path: '/spec/credentials/token/value', value: patched }]),
    ]);
    expect(r.code, r.stderr).toBe(0);
    await eventually(
      'json patch rotation',
      () => admin().get<Conn>(ExternalConnections, 'mixed-paths', a),
      (x) => x.status?.credentials?.token?.hint === `…${patched.slice(-4)}`,
    );
    // generateName cannot be sealed to a name that does not exist yet: a clear 422, not a KMS error.
    const gen = await admin()
      .create(ExternalConnections, {
        metadata: { generateName: 'gen-', namespace: a },
        spec: manifest(a, 'x', { token: { value: randomSecret() } }).spec,
      } as never)
      .catch((e: Error) => e);
    expect(gen.message).toContain('metadata.name is required when a credential value is supplied');
  });

  it('takes secretKeyRef from this namespace only, reports a missing Secret, and treats source changes as rotations', async () => {
    await admin().create(
      ExternalConnections,
      manifest(a, 'from-secret', { token: { secretKeyRef: { name: 'eso-made', key: 'token' } } }) as never,
    );
    const missing = await eventually(
      'SecretNotFound',
      () => admin().get<Conn>(ExternalConnections, 'from-secret', a),
      (c) => condition(c, 'CredentialsSealed')?.reason === 'SecretNotFound',
    );
    expect(condition(missing, 'CredentialsSealed')?.message).toContain(
      'Secret eso-made does not exist in this namespace or does not offer itself to this connection',
    );

    const v1 = randomSecret('src1');
    // A Secret that does not offer itself to the connection is never read, and looks missing.
    await admin().create(Secrets, { metadata: { name: 'eso-made', namespace: a }, stringData: { token: v1 } } as never);
    await new Promise((r) => setTimeout(r, 1500));
    const notOffered = await admin().get<Conn>(ExternalConnections, 'from-secret', a);
    expect(condition(notOffered, 'CredentialsSealed')?.reason).toBe('SecretNotFound');
    expect(condition(notOffered, 'CredentialsSealed')?.message).toContain(
      'atoll.dev/allowed-connections: "from-secret"',
    );
    expect(notOffered.status?.credentials?.token).toBeUndefined();
    expect(await admin().tryGet(Secrets, 'from-secret-credentials', a)).toBeUndefined();
    await admin().mergePatch(Secrets, 'eso-made', a, {
      metadata: { annotations: { 'atoll.dev/allowed-connections': 'other, from-secret' } },
    });
    const sealed = await eventually(
      'sealed from secret',
      () => admin().get<Conn>(ExternalConnections, 'from-secret', a),
      (c) => condition(c, 'CredentialsSealed')?.status === 'True',
    );
    expect(sealed.status?.credentials?.token).toMatchObject({ version: 1, hint: `…${v1.slice(-4)}` });
    const managed = await admin().get<Secret>(Secrets, 'from-secret-credentials', a);
    expect(Buffer.from(managed.data!.token!, 'base64').toString()).toMatch(/^atoll:v1:/);
    expect(JSON.stringify(managed)).not.toContain(Buffer.from(v1).toString('base64'));

    const v2 = randomSecret('src2');
    await admin().mergePatch(Secrets, 'eso-made', a, { stringData: { token: v2 } });
    await eventually(
      'source rotation',
      () => admin().get<Conn>(ExternalConnections, 'from-secret', a),
      (c) => c.status?.credentials?.token?.version === 2 && c.status?.credentials?.token?.hint === `…${v2.slice(-4)}`,
    );

    // A namespace cannot be named: the field does not exist (kubectl's strict decoding says so).
    const r = await kubectl(['create', '-f', '-'], {
      input: stringify(manifest(a, 'cross-ns', { token: { secretKeyRef: { name: 'x', key: 'y', namespace: b } } })),
    });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/unknown field "spec\.credentials\.token\.secretKeyRef\.namespace"/);

    // Deleting the connection removes the managed Secret but never the source.
    await admin().delete(ExternalConnections, 'from-secret', a);
    await eventually(
      'managed secret collected',
      () => admin().tryGet(Secrets, 'from-secret-credentials', a),
      (s) => s === undefined,
    );
    expect(await admin().tryGet(Secrets, 'eso-made', a)).toBeDefined();
  });

  it('refuses oversize values and control characters at admission, naming the field', async () => {
    const big = await admin()
      .create(ExternalConnections, manifest(a, 'too-big', { token: { value: 'x'.repeat(9000) } }) as never)
      .catch((e: Error) => e);
    expect(big.message).toMatch(/spec\.credentials\.token\.value/);
    const ctl = await admin()
      .create(ExternalConnections, manifest(a, 'ctl-chars', { token: { value: 'abcdefgh12345\n' } }) as never)
      .catch((e: Error) => e);
    expect(ctl.message).toContain('spec.credentials.token.value contains control characters');
    expect(ctl.message).not.toContain('abcdefgh12345');
  });
});

describe('credentials: workspace key rotation', () => {
  const ns = uniqueName('rekey');
  beforeAll(async () => {
    await createWorkspace(ns);
  });

  it('re-wraps every credential with the new key in the background, keeping versions, with progress in status', async () => {
    const values = [randomSecret('k1'), randomSecret('k2'), randomSecret('k3')];
    for (const [i, v] of values.entries())
      await admin().create(ExternalConnections, manifest(ns, `rekey-${i}`, { token: { value: v } }) as never);
    for (let i = 0; i < values.length; i++) await ready(ns, `rekey-${i}`);
    const before = await admin().get<Secret>(Secrets, 'rekey-0-credentials', ns);

    await admin().mergePatch(Workspaces, ns, ns, { spec: { encryption: { keyId: 'local/rotated' } } });
    const ws = await eventually(
      'rotation complete',
      () =>
        admin().get<
          KubeObject & {
            status?: { keyId?: string; keyRotation?: { phase?: string; rewrapped?: number; total?: number } };
          }
        >(Workspaces, ns, ns),
      (w) =>
        w.status?.keyRotation?.phase === 'Completed' &&
        w.status?.keyRotation?.total === 3 &&
        w.status?.keyId === 'local/rotated',
    );
    expect(ws.status?.keyRotation).toMatchObject({ targetKeyId: 'local/rotated', rewrapped: 3, total: 3 });
    for (let i = 0; i < values.length; i++) {
      const c = await admin().get<Conn>(ExternalConnections, `rekey-${i}`, ns);
      expect(c.status?.credentials?.token).toMatchObject({ keyId: 'local/rotated', version: 1 });
      const s = await admin().get<Secret>(Secrets, `rekey-${i}-credentials`, ns);
      expect(Buffer.from(s.data!.token!, 'base64').toString()).toMatch(/^atoll:v1:local:bG9jYWwvcm90YXRlZA:/);
    }
    const after = await admin().get<Secret>(Secrets, 'rekey-0-credentials', ns);
    expect(after.data?.token).not.toBe(before.data?.token);
  });
});
