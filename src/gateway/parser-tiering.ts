import { setFlagsFromString } from 'node:v8';

/** Far beyond any function's use: V8 counts down from it before recompiling a WebAssembly function. */
const NEVER = 2_000_000_000;

/**
 * Keeps undici's HTTP parser (llhttp, compiled to WebAssembly) on V8's
 * baseline compiler. Once the parser is hot, V8 recompiles its one very
 * large function with the optimising compiler: a ~35 MiB transient of native
 * memory, the highest RSS of the gateway's life (ADR 0036). The baseline code
 * cost no measurable CPU per proxied request (docs/benchmarks.md).
 *
 * A tiering budget no function reaches, rather than `--liftoff-only`, so that
 * a function the baseline compiler cannot handle still compiles instead of
 * aborting the process. Node refuses either flag in NODE_OPTIONS; call this
 * at the start of a gateway process, before its first HTTP request (undici
 * compiles the parser on its first connection, the KMS client's included).
 */
export function keepHttpParserOnBaselineCompiler(): void {
  setFlagsFromString(`--wasm-tiering-budget=${NEVER}`);
}
