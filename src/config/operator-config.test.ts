import { describe, expect, it } from 'vitest';
import { ConfigError, loadOperatorConfig } from './operator-config.js';

describe('loadOperatorConfig', () => {
  it('defaults to the local KMS provider in atoll-system', () => {
    const c = loadOperatorConfig({});
    expect(c.namespace).toBe('atoll-system');
    expect(c.kms).toMatchObject({ provider: 'local', defaultKeyId: 'local/default' });
    expect(Object.isFrozen(c)).toBe(true);
  });

  it('limits Workspaces to 500 connections unless told otherwise, within the CRD\'s bounds', () => {
    expect(loadOperatorConfig({}).defaultMaxConnections).toBe(500);
    expect(loadOperatorConfig({ ATOLL_DEFAULT_MAX_CONNECTIONS: '2000' }).defaultMaxConnections).toBe(2000);
    expect(() => loadOperatorConfig({ ATOLL_DEFAULT_MAX_CONNECTIONS: '0' })).toThrow('ATOLL_DEFAULT_MAX_CONNECTIONS must be an integer between 1 and 10000');
    expect(() => loadOperatorConfig({ ATOLL_DEFAULT_MAX_CONNECTIONS: '10001' })).toThrow('ATOLL_DEFAULT_MAX_CONNECTIONS must be an integer between 1 and 10000');
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
    const c = loadOperatorConfig({ ATOLL_KMS_PROVIDER: 'aws-kms', ATOLL_KMS_KEY_ID: 'alias/atoll', AWS_REGION: 'eu-west-1' });
    expect(c.kms).toMatchObject({ provider: 'aws-kms', defaultKeyId: 'alias/atoll', awsRegion: 'eu-west-1' });
  });

  it('reads the sealing budget, the test window and webhook client authentication', () => {
    const d = loadOperatorConfig({});
    expect(d.webhook.sealingRate).toEqual({ ratePerSecond: 5, burst: 50 });
    expect(d.webhook.clientCAFile).toBeUndefined();
    expect(d.probes.testMinIntervalMs).toBe(10_000);
    const c = loadOperatorConfig({ ATOLL_SEALING_RATE_PER_MINUTE: '30', ATOLL_SEALING_BURST: '5', ATOLL_PROBE_TEST_MIN_INTERVAL_SECONDS: '60', ATOLL_WEBHOOK_CLIENT_CA_FILE: '/ca.crt', ATOLL_WEBHOOK_CLIENT_NAMES: 'a, b' });
    expect(c.webhook).toMatchObject({ sealingRate: { ratePerSecond: 0.5, burst: 5 }, clientCAFile: '/ca.crt', clientNames: ['a', 'b'] });
    expect(c.probes.testMinIntervalMs).toBe(60_000);
    expect(() => loadOperatorConfig({ ATOLL_WEBHOOK_CLIENT_NAMES: 'a' })).toThrow('ATOLL_WEBHOOK_CLIENT_NAMES needs ATOLL_WEBHOOK_CLIENT_CA_FILE');
    expect(() => loadOperatorConfig({ ATOLL_SEALING_BURST: '0' })).toThrow('ATOLL_SEALING_BURST must be an integer between 1');
  });

  it('reads the usage flush interval and the delete-protection window as durations', () => {
    expect(loadOperatorConfig({}).usage).toEqual({ flushIntervalMs: 60_000, deleteProtectionWindowMs: 24 * 3_600_000 });
    expect(loadOperatorConfig({ ATOLL_USAGE_FLUSH_INTERVAL: '2s', ATOLL_DELETE_PROTECTION_WINDOW: '0' }).usage).toEqual({ flushIntervalMs: 2000, deleteProtectionWindowMs: 0 });
    expect(() => loadOperatorConfig({ ATOLL_DELETE_PROTECTION_WINDOW: 'a day' })).toThrow(/ATOLL_DELETE_PROTECTION_WINDOW must be a duration/);
  });

  it('reads the data-key cache age as a duration (default 5m, at least 1s)', () => {
    expect(loadOperatorConfig({}).kms.dekCacheMaxAgeMs).toBe(300_000);
    expect(loadOperatorConfig({ ATOLL_DEK_CACHE_MAX_AGE: '10m' }).kms.dekCacheMaxAgeMs).toBe(600_000);
    expect(() => loadOperatorConfig({ ATOLL_DEK_CACHE_MAX_AGE: '0' })).toThrow(/ATOLL_DEK_CACHE_MAX_AGE must be a duration/);
  });
});
