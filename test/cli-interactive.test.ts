import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ExternalConnection } from '../src/api/v1alpha1/index.js';
import type { KubeObject } from '../src/kube/client.js';
import { ExternalConnections } from '../src/kube/resources.js';
import { packageRoot } from '../src/dev/binaries.js';
import {
  admin,
  condition,
  createWorkspace,
  devState,
  eventually,
  randomSecret,
  uniqueName,
} from './support/cluster.js';

type Conn = ExternalConnection & KubeObject;

/**
 * `atoll connect` in a real terminal (tmux): one prompt per setting and
 * credential field, and a credential typed at its prompt never appears on
 * the screen.
 */
describe('atoll connect (interactive terminal)', () => {
  const ns = uniqueName('tty');
  const session = uniqueName('atoll-tty');
  const tmux = (...args: string[]) => execFileSync('tmux', ['-L', session, ...args], { encoding: 'utf8' });
  const screen = () => tmux('capture-pane', '-p', '-S', '-200', '-t', session);

  async function waitForScreen(text: string): Promise<string> {
    return eventually(
      `prompt "${text}"`,
      async () => screen(),
      (s) => s.includes(text),
      20_000,
    );
  }

  beforeAll(async () => {
    await createWorkspace(ns);
    const cmd = [
      process.execPath,
      path.join(packageRoot(), 'dist', 'main.js'),
      'connect',
      'typed-in',
      '--type',
      'postgresql',
      '-n',
      ns,
      '--kubeconfig',
      devState().kubeconfig,
    ]
      .map((a) => `'${a}'`)
      .join(' ');
    tmux('new-session', '-d', '-s', session, '-x', '200', '-y', '50', `${cmd}; sleep 30`);
  });

  afterAll(() => {
    try {
      tmux('kill-server');
    } catch {
      /* already gone */
    }
  });

  it('prompts for each required setting and the password without echoing it', async () => {
    const password = randomSecret('typed');
    await waitForScreen('host');
    tmux('send-keys', '-t', session, 'db.internal.example', 'Enter');
    await waitForScreen('user');
    tmux('send-keys', '-t', session, 'orders_app', 'Enter');
    await waitForScreen('Password');
    tmux('send-keys', '-t', session, password, 'Enter');
    const done = await waitForScreen(`created ${ns}/typed-in`);
    expect(done).not.toContain(password);

    const conn = await eventually(
      'sealed',
      () => admin().get<Conn>(ExternalConnections, 'typed-in', ns),
      (c) => condition(c, 'CredentialsSealed')?.status === 'True',
    );
    expect(conn.spec.settings).toMatchObject({ host: 'db.internal.example', user: 'orders_app' });
    expect(conn.spec.credentials?.password?.sealed).toMatch(/^atoll:v1:/);
    expect(conn.status?.credentials?.password?.hint).toBe(`…${password.slice(-4)}`);
  });

  it('a mistyped --set is refused before any prompt, in a terminal too', async () => {
    const typo = uniqueName('atoll-typo');
    const cmd = [
      process.execPath,
      path.join(packageRoot(), 'dist', 'main.js'),
      'connect',
      'typo',
      '--type',
      'postgresql',
      '--set',
      'hots=db.internal',
      '-n',
      ns,
      '--kubeconfig',
      devState().kubeconfig,
    ]
      .map((a) => `'${a}'`)
      .join(' ');
    const t = (...args: string[]) => execFileSync('tmux', ['-L', typo, ...args], { encoding: 'utf8' });
    t('new-session', '-d', '-s', typo, '-x', '200', '-y', '50', `${cmd}; echo EXIT=$?; sleep 30`);
    try {
      const shown = await eventually(
        'exit',
        async () => t('capture-pane', '-p', '-t', typo),
        (s) => s.includes('EXIT='),
        20_000,
      );
      expect(shown).toMatch(/spec.settings.hots is not a known setting of this type \(known settings: [a-z, ]*host/);
      expect(shown).toContain('EXIT=64');
      expect(shown).not.toContain('Password');
      expect(shown).not.toMatch(/^host/m);
      expect(await admin().tryGet(ExternalConnections, 'typo', ns)).toBeUndefined();
    } finally {
      t('kill-server');
    }
  });
});
