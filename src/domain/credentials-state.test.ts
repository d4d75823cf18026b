import { describe, expect, it } from 'vitest';
import { readState, saysState, STATE_ANNOTATION, writeState, type FieldState } from './credentials-state.js';

const state: Record<string, FieldState> = {
  token: { fingerprint: 'f', version: 3, updatedAt: '2026-12-02T00:00:00Z', keyId: 'local/default', hint: '…9c25' },
};

describe('the credentials state annotation', () => {
  it('is written in ASCII and reads back as the same state', () => {
    const text = writeState(state);
    expect(text).toMatch(/^[\x20-\x7e]*$/);
    expect(text).toContain('\\u2026');
    expect(readState({ metadata: { annotations: { [STATE_ANNOTATION]: text } } })).toEqual(state);
  });

  it('says the same state whether written escaped or (by an older version) not, and not another', () => {
    expect(saysState(writeState(state), state)).toBe(true);
    expect(saysState(JSON.stringify(state), state)).toBe(true);
    expect(saysState(writeState({ token: { ...state.token!, version: 4 } }), state)).toBe(false);
    expect(saysState(undefined, state)).toBe(false);
    expect(saysState('{not json', state)).toBe(false);
  });
});
