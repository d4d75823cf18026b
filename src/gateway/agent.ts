import { mkdir, readdir, readFile, unlink } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import type { Logger } from '../runtime/logger.js';
import { writeFileAtomic } from './atomic-file.js';
import { CREDENTIALS_EVENT, type CredentialsMessage } from './credentials-stream.js';
import { SseParser } from './sse.js';

export interface AgentOptions {
  /** Base URL of the gateway, e.g. https://atoll-gateway.atoll-system.svc:8443. */
  gatewayURL: string;
  /** Projected ServiceAccount token (audience atoll-gateway); re-read on every connect because the kubelet rotates it. */
  tokenFile: string;
  /** Connections (in the pod's own namespace) to mount. */
  connections: string[];
  /** Where files go: `<dir>/<connection>/<field>`; an in-memory (emptyDir medium: Memory) volume. */
  dir: string;
  /** PEM bundle to verify the gateway's certificate. */
  caFile?: string;
  log: Logger;
  /** Stops the agent (it then resolves). */
  signal?: AbortSignal;
  /** Mode of the credential files; default 0400. */
  fileMode?: number;
  /** A stream silent for this long (no event, no keep-alive) is reconnected; default 60 s. */
  idleTimeoutMs?: number;
  /** Reconnect backoff bounds; default 500 ms to 30 s. */
  backoff?: { initialMs: number; maxMs: number };
  /** Write each connection's files once, then resolve (Jobs, init containers). */
  once?: boolean;
  /** Called after a connection's files were brought up to date (metrics, tests). */
  onUpdate?: (connection: string, revision: string) => void;
}

export const AgentErrorMessage = {
  invalidConnection: 'connection names must be DNS labels (lower-case letters, digits and -)',
  noConnections: 'at least one connection must be given',
  unauthorized: 'the gateway rejected the token (HTTP 401): the token file must hold a projected ServiceAccount token with audience atoll-gateway',
  forbidden: 'the gateway refused access (HTTP 403): the pod\'s ServiceAccount needs the verb use on the connection (bind the ClusterRole atoll-connection-user in this namespace)',
} as const;

/**
 * A failure that retrying cannot fix: bad configuration, or the gateway
 * refused the identity (401) or the grant (403). `atoll agent` prints the
 * message and exits non-zero, so the pod's status says what is wrong.
 */
export class AgentFatalError extends Error {
  constructor(message: (typeof AgentErrorMessage)[keyof typeof AgentErrorMessage], readonly connection?: string, readonly status?: number) {
    super(connection === undefined ? message : `${message} (connection ${connection})`);
    this.name = 'AgentFatalError';
  }
}

const CONNECTION_NAME = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const FIELD_NAME = /^[A-Za-z][A-Za-z0-9_]*$/;

class StreamClosed extends Error {
  constructor(readonly status: number | undefined) {
    super('credentials stream closed');
  }
}

/**
 * `atoll agent`, the sidecar for protocols the gateway cannot proxy: for each
 * connection it subscribes to the gateway's credentials stream and keeps
 * `<dir>/<connection>/<field>` current, each file replaced atomically (so a
 * database client never reads a torn value) within the stream latency of a
 * rotation. Transient failures reconnect with exponential backoff; a 401 or
 * 403 rejects with AgentFatalError.
 */
export async function runAgent(opts: AgentOptions): Promise<void> {
  if (opts.connections.length === 0) throw new AgentFatalError(AgentErrorMessage.noConnections);
  for (const name of opts.connections) {
    if (!CONNECTION_NAME.test(name)) throw new AgentFatalError(AgentErrorMessage.invalidConnection);
  }
  const stop = new AbortController();
  const onOuterAbort = (): void => stop.abort();
  opts.signal?.addEventListener('abort', onOuterAbort, { once: true });
  try {
    await Promise.all(
      opts.connections.map((connection) =>
        followConnection(opts, connection, stop.signal).catch((err: unknown) => {
          stop.abort();
          throw err;
        }),
      ),
    );
  } finally {
    opts.signal?.removeEventListener('abort', onOuterAbort);
  }
}

async function followConnection(opts: AgentOptions, connection: string, outer: AbortSignal): Promise<void> {
  const log = opts.log.child({ connection });
  // In --once mode the first complete write ends this connection's stream.
  const local = new AbortController();
  const signal = local.signal;
  const onOuterAbort = (): void => local.abort();
  outer.addEventListener('abort', onOuterAbort, { once: true });
  try {
    await followUntilAborted(opts, connection, signal, log, () => {
      if (opts.once) local.abort();
    });
  } finally {
    outer.removeEventListener('abort', onOuterAbort);
  }
}

async function followUntilAborted(opts: AgentOptions, connection: string, signal: AbortSignal, log: Logger, onWritten: () => void): Promise<void> {
  const initialMs = opts.backoff?.initialMs ?? 500;
  const maxMs = opts.backoff?.maxMs ?? 30_000;
  let delay = initialMs;
  while (!signal.aborted) {
    let received = false;
    try {
      await subscribe(opts, connection, signal, log, () => {
        received = true;
        onWritten();
      });
    } catch (err) {
      if (err instanceof AgentFatalError) throw err;
      if (signal.aborted) return;
      log.warn({ status: err instanceof StreamClosed ? err.status : undefined, gateway: opts.gatewayURL, err: { name: (err as Error).name, code: (err as { code?: unknown }).code } }, `credentials stream for connection ${connection} interrupted, reconnecting`);
    }
    if (received) delay = initialMs;
    await sleep(delay * (0.8 + Math.random() * 0.4), signal);
    delay = Math.min(maxMs, delay * 2);
  }
}

/** One subscription: resolves or rejects when the stream ends; `onEvent` marks progress (resets backoff). */
async function subscribe(opts: AgentOptions, connection: string, signal: AbortSignal, log: Logger, onEvent: () => void): Promise<void> {
  const token = await readFile(opts.tokenFile, 'utf8').then((t) => t.trim(), (err: NodeJS.ErrnoException) => {
    // Retried (the kubelet may not have projected it yet), but the log says which file.
    log.error({ tokenFile: opts.tokenFile, code: err.code }, `cannot read the ServiceAccount token file ${opts.tokenFile} (a projected token with audience atoll-gateway)`);
    throw err;
  });
  const ca = opts.caFile === undefined ? undefined : await readFile(opts.caFile, 'utf8');
  const url = new URL(`v1/connections/${connection}/credentials?watch=1`, opts.gatewayURL.endsWith('/') ? opts.gatewayURL : `${opts.gatewayURL}/`);
  const lib = url.protocol === 'https:' ? https : http;
  const idleTimeoutMs = opts.idleTimeoutMs ?? 60_000;

  await new Promise<void>((resolve, reject) => {
    const req = lib.request(url, {
      method: 'GET',
      headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' },
      ...(ca === undefined ? {} : { ca }),
      signal,
    });
    req.setTimeout(idleTimeoutMs, () => req.destroy(new StreamClosed(undefined)));
    req.on('error', (err) => (signal.aborted ? resolve() : reject(err)));
    req.on('response', (res) => {
      const status = res.statusCode ?? 0;
      if (status !== 200) res.resume();
      if (status === 401) return reject(new AgentFatalError(AgentErrorMessage.unauthorized, connection, status));
      if (status === 403) return reject(new AgentFatalError(AgentErrorMessage.forbidden, connection, status));
      if (status !== 200) return reject(new StreamClosed(status));
      const parser = new SseParser();
      let writing: Promise<void> = Promise.resolve();
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        for (const event of parser.push(chunk)) {
          if (event.event !== CREDENTIALS_EVENT) continue;
          writing = writing.then(async () => {
            const msg = JSON.parse(event.data) as CredentialsMessage;
            await writeConnection(opts, connection, msg, log);
            onEvent();
            opts.onUpdate?.(connection, msg.revision);
          }).catch((err: unknown) => {
            log.error({ dir: opts.dir, err: { name: (err as Error).name, code: (err as { code?: unknown }).code } }, `writing credential files for connection ${connection} under ${opts.dir} failed`);
            req.destroy(new StreamClosed(undefined));
          });
        }
      });
      const ended = (): void => void writing.then(() => reject(new StreamClosed(status)));
      res.on('end', ended);
      res.on('close', ended);
      res.on('error', (err) => reject(err));
    });
    req.end();
  });
}

/** Brings `<dir>/<connection>/` to exactly the message's fields. */
async function writeConnection(opts: AgentOptions, connection: string, msg: CredentialsMessage, log: Logger): Promise<void> {
  const dir = path.join(opts.dir, connection);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const mode = opts.fileMode ?? 0o400;
  const written: string[] = [];
  for (const [field, value] of Object.entries(msg.fields)) {
    if (!FIELD_NAME.test(field)) {
      log.warn({ field: field.slice(0, 64) }, 'credential field name is not a safe file name, skipped');
      continue;
    }
    if (await writeFileAtomic(path.join(dir, field), value, mode)) written.push(field);
  }
  for (const name of await readdir(dir)) {
    if (FIELD_NAME.test(name) && !Object.hasOwn(msg.fields, name)) {
      await unlink(path.join(dir, name)).catch(() => undefined);
      written.push(name);
    }
  }
  log.info({ revision: msg.revision, fields: written }, written.length > 0 ? 'credential files updated' : 'credential files unchanged');
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
