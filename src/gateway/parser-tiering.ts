import { setFlagsFromString } from 'node:v8';

/**
 * Tier up only the WebAssembly function with this index: none has it, so no
 * function is recompiled. (A tiering budget is only a delay: llhttp's large
 * function was recompiled after ~200 responses with one of 2,000,000,000.)
 */
export const NO_WASM_TIER_UP = '--wasm-tier-up-filter=999999999';

/**
 * Keeps undici's HTTP parser (llhttp, compiled to WebAssembly) on V8's
 * baseline compiler. Once the parser is hot, V8 recompiles its one very
 * large function with the optimising compiler: ~30 MiB of compiler memory
 * for a moment, the highest RSS of the gateway's life (ADR 0036). The
 * baseline code cost no measurable CPU per proxied request
 * (docs/benchmarks.md).
 *
 * Not `--liftoff-only`: under it, a function the baseline compiler cannot
 * handle aborts the process instead of compiling with the other tier. Node
 * refuses either flag in NODE_OPTIONS; call this at the start of a gateway
 * process, before its first HTTP request (undici compiles the parser on its
 * first connection, the KMS client's included).
 */
export function keepHttpParserOnBaselineCompiler(): void {
  setFlagsFromString(NO_WASM_TIER_UP);
}
