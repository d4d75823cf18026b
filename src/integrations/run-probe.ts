/**
 * The probe engine's entry point: one call that takes an IntegrationType and
 * a context and always answers with a ProbeOutcome, never a rejection. It
 * re-validates settings (defaults applied), refuses to dial without the
 * required credentials, dispatches to the type's declarative HTTP probe or its
 * named driver, bounds the whole thing by the timeout, and scrubs messages of
 * credential values as a last line of defence.
 */
import { getDriver } from './drivers/index.js';
import { runHttpProbe } from './http-probe.js';
import { ProbeFailure, probeOutcome } from './probe-failure.js';
import { DEFAULT_MAX_RESPONSE_BYTES, DEFAULT_PROBE_TIMEOUT_MS } from './probe-types.js';
import type { IntegrationTypeObject, IntegrationTypeSpec, ProbeContext, ProbeOutcome } from './probe-types.js';
import { validateSettings } from './settings.js';
import { redactSecrets } from '../util/redact.js';

export const ERROR_NO_PROBE = 'the IntegrationType declares no probe';
export const ERROR_UNKNOWN_DRIVER = 'the IntegrationType names a probe driver that does not exist';
export const ERROR_INTERNAL = 'the probe failed unexpectedly';
/** How long past its deadline a driver may take to notice before the engine stops waiting. */
const DEADLINE_GRACE_MS = 1_000;

function specOf(type: IntegrationTypeSpec | IntegrationTypeObject): IntegrationTypeSpec {
  return 'spec' in type && typeof type.spec === 'object' && type.spec !== null
    ? type.spec
    : (type as IntegrationTypeSpec);
}

function missingCredentials(spec: IntegrationTypeSpec, credentials: Record<string, string>): string[] {
  return (spec.credentialFields ?? [])
    .filter((f) => f.required === true)
    .map((f) => f.name)
    .filter((name) => credentials[name] === undefined || credentials[name] === '');
}

/** Replaces any credential value that slipped into a message. */
function scrub(message: string, credentials: Record<string, string>): string {
  return redactSecrets(message, Object.values(credentials));
}

/** Drivers throw ProbeFailures; anything else is a bug, reported without its (possibly secret-bearing) text. */
function failureOf(err: unknown): ProbeFailure {
  if (err instanceof ProbeFailure) return err;
  return new ProbeFailure('UnexpectedResponse', ERROR_INTERNAL, { cause: err, reachable: 'Unknown' });
}

async function dispatch(spec: IntegrationTypeSpec, ctx: ProbeContext): Promise<ProbeOutcome> {
  if (spec.probe?.http !== undefined) return runHttpProbe(spec.probe.http, ctx);
  if (spec.probe?.driver !== undefined) {
    const driver = getDriver(spec.probe.driver);
    if (driver === undefined)
      throw new ProbeFailure('InvalidSettings', `${ERROR_UNKNOWN_DRIVER}: ${spec.probe.driver}`);
    return driver.probe(ctx);
  }
  throw new ProbeFailure('InvalidSettings', ERROR_NO_PROBE);
}

/** Resolves with a Timeout outcome if the probe ignores its deadline; the probe is cancelled via `abort`. */
function backstop(timeoutMs: number, abort: AbortController): { promise: Promise<never>; clear: () => void } {
  let timer: NodeJS.Timeout | undefined;
  const promise = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => {
      abort.abort();
      reject(new ProbeFailure('Timeout', `the probe did not finish within ${timeoutMs} ms`, { reachable: 'Unknown' }));
    }, timeoutMs + DEADLINE_GRACE_MS);
  });
  return { promise, clear: () => clearTimeout(timer) };
}

/**
 * Probes a service as its IntegrationType describes. Never rejects: every
 * failure, including bad settings and missing credentials, is an outcome.
 * Accepts the whole IntegrationType object (settings validators are then
 * cached by name + generation) or just its spec.
 */
export async function runProbe(
  type: IntegrationTypeSpec | IntegrationTypeObject,
  ctx: ProbeContext,
): Promise<ProbeOutcome> {
  const started = performance.now();
  const elapsed = (): number => Math.round(performance.now() - started);
  const spec = specOf(type);
  const credentials = ctx.credentials ?? {};

  const validation = validateSettings(type, ctx.settings);
  if (!validation.ok) {
    const message = validation.errors.map((e) => e.message).join('; ');
    return { ...probeOutcome('InvalidSettings', scrub(message, credentials)), durationMs: elapsed() };
  }
  const missing = missingCredentials(spec, credentials);
  if (missing.length > 0) {
    return {
      ...probeOutcome('CredentialsMissing', `required credentials are not set: ${missing.join(', ')}`),
      durationMs: elapsed(),
    };
  }

  const timeoutMs = ctx.timeoutMs > 0 ? ctx.timeoutMs : DEFAULT_PROBE_TIMEOUT_MS;
  const abort = new AbortController();
  const signal = ctx.signal === undefined ? abort.signal : AbortSignal.any([ctx.signal, abort.signal]);
  const probeCtx: ProbeContext = {
    ...ctx,
    settings: validation.settings,
    credentials,
    timeoutMs,
    maxResponseBytes: ctx.maxResponseBytes > 0 ? ctx.maxResponseBytes : DEFAULT_MAX_RESPONSE_BYTES,
    signal,
  };
  const guard = backstop(timeoutMs, abort);
  try {
    const outcome = await Promise.race([dispatch(spec, probeCtx), guard.promise]);
    return { ...outcome, message: scrub(outcome.message, credentials), durationMs: elapsed() };
  } catch (err) {
    const failure = failureOf(err);
    return { ...failure.toOutcome(elapsed()), message: scrub(failure.message, credentials) };
  } finally {
    guard.clear();
  }
}
