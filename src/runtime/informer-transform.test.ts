import { describe, expect, it } from 'vitest';
import { stripForCache } from './informer.js';

describe('stripForCache', () => {
  it('drops managedFields and the kubectl last-applied copy, keeps everything else', () => {
    const obj = {
      metadata: {
        name: 'a',
        namespace: 'n',
        resourceVersion: '7',
        managedFields: [{ manager: 'kubectl' }],
        annotations: { 'kubectl.kubernetes.io/last-applied-configuration': '{"big":true}', 'atoll.dev/keep': 'yes' },
        labels: { l: 'v' },
      },
      spec: { x: 1 },
    };
    expect(stripForCache(obj)).toEqual({
      metadata: {
        name: 'a',
        namespace: 'n',
        resourceVersion: '7',
        annotations: { 'atoll.dev/keep': 'yes' },
        labels: { l: 'v' },
      },
      spec: { x: 1 },
    });
    // The informer's received object is not mutated (handlers may still hold it).
    expect(obj.metadata.managedFields).toHaveLength(1);
  });

  it('returns an object with nothing to strip as it is', () => {
    const obj = { metadata: { name: 'a' }, data: { k: 'dg==' } };
    expect(stripForCache(obj)).toBe(obj);
  });
});
