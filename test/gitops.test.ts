import { beforeAll, describe, expect, it } from 'vitest';
import path from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import type { ExternalConnection } from '../src/api/v1alpha1/index.js';
import type { KubeObject } from '../src/kube/client.js';
import { ExternalConnections } from '../src/kube/resources.js';
import { packageRoot } from '../src/dev/binaries.js';
import { atollCli, runCommand } from './support/cli.js';
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
 * GitOps as a newcomer does it: `atoll seal` output committed and applied by
 * kubectl (client-side and server-side) again and again, and a rotation of a
 * connection that Git manages, which must hand over the YAML to commit.
 */

type Conn = ExternalConnection & KubeObject;

const SERVER_SET = [
  'uid',
  'resourceVersion',
  'creationTimestamp',
  'generation',
  'managedFields',
  'finalizers',
  'selfLink',
  'deletionTimestamp',
];

const atoll = (args: string[], input = '') => atollCli(args, { input, kubeconfig: devState().kubeconfig });

describe('GitOps with atoll seal', () => {
  const ns = uniqueName('gitops');
  beforeAll(async () => {
    await createWorkspace(ns, { policy: { egress: { allowCIDRs: ['127.0.0.0/8'] } } });
  });

  async function sealed(name: string): Promise<{ yaml: string; token: string }> {
    const token = randomSecret('gitops');
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
        'baseURL=http://127.0.0.1:9/api',
        '--set',
        'auth=bearer',
      ],
      `${token}\n`,
    );
    expect(out.code, out.stderr).toBe(0);
    return { yaml: out.stdout, token };
  }

  it('prints a manifest without server-set metadata or status', async () => {
    const { yaml, token } = await sealed(uniqueName('plain'));
    expect(yaml).not.toContain(token);
    const manifest = parse(yaml) as Conn;
    for (const key of SERVER_SET) expect(manifest.metadata).not.toHaveProperty(key);
    expect(manifest).not.toHaveProperty('status');
    expect(Object.keys(manifest).sort()).toEqual(['apiVersion', 'kind', 'metadata', 'spec']);
  });

  for (const mode of [['apply'], ['apply', '--server-side']]) {
    it(`the sealed manifest applies again and again with kubectl ${mode.join(' ')}`, async () => {
      const name = uniqueName('twice');
      const { yaml } = await sealed(name);
      for (let i = 0; i < 3; i++) {
        const out = await kubectl([...mode, '-f', '-'], { input: yaml });
        expect(out.code, `apply #${i + 1}: ${out.stderr}`).toBe(0);
      }
      const conn = await eventually(
        'sealed and probed',
        () => admin().get<Conn>(ExternalConnections, name, ns),
        (c) => condition(c, 'CredentialsSealed')?.status === 'True',
      );
      // Re-applying the same ciphertext is not a rotation.
      expect(conn.status?.credentials?.token?.version).toBe(1);
      expect(conn.spec.credentials?.token?.sealed).toBe((parse(yaml) as Conn).spec.credentials?.token?.sealed);
    });
  }

  it('`kubectl atoll seal` is the same command', async () => {
    const token = randomSecret('plugin');
    const out = await runCommand(
      'kubectl',
      [
        'atoll',
        'seal',
        uniqueName('plugin'),
        '--type',
        'http-api',
        '-n',
        ns,
        '--field',
        'token',
        '--set',
        'baseURL=http://127.0.0.1:9/api',
        '--set',
        'auth=bearer',
      ],
      {
        input: `${token}\n`,
        env: {
          ...process.env,
          PATH: `${path.join(packageRoot(), 'bin')}${path.delimiter}${process.env.PATH}`,
          KUBECONFIG: devState().kubeconfig,
        },
      },
    );
    expect(out.code, out.stderr).toBe(0);
    expect((parse(out.stdout) as Conn).spec.credentials?.token?.sealed).toMatch(/^atoll:v1:/);
  });
});

describe('atoll rotate on a connection Git manages', () => {
  const ns = uniqueName('gitrot');
  beforeAll(async () => {
    await createWorkspace(ns, { policy: { egress: { allowCIDRs: ['127.0.0.0/8'] } } });
  });

  const markers: Array<[string, Record<string, unknown>, RegExp]> = [
    [
      'argo-annotation',
      { annotations: { 'argocd.argoproj.io/tracking-id': 'tenants:atoll.dev/ExternalConnection:ns/x' } },
      /Argo CD \(application tenants\)/,
    ],
    ['argo-label', { labels: { 'app.kubernetes.io/instance': 'tenants' } }, /Argo CD/],
    [
      'flux',
      {
        labels: {
          'kustomize.toolkit.fluxcd.io/name': 'tenants',
          'kustomize.toolkit.fluxcd.io/namespace': 'flux-system',
        },
      },
      /Flux \(Kustomization tenants\)/,
    ],
  ];

  for (const [label, metadata, manager] of markers) {
    it(`warns and prints the sealed YAML to commit (${label}); applying it keeps the new credential`, async () => {
      const name = uniqueName(label);
      const { yaml } = await (async () => {
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
            'baseURL=http://127.0.0.1:9/api',
            '--set',
            'auth=bearer',
          ],
          `${randomSecret('old')}\n`,
        );
        return { yaml: out.stdout };
      })();
      const committed = parse(yaml) as Conn;
      committed.metadata = { ...committed.metadata, ...metadata };
      expect(
        (
          await kubectl(['apply', '--server-side', '--field-manager', 'gitops-controller', '-f', '-'], {
            input: JSON.stringify(committed),
          })
        ).code,
      ).toBe(0);

      const fresh = randomSecret('new');
      const out = await atoll(['rotate', name, '-n', ns, '--field', 'token'], `${fresh}\n`);
      expect(out.code, out.stderr).toBe(0);
      expect(out.stderr).toMatch(manager);
      expect(out.stderr).toContain('commit the sealed manifest');
      expect(out.stdout + out.stderr).not.toContain(fresh);
      const docs = parseAllDocuments(out.stdout.slice(out.stdout.indexOf('---')))
        .map((d) => d.toJS() as Conn)
        .filter(Boolean);
      const toCommit = docs.find((d) => d.kind === 'ExternalConnection')!;
      expect(toCommit.spec.credentials?.token?.sealed).toMatch(/^atoll:v1:/);
      expect(toCommit.spec.credentials?.token?.sealed).not.toBe(committed.spec.credentials?.token?.sealed);
      expect(toCommit.metadata).not.toHaveProperty('resourceVersion');

      // What Git now holds, re-applied by the GitOps tool: the rotated credential stays.
      const hint = `…${fresh.slice(-4)}`;
      await eventually(
        'rotated',
        () => admin().get<Conn>(ExternalConnections, name, ns),
        (c) => c.status?.credentials?.token?.hint === hint,
      );
      expect(
        (
          await kubectl(
            ['apply', '--server-side', '--force-conflicts', '--field-manager', 'gitops-controller', '-f', '-'],
            { input: JSON.stringify(toCommit) },
          )
        ).code,
      ).toBe(0);
      const after = await admin().get<Conn>(ExternalConnections, name, ns);
      expect(after.spec.credentials?.token?.sealed).toBe(toCommit.spec.credentials?.token?.sealed);
      expect(after.status?.credentials?.token?.hint).toBe(hint);
    });
  }

  it('stays quiet for a connection only people edit', async () => {
    const name = uniqueName('manual');
    await admin().create(ExternalConnections, {
      metadata: { name, namespace: ns },
      spec: {
        type: 'http-api',
        settings: { baseURL: 'http://127.0.0.1:9/api', auth: 'bearer' },
        credentials: { token: { value: randomSecret('m') } },
      },
    } as never);
    // kubectl's own managers are people at a terminal.
    expect((await kubectl(['label', 'externalconnection', name, '-n', ns, 'team=a'])).code).toBe(0);
    const out = await atoll(['rotate', name, '-n', ns, '--field', 'token'], `${randomSecret('m2')}\n`);
    expect(out.code, out.stderr).toBe(0);
    expect(out.stderr).toBe('');
    expect(out.stdout).not.toContain('---');
  });
});
