import { describe, expect, it } from 'vitest';
import { LAST_CHANGE_ANNOTATION } from '../api/v1alpha1/index.js';
import { auditGroups, parseLastChange } from '../domain/last-change.js';
import { allow, type AdmissionRequest, type JsonPatchOp } from './admission.js';
import { stampLastChange } from './change-stamp.js';

const NOW = Date.parse('2026-12-01T12:00:00Z');
const patchOf = (r: { patch?: string }) =>
  JSON.parse(Buffer.from(r.patch ?? 'W10=', 'base64').toString()) as JsonPatchOp[];

function update(
  oldSpec: object,
  newSpec: object,
  opts: { annotations?: Record<string, string>; oldAnnotations?: Record<string, string>; user?: string } = {},
): AdmissionRequest {
  return {
    uid: 'u1',
    kind: { group: 'atoll.dev', version: 'v1alpha1', kind: 'ExternalConnection' },
    operation: 'UPDATE',
    namespace: 'acme',
    name: 'billing',
    userInfo: { username: opts.user ?? 'alice', groups: ['editors'] },
    object: { metadata: { name: 'billing', annotations: opts.annotations }, spec: newSpec },
    oldObject: { metadata: { name: 'billing', annotations: opts.oldAnnotations }, spec: oldSpec },
  };
}

const spec = {
  type: 'http-api',
  settings: { baseURL: 'https://a.example' },
  credentials: { token: { sealed: 'atoll:v1:old' } },
};

describe('last-change stamp', () => {
  it('names the actor and the rotated field (as sealed), never a value', () => {
    const req = update(spec, { ...spec, credentials: { token: { value: 'tok-plaintext-123' } } });
    const sealed = allow('u1', [{ op: 'replace', path: '/spec/credentials/token', value: { sealed: 'atoll:v1:new' } }]);
    const res = stampLastChange(req, sealed, NOW);
    expect(res.auditAnnotations).toEqual({
      'changed-fields': 'spec.credentials.token',
      'audit-reasons': 'CredentialsRotated',
    });
    const ops = patchOf(res);
    const stamp = ops.find((o) => o.path === '/metadata/annotations')!;
    const change = parseLastChange(stamp.value as Record<string, string>)!;
    expect(change).toEqual({
      user: 'alice',
      at: '2026-12-01T12:00:00.000Z',
      operation: 'UPDATE',
      changed: ['spec.credentials.token'],
    });
    expect(JSON.stringify(ops.filter((o) => o !== ops[0]))).not.toContain('tok-plaintext');
    expect(auditGroups(change).map((g) => g.reason)).toEqual(['CredentialsRotated']);
  });

  it('sees no rotation when sealing kept the stored ciphertext (same value re-applied)', () => {
    const req = update(
      spec,
      { ...spec, credentials: { token: { value: 'same' } } },
      { oldAnnotations: { [LAST_CHANGE_ANNOTATION]: 'prior' }, annotations: { [LAST_CHANGE_ANNOTATION]: 'prior' } },
    );
    const sealed = allow('u1', [{ op: 'replace', path: '/spec/credentials/token', value: { sealed: 'atoll:v1:old' } }]);
    expect(patchOf(stampLastChange(req, sealed, NOW))).toHaveLength(1);
  });

  it('groups settings and test requests, and restores the annotation when a client forges it', () => {
    const req = update(
      spec,
      { ...spec, settings: { baseURL: 'https://b.example' } },
      { annotations: { 'atoll.dev/test-requested-at': 'now' } },
    );
    const change = parseLastChange({
      [LAST_CHANGE_ANNOTATION]: patchOf(stampLastChange(req, allow('u1'), NOW))[0]!.value as string,
    })!;
    expect(auditGroups(change).map((g) => g.reason)).toEqual(['TestRequested', 'SettingsChanged']);

    const forged = update(spec, spec, {
      oldAnnotations: { [LAST_CHANGE_ANNOTATION]: 'real' },
      annotations: { [LAST_CHANGE_ANNOTATION]: '{"user":"mallory"}' },
    });
    expect(patchOf(stampLastChange(forged, allow('u1'), NOW))).toEqual([
      { op: 'add', path: '/metadata/annotations/atoll.dev~1last-change-by', value: 'real' },
    ]);
  });

  it('strips control characters from the username', () => {
    const req = update(spec, { ...spec, displayName: 'x' }, { user: 'ali\nce', annotations: {} });
    const op = patchOf(stampLastChange(req, allow('u1'), NOW))[0]!;
    expect(JSON.parse(op.value as string).user).toBe('alice');
  });
});
