import http from 'node:http';
import type net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MOTO_CREDENTIALS, MOTO_REGION, startMoto, type MotoServer } from '../../../test/support/moto.js';
import { freePort } from '../../dev/ports.js';
import type { ProbeContext } from '../probe-types.js';
import { S3Driver } from './s3.js';
import type { SigV4Credentials } from '../../../test/support/moto.js';
import { startSilentServer } from '../../../test/support/services.js';
import { signedMotoFetch as signedFetch } from '../../../test/support/moto.js';

const BUCKET = 'probe-bucket';
const driver = new S3Driver();

/** Calls moto's IAM query API and returns the response XML. */
async function iam(endpoint: string, params: Record<string, string>): Promise<string> {
  const body = new URLSearchParams({ ...params, Version: '2010-05-08' }).toString();
  const { status, text } = await signedFetch(new URL(endpoint + '/'), 'POST', 'iam', MOTO_CREDENTIALS, body);
  if (status !== 200) throw new Error(`IAM ${params['Action']} failed with HTTP ${status}`);
  return text;
}

async function createUserWithKey(endpoint: string, userName: string, allowS3: boolean): Promise<SigV4Credentials> {
  await iam(endpoint, { Action: 'CreateUser', UserName: userName });
  if (allowS3) {
    const policy = JSON.stringify({
      Version: '2012-10-17',
      Statement: [{ Effect: 'Allow', Action: 's3:*', Resource: '*' }],
    });
    await iam(endpoint, { Action: 'PutUserPolicy', UserName: userName, PolicyName: 's3', PolicyDocument: policy });
  }
  const xml = await iam(endpoint, { Action: 'CreateAccessKey', UserName: userName });
  const accessKeyId = /<AccessKeyId>([^<]+)<\/AccessKeyId>/.exec(xml)?.[1];
  const secretAccessKey = /<SecretAccessKey>([^<]+)<\/SecretAccessKey>/.exec(xml)?.[1];
  if (!accessKeyId || !secretAccessKey) throw new Error('CreateAccessKey returned no key');
  return { accessKeyId, secretAccessKey };
}

describe('S3Driver against moto', () => {
  let moto: MotoServer;
  let allowed: SigV4Credentials;
  let denied: SigV4Credentials;

  beforeAll(async () => {
    moto = await startMoto();
    allowed = await createUserWithKey(moto.endpoint, 'prober', true);
    denied = await createUserWithKey(moto.endpoint, 'outsider', false);
    const created = await signedFetch(new URL(`${moto.endpoint}/${BUCKET}`), 'PUT', 's3', allowed);
    expect(created.status).toBe(200);
    // From now on moto checks every request's key and SigV4 signature, and IAM policies.
    const reset = await fetch(`${moto.endpoint}/moto-api/reset-auth`, { method: 'POST', body: '0' });
    expect(reset.status).toBe(200);
  });
  afterAll(async () => moto?.stop());

  function context(
    settings: Record<string, unknown>,
    credentials: SigV4Credentials,
    overrides: Partial<ProbeContext> = {},
  ): ProbeContext {
    return {
      settings: { endpoint: moto.endpoint, region: MOTO_REGION, bucket: BUCKET, forcePathStyle: true, ...settings },
      credentials: { accessKeyId: credentials.accessKeyId, secretAccessKey: credentials.secretAccessKey },
      timeoutMs: 5000,
      egress: { allowCIDRs: ['127.0.0.0/8'] },
      maxResponseBytes: 64 * 1024,
      ...overrides,
    };
  }

  it('succeeds with the right keys', async () => {
    const outcome = await driver.probe(context({}, allowed));
    expect(outcome).toMatchObject({ reachable: 'True', authenticated: 'True', reason: 'Succeeded' });
  });

  it('reports a wrong secret as AuthenticationFailed (SignatureDoesNotMatch) without echoing it', async () => {
    const wrong = { ...allowed, secretAccessKey: 'wrongSecretKey0123456789abcdefghijklmnop' };
    const outcome = await driver.probe(context({}, wrong));
    expect(outcome).toMatchObject({ reachable: 'True', authenticated: 'False', reason: 'AuthenticationFailed' });
    expect(outcome.message).toContain('SignatureDoesNotMatch');
    expect(outcome.message).not.toContain(wrong.secretAccessKey);
    expect(outcome.message).not.toContain(allowed.secretAccessKey);
  });

  it('reports an unknown access key as AuthenticationFailed (InvalidAccessKeyId)', async () => {
    const outcome = await driver.probe(
      context({}, { accessKeyId: 'AKIAUNKNOWN000000000', secretAccessKey: allowed.secretAccessKey }),
    );
    expect(outcome).toMatchObject({ reason: 'AuthenticationFailed' });
    expect(outcome.message).toContain('InvalidAccessKeyId');
  });

  it('reports valid keys without permission on the bucket as AuthenticationFailed (AccessDenied)', async () => {
    const outcome = await driver.probe(context({}, denied));
    expect(outcome).toMatchObject({ reason: 'AuthenticationFailed' });
    expect(outcome.message).toContain('AccessDenied');
  });

  it('names the bucket setting when the bucket does not exist', async () => {
    const outcome = await driver.probe(context({ bucket: 'no-such-bucket' }, allowed));
    expect(outcome).toMatchObject({ reachable: 'True', authenticated: 'Unknown', reason: 'UnexpectedResponse' });
    expect(outcome.message).toContain('settings.bucket');
  });

  it('reports missing credentials without a request', async () => {
    const outcome = await driver.probe({ ...context({}, allowed), credentials: { accessKeyId: allowed.accessKeyId } });
    expect(outcome.reason).toBe('CredentialsMissing');
  });

  it('reports a closed port as Unreachable', async () => {
    const outcome = await driver.probe(context({ endpoint: `http://127.0.0.1:${await freePort()}` }, allowed));
    expect(outcome).toMatchObject({ reachable: 'False', reason: 'Unreachable' });
  });

  it('refuses an endpoint outside the egress policy before connecting', async () => {
    const server = await startSilentServer();
    try {
      const port = server.port;
      const outcome = await driver.probe(
        context({ endpoint: `http://127.0.0.1:${port}` }, allowed, { egress: { allowCIDRs: [] } }),
      );
      expect(outcome).toMatchObject({ reachable: 'False', reason: 'EgressDenied' });
      expect(server.connections()).toBe(0);
    } finally {
      await server.stop();
    }
  });

  it('rejects an invalid bucket name as InvalidSettings', async () => {
    const outcome = await driver.probe(context({ bucket: 'Bad_Bucket', forcePathStyle: false }, allowed));
    expect(outcome).toMatchObject({ reason: 'InvalidSettings' });
    expect(outcome.message).toContain('settings.bucket');
  });
});

describe('S3Driver addressing and redirects (contract fixture from the S3 documentation)', () => {
  // AWS answers HEAD on a bucket in another region with 301 and x-amz-bucket-region;
  // moto does not model regions per endpoint, so a loopback fixture plays AWS here.
  const seen: Array<{ method?: string; url?: string; host?: string }> = [];
  const server = http.createServer((req, res) => {
    seen.push({ method: req.method, url: req.url, host: req.headers.host });
    req.resume();
    res.writeHead(301, { 'x-amz-bucket-region': 'eu-west-1' }).end();
  });
  let port = 0;
  beforeAll(async () => {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as net.AddressInfo).port;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('uses virtual-hosted addressing on AWS and names the region setting on 301', async () => {
    const outcome = await driver.probe({
      settings: { region: 'us-east-1', bucket: 'my-bucket', forcePathStyle: false },
      credentials: { accessKeyId: 'AKIAIOSFODNN7EXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY' },
      timeoutMs: 5000,
      egress: { allowCIDRs: ['127.0.0.0/8'] },
      maxResponseBytes: 64 * 1024,
      dial: () => ({ host: '127.0.0.1', port }),
      trustedCAs: [],
    });
    // https to a plain-HTTP fixture cannot work, so the fixture is reached over http via the endpoint setting below.
    expect(outcome.reason).toBe('TLSError');

    const redirected = await driver.probe({
      settings: {
        endpoint: 'http://s3.us-east-1.amazonaws.com',
        region: 'us-east-1',
        bucket: 'my-bucket',
        forcePathStyle: false,
      },
      credentials: { accessKeyId: 'AKIAIOSFODNN7EXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY' },
      timeoutMs: 5000,
      egress: { allowCIDRs: ['127.0.0.0/8'] },
      maxResponseBytes: 64 * 1024,
      dial: () => ({ host: '127.0.0.1', port }),
    });
    expect(redirected).toMatchObject({ reason: 'UnexpectedResponse', reachable: 'True' });
    expect(redirected.message).toContain('settings.region');
    expect(redirected.message).toContain('eu-west-1');
    expect(seen.at(-1)).toEqual({ method: 'HEAD', url: '/', host: 'my-bucket.s3.us-east-1.amazonaws.com' });
  });
});
