import pino, { type Logger, type DestinationStream } from 'pino';

export type { Logger };

/**
 * Paths pino must never print. Credentials only exist in memory on their way
 * to being sealed or injected, but a careless `log.info({ obj })` must still
 * not leak them, so every place a plaintext could sit is censored.
 */
export const REDACT_PATHS = [
  'credentials',
  '*.credentials',
  '*.*.credentials',
  'spec.credentials',
  '*.spec.credentials',
  'object.spec.credentials',
  'oldObject.spec.credentials',
  'request.object',
  'request.oldObject',
  'headers.authorization',
  'headers.cookie',
  '*.headers.authorization',
  '*.headers.cookie',
  'token',
  '*.token',
  'password',
  '*.password',
  'value',
  '*.value',
  'data',
  '*.data',
  'plaintext',
  '*.plaintext',
];

/** The root logger: JSON lines, redaction on, level from config. */
export function createLogger(opts: { level?: string; name?: string; destination?: DestinationStream } = {}): Logger {
  return pino(
    {
      name: opts.name ?? 'atoll',
      level: opts.level ?? process.env.ATOLL_LOG_LEVEL ?? 'info',
      redact: { paths: REDACT_PATHS, censor: '[REDACTED]' },
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    opts.destination,
  );
}
