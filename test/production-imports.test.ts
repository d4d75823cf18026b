/**
 * The controller and the gateway never load `@kubernetes/client-node` (ADR
 * 0029): importing it costs a process about 70 MiB of RSS. Each runs from
 * the built `dist/main.js` under a loader hook that records every module it
 * loads, against a recording API server, until the server has seen its first
 * request; a kubeconfig with an exec plugin shows the hook does see
 * client-node when it is loaded.
 *
 * Nor does the controller load a probe driver's client library, or a KMS
 * provider's SDK, before it needs one (ADR 0035): each costs 15-20 MiB.
 */
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';

const MAIN = path.resolve('dist/main.js');
const CLIENT_NODE = '/node_modules/@kubernetes/client-node/';

let dir: string;
let server: http.Server;
let serverURL: string;
const authorizations: Array<string | undefined> = [];
let onRequest: (() => void) | undefined;

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'atoll-imports-'));
  writeFileSync(
    path.join(dir, 'hooks.mjs'),
    `import { appendFileSync } from 'node:fs';
let file;
export function initialize(data) { file = data.file; }
export async function load(url, context, next) { appendFileSync(file, url + '\\n'); return next(url, context); }
`,
  );
  // Every request is refused: the process under test gets as far as its first API call and no further.
  server = http.createServer((req, res) => {
    authorizations.push(req.headers.authorization);
    res.writeHead(403, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ kind: 'Status', status: 'Failure', reason: 'Forbidden', code: 403 }));
    onRequest?.();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  serverURL = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

function kubeconfig(name: string, user: object): string {
  const file = path.join(dir, `${name}.kubeconfig`);
  writeFileSync(
    file,
    stringify({
      'current-context': 'c',
      // Plain HTTP: client-node (the exec case) wants that said explicitly.
      clusters: [{ name: 'k', cluster: { server: serverURL, 'insecure-skip-tls-verify': true } }],
      users: [{ name: 'u', user }],
      contexts: [{ name: 'c', context: { cluster: 'k', user: 'u' } }],
    }),
  );
  return file;
}

/** Runs `atoll <command>` until the API server sees its first request; returns the module URLs it loaded. */
async function modulesLoadedUntilFirstRequest(command: string, kubeconfigFile: string): Promise<string[]> {
  const log = path.join(dir, `${command}-${path.basename(kubeconfigFile)}.modules`);
  const register = path.join(dir, `register-${path.basename(log)}.mjs`);
  writeFileSync(
    register,
    `import { register } from 'node:module';\nregister('./hooks.mjs', import.meta.url, { data: { file: ${JSON.stringify(log)} } });\n`,
  );
  writeFileSync(log, '');
  authorizations.length = 0;
  const child = spawn(process.execPath, ['--import', register, MAIN, command], {
    env: {
      PATH: process.env.PATH,
      HOME: dir,
      KUBECONFIG: kubeconfigFile,
      ATOLL_GATEWAY_INSECURE_PLAINTEXT: 'true',
      ATOLL_GATEWAY_HOST: '127.0.0.1',
      ATOLL_GATEWAY_PORT: '0',
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  const firstRequest = new Promise<void>((resolve) => (onRequest = resolve));
  const outcome = await Promise.race([firstRequest.then(() => 'request' as const), exited.then(() => 'exit' as const)]);
  onRequest = undefined;
  child.kill('SIGKILL');
  await exited;
  expect(outcome, `atoll ${command} exited before any API request: ${stderr}`).toBe('request');
  return readFileSync(log, 'utf8').split('\n').filter(Boolean);
}

describe('production processes do not load @kubernetes/client-node', () => {
  it.each(['controller', 'gateway'])('atoll %s with a token kubeconfig', async (command) => {
    const loaded = await modulesLoadedUntilFirstRequest(command, kubeconfig('token', { token: 'plain-token' }));
    expect(authorizations[0]).toBe('Bearer plain-token');
    expect(loaded).toContain(`file://${path.resolve('dist/kube/kubeconfig.js')}`);
    expect(loaded.filter((url) => url.includes(CLIENT_NODE))).toEqual([]);
  });

  it('atoll controller loads no probe driver library and no KMS SDK it has not used', async () => {
    const loaded = await modulesLoadedUntilFirstRequest('controller', kubeconfig('token', { token: 'plain-token' }));
    const heavy = ['pg', 'mysql2', '@redis/client', '@aws-sdk/client-s3', '@aws-sdk/client-kms', 'undici'];
    expect(loaded.filter((url) => heavy.some((name) => url.includes(`/node_modules/${name}/`)))).toEqual([]);
    expect(loaded).toContain(`file://${path.resolve('dist/integrations/drivers/index.js')}`);
  });

  it('loads it only for a user that needs a plugin (exec), and the plugin token is used', async () => {
    const plugin = path.join(dir, 'plugin.sh');
    writeFileSync(
      plugin,
      `#!/bin/sh\necho '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"plugin-token"}}'\n`,
    );
    chmodSync(plugin, 0o755);
    const file = kubeconfig('exec', {
      exec: { apiVersion: 'client.authentication.k8s.io/v1', command: plugin, interactiveMode: 'Never' },
    });
    const loaded = await modulesLoadedUntilFirstRequest('controller', file);
    expect(authorizations[0]).toBe('Bearer plugin-token');
    expect(loaded.filter((url) => url.includes(CLIENT_NODE)).length).toBeGreaterThan(0);
  });
});
