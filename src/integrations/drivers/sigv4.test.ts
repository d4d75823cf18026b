import { describe, expect, it } from 'vitest';
import { signRequest, uriEncode } from './sigv4.js';

// Vectors from AWS's published documentation: the SigV4 test suite ("get-vanilla",
// "get-vanilla-query-order-key-case") and the S3 "Signature Calculations for the
// Authorization Header" examples. Both use AWS's documented example keys.
const suiteCredentials = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' };
const s3Credentials = { accessKeyId: 'AKIAIOSFODNN7EXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY' };
const suiteTime = new Date('2015-08-30T12:36:00Z');
const s3Time = new Date('2013-05-24T00:00:00Z');

function signatureOf(headers: Record<string, string>): string | undefined {
  return /Signature=([0-9a-f]{64})$/.exec(headers['authorization'] ?? '')?.[1];
}

describe('signRequest', () => {
  it('reproduces the SigV4 test suite get-vanilla vector', () => {
    const headers = signRequest(
      { method: 'GET', url: new URL('https://example.amazonaws.com/') },
      { credentials: suiteCredentials, region: 'us-east-1', service: 'service', now: suiteTime },
    );
    expect(headers['authorization']).toBe(
      'AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, ' +
        'SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31',
    );
    expect(headers['x-amz-date']).toBe('20150830T123600Z');
  });

  it('sorts query parameters (get-vanilla-query-order-key-case)', () => {
    const headers = signRequest(
      { method: 'GET', url: new URL('https://example.amazonaws.com/?Param2=value2&Param1=value1') },
      { credentials: suiteCredentials, region: 'us-east-1', service: 'service', now: suiteTime },
    );
    expect(signatureOf(headers)).toBe('b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500');
  });

  it('reproduces the S3 GET object example with a Range header', () => {
    const headers = signRequest(
      { method: 'GET', url: new URL('https://examplebucket.s3.amazonaws.com/test.txt'), headers: { Range: 'bytes=0-9' } },
      { credentials: s3Credentials, region: 'us-east-1', service: 's3', now: s3Time, s3: true },
    );
    expect(headers['authorization']).toBe(
      'AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, ' +
        'SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, ' +
        'Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41',
    );
    expect(headers['x-amz-content-sha256']).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  });

  it('reproduces the S3 GET bucket lifecycle and list objects examples', () => {
    const sign = (url: string) =>
      signatureOf(
        signRequest(
          { method: 'GET', url: new URL(url) },
          { credentials: s3Credentials, region: 'us-east-1', service: 's3', now: s3Time, s3: true },
        ),
      );
    expect(sign('https://examplebucket.s3.amazonaws.com/?lifecycle')).toBe(
      'fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543',
    );
    expect(sign('https://examplebucket.s3.amazonaws.com/?max-keys=2&prefix=J')).toBe(
      '34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7',
    );
  });

  it('changes the signature when the secret changes', () => {
    const request = { method: 'HEAD', url: new URL('https://examplebucket.s3.amazonaws.com/') };
    const options = { region: 'us-east-1', service: 's3', now: s3Time, s3: true };
    const good = signatureOf(signRequest(request, { ...options, credentials: s3Credentials }));
    const bad = signatureOf(signRequest(request, { ...options, credentials: { ...s3Credentials, secretAccessKey: 'x' } }));
    expect(good).not.toBe(bad);
  });
});

describe('uriEncode', () => {
  it('encodes everything except RFC 3986 unreserved characters', () => {
    expect(uriEncode("a-b_c.d~e f/g*h!(')")).toBe('a-b_c.d~e%20f%2Fg%2Ah%21%28%27%29');
  });
});
