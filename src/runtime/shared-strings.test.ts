import { describe, expect, it } from 'vitest';
import { MAX_SHARED_STRINGS, shareStrings, sharedStringCount } from './shared-strings.js';

describe('shareStrings', () => {
  it('leaves every value as it was', () => {
    const text = JSON.stringify({
      metadata: { name: 'c', namespace: 'ws-a', labels: { 'atoll.dev/workspace': 'a' }, uid: 'u-1' },
      spec: { type: 'github', settings: { nested: [{ type: 'x', message: 'm' }, 'plain', 3] } },
      status: {
        conditions: [{ type: 'Ready', status: 'True', reason: 'Succeeded', message: 'ok', lastTransitionTime: 't' }],
      },
    });
    expect(shareStrings(JSON.parse(text))).toEqual(JSON.parse(text));
  });

  it('keeps its table bounded however many distinct values pass', () => {
    for (let i = 0; i < MAX_SHARED_STRINGS * 1.5; i++) shareStrings({ status: { message: `host-${i} answered` } });
    expect(sharedStringCount()).toBeLessThanOrEqual(MAX_SHARED_STRINGS);
    expect(sharedStringCount()).toBeGreaterThan(0);
  });
});
