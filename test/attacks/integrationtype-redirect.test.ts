import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import type { ExternalConnection } from '../../src/api/v1alpha1/index.js';
import type { KubeObject } from '../../src/kube/client.js';
import { CoreEvents, ExternalConnections, IntegrationTypes, Secrets } from '../../src/kube/resources.js';
import { packageRoot } from '../../src/dev/binaries.js';
import { atollCli } from '../support/cli.js';
import { startHttpFixture, type HttpFixture } from '../support/services.js';
import {
  admin,
  condition,
  createWorkspace,
  eventually,
  randomSecret,
  uniqueName,
  userClient,
  userKubeconfig,
} from '../support/cluster.js';
import { carrying, gatewayWorkload, LOOPBACK_EGRESS } from './support.js';

type Conn = ExternalConnection & KubeObject;
type Secret = KubeObject & { data?: Record<string, string> };

const atoll = (args: string[], kubeconfig: string) => atollCli(args, { kubeconfig });

/**
 * Issue 10.2: whoever may edit an IntegrationType must not be able to
 * redirect every tenant's credential by changing the type's URL template,
 * and a value sealed for one type must not open as another. A type change
 * that moves credentials turns connections DestinationChanged (nothing
 * reaches the new host, nothing is deleted) until a workspace editor
 * confirms with `atoll rebind`, which is recorded with the confirming user.
 */
describe('attack: redirecting credentials by editing an IntegrationType', () => {
  const ns = uniqueName('redir');
  const editors = `${ns}-editors`;
  const typeName = uniqueName('redir-api');
  const token = randomSecret('redir');
  let service: HttpFixture;
  let attacker: HttpFixture;
  let successor: HttpFixture;
  let call: Awaited<ReturnType<typeof gatewayWorkload>>;
  const get = (name = 'victim') => admin().get<Conn>(ExternalConnections, name, ns);

  beforeAll(async () => {
    [service, attacker, successor] = await Promise.all([startHttpFixture(), startHttpFixture(), startHttpFixture()]);
    const base = parse(readFileSync(path.join(packageRoot(), 'config', 'types', 'http-api.yaml'), 'utf8')) as {
      metadata: Record<string, unknown>;
      spec: Record<string, unknown>;
    };
    await admin().create(IntegrationTypes, {
      apiVersion: 'atoll.dev/v1alpha1',
      kind: 'IntegrationType',
      metadata: { name: typeName },
      spec: base.spec,
    } as never);
    await createWorkspace(ns, { members: [{ kind: 'Group', name: editors, role: 'editor' }], policy: LOOPBACK_EGRESS });
    await admin().create(ExternalConnections, {
      metadata: { name: 'victim', namespace: ns },
      spec: {
        type: typeName,
        settings: { baseURL: service.url, auth: 'bearer' },
        credentials: { token: { value: token } },
        probe: { interval: '0' },
      },
    } as never);
    await eventually('victim Ready', get, (c) => condition(c, 'Ready')?.status === 'True');
    call = await gatewayWorkload(ns);
    expect((await call('victim')).status).toBe(200);
    expect(carrying(service, token).length).toBeGreaterThan(0);
  });

  afterAll(async () => {
    await admin()
      .delete(IntegrationTypes, typeName)
      .catch(() => undefined);
    await admin()
      .delete(IntegrationTypes, `${typeName}-twin`)
      .catch(() => undefined);
    await Promise.all([service, attacker, successor].map((f) => f?.stop()));
  });

  it('a type whose URL templates now point at another host stops its connections; nothing reaches that host', async () => {
    const before = await admin().get<Secret>(Secrets, 'victim-credentials', ns);
    await admin().mergePatch(IntegrationTypes, typeName, undefined, {
      spec: { probe: { http: { url: `${attacker.url}/collect` } }, gateway: { baseURL: attacker.url } },
    });
    const c = await eventually(
      'DestinationChanged',
      get,
      (x) => condition(x, 'CredentialsSealed')?.reason === 'DestinationChanged',
    );
    expect(condition(c, 'Ready')?.status).toBe('False');
    expect(condition(c, 'CredentialsSealed')?.message).toMatch(
      new RegExp(`IntegrationType ${typeName} changed \\(generation 1 → 2\\)`),
    );
    expect(condition(c, 'CredentialsSealed')?.message).toContain(`atoll rebind victim -n ${ns}`);
    for (let i = 0; i < 3; i++) expect((await call('victim')).status).not.toBe(200);
    expect(attacker.requests).toHaveLength(0);
    // Nothing deleted: the managed copy is still there, for a rebind.
    expect((await admin().get<Secret>(Secrets, 'victim-credentials', ns)).data).toEqual(before.data);
  });

  it('atoll rebind by a workspace editor re-seals for the new destination and records who confirmed', async () => {
    // The platform fixes the type to its real new home; connections still wait for confirmation.
    await admin().mergePatch(IntegrationTypes, typeName, undefined, {
      spec: { probe: { http: { url: `${successor.url}/probe` } }, gateway: { baseURL: successor.url } },
    });
    await eventually('still DestinationChanged at generation 3', get, (x) =>
      (condition(x, 'CredentialsSealed')?.message ?? '').includes('generation 1 → 3'),
    );
    expect(carrying(successor, token)).toHaveLength(0);

    // The editor cannot forge who confirmed: the webhook writes the authenticated user.
    const editor = userClient('erin', [editors]);
    await editor.mergePatch(ExternalConnections, 'victim', ns, {
      metadata: { annotations: { 'atoll.dev/rebind-requested-by': 'platform-admin' } },
    });
    expect((await get()).metadata.annotations?.['atoll.dev/rebind-requested-by']).toBeUndefined();

    const r = await atoll(['rebind', 'victim', '-n', ns], userKubeconfig('erin', [editors]));
    expect(r.code, r.stderr + r.stdout).toBe(0);
    expect(r.stdout).toContain('CredentialsSealed=True');
    const c = await eventually('Ready after rebind', get, (x) => condition(x, 'Ready')?.status === 'True');
    expect(c.metadata.annotations?.['atoll.dev/rebind-requested-by']).toBe('erin');
    expect(c.status?.credentials?.token?.version).toBe(1); // confirming is not a rotation
    expect(c.status?.credentials?.token?.sealed).toMatch(/^atoll:v1:/); // the value to commit to Git for the new destination
    const events = await admin().list<KubeObject & { reason?: string; message?: string }>(CoreEvents, {
      namespace: ns,
    });
    expect(
      events.items.some((e) => e.reason === 'CredentialsRebound' && e.message?.includes('confirmed by erin')),
    ).toBe(true);
    expect(JSON.stringify(events.items)).not.toContain(token);
    expect((await call('victim')).status).toBe(200);
    expect(carrying(successor, token).length).toBeGreaterThan(0);
    expect(attacker.requests).toHaveLength(0);
  });

  it('a value sealed for one type does not open as another type with alike settings (cross-type replay)', async () => {
    const other = randomSecret('xtype');
    await admin().create(ExternalConnections, {
      metadata: { name: 'replayed', namespace: ns },
      spec: {
        type: 'http-api',
        settings: { baseURL: service.url, auth: 'bearer' },
        credentials: { token: { value: other } },
        probe: { interval: '0' },
      },
    } as never);
    const sealed = (
      await eventually(
        'http-api sealed',
        () => get('replayed'),
        (x) => condition(x, 'CredentialsSealed')?.status === 'True',
      )
    ).spec.credentials!.token!.sealed!;
    // A twin of http-api: same settings and templates, only the name differs.
    const twin = `${typeName}-twin`;
    const base = parse(readFileSync(path.join(packageRoot(), 'config', 'types', 'http-api.yaml'), 'utf8')) as {
      spec: Record<string, unknown>;
    };
    await admin().create(IntegrationTypes, {
      apiVersion: 'atoll.dev/v1alpha1',
      kind: 'IntegrationType',
      metadata: { name: twin },
      spec: base.spec,
    } as never);
    await admin().delete(ExternalConnections, 'replayed', ns);
    await eventually(
      'gone',
      () => admin().tryGet(ExternalConnections, 'replayed', ns),
      (x) => x === undefined,
    );
    const sent = carrying(service, other).length;
    await admin().create(ExternalConnections, {
      metadata: { name: 'replayed', namespace: ns },
      spec: {
        type: twin,
        settings: { baseURL: service.url, auth: 'bearer' },
        credentials: { token: { sealed } },
        probe: { interval: '0' },
      },
    } as never);
    const c = await eventually(
      'CiphertextRejected',
      () => get('replayed'),
      (x) => condition(x, 'CredentialsSealed')?.reason === 'CiphertextRejected',
    );
    expect(condition(c, 'CredentialsSealed')?.message).toContain(
      'spec.credentials.token.sealed was not sealed for this workspace, connection, field and destination',
    );
    expect(await admin().tryGet(Secrets, 'replayed-credentials', ns)).toBeUndefined();
    expect(carrying(service, other)).toHaveLength(sent);
    expect(carrying(successor, other)).toHaveLength(0);
  });
});
