import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packageRoot } from '../../src/dev/binaries.js';
import { freePort, waitFor } from '../../src/dev/ports.js';
import { createWorkspace, devState, uniqueName } from '../support/cluster.js';
import { serviceAccountToken } from './browser.js';

/**
 * `atoll console` as a process of its own, as the chart runs it: given only
 * the API server's address and CA (no kubeconfig, no token), it serves the
 * app and acts with each person's token.
 */
describe('atoll console (the command)', () => {
  let proc: ChildProcess;
  let url: string;
  let stderr = '';
  const ns = uniqueName('console-cmd');

  beforeAll(async () => {
    await createWorkspace(ns, { members: [{ kind: 'ServiceAccount', name: 'viewer', role: 'viewer' }] } as never);
    const port = await freePort();
    const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: '/nonexistent', ATOLL_LOG_LEVEL: 'info' };
    proc = spawn(
      process.execPath,
      [
        path.join(packageRoot(), 'dist', 'main.js'),
        'console',
        '--api-server',
        devState().server,
        '--ca-file',
        path.join(path.dirname(devState().kubeconfig), 'pki', 'ca.crt'),
        '--port',
        String(port),
      ],
      { env, stdio: ['ignore', 'ignore', 'pipe'] },
    );
    proc.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
    url = `http://127.0.0.1:${port}`;
    await waitFor('atoll console listening', async () => stderr.includes(`atoll console: ${url}`), 30_000);
  });

  afterAll(async () => {
    if (proc && proc.exitCode === null) {
      const exited = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGKILL');
      await exited;
    }
  });

  it('serves the app, signs a person in with their token, and forwards for them only', async () => {
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    const html = await (await fetch(`${url}/`)).text();
    expect(html).toMatch(/<script type="module" crossorigin src="\/assets\/index-[\w-]+\.js"><\/script>/);
    // Without a person's token it can do nothing: it has none of its own.
    expect((await fetch(`${url}/api/kube/apis/atoll.dev/v1alpha1/integrationtypes`)).status).toBe(401);
    const token = await serviceAccountToken(ns, 'viewer');
    const session = await fetch(`${url}/api/session`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'X-Atoll-Console': '1' },
      body: JSON.stringify({ token }),
    });
    expect(session.status).toBe(200);
    expect(((await session.json()) as { user: { username: string } }).user.username).toBe(
      `system:serviceaccount:${ns}:viewer`,
    );
    const cookie = session.headers.get('set-cookie')!.split(';')[0]!;
    const workspaces = (await (await fetch(`${url}/api/workspaces`, { headers: { Cookie: cookie } })).json()) as {
      items: Array<{ namespace: string; canEdit: boolean }>;
    };
    expect(workspaces.items).toEqual([{ namespace: ns, canEdit: false }]);
    expect(stderr).not.toContain(token);
  });

  it('stops cleanly on SIGTERM', async () => {
    const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
    proc.kill('SIGTERM');
    expect(await exited).toBe(0);
  });
});
