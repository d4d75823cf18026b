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
});
