import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packageRoot } from '../../src/dev/binaries.js';
import { freePort, waitFor } from '../../src/dev/ports.js';
import { createWorkspace, devState, uniqueName } from '../support/cluster.js';
import { serviceAccountToken } from '../console/browser.js';

/**
 * Attack: sign everyone else out of the console. The backend keeps sign-in
 * sessions in memory under a global cap; any person with a token the API
 * server accepts (a member of any workspace, or just the ServiceAccount token
 * of their own workload) can post it to /api/session more times than the cap.
 * If the oldest sessions were evicted whoever they belong to, that would end
 * every other person's session. A person's sign-ins may only displace their
 * own older sessions.
 *
 * The console here is `atoll console` as its own process against the shared
 * API server, with a small `--max-sessions` so the flood stays cheap (the
 * default cap, 10 000, behaves the same, only slower to reach).
 */
describe('attack: flooding /api/session to evict other people’s sessions', () => {
  const CAP = 40;
  const victimNs = uniqueName('console-flood-victim');
  const attackerNs = uniqueName('console-flood-attacker');
  let proc: ChildProcess;
  let url: string;
  let stderr = '';
  let victimCookie: string;
  let attackerToken: string;

  async function signIn(token: string): Promise<string> {
    const res = await fetch(`${url}/api/session`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'X-Atoll-Console': '1' },
      body: JSON.stringify({ token }),
    });
    expect(res.status).toBe(200);
    const cookie = (res.headers.get('set-cookie') ?? '').split(';')[0]!;
    expect(cookie).toMatch(/^atoll_session=[A-Za-z0-9_-]{43}$/);
    return cookie;
  }

  beforeAll(async () => {
    await createWorkspace(victimNs, { members: [{ kind: 'ServiceAccount', name: 'victim', role: 'editor' }] } as never);
    await createWorkspace(attackerNs, {
      members: [{ kind: 'ServiceAccount', name: 'attacker', role: 'editor' }],
    } as never);
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
        '--max-sessions',
        String(CAP),
      ],
      { env, stdio: ['ignore', 'ignore', 'pipe'] },
    );
    proc.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
    url = `http://127.0.0.1:${port}`;
    await waitFor('atoll console listening', async () => stderr.includes(`atoll console: ${url}`), 30_000);
    victimCookie = await signIn(await serviceAccountToken(victimNs, 'victim'));
    attackerToken = await serviceAccountToken(attackerNs, 'attacker');
  });

  afterAll(async () => {
    if (proc && proc.exitCode === null) {
      const exited = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGKILL');
      await exited;
    }
  });

  it('more sign-ins than the session cap from one person leave the other person signed in', async () => {
    const list = `${url}/api/kube/apis/atoll.dev/v1alpha1/namespaces/${victimNs}/externalconnections`;
    expect((await fetch(list, { headers: { Cookie: victimCookie } })).status).toBe(200);

    const attackerCookies: string[] = [];
    for (let i = 0; i < CAP + 10; i++) attackerCookies.push(await signIn(attackerToken));

    // The victim is still signed in, as themselves, and still works in their own workspace.
    const who = await fetch(`${url}/api/session`, { headers: { Cookie: victimCookie } });
    expect(who.status).toBe(200);
    expect(((await who.json()) as { user: { username: string } }).user.username).toBe(
      `system:serviceaccount:${victimNs}:victim`,
    );
    expect((await fetch(list, { headers: { Cookie: victimCookie } })).status).toBe(200);
    // The flood did not pile up either: only the attacker's newest sessions are kept.
    expect((await fetch(`${url}/api/session`, { headers: { Cookie: attackerCookies[0]! } })).status).toBe(401);
    expect((await fetch(`${url}/api/session`, { headers: { Cookie: attackerCookies.at(-1)! } })).status).toBe(200);
  });
});
