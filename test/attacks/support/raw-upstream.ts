import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';

/** One request as a plain, correct HTTP/1.1 keep-alive server parsed it off one TCP connection. */
export interface WireRequest {
  connection: number;
  method: string;
  path: string;
  /** Header lines as received, names lower-cased. */
  headers: Array<[string, string]>;
  body: Buffer;
  /** Exactly the bytes of this request on the wire. */
  raw: Buffer;
}

/** What a test may tell the upstream to do for a path (matched by prefix). */
export type Behaviour =
  /** Headers and half the body, then silence (the socket stays open). */
  | 'hang-mid-body'
  /** A complete 2-byte response followed by a second, unrequested response on the same socket. */
  | 'extra-response';

export interface RawUpstream {
  url: string;
  /** Every byte received, per TCP connection (index = connection id). */
  wire: Buffer[];
  requests: WireRequest[];
  /** Connection ids whose socket the gateway closed. */
  closed: Set<number>;
  behave(pathPrefix: string, behaviour: Behaviour): void;
  close(): Promise<void>;
}

/**
 * A loopback upstream that records the raw bytes on the wire and speaks
 * keep-alive HTTP/1.1 as a naive but correct server does: it frames each
 * request by Content-Length or chunked encoding and otherwise assumes no
 * body, so whatever bytes follow are read as the next request. That is the
 * server a smuggled request fools. Each response echoes the request's
 * connection id and path in its body.
 */
export async function startRawUpstream(): Promise<RawUpstream> {
  const wire: Buffer[] = [];
  const requests: WireRequest[] = [];
  const closed = new Set<number>();
  const behaviours = new Map<string, Behaviour>();
  const sockets = new Set<Socket>();

  const server: Server = createServer((socket) => {
    const id = wire.length;
    wire.push(Buffer.alloc(0));
    sockets.add(socket);
    let pending = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      wire[id] = Buffer.concat([wire[id]!, chunk]);
      pending = Buffer.concat([pending, chunk]);
      for (;;) {
        const parsed = parseRequest(pending);
        if (parsed === undefined) break;
        pending = pending.subarray(parsed.length);
        const request: WireRequest = { connection: id, ...parsed.request, raw: parsed.raw };
        requests.push(request);
        respond(socket, request, [...behaviours].find(([prefix]) => request.path.startsWith(prefix))?.[1]);
      }
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      closed.add(id);
      sockets.delete(socket);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    wire,
    requests,
    closed,
    behave: (prefix, behaviour) => void behaviours.set(prefix, behaviour),
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

function respond(socket: Socket, request: WireRequest, behaviour: Behaviour | undefined): void {
  const body = JSON.stringify({ connection: request.connection, path: request.path });
  if (behaviour === 'hang-mid-body') {
    socket.write(
      `HTTP/1.1 200 OK\r\nContent-Length: ${body.length * 2}\r\nContent-Type: application/json\r\n\r\n${body}`,
    );
    return;
  }
  if (behaviour === 'extra-response') {
    const evil = 'POISONED-RESPONSE';
    socket.write(
      `HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\nContent-Length: ${evil.length}\r\n\r\n${evil}`,
    );
    return;
  }
  socket.write(
    `HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}

/** Parses one complete request off the front of `buf`, or undefined if more bytes are needed. */
function parseRequest(
  buf: Buffer,
): { request: Omit<WireRequest, 'connection' | 'raw'>; raw: Buffer; length: number } | undefined {
  const end = buf.indexOf('\r\n\r\n');
  if (end < 0) return undefined;
  const lines = buf.subarray(0, end).toString('latin1').split('\r\n');
  const [method = '', path = ''] = (lines[0] ?? '').split(' ');
  const headers = lines.slice(1).map((l): [string, string] => {
    const colon = l.indexOf(':');
    return [l.slice(0, colon).trim().toLowerCase(), l.slice(colon + 1).trim()];
  });
  const header = (name: string) => headers.find(([n]) => n === name)?.[1];
  let offset = end + 4;
  let body: Buffer = Buffer.alloc(0);
  if (header('transfer-encoding')?.toLowerCase() === 'chunked') {
    const parts: Buffer[] = [];
    for (;;) {
      const lineEnd = buf.indexOf('\r\n', offset);
      if (lineEnd < 0) return undefined;
      const size = parseInt(buf.subarray(offset, lineEnd).toString('latin1'), 16);
      if (buf.length < lineEnd + 2 + size + 2) return undefined;
      if (size === 0) {
        offset = lineEnd + 4;
        break;
      }
      parts.push(buf.subarray(lineEnd + 2, lineEnd + 2 + size));
      offset = lineEnd + 2 + size + 2;
    }
    body = Buffer.concat(parts);
  } else if (header('content-length') !== undefined) {
    const length = Number(header('content-length'));
    if (buf.length < offset + length) return undefined;
    body = buf.subarray(offset, offset + length);
    offset += length;
  }
  return { request: { method, path, headers, body }, raw: buf.subarray(0, offset), length: offset };
}
