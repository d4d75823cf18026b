import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import path from 'node:path';
import { packageRoot } from '../../../src/dev/binaries.js';
import { freePort, waitFor } from '../../../src/dev/ports.js';

/** A toxic as Toxiproxy's HTTP API takes it (https://github.com/Shopify/toxiproxy#toxics). */
export interface Toxic {
  type: 'latency' | 'timeout' | 'reset_peer' | 'bandwidth' | 'slow_close' | 'limit_data';
  stream?: 'upstream' | 'downstream';
  attributes: Record<string, number>;
}

export interface Proxy {
  name: string;
  /** `127.0.0.1:<port>` clients dial instead of the upstream. */
  listen: string;
}

/**
 * toxiproxy-server built by hack/build-toxiproxy.sh, on a loopback port, and
 * the few calls of its HTTP API the chaos suite uses: proxies between the
 * operator and the API server or the KMS, toxics on them, and switching them
 * off (refused connections) and on.
 */
export class Toxiproxy {
  private constructor(
    private readonly api: string,
    private readonly proc: ChildProcess,
  ) {}

  static async start(logFile: string): Promise<Toxiproxy> {
    const build = spawnSync('bash', [path.join(packageRoot(), 'hack', 'build-toxiproxy.sh')], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const bin = build.stdout.trim().split('\n').pop();
    if (build.status !== 0 || !bin)
      throw new Error(
        'toxiproxy-server could not be built: run `bash hack/build-toxiproxy.sh` (needs Go and the Go module proxy)',
      );
    const port = await freePort();
    // Its default level traces every byte it forwards; connection-level events are enough.
    const proc = spawn(bin, ['-host', '127.0.0.1', '-port', String(port)], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, LOG_LEVEL: 'info' },
    });
    const log = createWriteStream(logFile, { flags: 'a' });
    proc.stdout?.pipe(log);
    proc.stderr?.pipe(log);
    process.once('exit', () => proc.kill('SIGKILL'));
    const api = `http://127.0.0.1:${port}`;
    await waitFor('toxiproxy-server', async () => (await fetch(`${api}/version`)).ok, 30_000);
    return new Toxiproxy(api, proc);
  }

  /**
   * One API call. Toxiproxy answers 503 when closing a proxy's links takes too
   * long (a peer that does not read); the change is retried for up to a minute
   * so a slow close does not end the run.
   */
  private async call(method: string, route: string, body?: unknown): Promise<unknown> {
    const giveUpAt = Date.now() + 60_000;
    for (let attempt = 1; ; attempt++) {
      const res = await fetch(`${this.api}${route}`, {
        method,
        ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
      });
      const text = await res.text();
      if (res.ok) return text ? JSON.parse(text) : undefined;
      if (res.status !== 503 || Date.now() > giveUpAt)
        throw new Error(`toxiproxy ${method} ${route}: HTTP ${res.status} ${text} (attempt ${attempt})`);
      await new Promise((r) => setTimeout(r, Math.min(5_000, 250 * 2 ** attempt)));
    }
  }

  /** A proxy on a fresh loopback port in front of `upstream` (host:port). */
  async proxy(name: string, upstream: string): Promise<Proxy> {
    const listen = `127.0.0.1:${await freePort()}`;
    await this.call('POST', '/proxies', { name, listen, upstream, enabled: true });
    return { name, listen };
  }

  async addToxic(proxy: string, name: string, toxic: Toxic): Promise<void> {
    await this.call('POST', `/proxies/${proxy}/toxics`, {
      name,
      type: toxic.type,
      stream: toxic.stream ?? 'downstream',
      toxicity: 1,
      attributes: toxic.attributes,
    });
  }

  async removeToxic(proxy: string, name: string): Promise<void> {
    await this.call('DELETE', `/proxies/${proxy}/toxics/${name}`);
  }

  /** Disabled: every open connection is closed and new ones are refused. */
  async setEnabled(proxy: string, enabled: boolean): Promise<void> {
    await this.call('POST', `/proxies/${proxy}`, { enabled });
  }

  /** Back to a clean pass-through: every proxy enabled, no toxics. */
  async reset(): Promise<void> {
    await this.call('POST', '/reset');
  }

  async stop(): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    const exited = new Promise((r) => this.proc.once('exit', r));
    this.proc.kill('SIGTERM');
    await exited;
  }
}
