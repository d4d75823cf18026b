/**
 * Keys with a due time, earliest first (a binary min-heap). Lets a queue keep
 * one timer for all its delayed keys: a Node timer per key costs ~400 bytes,
 * 4 MiB of the controller's heap at 10,000 connections (ADR 0035).
 */
export class DueHeap {
  private readonly items: Array<{ at: number; key: string }> = [];

  get size(): number {
    return this.items.length;
  }

  push(at: number, key: string): void {
    const items = this.items;
    items.push({ at, key });
    let i = items.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (items[parent]!.at <= at) break;
      [items[i], items[parent]] = [items[parent]!, items[i]!];
      i = parent;
    }
  }

  peek(): { at: number; key: string } | undefined {
    return this.items[0];
  }

  pop(): { at: number; key: string } | undefined {
    const items = this.items;
    const top = items[0];
    const last = items.pop();
    if (top === undefined || items.length === 0) return top;
    items[0] = last!;
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      const right = left + 1;
      let least = i;
      if (left < items.length && items[left]!.at < items[least]!.at) least = left;
      if (right < items.length && items[right]!.at < items[least]!.at) least = right;
      if (least === i) return top;
      [items[i], items[least]] = [items[least]!, items[i]!];
      i = least;
    }
  }

  /** Starts again from exactly these entries (dropping superseded ones). */
  rebuild(entries: Map<string, { at: number }>): void {
    this.items.length = 0;
    for (const [key, { at }] of entries) this.push(at, key);
  }

  clear(): void {
    this.items.length = 0;
  }
}
