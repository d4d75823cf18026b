import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { ExternalConnections } from '../src/kube/resources.js';
import { admin, createWorkspace, devState, eventually, kubectl, randomSecret, uniqueName } from './support/cluster.js';

/** The `atoll dev` log (JSON lines) as a person reads it while following the README. */
describe('logs a person can read', () => {
  const ns = uniqueName('logs');
  const refused = randomSecret('refusedvalue');
  let startLine = 0;

  const lines = (): Array<{ raw: string; obj: Record<string, unknown> }> =>
    readFileSync(devState().log, 'utf8')
      .split('\n')
      .slice(startLine)
      .filter(Boolean)
      .map((raw) => ({ raw, obj: JSON.parse(raw) as Record<string, unknown> }));

  beforeAll(async () => {
    startLine = readFileSync(devState().log, 'utf8').split('\n').length - 1;
    await createWorkspace(ns, { policy: { egress: { allowCIDRs: ['127.0.0.0/8'] } } });
    // Refused at admission: a one-line field with a newline.
    const out = await kubectl(['apply', '-f', '-'], {
      input: stringify({
        apiVersion: 'atoll.dev/v1alpha1',
        kind: 'ExternalConnection',
        metadata: { name: 'refused', namespace: ns },
        spec: {
          type: 'http-api',
          settings: { baseURL: 'http://127.0.0.1:9' },
          credentials: { token: { value: `${refused}\nx` } },
        },
      }),
    });
    expect(out.code).not.toBe(0);
    await admin().create(ExternalConnections, {
      metadata: { name: 'probed', namespace: ns },
      spec: {
        type: 'http-api',
        settings: { baseURL: 'http://127.0.0.1:9' },
        credentials: { token: { value: randomSecret('p') } },
      },
    } as never);
    await eventually(
      'probe outcome logged',
      async () => lines(),
      (l) =>
        l.some((x) => x.obj['msg'] === 'admission refused') &&
        l.some((x) => String(x.obj['msg']).startsWith('probe outcome changed') && x.obj['namespace'] === ns),
      30_000,
    );
  });

  it('every line carries at most one component key', () => {
    const all = readFileSync(devState().log, 'utf8').split('\n').filter(Boolean);
    expect(all.length).toBeGreaterThan(10);
    expect(all.filter((l) => (l.match(/"component":/g) ?? []).length > 1)).toEqual([]);
  });

  it('an admission refusal is logged with its reason, never the value', () => {
    const line = lines().find((x) => x.obj['msg'] === 'admission refused' && x.obj['namespace'] === ns)!;
    expect(line.obj).toMatchObject({ level: 'info', webhook: 'seal', kind: 'ExternalConnection', operation: 'CREATE' });
    expect(String(line.obj['reason'])).toContain('spec.credentials.token.value contains control characters');
    expect(readFileSync(devState().log, 'utf8')).not.toContain(refused);
  });

  it('a probe outcome change is logged at info, naming the connection', () => {
    const line = lines().find(
      (x) => String(x.obj['msg']).startsWith('probe outcome changed') && x.obj['namespace'] === ns,
    )!;
    expect(line.obj).toMatchObject({ level: 'info', name: 'probed', reason: 'Unreachable' });
  });

  it("a new Workspace's first forbidden list/watch is debug, naming the namespace; no warning for it", () => {
    const forbidden = lines().filter((x) => x.obj['status'] === 403 && x.obj['namespace'] === ns);
    for (const x of forbidden) expect(x.obj['level']).toBe('debug');
    expect(
      lines().filter((x) => x.obj['level'] === 'warn' && JSON.stringify(x.obj).includes(ns) && x.obj['status'] === 403),
    ).toEqual([]);
  });
});
