import { describe, expect, it } from 'vitest';
import {
  ConditionType,
  MAX_CONDITION_MESSAGE_LENGTH,
  Reason,
  removeCondition,
  setCondition,
  summarizeReady,
  toMetaTime,
  type Condition,
} from './conditions.js';

const t0 = new Date('2025-03-01T10:00:00.123Z');
const t1 = new Date('2025-03-01T11:30:00.999Z');

const reachable = (
  status: Condition['status'],
  reason: string,
  message = 'm',
): Omit<Condition, 'lastTransitionTime'> => ({
  type: ConditionType.Reachable,
  status,
  reason,
  message,
  observedGeneration: 1,
});

describe('setCondition', () => {
  it('adds a new condition with lastTransitionTime = now, in metav1.Time form', () => {
    const out = setCondition(undefined, reachable('True', Reason.Succeeded), t0);
    expect(out).toEqual([{ ...reachable('True', Reason.Succeeded), lastTransitionTime: '2025-03-01T10:00:00Z' }]);
  });

  it('keeps lastTransitionTime when the status is unchanged but reason or message change', () => {
    const first = setCondition([], reachable('False', Reason.Timeout), t0);
    const second = setCondition(first, reachable('False', Reason.DNSError, 'no such host'), t1);
    expect(second[0]).toMatchObject({
      reason: 'DNSError',
      message: 'no such host',
      lastTransitionTime: '2025-03-01T10:00:00Z',
    });
  });

  it('moves lastTransitionTime when the status flips', () => {
    const first = setCondition([], reachable('False', Reason.Timeout), t0);
    const second = setCondition(first, reachable('True', Reason.Succeeded), t1);
    expect(second[0]?.lastTransitionTime).toBe('2025-03-01T11:30:00Z');
  });

  it('returns the same array when nothing changed, and never mutates its input', () => {
    const first = setCondition([], reachable('True', Reason.Succeeded), t0);
    const snapshot = structuredClone(first);
    expect(setCondition(first, reachable('True', Reason.Succeeded), t1)).toBe(first);
    const changed = setCondition(first, reachable('True', Reason.Succeeded, 'other'), t1);
    expect(changed).not.toBe(first);
    expect(first).toEqual(snapshot);
  });

  it('treats a new observedGeneration as a change', () => {
    const first = setCondition([], reachable('True', Reason.Succeeded), t0);
    const next = setCondition(first, { ...reachable('True', Reason.Succeeded), observedGeneration: 2 }, t1);
    expect(next[0]).toMatchObject({ observedGeneration: 2, lastTransitionTime: '2025-03-01T10:00:00Z' });
  });

  it('replaces in place and keeps the order of other conditions', () => {
    let conditions = setCondition([], { ...reachable('True', Reason.Succeeded), type: 'A' }, t0);
    conditions = setCondition(conditions, { ...reachable('True', Reason.Succeeded), type: 'B' }, t0);
    conditions = setCondition(conditions, { ...reachable('False', Reason.Timeout), type: 'A' }, t1);
    expect(conditions.map((c) => `${c.type}=${c.status}`)).toEqual(['A=False', 'B=True']);
  });

  it('truncates messages to the CRD bound so the status write cannot fail', () => {
    const out = setCondition([], reachable('False', Reason.UnexpectedResponse, 'x'.repeat(40_000)), t0);
    expect(out[0]?.message.length).toBe(MAX_CONDITION_MESSAGE_LENGTH);
  });
});

describe('removeCondition', () => {
  it('removes by type and returns the same array when absent', () => {
    const conditions = setCondition([], reachable('True', Reason.Succeeded), t0);
    expect(removeCondition(conditions, 'Missing')).toBe(conditions);
    expect(removeCondition(conditions, ConditionType.Reachable)).toEqual([]);
  });
});

describe('summarizeReady', () => {
  const deps = [ConditionType.CredentialsSealed, ConditionType.Reachable, ConditionType.Authenticated];
  const all = (statuses: Condition['status'][]): Condition[] =>
    deps.map((type, i) => ({
      type,
      status: statuses[i]!,
      reason: `R${i}`,
      message: `m${i}`,
      lastTransitionTime: toMetaTime(t0),
    }));

  it('is True/Succeeded when every dependency is True', () => {
    expect(summarizeReady(all(['True', 'True', 'True']), deps, 4)).toEqual({
      type: 'Ready',
      status: 'True',
      reason: 'Succeeded',
      message: 'All checks passed',
      observedGeneration: 4,
    });
  });

  it('lets a False dependency win over an earlier Unknown one', () => {
    expect(summarizeReady(all(['Unknown', 'True', 'False']), deps)).toMatchObject({
      status: 'False',
      reason: 'R2',
      message: 'm2',
    });
  });

  it('is Unknown/Reconciling while a dependency has not been set', () => {
    expect(summarizeReady([], deps)).toMatchObject({ status: 'Unknown', reason: 'Reconciling' });
  });
});
