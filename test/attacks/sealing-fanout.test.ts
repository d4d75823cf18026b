import { beforeAll, describe, expect, it } from 'vitest';
import { ExternalConnections } from '../../src/kube/resources.js';
import { scrapeCounter } from '../support/operator-fixture.js';
import {
  admin,
  createWorkspace,
  devState,
  randomSecret,
  rawApiRequest,
  uniqueName,
  userCertificate,
} from '../support/cluster.js';

/**
 * Attack (red team, issue 9 follow-up): the per-namespace sealing budget
 * charged a request at most `burst` tokens however many credential fields it
 * carried, and the mutating webhook sealed every field before the CRD schema
 * (credentials: maxProperties 16) or the IntegrationType's declared fields
 * were checked: both run after mutation. One server-side dry run with a few
 * hundred invented field names therefore cost a few hundred KMS
 * GenerateDataKey calls (each field is its own binding, so the DEK cache does
 * not help) while being charged 50 tokens: the budget that keeps one
 * workspace from draining the KMS quota every tenant shares (invariant 9)
 * was multiplied by the field count.
 *
 * Fixed: fields the IntegrationType does not declare are refused before
 * anything is sealed, with a message naming the field and the fix.
 */

const FIELDS = 300;

const dataKeysGenerated = () =>
  scrapeCounter(devState().controller.health, 'atoll_kms_requests', { operation: 'generateDataKey' });
const createPath = (ns: string) => `/apis/atoll.dev/v1alpha1/namespaces/${ns}/externalconnections?dryRun=All`;

function manyFields(ns: string, name: string): unknown {
  const credentials: Record<string, { value: string }> = {};
  for (let i = 0; i < FIELDS; i++) credentials[`f${i}`] = { value: randomSecret('fan') };
  return {
    apiVersion: 'atoll.dev/v1alpha1',
    kind: 'ExternalConnection',
    metadata: { name, namespace: ns },
    spec: {
      type: 'http-api',
      settings: { baseURL: 'https://api.example.com', auth: 'bearer' },
      credentials,
      probe: { interval: '0' },
    },
  };
}

describe('attack: one dry run with hundreds of credential fields', () => {
  const ns = uniqueName('fanout');

  beforeAll(async () => {
    await createWorkspace(ns, { members: [{ kind: 'Group', name: `${ns}-editors`, role: 'editor' }] });
  });

  it('costs no KMS call: undeclared fields are refused before sealing, naming the field', async () => {
    const attacker = userCertificate('fanout', [`${ns}-editors`]);
    const before = await dataKeysGenerated();
    const r = await rawApiRequest(attacker, 'POST', createPath(ns), manyFields(ns, uniqueName('wide')));
    const after = await dataKeysGenerated();
    // The whole point: the refused request reached the KMS zero times (before the fix: 300).
    expect(after - before, 'KMS GenerateDataKey calls for one refused dry run').toBe(0);
    expect(r.status, r.body).toBe(422);
    expect(r.body).toMatch(
      /spec\.credentials\.f0: type \\?"http-api\\?" has no credential field \\?"f0\\?"; its fields are: /,
    );
    expect((await admin().list(ExternalConnections, { namespace: ns })).items).toEqual([]);
  });

  it('still seals a connection with its declared fields', async () => {
    const editor = userCertificate('fanout-ok', [`${ns}-editors`]);
    const body = {
      apiVersion: 'atoll.dev/v1alpha1',
      kind: 'ExternalConnection',
      metadata: { name: uniqueName('ok'), namespace: ns },
      spec: {
        type: 'http-api',
        settings: { baseURL: 'https://api.example.com', auth: 'bearer' },
        credentials: { token: { value: randomSecret('ok') } },
        probe: { interval: '0' },
      },
    };
    const r = await rawApiRequest(editor, 'POST', createPath(ns), body);
    expect(r.status, r.body).toBe(201);
    expect(
      (JSON.parse(r.body) as { spec: { credentials: { token: { sealed: string } } } }).spec.credentials.token.sealed,
    ).toMatch(/^atoll:v1:/);
  });
});
