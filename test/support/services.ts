import { spawn } from 'node:child_process';
import { requireTool, runTool } from './tools.js';
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer as createHttpServer } from 'node:http';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { connect as netConnect, createServer as createNetServer } from 'node:net';
import type { AddressInfo, Server, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer as createTlsServer } from 'node:tls';
import { createCertificate, createCertificateAuthority } from '../../src/kube/x509.js';
import type { KeyPairPem } from '../../src/kube/x509.js';
import { freePort, waitFor } from '../../src/dev/ports.js';

/**
 * Real services and network fixtures for probe tests, all on 127.0.0.1 at free
 * ports, each stopped (processes killed, temp dirs removed) by `stop()`:
 * Redis and Prometheus as the real servers, and small Node fixtures for the
 * failure modes a probe must classify (closed port, silent server, untrusted
 * TLS) and for asserting what an HTTP probe actually sent.
 */

const run = runTool;
const LOOPBACK = '127.0.0.1';

/** Something listening (or deliberately not) on loopback. */
export interface RunningService {
  host: string;
  port: number;
  stop(): Promise<void>;
}

/** A fixture that counts accepted TCP connections, to prove a denied probe never connected. */
export interface CountingService extends RunningService {
  connections(): number;
}

/** A test PKI: a CA and a server certificate for 127.0.0.1 and localhost signed by it. */
export interface TestPki {
  ca: KeyPairPem;
  server: KeyPairPem;
}

/** Creates a fresh CA and a loopback server certificate; trust `ca.certPem` to accept the server. */
export function createTestPki(commonName = 'atoll-test'): TestPki {
  const ca = createCertificateAuthority({ commonName: `${commonName}-ca` });
  const server = createCertificate({
    issuer: ca,
    commonName: 'localhost',
    dnsNames: ['localhost'],
    ipAddresses: ['127.0.0.1', '::1'],
    usage: 'server',
  });
  return { ca, server };
}

function listen(server: Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, LOOPBACK, () => resolve((server.address() as AddressInfo).port));
  });
}

/** Closes a server and destroys its open sockets, so stop() never waits for a client. */
function closer(server: Server, sockets: Set<Socket>): () => Promise<void> {
  return () =>
    new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    });
}

function track(
  server: Server,
  event: 'connection' | 'secureConnection' = 'connection',
): { sockets: Set<Socket>; count: () => number } {
  const sockets = new Set<Socket>();
  let count = 0;
  server.on(event, (socket: Socket) => {
    count++;
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.once('close', () => sockets.delete(socket));
  });
  return { sockets, count: () => count };
}

/** A TCP server that accepts connections and never says a word: probes against it must time out. */
export async function startSilentServer(): Promise<CountingService> {
  const server = createNetServer();
  const { sockets, count } = track(server);
  const port = await listen(server);
  return { host: LOOPBACK, port, connections: count, stop: closer(server, sockets) };
}

/** A loopback port nothing listens on: probes against it are refused. */
export async function closedPort(): Promise<RunningService> {
  return { host: LOOPBACK, port: await freePort(), stop: async () => undefined };
}

/** A TLS server whose certificate comes from a CA the probe is not told to trust. */
export async function startTlsMismatchServer(): Promise<CountingService & { caPem: string }> {
  const pki = createTestPki('atoll-untrusted');
  const server = createTlsServer({ cert: pki.server.certPem, key: pki.server.keyPem });
  const { sockets, count } = track(server);
  server.on('tlsClientError', () => undefined);
  const port = await listen(server);
  return { host: LOOPBACK, port, caPem: pki.ca.certPem, connections: count, stop: closer(server, sockets) };
}

/** What an HTTP fixture received. */
export interface RecordedRequest {
  method: string;
  /** Path and query as sent. */
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

export interface HttpFixture extends CountingService {
  /** http(s)://127.0.0.1:PORT */
  url: string;
  requests: RecordedRequest[];
}

export type FixtureHandler = (req: RecordedRequest, res: ServerResponse<IncomingMessage>) => void;

export interface HttpFixtureOptions {
  /** Serve HTTPS with this certificate. */
  tls?: KeyPairPem;
}

/** An HTTP(S) server that records every request and answers with `handler` (200 "ok" by default). */
export async function startHttpFixture(handler?: FixtureHandler, opts: HttpFixtureOptions = {}): Promise<HttpFixture> {
  const requests: RecordedRequest[] = [];
  const respond = (req: IncomingMessage, res: ServerResponse<IncomingMessage>): void => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const recorded = {
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      };
      requests.push(recorded);
      if (handler !== undefined) handler(recorded, res);
      else res.end('ok');
    });
  };
  const server =
    opts.tls !== undefined
      ? createHttpsServer({ cert: opts.tls.certPem, key: opts.tls.keyPem }, respond)
      : createHttpServer(respond);
  const { sockets, count } = track(server);
  const port = await listen(server);
  const scheme = opts.tls !== undefined ? 'https' : 'http';
  return {
    host: LOOPBACK,
    port,
    url: `${scheme}://${LOOPBACK}:${port}`,
    requests,
    connections: count,
    stop: closer(server, sockets),
  };
}

/** Stops a child we started: SIGTERM, then SIGKILL if it lingers. */
async function terminate(child: ChildProcess | undefined): Promise<void> {
  if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}

function tcpAccepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = netConnect({ host: LOOPBACK, port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** Spawns a server process and fails fast (with its output) if it exits while we wait for it. */
function spawnServer(command: string, args: string[]): { child: ChildProcess; output: () => string } {
  requireTool(command);
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const keep = (chunk: Buffer): void => {
    output = (output + chunk.toString('utf8')).slice(-4_000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  return { child, output: () => output };
}

function exitedEarly(child: ChildProcess, what: string, output: () => string): Error | undefined {
  if (child.exitCode === null && child.signalCode === null) return undefined;
  const err = new Error(`${what} exited during startup (${child.exitCode ?? child.signalCode}): ${output()}`);
  err.name = 'FatalStartError';
  return err;
}

export interface RedisOptions {
  /** requirepass for the default user; no auth when omitted. */
  password?: string;
  /** Also create this ACL user with `password` (for AUTH username password). */
  username?: string;
  /** Serve TLS only (no plaintext port) with this certificate. */
  tls?: KeyPairPem & { caPem: string };
}

/** Starts redis-server with no persistence in a temp dir. */
export async function startRedis(opts: RedisOptions = {}): Promise<RunningService> {
  const dir = await mkdtemp(join(tmpdir(), 'atoll-redis-'));
  const port = await freePort();
  const lines = [
    `bind ${LOOPBACK}`,
    'protected-mode no',
    'save ""',
    'appendonly no',
    `dir ${dir}`,
    'daemonize no',
    'loglevel warning',
  ];
  if (opts.tls !== undefined) {
    for (const [name, pem] of [
      ['server.crt', opts.tls.certPem],
      ['server.key', opts.tls.keyPem],
      ['ca.crt', opts.tls.caPem],
    ] as const) {
      await writeFile(join(dir, name), pem, { mode: 0o600 });
    }
    lines.push(
      'port 0',
      `tls-port ${port}`,
      `tls-cert-file ${join(dir, 'server.crt')}`,
      `tls-key-file ${join(dir, 'server.key')}`,
      `tls-ca-cert-file ${join(dir, 'ca.crt')}`,
      'tls-auth-clients no',
    );
  } else {
    lines.push(`port ${port}`);
  }
  if (opts.password !== undefined) lines.push(`requirepass "${opts.password}"`);
  if (opts.username !== undefined && opts.password !== undefined)
    lines.push(`user ${opts.username} on >${opts.password} ~* &* +@all`);
  const config = join(dir, 'redis.conf');
  await writeFile(config, lines.join('\n') + '\n', { mode: 0o600 });

  const { child, output } = spawnServer('redis-server', [config]);
  const stop = async (): Promise<void> => {
    await terminate(child);
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await waitFor(
      'redis to accept connections',
      async () => {
        const early = exitedEarly(child, 'redis-server', output);
        if (early !== undefined) throw early;
        return tcpAccepts(port);
      },
      30_000,
    );
    return { host: LOOPBACK, port, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

export interface PrometheusOptions {
  username: string;
  password: string;
}

/** Starts Prometheus with basic auth (bcrypt via htpasswd), no scrape targets and a temp TSDB. */
export async function startPrometheus(opts: PrometheusOptions): Promise<RunningService & { url: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'atoll-prometheus-'));
  const port = await freePort();
  let child: ChildProcess | undefined;
  const stop = async (): Promise<void> => {
    await terminate(child);
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const { stdout } = await run('htpasswd', ['-nbBC', '10', opts.username, opts.password]);
    const hash = stdout.trim().slice(opts.username.length + 1);
    await writeFile(
      join(dir, 'web.yml'),
      `basic_auth_users:\n  ${JSON.stringify(opts.username)}: ${JSON.stringify(hash)}\n`,
      { mode: 0o600 },
    );
    await writeFile(join(dir, 'prometheus.yml'), 'global:\n  scrape_interval: 1m\nscrape_configs: []\n');
    const started = spawnServer('prometheus', [
      `--config.file=${join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=${LOOPBACK}:${port}`,
      `--web.config.file=${join(dir, 'web.yml')}`,
      '--log.level=warn',
    ]);
    child = started.child;
    const proc = child;
    const authorization = `Basic ${Buffer.from(`${opts.username}:${opts.password}`).toString('base64')}`;
    const url = `http://${LOOPBACK}:${port}`;
    await waitFor(
      'prometheus to become ready',
      async () => {
        const early = exitedEarly(proc, 'prometheus', started.output);
        if (early !== undefined) throw early;
        const res = await fetch(`${url}/-/ready`, { headers: { authorization } });
        return res.status === 200;
      },
      60_000,
      200,
    );
    return { host: LOOPBACK, port, url, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
