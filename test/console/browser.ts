import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { expect } from 'vitest';
import { ServiceAccounts } from '../../src/kube/resources.js';
import { admin } from '../support/cluster.js';

/** Debian's chromium (hack/install-services.sh); playwright-core downloads no browser. */
export const CHROMIUM = process.env.ATOLL_CHROMIUM ?? '/usr/bin/chromium';

export function launchChromium(): Promise<Browser> {
  // --no-sandbox: CI runs as root, where Chromium's sandbox cannot start.
  return chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-dev-shm-usage'] });
}

/** A ServiceAccount in `namespace` and a token for it from the real TokenRequest API. */
export async function serviceAccountToken(namespace: string, name: string): Promise<string> {
  const client = admin();
  await client.create(ServiceAccounts, { metadata: { name, namespace } }).catch((err: { status?: number }) => {
    if (err.status !== 409) throw err;
  });
  const review = await client.request<{ status: { token: string } }>('POST', `/api/v1/namespaces/${namespace}/serviceaccounts/${name}/token`, {
    apiVersion: 'authentication.k8s.io/v1',
    kind: 'TokenRequest',
    spec: { expirationSeconds: 3600 },
  });
  return review.status.token;
}

/**
 * A browser context that remembers every response body it received, so a
 * test can prove a plaintext never came back from the server in any of them.
 */
export async function recordingContext(browser: Browser): Promise<{ context: BrowserContext; page: Page; responses: string[] }> {
  const context = await browser.newContext({ viewport: { width: 1360, height: 900 }, deviceScaleFactor: 1 });
  const page = await context.newPage();
  const responses: string[] = [];
  page.on('response', (res) => {
    void res.body().then(
      (b) => responses.push(`${res.url()}\n${b.toString('latin1')}`),
      () => undefined,
    );
  });
  return { context, page, responses };
}

/** The page's DOM (with the live values of inputs), its storage and every response so far: none may hold `secret`. */
export async function expectNowhere(page: Page, responses: string[], secrets: string[]): Promise<void> {
  // Let in-flight response bodies arrive.
  await page.waitForLoadState('networkidle').catch(() => undefined);
  const dom = await page.evaluate(() => {
    const values = [...document.querySelectorAll('input, textarea, select')].map((el) => (el as HTMLInputElement).value);
    const storage = (s: Storage) => Object.keys(s).map((k) => `${k}=${s.getItem(k)}`).join('\n');
    return [document.documentElement.outerHTML, ...values, storage(localStorage), storage(sessionStorage), document.cookie].join('\n');
  });
  for (const secret of secrets) {
    expect(dom.includes(secret), 'plaintext in the DOM, storage or cookies').toBe(false);
    expect(responses.filter((r) => r.includes(secret)), 'plaintext in a response from the console').toEqual([]);
  }
}
