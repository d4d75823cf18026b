import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { KubeClient } from './client.js';
import { defaultClusterAccess, inClusterAccess, kubeconfigAccess, kubeconfigFromString } from './kubeconfig.js';
import { Namespaces } from './resources.js';

const CA = '-----BEGIN CERTIFICATE-----\nca\n-----END CERTIFICATE-----\n';
const b64 = (s: string) => Buffer.from(s).toString('base64');

function tempDir(): string {
  return mkdtempSync(path.join(tmpdir(), 'atoll-kubeconfig-'));
}

function write(dir: string, name: string, content: string): string {
  const file = path.join(dir, name);
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, content);
  return file;
}

function config(parts: {
  current?: string;
  clusters?: Record<string, object>;
  users?: Record<string, object>;
  contexts?: Record<string, object>;
}): string {
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    ...(parts.current ? { 'current-context': parts.current } : {}),
    clusters: Object.entries(parts.clusters ?? {}).map(([name, cluster]) => ({ name, cluster })),
    users: Object.entries(parts.users ?? {}).map(([name, user]) => ({ name, user })),
    contexts: Object.entries(parts.contexts ?? {}).map(([name, context]) => ({ name, context })),
  });
}

describe('in-cluster configuration', () => {
  function mount(): string {
    const dir = tempDir();
    write(dir, 'token', 'token-one\n');
    write(dir, 'ca.crt', CA);
    write(dir, 'namespace', 'atoll-system');
    return dir;
  }

  it('reads the ServiceAccount mount and the service environment', async () => {
    const access = inClusterAccess({
      dir: mount(),
      env: { KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443' },
    });
    expect(access.server).toBe('https://10.96.0.1:443');
    expect(access.namespace).toBe('atoll-system');
    const opts = await access.requestOptions();
    expect(opts.headers).toEqual({ Authorization: 'Bearer token-one' });
    expect(opts.ca?.toString()).toBe(CA);
    expect(opts.rejectUnauthorized).toBeUndefined();
  });

  it('brackets an IPv6 service address', () => {
    const access = inClusterAccess({
      dir: mount(),
      env: { KUBERNETES_SERVICE_HOST: 'fd00:10:96::1', KUBERNETES_SERVICE_PORT: '6443' },
    });
    expect(access.server).toBe('https://[fd00:10:96::1]:6443');
    expect(new URL(access.server).hostname).toBe('[fd00:10:96::1]');
  });

  it('re-reads a rotated projected token', async () => {
    const dir = mount();
    const access = inClusterAccess({
      dir,
      env: { KUBERNETES_SERVICE_HOST: 'kubernetes', KUBERNETES_SERVICE_PORT: '443' },
      tokenRereadMs: 0,
    });
    expect((await access.requestOptions()).headers).toEqual({ Authorization: 'Bearer token-one' });
    write(dir, 'token', 'token-two');
    expect((await access.requestOptions()).headers).toEqual({ Authorization: 'Bearer token-two' });
  });

  it('keeps a token for the re-read interval (no file read per request)', async () => {
    const dir = mount();
    const access = inClusterAccess({
      dir,
      env: { KUBERNETES_SERVICE_HOST: 'kubernetes', KUBERNETES_SERVICE_PORT: '443' },
      tokenRereadMs: 3_600_000,
    });
    write(dir, 'token', 'token-two');
    expect((await access.requestOptions()).headers).toEqual({ Authorization: 'Bearer token-one' });
  });

  it('says which variable or file is missing', () => {
    expect(() => inClusterAccess({ dir: mount(), env: { KUBERNETES_SERVICE_HOST: 'kubernetes' } })).toThrow(
      'KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must both be set',
    );
    const dir = tempDir();
    write(dir, 'ca.crt', CA);
    expect(() =>
      inClusterAccess({ dir, env: { KUBERNETES_SERVICE_HOST: 'kubernetes', KUBERNETES_SERVICE_PORT: '443' } }),
    ).toThrow(`in-cluster configuration: cannot read the token ${path.join(dir, 'token')} (ENOENT)`);
  });
});

describe('kubeconfig files', () => {
  it('resolves the current context with tokens, CA data, tls-server-name and the context namespace', async () => {
    const access = kubeconfigFromString(
      config({
        current: 'dev',
        clusters: {
          c: {
            server: 'https://api.example:6443',
            'certificate-authority-data': b64(CA),
            'tls-server-name': 'kubernetes',
          },
        },
        users: { u: { token: 'abc' } },
        contexts: { dev: { cluster: 'c', user: 'u', namespace: 'team-a' } },
      }),
    );
    expect(access.server).toBe('https://api.example:6443');
    expect(access.namespace).toBe('team-a');
    const opts = await access.requestOptions();
    expect(opts).toEqual({ ca: Buffer.from(CA), servername: 'kubernetes', headers: { Authorization: 'Bearer abc' } });
  });

  it('resolves certificate-authority, client-certificate, client-key and tokenFile against the kubeconfig directory', async () => {
    const dir = tempDir();
    write(dir, 'pki/ca.crt', CA);
    write(dir, 'pki/me.crt', 'CERT');
    write(dir, 'pki/me.key', 'KEY');
    write(dir, 'token', 'from-file\n');
    const file = write(
      dir,
      'conf/kubeconfig',
      config({
        current: 'dev',
        clusters: { c: { server: 'https://127.0.0.1:6443', 'certificate-authority': '../pki/ca.crt' } },
        users: { u: { 'client-certificate': '../pki/me.crt', 'client-key': '../pki/me.key', tokenFile: '../token' } },
        contexts: { dev: { cluster: 'c', user: 'u' } },
      }),
    );
    const opts = await kubeconfigAccess([file]).requestOptions();
    expect(opts.ca?.toString()).toBe(CA);
    expect(opts.cert?.toString()).toBe('CERT');
    expect(opts.key).toEqual(Buffer.from('KEY'));
    expect(opts.headers).toEqual({ Authorization: 'Bearer from-file' });
  });

  it('honours insecure-skip-tls-verify and client certificate data', async () => {
    const opts = await kubeconfigFromString(
      config({
        current: 'dev',
        clusters: { c: { server: 'https://127.0.0.1:6443', 'insecure-skip-tls-verify': true } },
        users: { u: { 'client-certificate-data': b64('CERT'), 'client-key-data': b64('KEY') } },
        contexts: { dev: { cluster: 'c', user: 'u' } },
      }),
    ).requestOptions();
    expect(opts).toEqual({ rejectUnauthorized: false, cert: Buffer.from('CERT'), key: Buffer.from('KEY') });
  });

  it('merges a KUBECONFIG list as kubectl does: the first file to set current-context or a name wins', async () => {
    const dir = tempDir();
    const first = write(
      dir,
      'first',
      config({
        current: 'one',
        clusters: { shared: { server: 'https://first.example' } },
        contexts: { one: { cluster: 'shared', user: 'only-in-second' } },
      }),
    );
    const second = write(
      dir,
      'second',
      config({
        current: 'two',
        clusters: { shared: { server: 'https://second.example' } },
        users: { 'only-in-second': { token: 'second-token' } },
        contexts: { one: { cluster: 'shared', user: 'nobody' }, two: { cluster: 'shared' } },
      }),
    );
    const empty = write(dir, 'empty', '');
    const access = defaultClusterAccess({
      KUBECONFIG: [empty, first, path.join(dir, 'missing'), second].join(path.delimiter),
    });
    expect(access.server).toBe('https://first.example');
    expect((await access.requestOptions()).headers).toEqual({ Authorization: 'Bearer second-token' });
  });

  it('names the field and the fix when the configuration is wrong', () => {
    const dir = tempDir();
    const file = (name: string, body: Parameters<typeof config>[0]) => write(dir, name, config(body));
    const cases: Array<[string, string]> = [
      [
        file('undefined-cluster', { current: 'x', contexts: { x: { cluster: 'y' } } }),
        'context "x" names cluster "y", which is not defined',
      ],
      [
        file('undefined-user', {
          current: 'x',
          clusters: { y: { server: 'https://a' } },
          contexts: { x: { cluster: 'y', user: 'z' } },
        }),
        'context "x" names user "z", which is not defined',
      ],
      [
        file('no-current', { contexts: { x: { cluster: 'y' } } }),
        'no current-context is set: run kubectl config use-context <name>',
      ],
      [file('unknown-current', { current: 'gone' }), 'current-context "gone" is not defined in contexts'],
      [
        file('no-server', { current: 'x', clusters: { y: {} }, contexts: { x: { cluster: 'y' } } }),
        'cluster "y" has no server: set clusters[].cluster.server',
      ],
      [
        file('both-tokens', {
          current: 'x',
          clusters: { y: { server: 'https://a' } },
          users: { u: { token: 't', tokenFile: 'f' } },
          contexts: { x: { cluster: 'y', user: 'u' } },
        }),
        'user "u" sets both token and tokenFile: keep one',
      ],
      [
        file('cert-no-key', {
          current: 'x',
          clusters: { y: { server: 'https://a' } },
          users: { u: { 'client-certificate-data': b64('CERT') } },
          contexts: { x: { cluster: 'y', user: 'u' } },
        }),
        'user "u" has a client certificate but no client-key',
      ],
      [
        file('ca-and-insecure', {
          current: 'x',
          clusters: {
            y: { server: 'https://a', 'certificate-authority-data': b64(CA), 'insecure-skip-tls-verify': true },
          },
          contexts: { x: { cluster: 'y' } },
        }),
        'cluster "y" sets a certificate authority and insecure-skip-tls-verify',
      ],
      [
        file('missing-ca-file', {
          current: 'x',
          clusters: { y: { server: 'https://a', 'certificate-authority': 'nope.crt' } },
          contexts: { x: { cluster: 'y' } },
        }),
        `cluster "y" certificate-authority: cannot read the file ${path.join(dir, 'nope.crt')} (ENOENT)`,
      ],
      [write(dir, 'not-a-list', 'clusters: {a: 1}\n'), 'clusters must be a list of {name, cluster} entries'],
      [write(dir, 'unnamed', 'clusters: [{cluster: {server: "https://a"}}]\n'), 'clusters[0] has no name'],
    ];
    for (const [path, message] of cases) {
      expect(() => kubeconfigAccess([path]), path).toThrow(`kubeconfig ${path}`);
      expect(() => kubeconfigAccess([path]), path).toThrow(message);
    }
  });

  it('says where a kubeconfig is not YAML without quoting it (its lines hold tokens)', () => {
    const token = 'sha256~Z2VoZWltZXItdG9rZW4tdmFsdWU';
    const file = write(tempDir(), 'broken', `users:\n- name: u\n  user: {token: ${token}\n    x: [\n`);
    let caught: unknown;
    try {
      kubeconfigAccess([file]);
    } catch (err) {
      caught = err;
    }
    expect((caught as Error).message).toContain(`kubeconfig ${file}: not valid YAML (`);
    const chain: string[] = [];
    for (let e = caught; e instanceof Error; e = e.cause) chain.push(e.message, e.stack ?? '');
    expect(chain.join('\n')).not.toContain(token);
  });

  it('says KUBECONFIG names no existing file, and that none was found at all', () => {
    const dir = tempDir();
    expect(() => defaultClusterAccess({ KUBECONFIG: path.join(dir, 'nope') })).toThrow(
      `KUBECONFIG names ${path.join(dir, 'nope')}, which does not exist`,
    );
  });

  it('delegates an exec plugin user to client-node, which runs the plugin', async () => {
    const dir = tempDir();
    const plugin = write(
      dir,
      'plugin.sh',
      `#!/bin/sh\necho '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"from-plugin"}}'\n`,
    );
    chmodSync(plugin, 0o755);
    write(dir, 'ca.crt', CA);
    const file = write(
      dir,
      'kubeconfig',
      config({
        current: 'x',
        clusters: { y: { server: 'https://a.example', 'certificate-authority': 'ca.crt' } },
        users: {
          u: { exec: { apiVersion: 'client.authentication.k8s.io/v1', command: plugin, interactiveMode: 'Never' } },
        },
        contexts: { x: { cluster: 'y', user: 'u', namespace: 'n' } },
      }),
    );
    const access = kubeconfigAccess([file]);
    expect(access.server).toBe('https://a.example');
    expect(access.namespace).toBe('n');
    const opts = await access.requestOptions();
    expect(opts.headers).toMatchObject({ Authorization: 'Bearer from-plugin' });
    // The relative CA path still resolves against the kubeconfig's directory when client-node reads it.
    expect(opts.ca?.toString()).toBe(CA);
  });
});

describe('a client built from the loaded configuration', () => {
  it('reaches an API server at an IPv6 literal with the bearer token', async () => {
    const seen: Array<string | undefined> = [];
    const server = http.createServer((req, res) => {
      seen.push(req.headers.authorization);
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ metadata: { name: 'n1' } }));
    });
    await new Promise<void>((resolve) => server.listen(0, '::1', resolve));
    try {
      const { port } = server.address() as AddressInfo;
      const access = kubeconfigFromString(
        config({
          current: 'x',
          clusters: { y: { server: `http://[::1]:${port}` } },
          users: { u: { token: 'v6-token' } },
          contexts: { x: { cluster: 'y', user: 'u' } },
        }),
      );
      const got = await new KubeClient(access).get(Namespaces, 'n1');
      expect(got.metadata?.name).toBe('n1');
      expect(seen).toEqual(['Bearer v6-token']);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
