import { describe, expect, it } from 'vitest';
import { createCertificateAuthority } from '../kube/x509.js';
import { checkPlaintext } from './connection-policy.js';

describe('checkPlaintext', () => {
  const ca = createCertificateAuthority({ commonName: 'atoll test' });

  it('refuses empty and whitespace-only values in every format', () => {
    for (const format of [undefined, 'multiline', 'pem', 'json'] as const) {
      expect(checkPlaintext('f', '', format)).toMatch(/spec.credentials.f.value is empty/);
      expect(checkPlaintext('f', '   ', format)).toMatch(/spec.credentials.f.value is only whitespace/);
      expect(checkPlaintext('f', ' \n\t \n', format)).toMatch(/only whitespace/);
    }
  });

  it('keeps one-line fields to one line', () => {
    expect(checkPlaintext('token', 'abc123')).toBeUndefined();
    expect(checkPlaintext('token', 'abc123\n')).toMatch(/control characters .* format/);
  });

  it('multiline allows newlines and tabs, not other controls', () => {
    expect(checkPlaintext('f', 'line one\n\tline two\r\n', 'multiline')).toBeUndefined();
    expect(checkPlaintext('f', 'bell\u0007', 'multiline')).toMatch(/other than newlines and tabs/);
  });

  it('pem accepts real certificates and keys, chains, a trailing newline', () => {
    expect(checkPlaintext('clientCertificate', ca.certPem, 'pem')).toBeUndefined();
    expect(checkPlaintext('clientKey', ca.keyPem, 'pem')).toBeUndefined();
    expect(checkPlaintext('chain', `${ca.certPem}\n${ca.certPem}\n`, 'pem')).toBeUndefined();
  });

  it('pem refuses what is not PEM, without echoing it', () => {
    const secret = 'not-a-pem-but-a-secret-value';
    const problems = [
      checkPlaintext('k', secret, 'pem'),
      checkPlaintext('k', ca.keyPem.replace(/END [A-Z ]+-----/, 'END CERTIFICATE-----'), 'pem'),
      checkPlaintext('k', `${ca.certPem}\n${secret}`, 'pem'),
      checkPlaintext('k', '-----BEGIN CERTIFICATE-----\n%%%%\n-----END CERTIFICATE-----\n', 'pem'),
      checkPlaintext('k', ca.keyPem.slice(0, -30), 'pem'),
    ];
    expect(problems[0]).toMatch(/is not PEM; expected PEM/);
    expect(problems[1]).toMatch(/begins with one label and ends with another/);
    expect(problems[2]).toMatch(/text outside its PEM blocks/);
    expect(problems[3]).toMatch(/body is not base64/);
    expect(problems[4]).toMatch(/not PEM|outside/);
    for (const p of problems) expect(p).not.toContain(secret);
  });

  it('json accepts an object and refuses the rest, without echoing it', () => {
    expect(
      checkPlaintext('key', JSON.stringify({ type: 'service_account', private_key: ca.keyPem }, null, 2), 'json'),
    ).toBeUndefined();
    const broken = '{"type": "service_account", "private_key": "s3cr3t"';
    expect(checkPlaintext('key', broken, 'json')).toMatch(/is not valid JSON/);
    expect(checkPlaintext('key', broken, 'json')).not.toContain('s3cr3t');
    expect(checkPlaintext('key', '["a"]', 'json')).toMatch(/must be a JSON object/);
  });
});
