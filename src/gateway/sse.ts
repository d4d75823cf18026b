/** One Server-Sent Event (only the fields the gateway uses). */
export interface ServerSentEvent {
  event: string;
  id?: string;
  data: string;
}

/**
 * Incremental parser of a `text/event-stream` body (WHATWG HTML §9.2):
 * feed it chunks as they arrive, it returns the complete events. Comments
 * (keep-alives) and unknown fields are ignored; an event without `event:`
 * is a `message`.
 */
export class SseParser {
  #buffer = '';
  #event = '';
  #id: string | undefined;
  #data: string[] = [];

  push(chunk: string): ServerSentEvent[] {
    this.#buffer += chunk;
    const events: ServerSentEvent[] = [];
    let nl: number;
    while ((nl = this.#buffer.search(/\r\n|\r|\n/)) >= 0) {
      const line = this.#buffer.slice(0, nl);
      const width = this.#buffer.startsWith('\r\n', nl) ? 2 : 1;
      this.#buffer = this.#buffer.slice(nl + width);
      const event = this.#line(line);
      if (event !== undefined) events.push(event);
    }
    return events;
  }

  #line(line: string): ServerSentEvent | undefined {
    if (line === '') {
      if (this.#data.length === 0) {
        this.#event = '';
        return undefined;
      }
      const event: ServerSentEvent = {
        event: this.#event || 'message',
        data: this.#data.join('\n'),
        ...(this.#id === undefined ? {} : { id: this.#id }),
      };
      this.#event = '';
      this.#data = [];
      return event;
    }
    if (line.startsWith(':')) return undefined;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') this.#event = value;
    else if (field === 'data') this.#data.push(value);
    else if (field === 'id') this.#id = value;
    return undefined;
  }
}
