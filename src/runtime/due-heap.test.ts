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
});
