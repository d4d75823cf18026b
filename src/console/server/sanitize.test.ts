import { describe, expect, it } from 'vitest';
import { sanitizeResponse } from './sanitize.js';

describe('sanitizeResponse', () => {
  it('passes on neither ciphertext nor managedFields nor last-applied-configuration', () => {
    const conn = {
      kind: 'ExternalConnection',
      metadata: {
        name: 'c',
        managedFields: [{ manager: 'x' }],
        annotations: {
          'kubectl.kubernetes.io/last-applied-configuration': '{"spec":{}}',
          'atoll.dev/test-requested-at': 't',
        },
      },
      spec: {
        type: 'http-api',
        credentials: {
          token: { sealed: 'atoll:v1:local:abc' },
          password: { secretKeyRef: { name: 's', key: 'k', extra: 1 } },
        },
      },
      status: { credentials: { token: { hint: 'f3a9', version: 2 } } },
    };
    const out = sanitizeResponse({ kind: 'ExternalConnectionList', metadata: {}, items: [structuredClone(conn)] }) as {
      items: unknown[];
    };
    expect(out.items[0]).toEqual({
      kind: 'ExternalConnection',
      metadata: { name: 'c', annotations: { 'atoll.dev/test-requested-at': 't' } },
      spec: {
        type: 'http-api',
        credentials: { token: { sealed: true }, password: { secretKeyRef: { name: 's', key: 'k' } } },
      },
      status: { credentials: { token: { hint: 'f3a9', version: 2 } } },
    });
    expect(JSON.stringify(sanitizeResponse(structuredClone(conn)))).not.toContain('atoll:v1');
  });

  it('leaves a Status as it is', () => {
    const st = { kind: 'Status', code: 403, message: 'forbidden' };
    expect(sanitizeResponse(structuredClone(st))).toEqual(st);
  });
});
