import { readdir, readFile, unlink } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import { describeError } from '../runtime/describe-error.js';
import type { Logger } from '../runtime/logger.js';
import { writeFileAtomic } from './atomic-file.js';
import { openConfinedChild, openConfinedRoot, SymlinkRefused } from './confined-dir.js';
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
  /** PEM bundle to verify the gateway's certificate (system CAs otherwise; verification is never off). */
  caFile?: string;
  /** Accept an http:// gateway URL: the token and the credentials then cross the network unencrypted. */
  insecurePlaintext?: boolean;
  log: Logger;
  /** Stops the agent (it then resolves). */
  signal?: AbortSignal;
  /** Mode of the credential files; default 0400. */
  fileMode?: number;
  /** A stream silent for this long (no event, no keep-alive) is reconnected; default 60 s. */
  idleTimeoutMs?: number;
  /**
   * Reconnect backoff bounds; default 500 ms to 8 s. The cap bounds how long
   * files lag behind a gateway that is back: at 30 s an agent that kept
   * failing through an outage caught up only 30-36 s later (the chaos suite,
   * docs/reliability.md). A refused reconnect costs the gateway little.
   */
  backoff?: { initialMs: number; maxMs: number };
  /** Write each connection's files once, then resolve (Jobs, init containers). */
  once?: boolean;
  /** Called after a connection's files were brought up to date (metrics, tests). */
  onUpdate?: (connection: string, revision: string) => void;
}

export const AgentErrorMessage = {
  invalidConnection: 'connection names must be DNS labels (lower-case letters, digits and -)',
  noConnections: 'at least one connection must be given',
  unauthorized:
    'the gateway rejected the token (HTTP 401): the token file must hold a projected ServiceAccount token with audience atoll-gateway',
  forbidden:
    "the gateway refused access (HTTP 403): the pod's ServiceAccount needs the verb read-credentials on the connection (bind the ClusterRole atoll-connection-reader in this namespace), the connection's type must allow files, and the workspace must not forbid file delivery",
  plaintextGateway:
    'the gateway URL is http://: the token and credentials would cross the network unencrypted; use https:// (with --ca-file for a private CA), or pass --insecure-plaintext to accept that',
  untrustedGateway:
    "the gateway's TLS certificate is not trusted: pass --ca-file with the CA that issued it (the chart publishes it in Secret atoll-gateway-tls, key ca.crt)",
  symlink:
    'refusing to follow a symbolic link inside the credentials directory (someone planted it there); remove it, and check who can write to the volume',
} as const;

/**
 * A failure that retrying cannot fix: bad configuration, or the gateway
 * refused the identity (401) or the grant (403). `atoll agent` prints the
 * message and exits non-zero, so the pod's status says what is wrong.
 */
export class AgentFatalError extends Error {
  /** `reason` is the gateway's own error message (constant text naming the missing permission or policy). */
  constructor(
    message: (typeof AgentErrorMessage)[keyof typeof AgentErrorMessage],
    readonly connection?: string,
    readonly status?: number,
    readonly reason?: string,
  ) {
    super(
      `${message}${connection === undefined ? '' : ` (connection ${connection})`}${reason === undefined ? '' : `: the gateway says: ${reason}`}`,
    );
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
  if (new URL(opts.gatewayURL).protocol !== 'https:' && opts.insecurePlaintext !== true)
    throw new AgentFatalError(AgentErrorMessage.plaintextGateway);
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

async function followUntilAborted(
  opts: AgentOptions,
  connection: string,
  signal: AbortSignal,
  log: Logger,
  onWritten: () => void,
): Promise<void> {
  const initialMs = opts.backoff?.initialMs ?? 500;
  const maxMs = opts.backoff?.maxMs ?? 8_000;
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
      // A certificate that does not verify is configuration, not weather: retrying cannot fix it.
      if (isCertificateError(err)) throw new AgentFatalError(AgentErrorMessage.untrustedGateway, connection);
      if (signal.aborted) return;
      log.warn(
        {
          status: err instanceof StreamClosed ? err.status : undefined,
          gateway: opts.gatewayURL,
          error: describeError(err),
        },
        `credentials stream for connection ${connection} interrupted, reconnecting`,
      );
    }
    if (received) delay = initialMs;
    await sleep(delay * (0.8 + Math.random() * 0.4), signal);
    delay = Math.min(maxMs, delay * 2);
  }
}

/** One subscription: resolves or rejects when the stream ends; `onEvent` marks progress (resets backoff). */
async function subscribe(
  opts: AgentOptions,
  connection: string,
  signal: AbortSignal,
  log: Logger,
  onEvent: () => void,
): Promise<void> {
  const token = await readFile(opts.tokenFile, 'utf8').then(
    (t) => t.trim(),
    (err: NodeJS.ErrnoException) => {
      // Retried (the kubelet may not have projected it yet), but the log says which file.
      log.error(
        { tokenFile: opts.tokenFile, code: err.code },
        `cannot read the ServiceAccount token file ${opts.tokenFile} (a projected token with audience atoll-gateway)`,
      );
      throw err;
    },
  );
  const ca = opts.caFile === undefined ? undefined : await readFile(opts.caFile, 'utf8');
  const url = new URL(
    `v1/connections/${connection}/credentials?watch=1`,
    opts.gatewayURL.endsWith('/') ? opts.gatewayURL : `${opts.gatewayURL}/`,
  );
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
      if (status !== 200 && status !== 403) res.resume();
      if (status === 401) return reject(new AgentFatalError(AgentErrorMessage.unauthorized, connection, status));
      if (status === 403) {
        void gatewayReason(res).then((reason) =>
          reject(new AgentFatalError(AgentErrorMessage.forbidden, connection, status, reason)),
        );
        return;
      }
      if (status !== 200) return reject(new StreamClosed(status));
      const parser = new SseParser();
      let writing: Promise<void> = Promise.resolve();
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        for (const event of parser.push(chunk)) {
          if (event.event !== CREDENTIALS_EVENT) continue;
          writing = writing
            .then(async () => {
              const msg = JSON.parse(event.data) as CredentialsMessage;
              await writeConnection(opts, connection, msg, log);
              onEvent();
              opts.onUpdate?.(connection, msg.revision);
            })
            .catch((err: unknown) => {
              if (err instanceof SymlinkRefused) {
                log.error(
                  { pathComponent: err.component },
                  'refusing to follow a symbolic link in the credentials directory',
                );
                reject(new AgentFatalError(AgentErrorMessage.symlink, connection));
                req.destroy();
                return;
              }
              log.error(
                { dir: opts.dir, error: describeError(err) },
                `writing credential files for connection ${connection} under ${opts.dir} failed`,
              );
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

/**
 * Brings `<dir>/<connection>/` to exactly the message's fields, through
 * descriptors opened without following links (a planted link at
 * `<dir>/<connection>` throws SymlinkRefused; one at a field is replaced,
 * never written through).
 */
async function writeConnection(
  opts: AgentOptions,
  connection: string,
  msg: CredentialsMessage,
  log: Logger,
): Promise<void> {
  const root = await openConfinedRoot(opts.dir);
  try {
    const target = await openConfinedChild(root, connection, path.join(opts.dir, connection));
    try {
      await syncFields(opts, target.path, msg, log);
    } finally {
      await target.close();
    }
  } finally {
    await root.close();
  }
}

async function syncFields(opts: AgentOptions, dir: string, msg: CredentialsMessage, log: Logger): Promise<void> {
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
  log.info(
    { revision: msg.revision, fields: written },
    written.length > 0 ? 'credential files updated' : 'credential files unchanged',
  );
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

/** The `error.message` of a gateway error body (a constant text), if there is one. */
async function gatewayReason(res: http.IncomingMessage): Promise<string | undefined> {
  const chunks: Buffer[] = [];
  try {
    for await (const chunk of res) {
      chunks.push(chunk as Buffer);
      if (chunks.reduce((n, c) => n + c.length, 0) > 4096) break;
    }
    const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { error?: { message?: unknown } };
    return typeof body.error?.message === 'string' ? body.error.message.slice(0, 300) : undefined;
  } catch {
    return undefined;
  }
}

const CERTIFICATE_ERROR = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ALTNAME/;

function isCertificateError(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && CERTIFICATE_ERROR.test(code);
}
