import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer as createHttpServer, request, request as httpRequest } from 'node:http';
import { createServer } from 'node:net';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { CreateKeyCommand, DisableKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import { createHash, createHmac, type Hash, type Hmac } from 'node:crypto';
import { SignatureV4 } from '@smithy/signature-v4';

/** An AWS access key pair, as moto's IAM hands it out. */
export interface SigV4Credentials {
  accessKeyId: string;
  secretAccessKey: string;
}

function bytes(data: string | ArrayBuffer | ArrayBufferView): string | Uint8Array {
  if (typeof data === 'string') return data;
  return ArrayBuffer.isView(data)
    ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
    : new Uint8Array(data);
}

/** The SHA-256 (HMAC when given a secret) the SDK's SigV4 signer expects. */
class NodeSha256 {
  private readonly hash: Hash | Hmac;
  constructor(secret?: string | ArrayBuffer | ArrayBufferView) {
    this.hash = secret === undefined ? createHash('sha256') : createHmac('sha256', bytes(secret));
  }
  update(data: string | ArrayBuffer | ArrayBufferView): void {
    this.hash.update(bytes(data));
  }
  digest(): Promise<Uint8Array> {
    return Promise.resolve(new Uint8Array(this.hash.digest()));
  }
}

/** A running moto server: an AWS emulator (KMS, S3, ...) on a loopback port. */
export interface MotoServer {
  /** `http://127.0.0.1:<port>`, usable as the endpoint of any AWS SDK client. */
  endpoint: string;
  stop(): Promise<void>;
  /** Freezes the server (SIGSTOP): connections hang, as in a real KMS outage or partition. */
  pause(): void;
  /** Thaws it (SIGCONT); its state (keys) is intact. */
  resume(): void;
}

/** The credentials and region moto accepts; nothing real. */
export const MOTO_REGION = 'us-east-1';
export const MOTO_CREDENTIALS = { accessKeyId: 'testing', secretAccessKey: 'testing' } as const;

const STARTUP_TIMEOUT_MS = 30_000;
const STOP_GRACE_MS = 3_000;

/** Where hack/install-python-tools.sh puts moto_server. */
export function motoServerPath(): string {
  const cache = process.env.ATOLL_CACHE_DIR ?? join(homedir(), '.cache', 'atoll');
  return join(cache, 'venv', 'bin', 'moto_server');
}

/**
 * Starts moto_server on a free 127.0.0.1 port and resolves once it answers
 * HTTP. One server emulates every AWS service moto knows, so KMS and S3 tests
 * can share this helper; stop it in afterAll.
 */
export async function startMoto(): Promise<MotoServer> {
  const binary = motoServerPath();
  if (!existsSync(binary)) {
    throw new Error('moto_server is not installed; run: bash hack/install-python-tools.sh');
  }
  const port = await freeLoopbackPort();
  const child = spawn(binary, ['-H', '127.0.0.1', '-p', String(port)], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderrTail = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderrTail = (stderrTail + chunk.toString('utf8')).slice(-2000);
  });
  // If the test process dies without afterAll, do not leave moto running.
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  const stop = async () => {
    child.kill('SIGCONT');
    await stopProcess(child);
    process.removeListener('exit', killOnExit);
  };
  try {
    await waitUntilAnswering(child, port);
  } catch (err) {
    await stop();
    throw new Error(`moto_server did not start: ${stderrTail.trim().split('\n').slice(-3).join(' | ')}`, {
      cause: err,
    });
  }
  return {
    endpoint: `http://127.0.0.1:${port}`,
    stop,
    pause: () => void child.kill('SIGSTOP'),
    resume: () => void child.kill('SIGCONT'),
  };
}

/** Creates a symmetric KMS key on a moto endpoint and returns its ARN. */
export async function createKmsKey(endpoint: string): Promise<string> {
  const client = new KMSClient({ region: MOTO_REGION, endpoint, credentials: MOTO_CREDENTIALS });
  try {
    const out = await client.send(new CreateKeyCommand({ KeySpec: 'SYMMETRIC_DEFAULT', KeyUsage: 'ENCRYPT_DECRYPT' }));
    const arn = out.KeyMetadata?.Arn;
    if (!arn) throw new Error('moto CreateKey returned no key ARN');
    return arn;
  } finally {
    client.destroy();
  }
}

/** Asks the kernel for a free port on 127.0.0.1 (bind to 0, read it, release it). */
export function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => {
        if (address && typeof address === 'object') resolve(address.port);
        else reject(new Error('no port assigned'));
      });
    });
  });
}

async function waitUntilAnswering(child: ChildProcess, port: number): Promise<void> {
  const deadline = Date.now() + STARTUP_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error('moto_server exited');
    if (await answers(port)) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error('moto_server did not answer in time');
}

/** Any HTTP response from moto's own API means the server is up. */
function answers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path: '/moto-api/', method: 'GET', timeout: 1_000 }, (res) => {
      res.resume();
      resolve(true);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
    req.end();
  });
}

/** SIGTERM, then SIGKILL after a grace period; resolves when the process has exited. */
function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const killer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
    child.once('exit', () => {
      clearTimeout(killer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/** One request to moto signed with the AWS SDK's SigV4 signer (moto verifies signatures once auth is on). */
export async function signedMotoFetch(
  url: URL,
  method: string,
  service: string,
  credentials: SigV4Credentials,
  body?: string,
): Promise<{ status: number; text: string }> {
  const signer = new SignatureV4({
    credentials,
    region: MOTO_REGION,
    service,
    sha256: NodeSha256,
    uriEscapePath: service !== 's3',
    applyChecksum: service === 's3',
  });
  const signed = await signer.sign({
    method,
    protocol: url.protocol,
    hostname: url.hostname,
    port: url.port === '' ? undefined : Number(url.port),
    path: url.pathname,
    query: Object.fromEntries(url.searchParams),
    headers: { host: url.host, ...(body ? { 'content-type': 'application/x-www-form-urlencoded' } : {}) },
    body,
  });
  const { host: _host, ...headers } = signed.headers;
  const response = await fetch(url, { method, headers, body });
  return { status: response.status, text: await response.text() };
}

/** Disables a KMS key on a moto endpoint (key retirement: every later use of it fails). */
export async function disableKmsKey(endpoint: string, keyId: string): Promise<void> {
  const client = new KMSClient({ region: MOTO_REGION, endpoint, credentials: MOTO_CREDENTIALS });
  try {
    // moto answers an ARN here with an HTML error page: pass the bare key id.
    await client.send(new DisableKeyCommand({ KeyId: keyId.slice(keyId.lastIndexOf('/') + 1) }));
  } finally {
    client.destroy();
  }
}

export interface KmsKeyStateProxy {
  /** Endpoint to give atoll instead of moto's. */
  endpoint: string;
  /** Answers every later request naming this key (ARN or id) as AWS answers for a disabled key. */
  disable(keyArn: string): void;
  /** Requests refused so far because they named a disabled key. */
  refused(): number;
  stop(): Promise<void>;
}

/**
 * moto records DisableKey but still decrypts under a disabled key; AWS
 * refuses (DisabledException). This loopback proxy in front of moto enforces
 * the key state the way AWS does, so a test can show the old key is truly no
 * longer needed. Everything else is forwarded to moto unchanged.
 */
export async function startKmsKeyStateProxy(motoEndpoint: string): Promise<KmsKeyStateProxy> {
  const upstream = new URL(motoEndpoint);
  const disabled = new Set<string>();
  let refused = 0;
  const server = createHttpServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const text = body.toString('utf8');
      if ([...disabled].some((k) => text.includes(k))) {
        refused++;
        res.writeHead(400, { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-errortype': 'DisabledException' });
        res.end(JSON.stringify({ __type: 'DisabledException', message: 'key is disabled' }));
        return;
      }
      const forward = httpRequest(
        { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers },
        (up) => {
          res.writeHead(up.statusCode ?? 502, up.headers);
          up.pipe(res);
        },
      );
      forward.on('error', () => res.destroy());
      forward.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    disable: (keyArn) => {
      disabled.add(keyArn);
      disabled.add(keyArn.slice(keyArn.lastIndexOf('/') + 1));
    },
    refused: () => refused,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
