import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { ensureControlPlaneBinaries, packageRoot } from '../../src/dev/binaries.js';
import type { DevState } from './state.js';

let proc: ChildProcess | undefined;
let dir: string | undefined;

/**
 * Starts `atoll dev` exactly as `npm start` does (from the compiled dist/),
 * once for all integration suites, and hands its state file to the tests.
 * Suites that need to break things (restart the API server, kill the
 * controller, take the KMS down) start their own control plane instead.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  ensureControlPlaneBinaries();
  const root = packageRoot();
  if (!existsSync(path.join(root, 'dist', 'main.js')))
    throw new Error('dist/main.js is missing: run `npm run build` (npm test does it for you)');
  dir = mkdtempSync(path.join(tmpdir(), 'atoll-it-'));
  proc = spawn(process.execPath, [path.join(root, 'dist', 'main.js'), 'dev', '--dir', dir], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, ATOLL_LOG_LEVEL: 'debug' },
  });
  let stderr = '';
  proc.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
  const stateFile = path.join(dir, 'state.json');
  const deadline = Date.now() + 180_000;
  while (!existsSync(stateFile)) {
    if (proc.exitCode !== null) throw new Error(`atoll dev exited early:\n${stderr}`);
    if (Date.now() > deadline) throw new Error(`atoll dev did not become ready:\n${stderr}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  const state = JSON.parse(readFileSync(stateFile, 'utf8')) as DevState;
  project.provide('atoll', { ...state, dir });
  return async () => {
    if (proc && proc.exitCode === null) {
      const exited = new Promise((r) => proc!.once('exit', r));
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc?.kill('SIGKILL'), 20_000);
      await exited;
      clearTimeout(t);
    }
    if (dir && !process.env.ATOLL_KEEP_TEST_STATE) rmSync(dir, { recursive: true, force: true });
  };
}
