import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { MAX_SHARED_STRINGS, shareStrings, sharedStringCount, sharedText } from './shared-strings.js';

describe('shareStrings', () => {
  it("shares the known repeating places and never a Secret's data, annotations or settings", () => {
    const u = randomUUID();
    const obj = {
      apiVersion: `v-${u}`,
      kind: `Kind-${u}`,
      type: `secret-type-${u}`,
      metadata: {
        name: `name-${u}`,
        namespace: `ns-${u}`,
        uid: u,
        labels: { 'atoll.dev/workspace': `ws-${u}` },
        annotations: { note: `annotation-${u}` },
        ownerReferences: [{ apiVersion: `owner-v-${u}`, kind: `Owner-${u}`, name: `o-${u}`, uid: `ou-${u}` }],
      },
      spec: { type: `spec-type-${u}`, settings: { type: `settings-type-${u}`, message: `settings-message-${u}` } },
      data: { type: `data-${u}`, message: `data-message-${u}` },
      status: {
        conditions: [{ type: `Cond-${u}`, status: 'True', message: `msg-${u}`, observedGeneration: 3 }],
        secretName: `secret-${u}`,
      },
    };
    const before = JSON.stringify(obj);
    const count = sharedStringCount();
    expect(shareStrings(obj)).toBe(obj);
    expect(JSON.stringify(obj)).toBe(before);
    // apiVersion, kind, type, namespace, the label, the owner's apiVersion and kind, spec.type,
    // the condition's type and message ('True' may be known already); not data, settings or annotations.
    expect(sharedStringCount() - count).toBeGreaterThanOrEqual(10);
    expect(sharedStringCount() - count).toBeLessThanOrEqual(11);
  });

  it('keeps its table bounded however many distinct values pass', () => {
    for (let i = 0; i < MAX_SHARED_STRINGS * 1.5; i++) sharedText(`host-${i} answered`);
    expect(sharedStringCount()).toBeLessThanOrEqual(MAX_SHARED_STRINGS);
    expect(sharedStringCount()).toBeGreaterThan(0);
  });
});
