import { beforeAll, describe, expect, it } from 'vitest';
import { createWorkspace, devState, uniqueName } from '../support/cluster.js';
import { serviceAccountToken } from '../console/browser.js';

/**
 * Attack: session fixation by cookie tossing. SameSite=Strict does not
 * separate same-site origins: a page on any sibling subdomain (a tenant's
 * app on *.apps.example.com while the console is console.example.com) can
 * set `atoll_session=<the attacker's own session>; Domain=example.com;
 * Path=/api/kube` in the victim's browser. The browser then sends that
 * cookie first (longer path), before the console's own, and the backend
 * would act as the attacker: the victim sees the attacker's workspaces and
 * types their real credentials into them. Over HTTPS the session cookie must
 * therefore be `__Host-` prefixed (browsers refuse such a cookie with a
 * Domain, or from another host), and only that name is honoured.
 *
 * The console from `atoll dev` serves plain HTTP on loopback; a fronting
 * proxy that terminates TLS says so with `X-Forwarded-Proto: https`, which
 * is how this test speaks to it.
 */
describe('attack: tossing a session cookie from a sibling subdomain', () => {
  const victimNs = uniqueName('console-toss-victim');
  const attackerNs = uniqueName('console-toss-attacker');
  const url = () => devState().console.url;
  const https = { 'X-Forwarded-Proto': 'https' };

  async function signIn(token: string): Promise<string> {
    const res = await fetch(`${url()}/api/session`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'X-Atoll-Console': '1', ...https },
      body: JSON.stringify({ token }),
    });
    expect(res.status).toBe(200);
    return res.headers.get('set-cookie') ?? '';
  }

  let victimSetCookie: string;
  let attackerSetCookie: string;

  beforeAll(async () => {
    await createWorkspace(victimNs, { members: [{ kind: 'ServiceAccount', name: 'victim', role: 'editor' }] } as never);
    await createWorkspace(attackerNs, {
      members: [{ kind: 'ServiceAccount', name: 'attacker', role: 'editor' }],
    } as never);
    victimSetCookie = await signIn(await serviceAccountToken(victimNs, 'victim'));
    attackerSetCookie = await signIn(await serviceAccountToken(attackerNs, 'attacker'));
  });

  it('over HTTPS the session cookie is __Host- prefixed: Secure, Path=/, no Domain', () => {
    expect(victimSetCookie).toMatch(/^__Host-atoll_session=[A-Za-z0-9_-]{43};/);
    expect(victimSetCookie).toMatch(/; Path=\/;/);
    expect(victimSetCookie).toMatch(/; Secure/);
    expect(victimSetCookie).not.toMatch(/Domain=/i);
  });

  it('a tossed, unprefixed cookie sent first does not make the victim act as the attacker', async () => {
    const victimCookie = victimSetCookie.split(';')[0]!;
    const attackerId = attackerSetCookie.split(';')[0]!.split('=')[1]!;
    // What the victim's browser sends after the toss: the attacker's cookie first (longer path), then the console's own.
    const cookie = `atoll_session=${attackerId}; ${victimCookie}`;
    const who = await fetch(`${url()}/api/session`, { headers: { Cookie: cookie, ...https } });
    expect(who.status).toBe(200);
    expect(((await who.json()) as { user: { username: string } }).user.username).toBe(
      `system:serviceaccount:${victimNs}:victim`,
    );
    const workspaces = await fetch(`${url()}/api/workspaces`, { headers: { Cookie: cookie, ...https } });
    const names = ((await workspaces.json()) as { items: Array<{ namespace: string }> }).items.map((w) => w.namespace);
    expect(names).toContain(victimNs);
    expect(names).not.toContain(attackerNs);
  });

  it('a malformed Origin on a write is refused as cross-site, not reported as an API server outage', async () => {
    const res = await fetch(`${url()}/api/kube/apis/atoll.dev/v1alpha1/namespaces/${victimNs}/externalconnections`, {
      method: 'POST',
      headers: {
        Cookie: victimSetCookie.split(';')[0]!,
        ...https,
        'X-Atoll-Console': '1',
        'Content-Type': 'application/json',
        Origin: 'not a url',
      },
      body: '{}',
    });
    expect(res.status).toBe(403);
  });
});
