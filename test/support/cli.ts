import { execFile } from 'node:child_process';
import path from 'node:path';
import { packageRoot } from '../../src/dev/binaries.js';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  /** Written to stdin, which is then closed (secrets are read from it). */
  input?: string;
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
}

/** Runs a command to its end and resolves with its exit code and output; never rejects on a non-zero exit. */
export function runCommand(cmd: string, args: string[], opts: RunOptions = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = execFile(
      cmd,
      args,
      { timeout: opts.timeoutMs ?? 60_000, env: opts.env ?? process.env },
      (err, stdout, stderr) => {
        const failure = err as (Error & { code?: number; killed?: boolean; signal?: string }) | null;
        // A timeout kills the child without a word on stderr; say so, or the failure reads as a silent exit 1.
        const note = failure?.killed ? `\n[killed with ${failure.signal} after ${opts.timeoutMs ?? 60_000} ms]` : '';
        resolve({ code: failure ? (failure.code ?? 1) : 0, stdout, stderr: stderr + note });
      },
    );
    child.stdin?.end(opts.input ?? '');
  });
}

/** The compiled `atoll` entry point, as the package's bin runs it. */
export const atollMain = (): string => path.join(packageRoot(), 'dist', 'main.js');

/** The `atoll` binary as a user runs it; `kubeconfig`, when given, is passed as the flag. */
export function atollCli(args: string[], opts: RunOptions & { kubeconfig?: string } = {}): Promise<CliResult> {
  const flags = opts.kubeconfig ? ['--kubeconfig', opts.kubeconfig] : [];
  return runCommand(process.execPath, [atollMain(), ...args, ...flags], opts);
}
