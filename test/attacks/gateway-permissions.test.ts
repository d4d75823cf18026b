import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomSecret } from '../support/cluster.js';
import { startRawUpstream, type RawUpstream } from './support/raw-upstream.js';
import { runAgentProcess } from './support/agent-process.js';
import { createConnection, createTestType, gatewayCall, loopbackWorkspace, workload } from './support/tenant.js';

/**
 * Issue 9, item 3: `use` lets a workload call through the proxy, never see
 * the plaintext. Plaintext (/credentials, the agent) needs `read-credentials`,
 * a type that declares file delivery, and a workspace that does not forbid it.
 */
describe('attack: reading plaintext credentials with a proxy-only grant, type or workspace', () => {
  let upstream: RawUpstream;
  let proxyOnlyType: string;
  let filesType: string;
  let ns: string;
  let forbidding: string;
  const secrets = {
    proxyOnly: randomSecret('proxyonly'),
    files: randomSecret('filesok'),
    forbidden: randomSecret('wsforbids'),
  };
  const tokens: Record<string, string> = {};

  beforeAll(async () => {
    upstream = await startRawUpstream();
    proxyOnlyType = await createTestType(['proxy']);
    filesType = await createTestType(['proxy', 'files']);
    ns = await loopbackWorkspace('perm');
    forbidding = await loopbackWorkspace('perm-nofiles', { delivery: { files: false } });
    await createConnection(ns, 'proxied', proxyOnlyType, upstream.url, secrets.proxyOnly);
    await createConnection(ns, 'mounted', filesType, upstream.url, secrets.files);
    await createConnection(forbidding, 'mounted', filesType, upstream.url, secrets.forbidden);
    tokens.useOnly = await workload(ns, 'use-only', { use: true });
    tokens.reader = await workload(ns, 'reader', { use: true, read: true });
    tokens.readerInForbidding = await workload(forbidding, 'reader', { use: true, read: true });
  });

  afterAll(async () => {
    await upstream?.close();
  });

  async function refused(path: string, token: string, message: RegExp, ...mustNotContain: string[]) {
    const res = await gatewayCall(path, token);
    const body = await res.text();
    expect(res.status).toBe(403);
    expect(JSON.parse(body).error.message).toMatch(message);
    for (const s of mustNotContain) expect(body).not.toContain(s);
  }

  it('a ServiceAccount with only use may proxy but not GET /credentials', async () => {
    expect((await gatewayCall('/v1/connections/mounted/proxy/ok', tokens.useOnly)).status).toBe(200);
    await refused(
      '/v1/connections/mounted/credentials',
      tokens.useOnly!,
      /needs the verb read-credentials/,
      secrets.files,
    );
    await refused(
      '/v1/connections/mounted/credentials?watch=1',
      tokens.useOnly!,
      /needs the verb read-credentials/,
      secrets.files,
    );
  });

  it('files are refused for a type that allows proxy delivery only, even with read-credentials', async () => {
    await refused(
      '/v1/connections/proxied/credentials',
      tokens.reader!,
      /does not allow file delivery/,
      secrets.proxyOnly,
    );
  });

  it('files are refused when the workspace policy forbids them, even with read-credentials and a files type', async () => {
    await refused(
      '/v1/connections/mounted/credentials',
      tokens.readerInForbidding!,
      /workspace policy forbids file delivery/,
      secrets.forbidden,
    );
    // Proxying stays allowed there.
    expect((await gatewayCall('/v1/connections/mounted/proxy/ok', tokens.readerInForbidding)).status).toBe(200);
  });

  it("the agent exits with the gateway's reason and writes nothing for a proxy-only grant or type", async () => {
    for (const [token, connection, reason] of [
      [tokens.useOnly!, 'mounted', /gateway says: the caller may not read this connection's credentials/],
      [tokens.reader!, 'proxied', /does not allow file delivery/],
    ] as const) {
      const run = await runAgentProcess({ token, connections: [connection] });
      expect(run.code).not.toBe(0);
      expect(run.stderr).toMatch(/HTTP 403/);
      expect(run.stderr).toMatch(reason);
      expect(run.files()).toEqual([]);
      for (const s of Object.values(secrets)) expect(run.stderr).not.toContain(s);
    }
  });

  it('with read-credentials, a files type and a permitting workspace, the plaintext is delivered (the refusals above are specific)', async () => {
    const res = await gatewayCall('/v1/connections/mounted/credentials', tokens.reader);
    expect(res.status).toBe(200);
    expect(await res.text()).toContain(secrets.files);
  });
});
