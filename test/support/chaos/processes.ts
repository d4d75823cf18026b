import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, readFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { packageRoot } from '../../../src/dev/binaries.js';

/** One run of a process, from spawn to exit, with its own log file. */
export interface Incarnation {
  /** `<name>#<n>`: which process wrote which log line. */
  id: string;
  logFile: string;
  startedAt: number;
  /** When it exited (or was SIGKILLed by the suite), if it did. */
  endedAt?: number;
  killedBySuite: boolean;
  exit?: { code: number | null; signal: NodeJS.Signals | null };
}

const allChildren = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of allChildren) c.kill('SIGKILL');
});

/**
 * `node dist/main.js <args>` kept running the way a kubelet keeps a container
 * running: when it exits (killed by the suite, or exiting on its own after
 * losing leadership) it is started again after `restartDelayMs`. Each run is
 * an Incarnation whose stdout/stderr go to `<dir>/<name>.<n>.log`.
 */
export class SupervisedProcess {
  readonly incarnations: Incarnation[] = [];
  private child: ChildProcess | undefined;
  private stopped = false;
  private restartTimer: NodeJS.Timeout | undefined;

  constructor(
    readonly name: string,
    private readonly args: string[],
    private readonly env: NodeJS.ProcessEnv,
    private readonly dir: string,
    private readonly restartDelayMs = 1_000,
  ) {}

  start(): void {
    if (this.stopped) return;
    const n = this.incarnations.length;
    const inc: Incarnation = {
      id: `${this.name}#${n}`,
      logFile: path.join(this.dir, `${this.name}.${n}.log`),
      startedAt: Date.now(),
      killedBySuite: false,
    };
    const log = createWriteStream(inc.logFile, { flags: 'a' });
    const child = spawn(process.execPath, [path.join(packageRoot(), 'dist', 'main.js'), ...this.args], {
      env: this.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout?.pipe(log);
    child.stderr?.pipe(log);
    allChildren.add(child);
    this.incarnations.push(inc);
    this.child = child;
    child.once('exit', (code, signal) => {
      allChildren.delete(child);
      inc.endedAt ??= Date.now();
      inc.exit = { code, signal };
      if (this.child === child) this.child = undefined;
      if (!this.stopped) this.restartTimer = setTimeout(() => this.start(), this.restartDelayMs);
    });
  }

  get current(): Incarnation | undefined {
    return this.child ? this.incarnations.at(-1) : undefined;
  }

  /** SIGKILL: no shutdown hook runs, the Lease is not released, a write may be cut in half. */
  async kill(): Promise<void> {
    const child = this.child;
    const inc = this.current;
    if (!child || !inc) return;
    const exited = new Promise((r) => child.once('exit', r));
    inc.endedAt = Date.now();
    inc.killedBySuite = true;
    child.kill('SIGKILL');
    await exited;
  }

  /** Stops for good (SIGTERM, then SIGKILL after 10 s). */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.restartTimer);
    const child = this.child;
    if (!child) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(t);
  }

  /** The JSON log lines of every incarnation, each tagged with it. */
  logLines(): Array<{ inc: Incarnation; line: Record<string, unknown> }> {
    const out: Array<{ inc: Incarnation; line: Record<string, unknown> }> = [];
    for (const inc of this.incarnations) {
      if (!existsSync(inc.logFile)) continue;
      for (const raw of readFileSync(inc.logFile, 'utf8').split('\n')) {
        if (!raw.startsWith('{')) continue;
        try {
          out.push({ inc, line: JSON.parse(raw) as Record<string, unknown> });
        } catch {
          /* a line cut by SIGKILL */
        }
      }
    }
    return out;
  }
}
