import { describe, expect, it } from 'vitest';
import { SourceLimiter, sourceKey } from './source-limiter.js';

describe('SourceLimiter', () => {
  it('allows a burst, then asks to wait, and refills over time', () => {
    let now = 0;
    const limiter = new SourceLimiter({ burst: 2, perSecond: 1, now: () => now });
    expect(limiter.take('a')).toBe(0);
    expect(limiter.take('a')).toBe(0);
    expect(limiter.take('a')).toBe(1);
    expect(limiter.take('b')).toBe(0);
    now += 1000;
    expect(limiter.take('a')).toBe(0);
  });

  it('refunds a review that found a valid token', () => {
    const limiter = new SourceLimiter({ burst: 1, perSecond: 0.1, now: () => 0 });
    expect(limiter.take('a')).toBe(0);
    limiter.refund('a');
    expect(limiter.take('a')).toBe(0);
    expect(limiter.take('a')).toBe(10);
  });

  it('keys IPv4-mapped addresses as IPv4 and IPv6 per /64', () => {
    expect(sourceKey('::ffff:10.1.2.3')).toBe('10.1.2.3');
    expect(sourceKey('2001:db8:1:2:aaaa::1')).toBe(sourceKey('2001:db8:1:2:bbbb::7'));
    expect(sourceKey('2001:db8:1:3::1')).not.toBe(sourceKey('2001:db8:1:2::1'));
  });
});
