import { mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import AxeBuilder from '@axe-core/playwright';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ExternalConnection } from '../../src/api/v1alpha1/index.js';
import type { KubeObject } from '../../src/kube/client.js';
import { ExternalConnections } from '../../src/kube/resources.js';
import { packageRoot } from '../../src/dev/binaries.js';
import { startHttpFixture, type HttpFixture } from '../support/services.js';
import {
  admin,
  condition,
  createWorkspace,
  devState,
  eventually,
  randomSecret,
  uniqueName,
} from '../support/cluster.js';
import { expectNowhere, launchChromium, recordingContext, serviceAccountToken, type ResponseLog } from './browser.js';

type Conn = ExternalConnection & KubeObject;

/**
 * Where the screenshots go. The README's images are refreshed with
 * ATOLL_SCREENSHOT_DIR=docs/images; by default a run leaves the tree clean.
 */
const IMAGES = path.resolve(
  packageRoot(),
  process.env.ATOLL_SCREENSHOT_DIR ?? path.join(tmpdir(), 'atoll-console-screenshots'),
);

/**
 * The Integrations panel in a real browser (Debian's chromium driven by
 * playwright-core) against the shared `atoll dev`: people sign in with their
 * own ServiceAccount tokens, RBAC decides, and no plaintext credential ever
 * reaches the page, its storage or any response.
 */
describe('console: the Integrations panel', () => {
  let browser: Browser;
  let fixture: HttpFixture;
  const accepted = new Set<string>();
  const ns = uniqueName('console');
  const otherNs = uniqueName('console-other');
  const right = randomSecret('consoleright');
  const wrong = randomSecret('consolewrong');
  const rotated = randomSecret('consolerotated');
  const keyboard = randomSecret('consolekeyboard');
  const secrets = [right, wrong, rotated, keyboard];
  let editor: { page: Page; responses: ResponseLog };

  beforeAll(async () => {
    fixture = await startHttpFixture((req, res) => {
      const presented = (req.headers.authorization ?? '').replace(/^Bearer /, '');
      res.statusCode = req.url.startsWith('/me') && accepted.has(presented) ? 200 : 401;
      res.end(res.statusCode === 200 ? '{"ok":true}' : '{"error":"unauthorized"}');
    });
    accepted.add(right).add(rotated).add(keyboard);
    await createWorkspace(ns, {
      displayName: 'Console test',
      members: [
        { kind: 'ServiceAccount', name: 'editor', role: 'editor' },
        { kind: 'ServiceAccount', name: 'viewer', role: 'viewer' },
      ],
      policy: { allowedTypes: ['http-api', 'postgresql'], egress: { allowCIDRs: ['127.0.0.0/8'] } },
    } as never);
    await createWorkspace(otherNs, {
      displayName: 'Someone else',
      members: [{ kind: 'ServiceAccount', name: 'member', role: 'editor' }],
    } as never);
    browser = await launchChromium();
    mkdirSync(IMAGES, { recursive: true });
  });

  afterAll(async () => {
    await browser?.close();
    await fixture?.stop();
  });

  const consoleURL = () => devState().console.url;
  const row = (page: Page, name: string) => page.locator(`li[data-connection="${name}"]`);
  const getConn = (name: string) => admin().get<Conn>(ExternalConnections, name, ns);

  async function signIn(page: Page, token: string, workspace?: string): Promise<void> {
    await page.goto(`${consoleURL()}/#${new URLSearchParams({ token, ...(workspace ? { workspace } : {}) })}`);
    // A link never signs in by itself (test/attacks/console-signin-link.test.ts): confirm it.
    await page
      .getByRole('dialog', { name: 'Sign in with this link?' })
      .getByRole('button', { name: 'Continue' })
      .click();
    await page.getByRole('heading', { name: 'Integrations', level: 1 }).waitFor();
    // The token travelled in the fragment only, and is gone from the address bar.
    expect(page.url()).not.toContain('token');
  }

  it('serves the app under a strict Content-Security-Policy', async () => {
    const res = await fetch(`${consoleURL()}/`);
    const csp = res.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    expect(csp).toContain("default-src 'none'");
    const html = await res.text();
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
    expect(html).not.toMatch(/https?:\/\//);
  });

  it('an editor adds an http-api connection to a loopback service and it becomes Ready', async () => {
    const token = await serviceAccountToken(ns, 'editor');
    const { page, responses } = await recordingContext(browser);
    editor = { page, responses };
    await signIn(page, token, ns);
    await expect.poll(() => page.locator('.workspace-switcher select').inputValue()).toBe(ns);
    await expectNowhere(page, responses, secrets);

    await page
      .getByRole('button', { name: /Add connection/ })
      .first()
      .click();
    await page.getByRole('searchbox', { name: 'Search integrations' }).fill('http');
    await page.getByRole('button', { name: /Generic HTTP API/ }).click();
    await page.getByLabel('Connection name').fill('orders-api');
    await page.getByLabel('Display name').fill('Orders API (production)');
    await page.getByLabel('Base URL').fill(fixture.url);
    await page.getByLabel('Probe path').fill('/me');
    await page.getByLabel('Token').fill(right);
    expect(await page.getByLabel('Token').getAttribute('type')).toBe('password');
    await page.locator('dialog').evaluate((d) => d.scrollTo(0, 0));
    await page.screenshot({ path: path.join(IMAGES, 'console-add-connection.png') });
    await page.getByRole('button', { name: 'Add connection', exact: true }).last().click();

    await row(page, 'orders-api').getByText('Ready', { exact: true }).waitFor({ timeout: 30_000 });
    await expect
      .poll(async () => row(page, 'orders-api').locator('[data-hint-field="token"]').textContent())
      .toContain(`••••${right.slice(-4)}`);
    const conn = await getConn('orders-api');
    expect(condition(conn, 'Ready')?.status).toBe('True');
    expect(conn.spec.displayName).toBe('Orders API (production)');
    expect(fixture.requests.some((r) => r.headers.authorization === `Bearer ${right}`)).toBe(true);
    await expectNowhere(page, responses, secrets);
  });

  it('a wrong token shows AuthenticationFailed in words, as a second instance of the same type', async () => {
    const { page, responses } = editor;
    await page
      .getByRole('button', { name: /Add connection/ })
      .first()
      .click();
    await page.getByRole('button', { name: /Generic HTTP API/ }).click();
    await page.getByLabel('Connection name').fill('orders-api-staging');
    await page.getByLabel('Display name').fill('Orders API (staging)');
    await page.getByLabel('Base URL').fill(fixture.url);
    await page.getByLabel('Probe path').fill('/me');
    await page.getByLabel('Token').fill(wrong);
    await page.getByRole('button', { name: 'Add connection', exact: true }).last().click();
    await row(page, 'orders-api-staging').getByText('Authentication failed').first().waitFor({ timeout: 30_000 });
    const message = await row(page, 'orders-api-staging').getByTestId('ready-message').textContent();
    expect(message).toMatch(/Authentication failed:/);
    expect(message).not.toMatch(/[{}]/);
    expect(condition(await getConn('orders-api-staging'), 'Authenticated')?.reason).toBe('AuthenticationFailed');
    await expectNowhere(page, responses, secrets);
  });

  it('"Test connection" asks for a probe and shows the outcome live', async () => {
    const { page, responses } = editor;
    const before = (await getConn('orders-api')).status?.lastProbe?.time;
    const testButton = row(page, 'orders-api').getByRole('button', { name: /^Test connection/ });
    await testButton.click();
    await row(page, 'orders-api').getByText('Testing…').first().waitFor();
    await row(page, 'orders-api').getByText('Ready', { exact: true }).waitFor({ timeout: 30_000 });
    await page
      .locator('.toast')
      .filter({ hasText: 'Orders API (production): connection test succeeded' })
      .first()
      .waitFor();
    const after = await getConn('orders-api');
    expect(after.metadata.annotations?.['atoll.dev/test-requested-at']).toBeDefined();
    expect(after.status?.lastProbe?.time).not.toBe(before);
    await expectNowhere(page, responses, secrets);
  });

  it('rotation shows the new hint and version', async () => {
    const { page, responses } = editor;
    await row(page, 'orders-api')
      .getByRole('button', { name: /^Rotate credentials/ })
      .click();
    await page.getByLabel('New token').fill(rotated);
    await page.getByRole('button', { name: 'Rotate', exact: true }).click();
    await expect
      .poll(async () => row(page, 'orders-api').locator('[data-hint-field="token"]').textContent(), { timeout: 30_000 })
      .toMatch(new RegExp(`••••${rotated.slice(-4)}\\s*v2`));
    const conn = await eventually(
      'rotation applied',
      () => getConn('orders-api'),
      (c) => c.status?.credentials?.token?.version === 2,
    );
    expect(conn.status?.credentials?.token?.hint).toBe(`…${rotated.slice(-4)}`);
    await expectNowhere(page, responses, secrets);
    await page
      .locator('.toast')
      .first()
      .waitFor({ state: 'detached', timeout: 15_000 })
      .catch(() => undefined);
    await page.screenshot({ path: path.join(IMAGES, 'console-integrations.png') });
  });

  it('editing the destination asks for the credentials again and says why', async () => {
    const { page, responses } = editor;
    await row(page, 'orders-api-staging').getByRole('button', { name: /^Edit/ }).click();
    await page.getByLabel('Display name').fill('Orders API (staging, new path)');
    await expect(page.getByText('Enter the credentials again.').count()).resolves.toBe(0);
    await page.getByLabel('Probe path').fill('/me?v=2');
    await page.getByText('Enter the credentials again.').waitFor();
    expect(await page.locator('.callout-warning').textContent()).toContain('Probe path');
    await page.getByRole('button', { name: 'Save changes' }).click();
    // Required now: the form refuses to save without them.
    await page.getByText('Enter this credential again for the new destination.').waitFor();
    expect((await getConn('orders-api-staging')).spec.settings?.probePath).toBe('/me');
    await page.getByLabel('Token').fill(right);
    await page.getByRole('button', { name: 'Save changes' }).click();
    await row(page, 'orders-api-staging').getByText('Ready', { exact: true }).waitFor({ timeout: 30_000 });
    const conn = await getConn('orders-api-staging');
    expect(conn.spec.displayName).toBe('Orders API (staging, new path)');
    expect(conn.spec.settings?.probePath).toBe('/me?v=2');
    await expectNowhere(page, responses, secrets);
  });

  it('admission errors are shown in words', async () => {
    const { page, responses } = editor;
    await page
      .getByRole('button', { name: /Add connection/ })
      .first()
      .click();
    await page.getByRole('searchbox', { name: 'Search integrations' }).fill('redis');
    await page.getByRole('button', { name: /Redis/ }).first().click();
    await page.getByLabel('Connection name').fill('cache');
    await page.getByLabel('Host').fill('127.0.0.1');
    await page.getByRole('button', { name: 'Add connection', exact: true }).last().click();
    const alert = page.locator('dialog [role="alert"]');
    await alert.waitFor();
    const text = (await alert.textContent()) ?? '';
    expect(text).toMatch(/redis/);
    expect(text).not.toMatch(/[{}]|admission webhook|"kind"/);
    await page.getByRole('button', { name: 'Cancel' }).click();
    expect(await admin().tryGet(ExternalConnections, 'cache', ns)).toBeUndefined();
    await expectNowhere(page, responses, secrets);
  });

  it('the add-connection form works with the keyboard alone and has no serious accessibility violations', async () => {
    const { page, responses } = editor;
    const axe = async () =>
      (await new AxeBuilder({ page }).analyze()).violations
        .filter((v) => v.impact === 'serious' || v.impact === 'critical')
        .map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
    expect(await axe()).toEqual([]);

    const tabTo = async (id: string) => {
      for (let i = 0; i < 40; i++) {
        if ((await page.evaluate(() => document.activeElement?.id)) === id) return;
        await page.keyboard.press('Tab');
      }
      throw new Error(`Tab never reached #${id}`);
    };
    await page
      .getByRole('button', { name: /Add connection/ })
      .first()
      .focus();
    await page.keyboard.press('Enter');
    await page.keyboard.type('http'); // the search field has focus
    expect(await axe()).toEqual([]);
    for (
      let i = 0;
      i < 10 && !(await page.evaluate(() => document.activeElement?.textContent ?? '')).includes('Generic HTTP API');
      i++
    )
      await page.keyboard.press('Tab');
    await page.keyboard.press('Enter');
    await page.getByLabel('Connection name').and(page.locator(':focus')).waitFor();
    await page.keyboard.type('orders-api-keyboard');
    await tabTo('conn_settings_baseURL');
    await page.keyboard.type(fixture.url);
    await tabTo('conn_settings_probePath');
    await page.keyboard.press('Control+A');
    await page.keyboard.type('/me');
    await tabTo('conn_credentials_token');
    await page.keyboard.type(keyboard);
    expect(await axe()).toEqual([]);
    await page.keyboard.press('Enter');
    await row(page, 'orders-api-keyboard').getByText('Ready', { exact: true }).waitFor({ timeout: 30_000 });
    await expectNowhere(page, responses, secrets);
  });

  it('delete asks for confirmation, then removes the connection', async () => {
    const { page, responses } = editor;
    await row(page, 'orders-api-keyboard')
      .getByRole('button', { name: /^Delete/ })
      .click();
    const dialog = page.getByRole('dialog');
    await dialog.getByText('This cannot be undone').waitFor();
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    expect(await admin().tryGet(ExternalConnections, 'orders-api-keyboard', ns)).toBeDefined();
    await row(page, 'orders-api-keyboard')
      .getByRole('button', { name: /^Delete/ })
      .click();
    await page.getByRole('dialog').getByRole('button', { name: 'Delete connection' }).click();
    await row(page, 'orders-api-keyboard').waitFor({ state: 'detached', timeout: 30_000 });
    await eventually(
      'connection gone',
      () => admin().tryGet(ExternalConnections, 'orders-api-keyboard', ns),
      (c) => c === undefined,
    );
    await expectNowhere(page, responses, secrets);
  });

  it('a viewer sees everything read-only, and the API server refuses a write anyway', async () => {
    const { context, page, responses } = await recordingContext(browser);
    await signIn(page, await serviceAccountToken(ns, 'viewer'), ns);
    await row(page, 'orders-api').waitFor();
    await page.getByText('View only').waitFor();
    expect(await page.getByRole('button', { name: /Add connection|Test connection|Edit|Rotate|Delete/ }).count()).toBe(
      0,
    );
    const status = await page.evaluate(async (url) => {
      const res = await fetch(url, {
        method: 'PATCH',
        headers: { 'Content-Type': 'application/merge-patch+json', 'X-Atoll-Console': '1' },
        body: '{"spec":{"displayName":"x"}}',
      });
      await res.text();
      return res.status;
    }, `/api/kube/apis/atoll.dev/v1alpha1/namespaces/${ns}/externalconnections/orders-api`);
    expect(status).toBe(403);
    expect((await getConn('orders-api')).spec.displayName).toBe('Orders API (production)');
    expect(
      await new AxeBuilder({ page })
        .analyze()
        .then((r) => r.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => v.id)),
    ).toEqual([]);
    await expectNowhere(page, responses, secrets);
    await context.close();
  });

  it('behind an OIDC-aware proxy, its Authorization header signs the person in and no session is made', async () => {
    // What oauth2-proxy --pass-authorization-header does: the bearer token on every request, none in the page.
    const context = await browser.newContext({
      extraHTTPHeaders: { Authorization: `Bearer ${await serviceAccountToken(ns, 'viewer')}` },
    });
    const page = await context.newPage();
    await page.goto(consoleURL());
    await row(page, 'orders-api').waitFor();
    expect(await page.locator('.workspace-switcher select').inputValue()).toBe(ns);
    expect(await context.cookies()).toEqual([]);
    await context.close();
  });

  it('a member of another workspace sees neither the connection nor the workspace', async () => {
    const { context, page, responses } = await recordingContext(browser);
    // Even a link naming the other workspace does not open it.
    await signIn(page, await serviceAccountToken(otherNs, 'member'), ns);
    await page.getByText('No connections yet').waitFor();
    const options = await page
      .locator('.workspace-switcher option')
      .evaluateAll((els) => els.map((e) => (e as HTMLOptionElement).value));
    expect(options).toEqual([otherNs]);
    await page.getByLabel('Open another workspace').fill(ns);
    await page.getByRole('button', { name: 'Open', exact: true }).click();
    await page.getByText(`You have no access to a workspace named “${ns}”.`).waitFor();
    const html = await page.content();
    expect(html).not.toContain('orders-api');
    await responses.settled();
    expect(responses.bodies.filter((r) => r.includes('orders-api'))).toEqual([]);
    await expectNowhere(page, responses, secrets);
    await context.close();
  });
});
