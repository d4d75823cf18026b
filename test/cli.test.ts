import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import type { ExternalConnection } from '../src/api/v1alpha1/index.js';
import type { KubeObject } from '../src/kube/client.js';
import { ExternalConnections } from '../src/kube/resources.js';
import { atollCli } from './support/cli.js';
import { startHttpFixture, type HttpFixture } from './support/services.js';
import {
  admin,
  condition,
  createWorkspace,
  devState,
  eventually,
  kubectl,
  randomSecret,
  uniqueName,
} from './support/cluster.js';

/**
 * The `atoll` binary as a user runs it (compiled dist/main.js, a kubeconfig
 * flag, secrets on stdin), against the shared `atoll dev` cluster.
 */

type Conn = ExternalConnection & KubeObject;

const atoll = (args: string[], input = '') => atollCli(args, { input, kubeconfig: devState().kubeconfig });

describe('atoll CLI', () => {
  const ns = uniqueName('cli');
  const good = 'api-good';
  const bad = 'api-bad';
  const goodToken = randomSecret('cligood');
  const badToken = randomSecret('clibad');
  let fixture: HttpFixture;

  beforeAll(async () => {
    fixture = await startHttpFixture((req, res) => {
      res.statusCode = req.headers.authorization === `Bearer ${goodToken}` ? 200 : 401;
      res.end();
    });
    await createWorkspace(ns, { policy: { egress: { allowCIDRs: ['127.0.0.0/8'] } } });
    for (const [name, token] of [
      [good, goodToken],
      [bad, badToken],
    ] as const) {
      await admin().create(ExternalConnections, {
        metadata: { name, namespace: ns },
        spec: {
          type: 'http-api',
          settings: { baseURL: fixture.url, auth: 'bearer' },
          credentials: { token: { value: token } },
        },
      } as never);
    }
  });

  afterAll(async () => {
    await fixture?.stop();
  });

  it('`atoll test` prints the outcome and exits 0 when Ready', async () => {
    const before = fixture.requests.length;
    const out = await atoll(['test', good, '-n', ns]);
    expect(out.stderr).toBe('');
    expect(out.code).toBe(0);
    expect(out.stdout).toContain(`${ns}/${good}: Succeeded`);
    expect(out.stdout).toContain('Reachable=True');
    expect(out.stdout).toContain('Authenticated=True Succeeded');
    // It asked for a fresh probe rather than repeating an old result.
    expect(fixture.requests.length).toBeGreaterThan(before);
    expect(out.stdout).not.toContain(goodToken);
  });

  it('`atoll test` prints the reason and exits 1 when not Ready', async () => {
    const out = await atoll(['test', bad, '-n', ns]);
    expect(out.code).toBe(1);
    expect(out.stdout).toContain(`${ns}/${bad}: AuthenticationFailed`);
    expect(out.stdout).toContain('Authenticated=False AuthenticationFailed');
    expect(out.stdout + out.stderr).not.toContain(badToken);
  });

  it('`atoll seal` prints sealed YAML, stores nothing, and the YAML applies as a working connection', async () => {
    const token = randomSecret('cliseal');
    const name = uniqueName('sealed');
    // Sealed for its destination (our loopback fixture: the probe must not leave this machine).
    const out = await atoll(
      [
        'seal',
        name,
        '--type',
        'http-api',
        '-n',
        ns,
        '--field',
        'token',
        '--set',
        `baseURL=${fixture.url}`,
        '--set',
        'auth=bearer',
      ],
      `${token}\n`,
    );
    expect(out.stderr).not.toContain(token);
    expect(out.code).toBe(0);
    expect(out.stdout).not.toContain(token);
    const manifest = parse(out.stdout) as Conn;
    expect(manifest).toMatchObject({
      apiVersion: 'atoll.dev/v1alpha1',
      kind: 'ExternalConnection',
      metadata: { name, namespace: ns },
      spec: { type: 'http-api', settings: { baseURL: fixture.url, auth: 'bearer' } },
    });
    expect(manifest.spec.credentials?.token?.sealed).toMatch(/^atoll:v1:/);
    expect(manifest.spec.credentials?.token?.value).toBeUndefined();
    expect(manifest.metadata).not.toHaveProperty('uid');
    expect(manifest).not.toHaveProperty('status');

    // A server-side dry run: nothing was created.
    expect(await admin().tryGet(ExternalConnections, name, ns)).toBeUndefined();

    // Pointing the sealed manifest elsewhere would make it unusable (the destination is bound);
    // applied as printed, it works.
    const applied = await kubectl(['apply', '-f', '-'], { input: out.stdout });
    expect(applied.code).toBe(0);
    const conn = await eventually(
      'sealed connection CredentialsSealed',
      () => admin().get<Conn>(ExternalConnections, name, ns),
      (c) => condition(c, 'CredentialsSealed')?.status === 'True' && c.status?.lastProbe !== undefined,
      30_000,
    );
    expect(condition(conn, 'CredentialsSealed')).toMatchObject({ status: 'True', reason: 'Sealed' });
    // The ciphertext from `atoll seal` decrypts to the token: the service saw it.
    expect(fixture.requests.some((r) => r.headers.authorization === `Bearer ${token}`)).toBe(true);
    expect(condition(conn, 'Authenticated')?.status).toBe('False'); // the fixture only accepts goodToken
  });

  it('`atoll status` lists the workspace connections', async () => {
    await eventually(
      'both probed',
      () => admin().list<Conn>(ExternalConnections, { namespace: ns }),
      (l) => [good, bad].every((n) => l.items.find((c) => c.metadata.name === n)?.status?.lastProbe !== undefined),
      30_000,
    );
    const out = await atoll(['status', '-n', ns]);
    expect(out.code).toBe(0);
    const lines = out.stdout.trim().split('\n');
    expect(lines[0]).toMatch(
      /^NAME\s+TYPE\s+READY\s+REASON\s+CREDENTIAL\s+LAST PROBE\s+LAST USED\s+CONSUMERS \(24H REQUESTS\)$/,
    );
    const row = (name: string) => lines.find((l) => l.startsWith(`${name} `))?.split(/\s+/);
    expect(row(good)?.slice(0, 4)).toEqual([good, 'http-api', 'True', 'Succeeded']);
    expect(row(bad)?.slice(0, 4)).toEqual([bad, 'http-api', 'False', 'AuthenticationFailed']);
    expect(lines.filter((l) => /^sealed-\S+\s/.test(l)).length).toBe(1);
    // Each connection's conditions follow the table.
    const section = out.stdout.slice(out.stdout.indexOf(`Conditions of ${bad}:`));
    expect(section.split('\n')[1]).toMatch(/^\s+TYPE\s+STATUS\s+REASON\s+MESSAGE$/);
    expect(section).toMatch(/\n\s+Authenticated\s+False\s+AuthenticationFailed\s+\S/);
    expect(section).toMatch(/\n\s+Reachable\s+True\s/);
    expect(out.stdout).not.toContain(goodToken);
    expect(out.stdout).not.toContain(badToken);
  });

  it('`atoll rotate` replaces a credential from stdin: the next probe uses it and the version moves on', async () => {
    const before = await admin().get<Conn>(ExternalConnections, bad, ns);
    const out = await atoll(['rotate', bad, '-n', ns, '--field', 'token'], `${goodToken}\n`);
    expect(out.code, out.stderr).toBe(0);
    expect(out.stdout + out.stderr).not.toContain(goodToken);
    const after = await eventually(
      'rotated and Ready',
      () => admin().get<Conn>(ExternalConnections, bad, ns),
      (c) =>
        c.status?.credentials?.token?.version === (before.status?.credentials?.token?.version ?? 0) + 1 &&
        condition(c, 'Ready')?.status === 'True',
      30_000,
    );
    expect(after.status?.credentials?.token?.hint).toBe(`…${goodToken.slice(-4)}`);
  });
});
