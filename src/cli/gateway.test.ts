import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { KubeClient } from '../kube/client.js';
import { gatewayServingFromEnv, GatewayTLSMessage } from './gateway.js';

const noClient = {} as KubeClient;

describe('gatewayServingFromEnv', () => {
  it('refuses to start without a certificate or the explicit plaintext opt-out', async () => {
    await expect(gatewayServingFromEnv({}, noClient, 'atoll-system')).rejects.toThrow(GatewayTLSMessage.missing);
    await expect(
      gatewayServingFromEnv({ ATOLL_GATEWAY_INSECURE_PLAINTEXT: 'yes' }, noClient, 'atoll-system'),
    ).rejects.toThrow(GatewayTLSMessage.missing);
  });

  it('serves plain HTTP only when ATOLL_GATEWAY_INSECURE_PLAINTEXT is exactly true', async () => {
    await expect(
      gatewayServingFromEnv({ ATOLL_GATEWAY_INSECURE_PLAINTEXT: 'true' }, noClient, 'atoll-system'),
    ).resolves.toEqual({ insecurePlaintext: true });
  });

  it('prefers mounted certificate files, and needs DNS names for a self-managed certificate', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'atoll-gw-tls-'));
    writeFileSync(path.join(dir, 'tls.crt'), 'CERT');
    writeFileSync(path.join(dir, 'tls.key'), 'KEY');
    const env = {
      ATOLL_GATEWAY_TLS_CERT_FILE: path.join(dir, 'tls.crt'),
      ATOLL_GATEWAY_TLS_KEY_FILE: path.join(dir, 'tls.key'),
      ATOLL_GATEWAY_INSECURE_PLAINTEXT: 'true',
    };
    await expect(gatewayServingFromEnv(env, noClient, 'atoll-system')).resolves.toEqual({
      tls: { certPem: 'CERT', keyPem: 'KEY' },
    });
    await expect(
      gatewayServingFromEnv({ ATOLL_GATEWAY_TLS_SELF_MANAGED: 'atoll-gateway-tls' }, noClient, 'atoll-system'),
    ).rejects.toThrow(GatewayTLSMessage.noNames);
  });
});
