import type { ServerResponse } from 'node:http';
import type { Logger } from '../runtime/logger.js';
import type { ConnectionDirectory, CredentialSnapshot } from './connection-directory.js';

/** What the agent receives: every field's current plaintext, and the Secret revision it came from. */
export interface CredentialsMessage {
  connection: string;
  revision: string;
  fields: Record<string, string>;
  versions: Record<string, number>;
}

export const CREDENTIALS_EVENT = 'credentials';
const NO_STORE = { 'cache-control': 'no-store', pragma: 'no-cache' } as const;

function message(connection: string, snapshot: CredentialSnapshot): CredentialsMessage {
  return {
    connection,
    revision: snapshot.revision,
    fields: { ...snapshot.values },
    versions: { ...snapshot.versions },
  };
}

/** Answers a one-shot credentials request (no `watch`) with a JSON body. */
export function sendCredentialsOnce(res: ServerResponse, connection: string, snapshot: CredentialSnapshot): number {
  res.writeHead(200, { 'content-type': 'application/json', ...NO_STORE });
  res.end(JSON.stringify(message(connection, snapshot)));
  return 200;
}

export interface CredentialsStreamOptions {
  directory: ConnectionDirectory;
  namespace: string;
  connection: string;
  /** The first snapshot, already fetched (so failures became an HTTP error before any byte was sent). */
  initial: CredentialSnapshot;
  /** Re-checks the caller's token and `use` grant; the stream ends as soon as either is gone. */
  stillAllowed: () => Promise<boolean>;
  /** Keep-alive comment and re-authorization period. */
  heartbeatMs: number;
  log: Logger;
}

/**
 * Server-Sent Events stream of a connection's credentials for `atoll agent`:
 * one `credentials` event at once, then one after every change of the
 * managed Secret that the watch delivers, so mounted files follow a rotation
 * within the watch latency. Before each push, and on every heartbeat, the
 * caller is re-authorized: an expired token or a revoked grant ends the
 * stream. Resolves with 200 when the stream is closed.
 */
export function streamCredentials(res: ServerResponse, opts: CredentialsStreamOptions): Promise<number> {
  const { directory, namespace, connection } = opts;
  res.writeHead(200, { 'content-type': 'text/event-stream', 'x-accel-buffering': 'no', ...NO_STORE });
  res.flushHeaders();
  let lastRevision = '';
  let closed = false;
  let running: Promise<void> = Promise.resolve();

  const write = (snapshot: CredentialSnapshot): void => {
    if (closed || snapshot.revision === lastRevision) return;
    lastRevision = snapshot.revision;
    res.write(
      `event: ${CREDENTIALS_EVENT}\nid: ${snapshot.revision}\ndata: ${JSON.stringify(message(connection, snapshot))}\n\n`,
    );
  };

  const end = (): void => {
    if (!closed) res.end();
  };

  const refresh = (pushChange: boolean): void => {
    running = running.then(async () => {
      if (closed) return;
      if (!(await opts.stillAllowed().catch(() => false))) {
        end();
        return;
      }
      if (!pushChange) {
        res.write(': keep-alive\n\n');
        return;
      }
      try {
        write(await directory.credentials(namespace, connection));
      } catch {
        // Credentials gone or unopenable: end the stream; the agent keeps its files and reconnects with backoff.
        opts.log.info({ namespace, connection }, 'credentials stream ended: credentials unavailable');
        end();
      }
    });
  };

  write(opts.initial);
  const unsubscribe = directory.onCredentialsChanged(namespace, connection, () => refresh(true));
  // A rotation between fetching `initial` and subscribing would otherwise go unnoticed.
  refresh(true);
  const heartbeat = setInterval(() => refresh(false), opts.heartbeatMs);
  heartbeat.unref();

  return new Promise<number>((resolve) => {
    res.once('close', () => {
      closed = true;
      unsubscribe();
      clearInterval(heartbeat);
      resolve(200);
    });
  });
}
