import { describe, expect, it } from 'vitest';
import { SseParser } from './sse.js';

describe('SseParser', () => {
  it('assembles events split across chunks and ignores comments', () => {
    const parser = new SseParser();
    expect(parser.push(': keep-alive\n\nevent: credentials\nid: 7\nda')).toEqual([]);
    expect(parser.push('ta: {"a":1}\n\n')).toEqual([{ event: 'credentials', id: '7', data: '{"a":1}' }]);
  });

  it('joins multi-line data, accepts CRLF, defaults the event name', () => {
    const parser = new SseParser();
    expect(parser.push('data: one\r\ndata: two\r\n\r\ndata:x\n\n')).toEqual([
      { event: 'message', data: 'one\ntwo' },
      { event: 'message', data: 'x' },
    ]);
  });
});
