import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { NO_WASM_TIER_UP } from './parser-tiering.js';

const undici = createRequire(import.meta.url).resolve('undici');

/** Runs `requests` requests through an undici Pool in a fresh Node, tracing WebAssembly compilation. */
function compilations(requests: number, flag?: string): string {
  const script = `
    import v8 from 'node:v8';
    import http from 'node:http';
    if (process.env.FLAG) v8.setFlagsFromString(process.env.FLAG);
    const { Pool } = await import(process.env.UNDICI);
    const server = http.createServer((req, res) => { res.setHeader('x-a', '1'); res.write('a'); res.end('b'); });
    await new Promise((r) => server.listen(0, '127.0.0.1', r));
    const pool = new Pool('http://127.0.0.1:' + server.address().port);
    for (let i = 0; i < ${requests}; i++) await (await pool.request({ path: '/', method: 'GET' })).body.text();
    await new Promise((r) => setTimeout(r, 500)); // background compilation
    process.exit(0);`;
  return execFileSync(process.execPath, ['--trace-wasm-compilation-times', '--input-type=module', '-e', script], {
    env: { ...process.env, UNDICI: undici, FLAG: flag ?? '' },
    encoding: 'utf8',
    timeout: 60_000,
  });
}

describe("the gateway's HTTP parser stays on the baseline compiler", () => {
  it('V8 recompiles llhttp with its optimising compiler once hot, unless told not to', () => {
    // The control: without the flag this Node does tier up (else the second assertion proves nothing).
    expect(compilations(600)).toMatch(/using TurboFan/);
    const kept = compilations(600, NO_WASM_TIER_UP);
    expect(kept).toMatch(/using Liftoff/);
    expect(kept).not.toMatch(/using TurboFan/);
  });
});
