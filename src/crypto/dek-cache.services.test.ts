/**
 * A day of periodic probes against the real KMS (moto): with the data-key
 * cache's idle expiry above the probe interval, a credential opened every
 * 10 minutes costs one `Decrypt` when first opened and one when the key's
 * absolute lifetime ends, none in between (ADR 0029). The cache's clock is
 * simulated, so the day takes no time and nothing is timed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CountingProvider } from '../../test/support/counting-provider.js';
import { createKmsKey, MOTO_CREDENTIALS, MOTO_REGION, startMoto, type MotoServer } from '../../test/support/moto.js';
import type { Binding } from './binding.js';
import { DEK_CACHE_DEFAULTS, DekCache, type DekCacheOptions } from './dek-cache.js';
import { Envelope } from './envelope.js';
import { AwsKmsProvider } from './providers/aws-kms.js';

const MINUTE = 60_000;
const PROBE_INTERVAL = 10 * MINUTE;
const binding: Binding = {
  namespace: 'acme',
  workspace: 'acme-7f3c',
  connection: 'pg',
  field: 'password',
  destination: 'd',
};

let moto: MotoServer;
let aws: AwsKmsProvider;
let keyArn: string;
let sealed: string;

beforeAll(async () => {
  moto = await startMoto();
  aws = new AwsKmsProvider({
    region: MOTO_REGION,
    endpoint: moto.endpoint,
    credentials: MOTO_CREDENTIALS,
    maxAttempts: 1,
  });
  keyArn = await createKmsKey(moto.endpoint);
  // Sealed by another process (the webhook), so the prober starts with a cold cache as after a restart.
  sealed = await new Envelope({ providers: new Map([['aws-kms', aws]]) }).seal('s3cr3t-value', binding, {
    provider: 'aws-kms',
    keyId: keyArn,
  });
});

afterAll(async () => {
  aws?.close();
  await moto?.stop();
});

/** Opens the credential once per probe interval for `minutes`; returns the Decrypts moto received. */
async function probeFor(minutes: number, cache: Omit<DekCacheOptions, 'now'>): Promise<number> {
  let now = 0;
  const kms = new CountingProvider(aws);
  const envelope = new Envelope({
    providers: new Map([['aws-kms', kms]]),
    cache: new DekCache({ ...cache, now: () => now }),
  });
  for (now = 0; now < minutes * MINUTE; now += PROBE_INTERVAL)
    expect(await envelope.open(sealed, binding)).toBe('s3cr3t-value');
  return kms.calls.decryptDataKey;
}

describe('data-key cache over a day of periodic probes (moto KMS)', () => {
  it('the defaults: one Decrypt for the first probe, none for the next 143 of the day', async () => {
    expect(DEK_CACHE_DEFAULTS.idleMs).toBeGreaterThan(PROBE_INTERVAL);
    expect(await probeFor(24 * 60, {})).toBe(1);
  });

  it('one more Decrypt when the absolute lifetime ends', async () => {
    expect(await probeFor(24 * 60 + 10, {})).toBe(2);
  });

  it('the former 5-minute expiry cost a Decrypt on every probe', async () => {
    expect(await probeFor(24 * 60, { maxAgeMs: 5 * MINUTE, idleMs: 5 * MINUTE })).toBe(144);
  });
});
