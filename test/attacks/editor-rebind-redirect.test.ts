import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ExternalConnection } from '../../src/api/v1alpha1/index.js';
import type { KubeObject } from '../../src/kube/client.js';
import { ExternalConnections } from '../../src/kube/resources.js';
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
import { carrying, LOOPBACK_EGRESS } from './support.js';

type Conn = ExternalConnection & KubeObject;

const atoll = (args: string[], kubeconfig: string) => atollCli(args, { kubeconfig });

/**
 * Red team (issue 10): admission refuses an UPDATE that moves a connection's
 * destination while its sealed credential stays the same, and `atoll rebind`
 * exists to confirm moves made by an IntegrationType edit. A workspace editor
 * who never knew the credential must not be able to combine the two to move
 * it to a host of their choice: point the connection elsewhere while putting
 * in a placeholder `sealed` (admission sees a "new" credential), then put the
 * original `sealed` back (admission sees no destination change), then rebind.
 */
describe('attack: an editor moves a sealed credential to its own host through a placeholder and a rebind', () => {
  const ns = uniqueName('rebindmv');
  const editors = `${ns}-editors`;
  const token = randomSecret('rebindmv');
  let service: HttpFixture;
  let attacker: HttpFixture;
  const get = () => admin().get<Conn>(ExternalConnections, 'victim', ns);

  beforeAll(async () => {
    [service, attacker] = await Promise.all([startHttpFixture(), startHttpFixture()]);
    await createWorkspace(ns, { members: [{ kind: 'Group', name: editors, role: 'editor' }], policy: LOOPBACK_EGRESS });
    // The platform team supplies the credential; the editor never sees it.
    await admin().create(ExternalConnections, {
      metadata: { name: 'victim', namespace: ns },
      spec: {
        type: 'http-api',
        settings: { baseURL: service.url, auth: 'bearer' },
        credentials: { token: { value: token } },
        probe: { interval: '0' },
      },
    } as never);
    await eventually('victim Ready', get, (c) => condition(c, 'Ready')?.status === 'True');
    expect(carrying(service, token).length).toBeGreaterThan(0);
  });

  afterAll(async () => {
    await Promise.all([service, attacker].map((f) => f?.stop()));
  });

  it('the credential never reaches the editor-chosen host', async () => {
    const editor = userClient('mallory', [editors]);
    const sealed = (await get()).spec.credentials!.token!.sealed!;
    // The straightforward move is refused by admission.
    await expect(
      editor.mergePatch(ExternalConnections, 'victim', ns, { spec: { settings: { baseURL: attacker.url } } }),
    ).rejects.toThrow(/sealed for the previous destination/);

    // Step 1: move, with a placeholder of the right shape (the real value with its last character changed).
    const last = sealed.at(-1) === 'A' ? 'B' : 'A';
    const placeholder = sealed.slice(0, -1) + last;
    await editor.mergePatch(ExternalConnections, 'victim', ns, {
      spec: { settings: { baseURL: attacker.url }, credentials: { token: { sealed: placeholder } } },
    });
    await eventually(
      'placeholder rejected',
      get,
      (c) => condition(c, 'CredentialsSealed')?.reason === 'CiphertextRejected',
    );
    // Step 2: the original value back (no destination change in this update).
    await editor.mergePatch(ExternalConnections, 'victim', ns, { spec: { credentials: { token: { sealed } } } });
    await eventually(
      'original value back',
      get,
      (c) =>
        c.status?.observedGeneration === c.metadata.generation &&
        condition(c, 'CredentialsSealed')?.reason === 'DestinationChanged',
    );

    // Step 3a: confirm with the CLI: it refuses and says why (the connection's own settings moved).
    const r = await atoll(['rebind', 'victim', '-n', ns], userKubeconfig('mallory', [editors]));
    expect(r.code, r.stdout + r.stderr).toBe(1);
    expect(r.stderr).toContain(
      'A rebind confirms only a change of IntegrationType http-api: supply the credential again',
    );

    // Step 3b: set the annotation by hand (the operator decides, not the CLI), with a spec change so the
    // reconcile that saw it is the one whose generation the condition reports.
    await editor.mergePatch(ExternalConnections, 'victim', ns, {
      metadata: { annotations: { 'atoll.dev/rebind-requested': new Date().toISOString() } },
      spec: { probe: { timeout: '7s' } },
    });
    const after = await eventually(
      'rebind request seen',
      get,
      (c) => condition(c, 'CredentialsSealed')?.observedGeneration === c.metadata.generation,
    );
    if (condition(after, 'CredentialsSealed')?.status === 'True') {
      // Re-sealed for the editor's host: the probe that follows carries the credential there.
      await eventually(
        'probe reached the editor host',
        async () => attacker.requests.length,
        (n) => n > 0,
      ).catch(() => undefined);
    }
    expect(carrying(attacker, token), 'requests carrying the credential to the editor-chosen host').toHaveLength(0);
    expect(condition(after, 'CredentialsSealed')?.reason).toBe('DestinationChanged');
    expect(condition(after, 'CredentialsSealed')?.message).toContain('supply the credential again');
    expect(JSON.stringify(after)).not.toContain(token);
  });
});
