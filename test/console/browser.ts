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
  const review = await client.request<{ status: { token: string } }>(
    'POST',
    `/api/v1/namespaces/${namespace}/serviceaccounts/${name}/token`,
    {
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenRequest',
      spec: { expirationSeconds: 3600 },
    },
  );
  return review.status.token;
}

/** Every response body a page received, as text, kept so a test can scan them. */
export interface ResponseLog {
  bodies: string[];
  /** Resolves once the bodies of all responses seen so far have been read. */
  settled(): Promise<void>;
}

/**
 * A browser context that remembers every response body it received, so a
 * test can prove a plaintext never came back from the server in any of them.
 */
export async function recordingContext(
  browser: Browser,
): Promise<{ context: BrowserContext; page: Page; responses: ResponseLog }> {
  const context = await browser.newContext({ viewport: { width: 1360, height: 900 }, deviceScaleFactor: 1 });
  const page = await context.newPage();
  const bodies: string[] = [];
  const reading = new Map<Promise<void>, string>();
  page.on('response', (res) => {
    const read: Promise<void> = res
      .body()
      .then(
        (b) => void bodies.push(`${res.url()}\n${b.toString('latin1')}`),
        () => undefined,
      )
      .finally(() => reading.delete(read));
    reading.set(read, res.url());
  });
  const settled = async () => {
    // A body that never arrives would go unscanned: fail, naming it, rather than pass without it.
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`response bodies never arrived: ${[...reading.values()].join(', ')}`)),
        20_000,
      );
    });
    try {
      await Promise.race([Promise.all(reading.keys()), late]);
    } finally {
      clearTimeout(timer);
    }
  };
  return { context, page, responses: { bodies, settled } };
}

/** The page's DOM (with the live values of inputs), its storage and every response so far: none may hold a secret. */
export async function expectNowhere(page: Page, responses: ResponseLog, secrets: string[]): Promise<void> {
  await responses.settled();
  const dom = await page.evaluate(() => {
    const values = Array.from(document.querySelectorAll('input, textarea, select')).map(
      (el) => (el as HTMLInputElement).value,
    );
    const storage = (s: Storage) =>
      Object.keys(s)
        .map((k) => `${k}=${s.getItem(k)}`)
        .join('\n');
    return [
      document.documentElement.outerHTML,
      ...values,
      storage(localStorage),
      storage(sessionStorage),
      document.cookie,
    ].join('\n');
  });
  expect(responses.bodies.length).toBeGreaterThan(0);
  for (const secret of secrets) {
    expect(dom.includes(secret), 'plaintext in the DOM, storage or cookies').toBe(false);
    expect(
      responses.bodies.filter((r) => r.includes(secret)),
      'plaintext in a response from the console',
    ).toEqual([]);
  }
}
