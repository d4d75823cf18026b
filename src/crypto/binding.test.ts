import { describe, expect, it } from 'vitest';
import { additionalData, canonicalContext, encryptionContext, managedCopy, type Binding } from './binding.js';

const binding: Binding = {
  namespace: 'acme',
  workspace: 'acme-uid-1',
  connection: 'datadog-eu',
  field: 'apiKey',
  destination: 'dest-1',
};

describe('encryptionContext', () => {
  it('names every part of the binding under atoll.dev keys', () => {
    expect(encryptionContext(binding)).toEqual({
      'atoll.dev/namespace': 'acme',
      'atoll.dev/workspace': 'acme-uid-1',
      'atoll.dev/connection': 'datadog-eu',
      'atoll.dev/field': 'apiKey',
      'atoll.dev/destination': 'dest-1',
      'atoll.dev/binding': '2',
      'atoll.dev/copy': 'spec',
    });
  });

  it('keeps the format 1 context unchanged, so values sealed before binding format 2 still open', () => {
    expect(encryptionContext({ ...binding, format: 1 })).toEqual({
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
    for (const part of ['namespace', 'workspace', 'connection', 'field', 'destination'] as const) {
      expect(additionalData({ ...binding, [part]: binding[part] + 'x' }).equals(base)).toBe(false);
    }
    const swapped = additionalData({ ...binding, namespace: binding.workspace, workspace: binding.namespace });
    expect(swapped.equals(base)).toBe(false);
  });

  it('separates the spec copy from every managed copy, and managed copies by connection uid and version', () => {
    const spec = additionalData(binding);
    const v1 = additionalData({ ...binding, copy: managedCopy('uid-1', 1) });
    const v2 = additionalData({ ...binding, copy: managedCopy('uid-1', 2) });
    const otherUid = additionalData({ ...binding, copy: managedCopy('uid-2', 1) });
    expect(new Set([spec, v1, v2, otherUid].map((b) => b.toString('hex'))).size).toBe(4);
    expect(encryptionContext({ ...binding, copy: managedCopy('uid-1', 3) })['atoll.dev/copy']).toBe('managed/uid-1/3');
  });

  it('never lets a format 1 value open as format 2 (the format byte and the copy differ)', () => {
    expect(additionalData({ ...binding, format: 1 }).equals(additionalData(binding))).toBe(false);
  });

  it('carries the binding format right after the label', () => {
    const aad = additionalData(binding);
    const labelLength = aad.readUInt32BE(0);
    expect(aad.subarray(4, 4 + labelLength).toString()).toBe('atoll.dev/envelope');
    expect(aad[4 + labelLength]).toBe(2);
    expect(additionalData({ ...binding, format: 1 })[4 + labelLength]).toBe(1);
  });
});

describe('canonicalContext', () => {
  it('ignores insertion order', () => {
    expect(canonicalContext({ a: '1', b: '2' }).equals(canonicalContext({ b: '2', a: '1' }))).toBe(true);
    expect(canonicalContext({ a: '1', b: '2' }).equals(canonicalContext({ a: '12' }))).toBe(false);
  });
});
