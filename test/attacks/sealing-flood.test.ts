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
  type RawResponse,
} from '../support/cluster.js';

/**
 * Attack (issue 9): server-side dry-run creates with fresh names cost a KMS
 * GenerateDataKey each and store nothing; one editor could send hundreds a
 * second and drain a KMS quota every tenant shares. Sealing is now limited
 * per namespace (dry runs included) with an HTTP 429 and Retry-After, and one
 * namespace's flood leaves another's sealing untouched (invariant 9).
 */

const MAX_ATTEMPTS = 400;
const IN_FLIGHT = 8;

function dryRunCreate(ns: string, name: string, value: string) {
  return {
    apiVersion: 'atoll.dev/v1alpha1',
    kind: 'ExternalConnection',
    metadata: { name, namespace: ns },
    spec: {
      type: 'http-api',
      settings: { baseURL: 'https://api.example.com', auth: 'bearer' },
      credentials: { token: { value } },
      probe: { interval: '0' },
    },
  };
}

/** Data keys the operator asked its KMS for (one per sealed value), from its /metrics. */
async function dataKeysGenerated(): Promise<number> {
  return scrapeCounter(devState().controller.health, 'atoll_kms_requests', { operation: 'generateDataKey' });
}

const createPath = (ns: string) => `/apis/atoll.dev/v1alpha1/namespaces/${ns}/externalconnections?dryRun=All`;

describe('attack: flooding the KMS through server-side dry runs', () => {
  const flooded = uniqueName('flood');
  const bystander = uniqueName('bystander');

  beforeAll(async () => {
    await createWorkspace(flooded, { members: [{ kind: 'Group', name: `${flooded}-editors`, role: 'editor' }] });
    await createWorkspace(bystander, { members: [{ kind: 'Group', name: `${bystander}-editors`, role: 'editor' }] });
  });

  it('stops one editor at the namespace limit with a 429 naming the limit and when to retry, while another namespace still seals', async () => {
    const attacker = userCertificate('flooder', [`${flooded}-editors`]);
    const statuses: number[] = [];
    let refused: RawResponse | undefined;
    let sent = 0;
    const kmsBefore = await dataKeysGenerated();
    // Fire dry-run creates with fresh names until refused (bounded: the test fails if never refused).
    const worker = async () => {
      while (!refused && sent < MAX_ATTEMPTS) {
        sent++;
        const r = await rawApiRequest(
          attacker,
          'POST',
          createPath(flooded),
          dryRunCreate(flooded, uniqueName('dry'), randomSecret('flood')),
        );
        statuses.push(r.status);
        if (r.status === 429) refused ??= r;
        else expect(r.status, r.body).toBe(201);
      }
    };
    await Promise.all(Array.from({ length: IN_FLIGHT }, worker));

    expect(refused, `no 429 after ${sent} dry-run creates`).toBeDefined();
    const status = JSON.parse(refused!.body) as {
      code: number;
      reason: string;
      message: string;
      details?: { retryAfterSeconds?: number };
    };
    expect(status).toMatchObject({ code: 429, reason: 'TooManyRequests' });
    expect(status.message).toMatch(
      new RegExp(
        `too many credential values sealed in namespace ${flooded}: the limit is .+ with bursts of \\d+ \\(server-side dry runs included\\); nothing was stored, retry in \\d+s`,
      ),
    );
    expect(Number(refused!.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(status.details?.retryAfterSeconds).toBe(Number(refused!.headers['retry-after']));
    // Some dry runs were served before the limit: it is a rate, not a ban. Refused ones cost no KMS call.
    const served = statuses.filter((s) => s === 201).length;
    expect(served).toBeGreaterThan(0);
    expect(await dataKeysGenerated()).toBe(kmsBefore + served);

    // While the flood goes on, another workspace seals at once: it has its own budget.
    const neighbour = userCertificate('neighbour', [`${bystander}-editors`]);
    const flood = Array.from({ length: IN_FLIGHT }, async () => {
      const seen: number[] = [];
      for (let i = 0; i < 12; i++)
        seen.push(
          (
            await rawApiRequest(
              attacker,
              'POST',
              createPath(flooded),
              dryRunCreate(flooded, uniqueName('dry'), randomSecret('flood')),
            )
          ).status,
        );
      return seen;
    });
    const others = Array.from({ length: 5 }, (_, i) =>
      rawApiRequest(
        neighbour,
        'POST',
        createPath(bystander),
        dryRunCreate(bystander, `neighbour-${i}`, randomSecret('ok')),
      ),
    );
    const [flooding, answers] = await Promise.all([Promise.all(flood), Promise.all(others)]);
    expect(flooding.flat()).toContain(429);
    for (const other of answers) {
      expect(other.status, other.body).toBe(201);
      expect(
        (JSON.parse(other.body) as { spec: { credentials: { token: { sealed?: string } } } }).spec.credentials.token
          .sealed,
      ).toMatch(/^atoll:v1:/);
    }

    // Dry runs stored nothing.
    expect((await admin().list(ExternalConnections, { namespace: flooded })).items).toEqual([]);
  });
});
