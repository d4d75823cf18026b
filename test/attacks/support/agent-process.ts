import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { packageRoot } from '../../../src/dev/binaries.js';
import { devState } from '../../support/cluster.js';

export interface AgentRun {
  /** Exit code; null when the test stopped it (SIGTERM) after `until` held. */
  code: number | null;
  stderr: string;
  stdout: string;
  dir: string;
  /** Every path under dir (relative), links included, sorted. */
  files(): string[];
}

/**
 * Runs the real `atoll agent` (compiled dist/) against the dev gateway over
 * HTTPS, verified with the dev CA. Resolves when it exits by itself, or,
 * with `until`, once `until(dir)` holds (it is then stopped with SIGTERM).
 */
export async function runAgentProcess(opts: {
  token: string;
  connections: string[];
  dir?: string;
  gatewayURL?: string;
  caFile?: string | null;
  until?: (dir: string) => boolean;
  timeoutMs?: number;
}): Promise<AgentRun> {
  const work = mkdtempSync(path.join(tmpdir(), 'atoll-agent-'));
  const tokenFile = path.join(work, 'token');
  writeFileSync(tokenFile, opts.token, { mode: 0o600 });
  const dir = opts.dir ?? path.join(work, 'credentials');
  const caFile = opts.caFile === undefined ? devState().gateway.caFile : opts.caFile;
  const args = [
    path.join(packageRoot(), 'dist', 'main.js'),
    'agent',
    '--gateway',
    opts.gatewayURL ?? devState().gateway.url,
    '--token-file',
    tokenFile,
    '--dir',
    dir,
    ...(caFile === null ? [] : ['--ca-file', caFile]),
    ...opts.connections.flatMap((c) => ['--connection', c]),
  ];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  let stdout = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const deadline = Date.now() + (opts.timeoutMs ?? 30_000);
  let stopped = false;
  while (child.exitCode === null && child.signalCode === null) {
    if (opts.until?.(dir)) {
      stopped = true;
      child.kill('SIGTERM');
      break;
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`atoll agent neither exited nor reached the expected state in time:\n${stderr}${stdout}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  const code = await exited;
  return { code: stopped ? null : code, stderr, stdout, dir, files: () => listAll(dir) };
}

function listAll(dir: string, prefix = ''): string[] {
  let entries;
  try {
    entries = readdirSync(path.join(dir, prefix), { withFileTypes: true });
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const e of entries) {
    const rel = path.join(prefix, e.name);
    out.push(rel);
    if (e.isDirectory()) out.push(...listAll(dir, rel));
  }
  return out.sort();
}
