import { describe, expect, it } from 'vitest';
import { DueHeap } from './due-heap.js';

describe('DueHeap', () => {
  it('pops keys in order of their due time, whatever the order they were pushed in', () => {
    const heap = new DueHeap();
    const times = [50, 10, 40, 10, 30, 20, 60, 0, 35, 5];
    times.forEach((at, i) => heap.push(at, `k${i}`));
    expect(heap.size).toBe(times.length);
    expect(heap.peek()).toEqual({ at: 0, key: 'k7' });
    const popped: number[] = [];
    for (let item = heap.pop(); item; item = heap.pop()) popped.push(item.at);
    expect(popped).toEqual([...times].sort((a, b) => a - b));
    expect(heap.pop()).toBeUndefined();
  });

  it('stays ordered when pushes and pops interleave, and rebuilds from the live entries only', () => {
    const heap = new DueHeap();
    const reference: number[] = [];
    let seed = 7;
    const next = () => (seed = (seed * 48_271) % 2_147_483_647) % 1_000;
    const popBoth = () => {
      reference.sort((a, b) => a - b);
      expect(heap.pop()?.at).toBe(reference.shift());
    };
    for (let round = 0; round < 200; round++) {
      for (const key of [`k${round}`, `j${round}`]) {
        const at = next();
        heap.push(at, key);
        reference.push(at);
      }
      popBoth();
    }
    while (reference.length > 0) popBoth();
    expect(heap.pop()).toBeUndefined();
    heap.rebuild(
      new Map([
        ['x', { at: 5 }],
        ['y', { at: 2 }],
      ]),
    );
    expect([heap.pop(), heap.pop(), heap.pop()]).toEqual([{ at: 2, key: 'y' }, { at: 5, key: 'x' }, undefined]);
  });
});
