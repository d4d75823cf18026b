import { parseDuration } from '../domain/duration.js';
import { DEK_CACHE_DEFAULTS } from '../crypto/dek-cache.js';

/**
 * Operator configuration, read once from the environment, validated with
 * errors that name the variable and the fix, then frozen. Nothing else reads
 * process.env.
 */
export interface OperatorConfig {
  readonly namespace: string;
  readonly kms: {
    readonly provider: KmsProviderName;
    readonly defaultKeyId: string;
    readonly awsRegion?: string;
    readonly awsEndpoint?: string;
    /** With provider vault-transit. */
    readonly vault?: VaultConfig;
    /** Per-request KMS timeout; a hung KMS must fail fast so admission answers within its deadline. */
    readonly requestTimeoutMs: number;
    /** Absolute lifetime of an unwrapped data key in the cache (bounds how long a DEK lives in memory). */
    readonly dekCacheMaxAgeMs: number;
    /** A cached data key unused this long is dropped; longer than the probe interval (ADR 0029). */
    readonly dekCacheIdleMs: number;
  };
  readonly webhook: {
    readonly enabled: boolean;
    readonly host: string;
    readonly port: number;
    /** In-cluster: the Service fronting the webhook. Out of cluster (dev, tests): a URL base. */
    readonly serviceName?: string;
    readonly urlBase?: string;
    /** `self`: the operator issues its serving certificate and sets caBundle; `cert-manager`: it only reads the Secret. */
    readonly certs: 'self' | 'cert-manager';
    /**
     * API-server authentication: when set, the webhook demands a client
     * certificate issued by this CA (PEM file), so nobody else can send it
     * AdmissionReviews. `clientNames`, when not empty, also pins its common name.
     */
    readonly clientCAFile?: string;
    readonly clientNames: readonly string[];
    /** Values sealed per namespace (dry runs included): each costs a KMS data key. */
    readonly sealingRate: { readonly ratePerSecond: number; readonly burst: number };
  };
  readonly health: { readonly host: string; readonly port: number };
  /** Durations as client-go's flags (--leader-elect-lease-duration, -renew-deadline, -retry-period); ADR 0020. */
  readonly leaderElection: {
    readonly enabled: boolean;
    readonly identity: string;
    readonly leaseDurationMs: number;
    readonly renewDeadlineMs: number;
    readonly retryPeriodMs: number;
  };
  readonly probes: {
    readonly concurrency: number;
    /** Probe slots one workspace may hold at once, so one whose hosts never answer cannot starve the others. */
    readonly perWorkspace: number;
    readonly defaultTimeoutMs: number;
    readonly maxResponseBytes: number;
    /**
     * On-demand tests (the test-requested-at annotation) start at most one probe per connection per this
     * interval; extra requests are coalesced.
     */
    readonly testMinIntervalMs: number;
    /**
     * How long the status of sealed credentials may wait for the first probe of their inputs, so
     * a quick probe lands in the same status write (ADR 0021).
     */
    readonly statusGraceMs: number;
  };
  readonly serviceAccounts: { readonly controller: string; readonly gateway: string };
  readonly usage: {
    /** Gateway: minimum time between two status.usage writes of one connection by one replica. */
    readonly flushIntervalMs: number;
    /** Webhook: a connection used within this window (or streaming) cannot be deleted without atoll.dev/allow-delete; 0 = streams only. */
    readonly deleteProtectionWindowMs: number;
  };
  /** Connections a Workspace may hold when spec.policy.maxConnections is unset (its ResourceQuota's hard limit). */
  readonly defaultMaxConnections: number;
  /**
   * How often each Workspace's namespace label, RBAC and quota are applied again when nothing changed
   * (puts back what someone edited); jittered up to a fifth more (ADR 0034).
   */
  readonly workspaceResyncMs: number;
  readonly logLevel: string;
}

export type KmsProviderName = 'local' | 'aws-kms' | 'vault-transit';
const KMS_PROVIDERS: readonly string[] = ['local', 'aws-kms', 'vault-transit'];

/** How the operator reaches and authenticates to Vault Transit (ATOLL_VAULT_*). */
export interface VaultConfig {
  readonly address: string;
  /** File holding the PEM CA bundle for Vault's serving certificate; system roots when unset. */
  readonly caFile?: string;
  /** Vault Enterprise / OpenBao namespace (X-Vault-Namespace). */
  readonly namespace?: string;
  readonly auth:
    | { readonly method: 'kubernetes'; readonly role: string; readonly mount: string; readonly jwtFile: string }
    | { readonly method: 'token'; readonly tokenFile: string };
}

/** Where the chart mounts the projected ServiceAccount token whose audience Vault's role checks. */
export const DEFAULT_VAULT_JWT_FILE = '/var/run/secrets/atoll/vault/token';
const VAULT_KEY_ID = /^((?:[A-Za-z0-9_.-]+\/)*[A-Za-z0-9_.-]+)\/keys\/([A-Za-z0-9_.-]+)$/;

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

type Env = Record<string, string | undefined>;

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
/** Without a limit a tenant editor could fill etcd with connections; platforms raise it per Workspace or with the chart. */
const DEFAULT_MAX_CONNECTIONS = 500;
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export function loadOperatorConfig(
  env: Env = process.env,
  overrides: Partial<Record<string, string>> = {},
): OperatorConfig {
  const e: Env = { ...env, ...overrides };
  const problems: string[] = [];
  const namespace = e.ATOLL_NAMESPACE ?? 'atoll-system';
  if (!DNS_LABEL.test(namespace))
    problems.push('ATOLL_NAMESPACE must be a DNS-1123 label (the namespace atoll runs in), e.g. atoll-system');
  const provider = e.ATOLL_KMS_PROVIDER ?? 'local';
  if (!KMS_PROVIDERS.includes(provider))
    problems.push(`ATOLL_KMS_PROVIDER must be "local", "aws-kms" or "vault-transit"`);
  const defaultKeyId = e.ATOLL_KMS_KEY_ID ?? (provider === 'local' ? 'local/default' : '');
  if (!defaultKeyId && provider === 'aws-kms')
    problems.push(
      'ATOLL_KMS_KEY_ID is required with ATOLL_KMS_PROVIDER=aws-kms: set it to a KMS key ARN or alias (alias/atoll)',
    );
  if (provider === 'vault-transit' && !VAULT_KEY_ID.test(defaultKeyId))
    problems.push(
      'ATOLL_KMS_KEY_ID with ATOLL_KMS_PROVIDER=vault-transit must name a Transit key as <mount>/keys/<name>, e.g. transit/keys/atoll',
    );
  const vault = provider === 'vault-transit' ? vaultConfig(e, problems) : undefined;
  if (provider === 'local' && !defaultKeyId.startsWith('local/'))
    problems.push('ATOLL_KMS_KEY_ID for the local provider must look like local/<name>');
  const awsRegion = e.AWS_REGION ?? e.AWS_DEFAULT_REGION;
  if (provider === 'aws-kms' && !awsRegion) problems.push('AWS_REGION is required with ATOLL_KMS_PROVIDER=aws-kms');
  const awsEndpoint = e.ATOLL_KMS_ENDPOINT || undefined;
  if (awsEndpoint && !isUrl(awsEndpoint)) problems.push('ATOLL_KMS_ENDPOINT must be an http(s) URL');
  const webhookPort = port(e, 'ATOLL_WEBHOOK_PORT', 9443, problems);
  const healthPort = port(e, 'ATOLL_HEALTH_PORT', 8080, problems);
  const urlBase = e.ATOLL_WEBHOOK_URL || undefined;
  if (urlBase && !urlBase.startsWith('https://'))
    problems.push('ATOLL_WEBHOOK_URL must be an https:// URL the API server can reach');
  const certs = e.ATOLL_WEBHOOK_CERTS ?? 'self';
  if (certs !== 'self' && certs !== 'cert-manager')
    problems.push('ATOLL_WEBHOOK_CERTS must be "self" or "cert-manager"');
  const logLevel = e.ATOLL_LOG_LEVEL ?? 'info';
  if (!LOG_LEVELS.includes(logLevel)) problems.push(`ATOLL_LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}`);
  const concurrency = int(e, 'ATOLL_PROBE_CONCURRENCY', 16, 1, 1024, problems);
  // A quarter of the pool by default: a workspace whose hosts never answer still leaves three quarters to the others.
  const perWorkspace = int(
    e,
    'ATOLL_PROBE_CONCURRENCY_PER_WORKSPACE',
    Math.max(1, Math.floor(concurrency / 4)),
    1,
    1024,
    problems,
  );
  if (perWorkspace > concurrency)
    problems.push('ATOLL_PROBE_CONCURRENCY_PER_WORKSPACE must be at most ATOLL_PROBE_CONCURRENCY');
  const kmsTimeout = int(e, 'ATOLL_KMS_TIMEOUT_MS', 3000, 100, 60_000, problems);
  const dekCacheMaxAgeMs = duration(
    e,
    'ATOLL_DEK_CACHE_MAX_AGE',
    DEK_CACHE_DEFAULTS.maxAgeMs,
    1000,
    24 * 3_600_000,
    problems,
  );
  // Unset, the idle expiry follows a shorter lifetime down; set, it must not outlast it.
  const dekCacheIdleMs = e.ATOLL_DEK_CACHE_IDLE
    ? duration(e, 'ATOLL_DEK_CACHE_IDLE', DEK_CACHE_DEFAULTS.idleMs, 1000, 24 * 3_600_000, problems)
    : Math.min(DEK_CACHE_DEFAULTS.idleMs, dekCacheMaxAgeMs);
  if (dekCacheIdleMs > dekCacheMaxAgeMs)
    problems.push(
      'ATOLL_DEK_CACHE_IDLE must be at most ATOLL_DEK_CACHE_MAX_AGE (an idle expiry cannot outlast the lifetime)',
    );
  const sealingPerMinute = int(e, 'ATOLL_SEALING_RATE_PER_MINUTE', 300, 1, 1_000_000, problems);
  const sealingBurst = int(e, 'ATOLL_SEALING_BURST', 50, 1, 100_000, problems);
  const testMinInterval = int(e, 'ATOLL_PROBE_TEST_MIN_INTERVAL_SECONDS', 10, 1, 3600, problems);
  const probeStatusGraceMs = duration(e, 'ATOLL_PROBE_STATUS_GRACE', 3_000, 0, 60_000, problems);
  const clientCAFile = e.ATOLL_WEBHOOK_CLIENT_CA_FILE || undefined;
  const clientNames = (e.ATOLL_WEBHOOK_CLIENT_NAMES ?? '')
    .split(',')
    .map((n) => n.trim())
    .filter(Boolean);
  if (clientNames.length > 0 && !clientCAFile)
    problems.push(
      "ATOLL_WEBHOOK_CLIENT_NAMES needs ATOLL_WEBHOOK_CLIENT_CA_FILE: set the CA that issues the API server's webhook client certificate",
    );
  const flushIntervalMs = duration(e, 'ATOLL_USAGE_FLUSH_INTERVAL', 60_000, 100, 3_600_000, problems);
  const deleteProtectionWindowMs = duration(
    e,
    'ATOLL_DELETE_PROTECTION_WINDOW',
    24 * 3_600_000,
    0,
    30 * 24 * 3_600_000,
    problems,
  );
  // Same upper bound as spec.policy.maxConnections in the Workspace CRD.
  const defaultMaxConnections = int(e, 'ATOLL_DEFAULT_MAX_CONNECTIONS', DEFAULT_MAX_CONNECTIONS, 1, 10_000, problems);
  const workspaceResyncMs = duration(e, 'ATOLL_WORKSPACE_RESYNC', 5 * 60_000, 10_000, 24 * 3_600_000, problems);
  const leaseDurationMs = duration(e, 'ATOLL_LEADER_ELECT_LEASE_DURATION', 15_000, 1_000, 600_000, problems);
  const renewDeadlineMs = duration(e, 'ATOLL_LEADER_ELECT_RENEW_DEADLINE', 10_000, 100, 600_000, problems);
  const retryPeriodMs = duration(e, 'ATOLL_LEADER_ELECT_RETRY_PERIOD', 2_000, 50, 600_000, problems);
  if (renewDeadlineMs >= leaseDurationMs)
    problems.push(
      'ATOLL_LEADER_ELECT_RENEW_DEADLINE must be shorter than ATOLL_LEADER_ELECT_LEASE_DURATION, or a leader that stopped renewing could still act after another took over',
    );
  if (renewDeadlineMs <= retryPeriodMs * 1.2)
    problems.push(
      'ATOLL_LEADER_ELECT_RENEW_DEADLINE must be longer than 1.2 × ATOLL_LEADER_ELECT_RETRY_PERIOD, so a renewal can be retried before the deadline',
    );
  if (problems.length) throw new ConfigError(`invalid configuration:\n  - ${problems.join('\n  - ')}`);
  return Object.freeze({
    namespace,
    kms: Object.freeze({
      provider: provider as KmsProviderName,
      defaultKeyId,
      awsRegion,
      awsEndpoint,
      vault,
      requestTimeoutMs: kmsTimeout,
      dekCacheMaxAgeMs,
      dekCacheIdleMs,
    }),
    webhook: Object.freeze({
      enabled: (e.ATOLL_WEBHOOK_ENABLED ?? 'true') !== 'false',
      host: e.ATOLL_WEBHOOK_HOST ?? '0.0.0.0',
      port: webhookPort,
      serviceName: e.ATOLL_WEBHOOK_SERVICE ?? (urlBase ? undefined : 'atoll-webhook'),
      urlBase,
      certs: certs as 'self' | 'cert-manager',
      clientCAFile,
      clientNames: Object.freeze(clientNames),
      sealingRate: Object.freeze({ ratePerSecond: sealingPerMinute / 60, burst: sealingBurst }),
    }),
    health: Object.freeze({ host: e.ATOLL_HEALTH_HOST ?? '0.0.0.0', port: healthPort }),
    leaderElection: Object.freeze({
      enabled: (e.ATOLL_LEADER_ELECT ?? 'true') !== 'false',
      identity: e.POD_NAME ?? `${hostname()}-${process.pid}`,
      leaseDurationMs,
      renewDeadlineMs,
      retryPeriodMs,
    }),
    probes: Object.freeze({
      concurrency,
      perWorkspace,
      defaultTimeoutMs: 10_000,
      maxResponseBytes: 64 * 1024,
      testMinIntervalMs: testMinInterval * 1000,
      statusGraceMs: probeStatusGraceMs,
    }),
    serviceAccounts: Object.freeze({
      controller: e.ATOLL_CONTROLLER_SERVICE_ACCOUNT ?? 'atoll-controller',
      gateway: e.ATOLL_GATEWAY_SERVICE_ACCOUNT ?? 'atoll-gateway',
    }),
    usage: Object.freeze({ flushIntervalMs, deleteProtectionWindowMs }),
    defaultMaxConnections,
    workspaceResyncMs,
    logLevel,
  });
}

function vaultConfig(e: Env, problems: string[]): VaultConfig | undefined {
  const address = e.ATOLL_VAULT_ADDR ?? '';
  if (!isUrl(address))
    problems.push(
      "ATOLL_VAULT_ADDR is required with ATOLL_KMS_PROVIDER=vault-transit: set it to Vault's https:// URL, e.g. https://vault.vault.svc:8200",
    );
  // The Vault token and the ServiceAccount JWT travel in every request: plain http only where no network sees them.
  else if (!isHttpsOrLoopback(address))
    problems.push(
      'ATOLL_VAULT_ADDR must be an https:// URL (plain http would send the Vault token and the ServiceAccount token in clear text; http is accepted only for a loopback address such as http://127.0.0.1:8200)',
    );
  const method = e.ATOLL_VAULT_AUTH ?? 'kubernetes';
  let auth: VaultConfig['auth'] | undefined;
  if (method === 'kubernetes') {
    const role = e.ATOLL_VAULT_ROLE ?? '';
    if (!role)
      problems.push(
        'ATOLL_VAULT_ROLE is required with ATOLL_VAULT_AUTH=kubernetes: the Vault role bound to this ServiceAccount',
      );
    const mount = e.ATOLL_VAULT_AUTH_MOUNT || 'kubernetes';
    if (!/^[A-Za-z0-9_.-]+(\/[A-Za-z0-9_.-]+)*$/.test(mount))
      problems.push("ATOLL_VAULT_AUTH_MOUNT must be the auth method's mount path, e.g. kubernetes");
    auth = { method, role, mount, jwtFile: e.ATOLL_VAULT_JWT_FILE || DEFAULT_VAULT_JWT_FILE };
  } else if (method === 'token') {
    const tokenFile = e.ATOLL_VAULT_TOKEN_FILE ?? '';
    if (!tokenFile)
      problems.push(
        'ATOLL_VAULT_TOKEN_FILE is required with ATOLL_VAULT_AUTH=token: a file holding a Vault token (e.g. written by Vault Agent)',
      );
    auth = { method, tokenFile };
  } else {
    problems.push('ATOLL_VAULT_AUTH must be "kubernetes" or "token"');
  }
  if (!auth) return undefined;
  return Object.freeze({
    address,
    caFile: e.ATOLL_VAULT_CACERT || undefined,
    namespace: e.ATOLL_VAULT_NAMESPACE || undefined,
    auth: Object.freeze(auth),
  });
}

const DURATION = /^(\d+(\.\d+)?(ms|s|m|h))+$/;

/** A Go-style duration ("60s", "24h", "1h30m", "0") within [min, max] milliseconds. */
function duration(e: Env, name: string, dflt: number, min: number, max: number, problems: string[]): number {
  const raw = e[name];
  if (raw === undefined || raw === '') return dflt;
  const ms = raw === '0' ? 0 : DURATION.test(raw) ? parseDuration(raw, Number.NaN) : Number.NaN;
  if (!Number.isFinite(ms) || ms < min || ms > max) {
    problems.push(`${name} must be a duration such as "60s" or "24h" between ${min}ms and ${max / 3_600_000}h`);
    return dflt;
  }
  return ms;
}

function port(e: Env, name: string, dflt: number, problems: string[]): number {
  return int(e, name, dflt, 0, 65535, problems);
}

function int(e: Env, name: string, dflt: number, min: number, max: number, problems: string[]): number {
  const raw = e[name];
  if (raw === undefined || raw === '') return dflt;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) {
    problems.push(`${name} must be an integer between ${min} and ${max}`);
    return dflt;
  }
  return n;
}

function isHttpsOrLoopback(s: string): boolean {
  const u = new URL(s);
  return (
    u.protocol === 'https:' ||
    u.hostname === 'localhost' ||
    u.hostname === '[::1]' ||
    /^127\.\d+\.\d+\.\d+$/.test(u.hostname)
  );
}

function isUrl(s: string): boolean {
  try {
    const u = new URL(s);
    return u.protocol === 'http:' || u.protocol === 'https:';
  } catch {
    return false;
  }
}

function hostname(): string {
  return process.env.HOSTNAME ?? 'atoll';
}
