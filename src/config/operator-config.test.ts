import { describe, expect, it } from 'vitest';
import { ConfigError, loadOperatorConfig } from './operator-config.js';

describe('loadOperatorConfig', () => {
  it('defaults to the local KMS provider in atoll-system', () => {
    const c = loadOperatorConfig({});
    expect(c.namespace).toBe('atoll-system');
    expect(c.kms).toMatchObject({ provider: 'local', defaultKeyId: 'local/default' });
    expect(Object.isFrozen(c)).toBe(true);
  });

  it("limits Workspaces to 500 connections unless told otherwise, within the CRD's bounds", () => {
    expect(loadOperatorConfig({}).defaultMaxConnections).toBe(500);
    expect(loadOperatorConfig({ ATOLL_DEFAULT_MAX_CONNECTIONS: '2000' }).defaultMaxConnections).toBe(2000);
    expect(() => loadOperatorConfig({ ATOLL_DEFAULT_MAX_CONNECTIONS: '0' })).toThrow(
      'ATOLL_DEFAULT_MAX_CONNECTIONS must be an integer between 1 and 10000',
    );
    expect(() => loadOperatorConfig({ ATOLL_DEFAULT_MAX_CONNECTIONS: '10001' })).toThrow(
      'ATOLL_DEFAULT_MAX_CONNECTIONS must be an integer between 1 and 10000',
    );
  });

  it('names every bad variable and the fix in one error', () => {
    const err = (() => {
      try {
        loadOperatorConfig({ ATOLL_KMS_PROVIDER: 'aws-kms', ATOLL_WEBHOOK_PORT: 'x', ATOLL_NAMESPACE: 'Bad_NS' });
      } catch (e) {
        return e as Error;
      }
      throw new Error('expected a ConfigError');
    })();
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.message).toContain('ATOLL_KMS_KEY_ID is required');
    expect(err.message).toContain('AWS_REGION is required');
    expect(err.message).toContain('ATOLL_WEBHOOK_PORT must be an integer');
    expect(err.message).toContain('ATOLL_NAMESPACE must be a DNS-1123 label');
  });

  it('accepts aws-kms with a key and region', () => {
    const c = loadOperatorConfig({
      ATOLL_KMS_PROVIDER: 'aws-kms',
      ATOLL_KMS_KEY_ID: 'alias/atoll',
      AWS_REGION: 'eu-west-1',
    });
    expect(c.kms).toMatchObject({ provider: 'aws-kms', defaultKeyId: 'alias/atoll', awsRegion: 'eu-west-1' });
  });

  it('accepts vault-transit with Kubernetes auth, defaulting the mount and the projected token path', () => {
    const c = loadOperatorConfig({
      ATOLL_KMS_PROVIDER: 'vault-transit',
      ATOLL_KMS_KEY_ID: 'kms/transit/keys/atoll',
      ATOLL_VAULT_ADDR: 'https://vault:8200',
      ATOLL_VAULT_ROLE: 'atoll-controller',
      ATOLL_VAULT_NAMESPACE: 'team-a',
    });
    expect(c.kms).toMatchObject({
      provider: 'vault-transit',
      defaultKeyId: 'kms/transit/keys/atoll',
      vault: {
        address: 'https://vault:8200',
        namespace: 'team-a',
        auth: {
          method: 'kubernetes',
          role: 'atoll-controller',
          mount: 'kubernetes',
          jwtFile: '/var/run/secrets/atoll/vault/token',
        },
      },
    });
    const t = loadOperatorConfig({
      ATOLL_KMS_PROVIDER: 'vault-transit',
      ATOLL_KMS_KEY_ID: 'transit/keys/atoll',
      ATOLL_VAULT_ADDR: 'https://vault:8200',
      ATOLL_VAULT_AUTH: 'token',
      ATOLL_VAULT_TOKEN_FILE: '/vault/token',
    });
    expect(t.kms.vault?.auth).toEqual({ method: 'token', tokenFile: '/vault/token' });
  });

  it('names each missing or bad vault-transit setting and its fix', () => {
    const message = (env: Record<string, string>) => {
      try {
        loadOperatorConfig({ ATOLL_KMS_PROVIDER: 'vault-transit', ...env });
      } catch (e) {
        expect(e).toBeInstanceOf(ConfigError);
        return (e as Error).message;
      }
      throw new Error('expected a ConfigError');
    };
    const none = message({});
    expect(none).toContain(
      'ATOLL_KMS_KEY_ID with ATOLL_KMS_PROVIDER=vault-transit must name a Transit key as <mount>/keys/<name>',
    );
    expect(none).toContain('ATOLL_VAULT_ADDR is required');
    expect(none).toContain('ATOLL_VAULT_ROLE is required');
    expect(
      message({ ATOLL_KMS_KEY_ID: 'alias/atoll', ATOLL_VAULT_ADDR: 'https://v', ATOLL_VAULT_ROLE: 'r' }),
    ).toContain('<mount>/keys/<name>');
    expect(
      message({ ATOLL_KMS_KEY_ID: 'transit/keys/a', ATOLL_VAULT_ADDR: 'https://v', ATOLL_VAULT_AUTH: 'token' }),
    ).toContain('ATOLL_VAULT_TOKEN_FILE is required');
    expect(
      message({ ATOLL_KMS_KEY_ID: 'transit/keys/a', ATOLL_VAULT_ADDR: 'https://v', ATOLL_VAULT_AUTH: 'approle' }),
    ).toContain('ATOLL_VAULT_AUTH must be "kubernetes" or "token"');
  });

  it('reads the sealing budget, the test window and webhook client authentication', () => {
    const d = loadOperatorConfig({});
    expect(d.webhook.sealingRate).toEqual({ ratePerSecond: 5, burst: 50 });
    expect(d.webhook.clientCAFile).toBeUndefined();
    expect(d.probes.testMinIntervalMs).toBe(10_000);
    const c = loadOperatorConfig({
      ATOLL_SEALING_RATE_PER_MINUTE: '30',
      ATOLL_SEALING_BURST: '5',
      ATOLL_PROBE_TEST_MIN_INTERVAL_SECONDS: '60',
      ATOLL_WEBHOOK_CLIENT_CA_FILE: '/ca.crt',
      ATOLL_WEBHOOK_CLIENT_NAMES: 'a, b',
    });
    expect(c.webhook).toMatchObject({
      sealingRate: { ratePerSecond: 0.5, burst: 5 },
      clientCAFile: '/ca.crt',
      clientNames: ['a', 'b'],
    });
    expect(c.probes.testMinIntervalMs).toBe(60_000);
    expect(() => loadOperatorConfig({ ATOLL_WEBHOOK_CLIENT_NAMES: 'a' })).toThrow(
      'ATOLL_WEBHOOK_CLIENT_NAMES needs ATOLL_WEBHOOK_CLIENT_CA_FILE',
    );
    expect(() => loadOperatorConfig({ ATOLL_SEALING_BURST: '0' })).toThrow(
      'ATOLL_SEALING_BURST must be an integer between 1',
    );
  });

  it('reads the usage flush interval and the delete-protection window as durations', () => {
    expect(loadOperatorConfig({}).usage).toEqual({ flushIntervalMs: 60_000, deleteProtectionWindowMs: 24 * 3_600_000 });
    expect(loadOperatorConfig({ ATOLL_USAGE_FLUSH_INTERVAL: '2s', ATOLL_DELETE_PROTECTION_WINDOW: '0' }).usage).toEqual(
      { flushIntervalMs: 2000, deleteProtectionWindowMs: 0 },
    );
    expect(() => loadOperatorConfig({ ATOLL_DELETE_PROTECTION_WINDOW: 'a day' })).toThrow(
      /ATOLL_DELETE_PROTECTION_WINDOW must be a duration/,
    );
  });

  it('reads the data-key cache lifetime and idle expiry as durations (default 24h and 30m, at least 1s)', () => {
    expect(loadOperatorConfig({}).kms).toMatchObject({ dekCacheMaxAgeMs: 86_400_000, dekCacheIdleMs: 1_800_000 });
    expect(loadOperatorConfig({ ATOLL_DEK_CACHE_MAX_AGE: '10m' }).kms).toMatchObject({
      dekCacheMaxAgeMs: 600_000,
      dekCacheIdleMs: 600_000,
    });
    expect(loadOperatorConfig({ ATOLL_DEK_CACHE_IDLE: '15m' }).kms.dekCacheIdleMs).toBe(900_000);
    expect(() => loadOperatorConfig({ ATOLL_DEK_CACHE_MAX_AGE: '0' })).toThrow(
      /ATOLL_DEK_CACHE_MAX_AGE must be a duration/,
    );
    expect(() => loadOperatorConfig({ ATOLL_DEK_CACHE_MAX_AGE: '1h', ATOLL_DEK_CACHE_IDLE: '2h' })).toThrow(
      'ATOLL_DEK_CACHE_IDLE must be at most ATOLL_DEK_CACHE_MAX_AGE',
    );
  });

  it('reads the Workspace resync period as a duration (default 5m, 10s to 24h)', () => {
    expect(loadOperatorConfig({}).workspaceResyncMs).toBe(300_000);
    expect(loadOperatorConfig({ ATOLL_WORKSPACE_RESYNC: '30m' }).workspaceResyncMs).toBe(1_800_000);
    expect(() => loadOperatorConfig({ ATOLL_WORKSPACE_RESYNC: '1s' })).toThrow(/ATOLL_WORKSPACE_RESYNC must be/);
  });

  it('reads leader-election durations (client-go defaults) and refuses a renew deadline that could allow two leaders', () => {
    expect(loadOperatorConfig({}).leaderElection).toMatchObject({
      leaseDurationMs: 15_000,
      renewDeadlineMs: 10_000,
      retryPeriodMs: 2_000,
    });
    expect(
      loadOperatorConfig({
        ATOLL_LEADER_ELECT_LEASE_DURATION: '4s',
        ATOLL_LEADER_ELECT_RENEW_DEADLINE: '2s',
        ATOLL_LEADER_ELECT_RETRY_PERIOD: '500ms',
      }).leaderElection,
    ).toMatchObject({ leaseDurationMs: 4_000, renewDeadlineMs: 2_000, retryPeriodMs: 500 });
    expect(() => loadOperatorConfig({ ATOLL_LEADER_ELECT_RENEW_DEADLINE: '15s' })).toThrow(
      /ATOLL_LEADER_ELECT_RENEW_DEADLINE must be shorter than ATOLL_LEADER_ELECT_LEASE_DURATION/,
    );
    expect(() => loadOperatorConfig({ ATOLL_LEADER_ELECT_RETRY_PERIOD: '9s' })).toThrow(
      /ATOLL_LEADER_ELECT_RENEW_DEADLINE must be longer than 1.2 × ATOLL_LEADER_ELECT_RETRY_PERIOD/,
    );
  });
});
