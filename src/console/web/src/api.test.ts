import { describe, expect, it } from 'vitest';
import { describeFailure } from './api';

describe('describeFailure', () => {
  it('keeps the reason of an admission denial and drops the plumbing', () => {
    expect(
      describeFailure(422, {
        kind: 'Status',
        message:
          'admission webhook "validate.externalconnection.atoll.dev" denied the request: type "redis" is not allowed in workspace acme; allowed types: http-api',
      }),
    ).toBe('type "redis" is not allowed in workspace acme; allowed types: http-api');
    expect(
      describeFailure(422, {
        message:
          'ExternalConnection.atoll.dev "x" is invalid: spec.settings.baseURL: Invalid value: "ftp://x": must be http(s)',
      }),
    ).toBe('spec.settings.baseURL: Invalid value: "ftp://x": must be http(s)');
  });

  it('says what to do for conflicts, permissions and expired sign-ins', () => {
    expect(
      describeFailure(409, { reason: 'AlreadyExists', message: 'externalconnections.atoll.dev "x" already exists' }),
    ).toMatch(/already exists in this workspace/);
    expect(describeFailure(409, { reason: 'Conflict', message: 'the object has been modified' })).toMatch(
      /Reload and try again/,
    );
    expect(describeFailure(403, undefined)).toBe('You do not have permission to do this.');
    expect(describeFailure(401, undefined)).toMatch(/Sign in again/);
    expect(describeFailure(500, 'not json')).toBe('The request failed (HTTP 500).');
  });
});
