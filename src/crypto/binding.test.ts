import { describe, expect, it } from 'vitest';
import { additionalData, canonicalContext, encryptionContext, type Binding } from './binding.js';

const binding: Binding = { namespace: 'acme', workspace: 'acme-uid-1', connection: 'datadog-eu', field: 'apiKey', destination: 'dest-1' };

describe('encryptionContext', () => {
  it('names every part of the binding under atoll.dev keys', () => {
    expect(encryptionContext(binding)).toEqual({
      'atoll.dev/namespace': 'acme',
      'atoll.dev/workspace': 'acme-uid-1',
      'atoll.dev/connection': 'datadog-eu',
      'atoll.dev/field': 'apiKey',
      'atoll.dev/destination': 'dest-1',
    });
  });

  it('rejects an empty part instead of binding to less', () => {
    expect(() => encryptionContext({ ...binding, field: '' })).toThrow(TypeError);
    expect(() => encryptionContext({ ...binding, destination: '' })).toThrow(TypeError);
  });
});

describe('additionalData', () => {
  it('is deterministic', () => {
    expect(additionalData(binding).equals(additionalData({ ...binding }))).toBe(true);
  });

  it('is unambiguous where plain concatenation would collide', () => {
    const a = additionalData({ ...binding, connection: 'a:b', field: 'c' });
    const b = additionalData({ ...binding, connection: 'a', field: 'b:c' });
    const c = additionalData({ ...binding, connection: 'ab', field: 'c' });
    expect(a.equals(b)).toBe(false);
    expect(a.equals(c)).toBe(false);
  });

  it('differs when any single part differs, including swapped parts', () => {
    const base = additionalData(binding);
    for (const part of ['namespace', 'workspace', 'connection', 'field'] as const) {
      expect(additionalData({ ...binding, [part]: binding[part] + 'x' }).equals(base)).toBe(false);
    }
    const swapped = additionalData({ ...binding, namespace: binding.workspace, workspace: binding.namespace });
    expect(swapped.equals(base)).toBe(false);
  });

  it('carries the format version right after the label', () => {
    const aad = additionalData(binding);
    const labelLength = aad.readUInt32BE(0);
    expect(aad.subarray(4, 4 + labelLength).toString()).toBe('atoll.dev/envelope');
    expect(aad[4 + labelLength]).toBe(1);
  });
});

describe('canonicalContext', () => {
  it('ignores insertion order', () => {
    expect(canonicalContext({ a: '1', b: '2' }).equals(canonicalContext({ b: '2', a: '1' }))).toBe(true);
    expect(canonicalContext({ a: '1', b: '2' }).equals(canonicalContext({ a: '12' }))).toBe(false);
  });
});
