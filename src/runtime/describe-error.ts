import { KubeApiError } from '../kube/errors.js';

/** Built-in error classes: their messages come from libraries and may quote data. */
const FOREIGN = new Set(['Error', 'TypeError', 'RangeError', 'SyntaxError', 'AbortError', 'SystemError']);

/**
 * What of an error is safe to log: its class, status, reason and code, and
 * its message only when atoll wrote it (our error classes carry constant
 * messages). API-server and library texts are never logged: they can quote
 * request content. This is the one place that decides it: log an error as
 * `{ error: describeError(err) }`, never as the error itself (pino would
 * print its message and stack).
 */
export function describeError(err: unknown): Record<string, unknown> {
  if (!(err instanceof Error)) return { type: typeof err };
  const out: Record<string, unknown> = { type: err.name };
  const e = err as Error & { status?: number; reason?: string; code?: string };
  if (!(err instanceof KubeApiError) && !FOREIGN.has(err.name)) out.message = err.message;
  if (e.status !== undefined) out.status = e.status;
  if (e.reason !== undefined) out.reason = e.reason;
  if (e.code !== undefined) out.code = e.code;
  if (err.cause instanceof Error) out.cause = { type: err.cause.name, code: (err.cause as { code?: string }).code };
  return out;
}
