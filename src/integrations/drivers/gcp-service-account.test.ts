import { createVerify, generateKeyPairSync } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCertificate } from '../../kube/x509.js';
import { ProbeFailure } from '../probe-failure.js';
import { createTestPki, startHttpFixture, type HttpFixture } from '../../../test/support/services.js';
import type { ProbeContext } from '../probe-types.js';
import { GcpServiceAccountDriver } from './gcp-service-account.js';

/**
 * Against a local stand-in for oauth2.googleapis.com (reached through the
 * dial override, TLS verified with a test CA) that really verifies the
 * RS256 JWT with the account's public key, as Google does.
 */
const driver = new GcpServiceAccountDriver();
const account = generateKeyPairSync('rsa', { modulusLength: 2048 });
const other = generateKeyPairSync('rsa', { modulusLength: 2048 });
const EMAIL = 'probe@acme-prod.iam.gserviceaccount.com';

function keyFile(privateKey = account.privateKey): string {
  return JSON.stringify(
    {
      type: 'service_account',
      project_id: 'acme-prod',
      private_key_id: 'k1',
      private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }),
      client_email: EMAIL,
      token_uri: 'https://evil.example/token',
    },
    null,
    2,
  );
}

describe('GcpServiceAccountDriver', () => {
  const pki = createTestPki('gcp');
  let google: HttpFixture;

  beforeAll(async () => {
    google = await startHttpFixture(
      (req, res) => {
        const form = new URLSearchParams(req.body);
        const [h, c, sig] = (form.get('assertion') ?? '').split('.');
        const valid =
          form.get('grant_type') === 'urn:ietf:params:oauth:grant-type:jwt-bearer' &&
          req.url === '/token' &&
          createVerify('RSA-SHA256')
            .update(`${h}.${c}`)
            .verify(account.publicKey, Buffer.from(sig ?? '', 'base64url'));
        const claims = JSON.parse(Buffer.from(c ?? '', 'base64url').toString('utf8') || '{}') as {
          iss?: string;
          aud?: string;
        };
        res.setHeader('content-type', 'application/json');
        if (valid && claims.iss === EMAIL && claims.aud === 'https://oauth2.googleapis.com/token')
          res.end(JSON.stringify({ access_token: 'ya29.secret-token', expires_in: 3599 }));
        else
          res
            .writeHead(400)
            .end(JSON.stringify({ error: 'invalid_grant', error_description: 'Invalid JWT Signature.' }));
      },
      {
        tls: createCertificate({
          issuer: pki.ca,
          commonName: 'oauth2.googleapis.com',
          dnsNames: ['oauth2.googleapis.com'],
          usage: 'server',
        }),
      },
    );
  });
  afterAll(async () => {
    await google?.stop();
  });

  function context(serviceAccountKey: string): ProbeContext {
    return {
      settings: { scope: 'https://www.googleapis.com/auth/cloud-platform' },
      credentials: { serviceAccountKey },
      timeoutMs: 5_000,
      egress: { allowCIDRs: ['127.0.0.0/8'] },
      maxResponseBytes: 64 * 1024,
      trustedCAs: [pki.ca.certPem],
      dial: (host, port) =>
        host === 'oauth2.googleapis.com' && port === 443 ? { host: '127.0.0.1', port: google.port } : undefined,
    };
  }

  it('a valid key gets a token: Succeeded, and the token goes nowhere', async () => {
    const outcome = await driver.probe(context(keyFile()));
    expect(outcome).toMatchObject({ reason: 'Succeeded', reachable: 'True', authenticated: 'True' });
    expect(JSON.stringify(outcome)).not.toContain('ya29');
    // The key file's token_uri is never used: the request went to the fixed endpoint.
    expect(google.requests.at(-1)?.headers.host).toBe('oauth2.googleapis.com');
  });

  it('a key Google does not know is AuthenticationFailed (invalid_grant)', async () => {
    const outcome = await driver.probe(context(keyFile(other.privateKey)));
    expect(outcome).toMatchObject({ reason: 'AuthenticationFailed', reachable: 'True', authenticated: 'False' });
    expect(outcome.message).toContain('invalid_grant');
  });

  it('a JSON file that is not a service-account key says what it needs, without quoting it', async () => {
    const outcome = await driver.probe(context('{"type":"authorized_user","refresh_token":"1//secret-refresh"}')).then(
      () => undefined,
      (e: unknown) => e as ProbeFailure,
    );
    expect(outcome).toBeInstanceOf(ProbeFailure);
    expect(outcome!.reason).toBe('CredentialsMissing');
    expect(google.requests.length).toBe(2); // nothing was sent
    expect(outcome!.message).toContain('client_email and private_key');
    expect(outcome!.message).not.toContain('secret-refresh');
  });
});
