/**
 * The shared vocabulary of probes: what a probe is given (ProbeContext), what
 * it answers (ProbeOutcome) and how an IntegrationType declares it. The HTTP
 * probe engine, the code-backed drivers and the reconciler all speak these
 * types, so a driver never needs to know about Kubernetes and the reconciler
 * never needs to know about protocols.
 */

export type ConditionStatus = 'True' | 'False' | 'Unknown';

export type ProbeReason =
  | 'Succeeded'
  | 'AuthenticationFailed'
  | 'Unreachable'
  | 'Timeout'
  | 'TLSError'
  | 'DNSError'
  | 'UnexpectedResponse'
  | 'EgressDenied'
  | 'InvalidSettings'
  | 'CredentialsMissing';

/** Reachable and Authenticated are separate facts: a refused password still proves the service is up. */
export interface ProbeOutcome {
  reachable: ConditionStatus;
  authenticated: ConditionStatus;
  reason: ProbeReason;
  /** Constant-ish text plus non-secret facts (host, port, HTTP status); never a credential or a response body. */
  message: string;
  durationMs: number;
}

/** From Workspace.spec.policy.egress: the private or loopback ranges this workspace may reach. */
export interface EgressPolicy {
  allowCIDRs: string[];
}

/**
 * Tests and benchmarks only: connect here instead (like curl --connect-to).
 * The egress check then applies to this address instead of the original host,
 * while TLS SNI and the Host header keep the original name.
 */
export interface DialOverride {
  host: string;
  port: number;
}

export interface ProbeContext {
  /** Already validated against the type's schema, defaults applied. */
  settings: Record<string, unknown>;
  /** Plaintext, in memory only; NEVER put into messages, logs or errors. */
  credentials: Record<string, string>;
  timeoutMs: number;
  egress: EgressPolicy;
  /** Bytes of a response a probe reads at most; the rest is discarded. Defaults to 64 KiB. */
  maxResponseBytes: number;
  /** Extra PEM CAs trusted besides the system ones (tests, private PKI). */
  trustedCAs?: string[];
  dial?: (host: string, port: number) => DialOverride | undefined;
  signal?: AbortSignal;
}

/** A code-backed protocol probe (postgresql, redis, ...), registered in drivers/index.ts. */
export interface ProbeDriver {
  readonly name: string;
  probe(ctx: ProbeContext): Promise<ProbeOutcome>;
}

export const DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024;
export const DEFAULT_PROBE_TIMEOUT_MS = 10_000;
/** Sent by every HTTP probe so service operators can recognise (and allow-list) atoll. */
export const PROBE_USER_AGENT = 'atoll-probe/0.1';

export type HttpAuthType = 'header' | 'bearer' | 'basic' | 'query' | 'none';

/** The HTTP probe and credential placement come from the CRD schema: one source of truth. */
export type { CredentialPlacement as HttpAuthSpec, HttpProbe as HttpProbeSpec } from '../api/v1alpha1/generated.js';
import type { HttpProbe as HttpProbeSpec } from '../api/v1alpha1/generated.js';

/** Exactly one of http / driver. */
export interface ProbeSpec {
  http?: HttpProbeSpec;
  driver?: string;
}

export interface CredentialFieldSpec {
  name: string;
  displayName?: string;
  required?: boolean;
  description?: string;
}

/**
 * The part of IntegrationType.spec the probe engine reads. Structural, so the
 * full API type from src/api/v1alpha1 is assignable to it.
 */
export interface IntegrationTypeSpec {
  displayName?: string;
  category?: string;
  settingsSchema?: Record<string, unknown>;
  credentialFields?: CredentialFieldSpec[];
  probe?: ProbeSpec;
}

/** An IntegrationType object as read from the API: metadata identifies a schema version for caching. */
export interface IntegrationTypeObject {
  metadata?: { name?: string; generation?: number; resourceVersion?: string };
  spec: IntegrationTypeSpec;
}
