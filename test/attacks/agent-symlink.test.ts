import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomSecret } from '../support/cluster.js';
import { runAgentProcess } from './support/agent-process.js';
import { startRawUpstream, type RawUpstream } from './support/raw-upstream.js';
import { createConnection, createTestType, loopbackWorkspace, workload } from './support/tenant.js';

/**
 * Issue 9, item 4: the credentials volume is shared with the application
 * container. A compromised application plants a symbolic link where the
 * agent will write (`<dir>/<connection>`, or a field file) to make the agent
 * write the credential somewhere it can exfiltrate it, or delete files
 * elsewhere (the agent removes fields that disappeared).
 */
describe("attack: planted symbolic links in the agent's credentials directory", () => {
  let upstream: RawUpstream;
  let token: string;
  const secret = randomSecret('agentfile');

  beforeAll(async () => {
    upstream = await startRawUpstream();
    const type = await createTestType(['files']);
    const ns = await loopbackWorkspace('symlink');
    await createConnection(ns, 'db', type, upstream.url, secret);
    token = await workload(ns, 'app', { read: true });
  });

  afterAll(async () => {
    await upstream?.close();
  });

  /** A directory the attacker wants written into, with files the agent would delete if it followed the link. */
  function victimDirectory(): { dir: string; before: Record<string, string> } {
    const dir = mkdtempSync(path.join(tmpdir(), 'atoll-victim-'));
    writeFileSync(path.join(dir, 'Important'), 'do not delete');
    writeFileSync(path.join(dir, 'apiKey'), 'victim content');
    return { dir, before: snapshot(dir) };
  }

  it('refuses a link at <dir>/<connection>: exits, writes nothing through it, deletes nothing behind it', async () => {
    const victim = victimDirectory();
    const dir = mkdtempSync(path.join(tmpdir(), 'atoll-mount-'));
    symlinkSync(victim.dir, path.join(dir, 'db'));

    const run = await runAgentProcess({ token, connections: ['db'], dir });

    expect(run.code).not.toBe(0);
    expect(run.stderr).toMatch(/symbolic link/);
    expect(run.stderr).not.toContain(secret);
    expect(snapshot(victim.dir)).toEqual(victim.before);
    expect(lstatSync(path.join(dir, 'db')).isSymbolicLink()).toBe(true);
  });

  it('replaces a link planted at a field file instead of writing through it', async () => {
    const victim = victimDirectory();
    const dir = mkdtempSync(path.join(tmpdir(), 'atoll-mount-'));
    mkdirSync(path.join(dir, 'db'));
    symlinkSync(path.join(victim.dir, 'apiKey'), path.join(dir, 'db', 'apiKey'));

    const run = await runAgentProcess({
      token,
      connections: ['db'],
      dir,
      until: (d) => !lstatSync(path.join(d, 'db', 'apiKey')).isSymbolicLink(),
    });

    expect(run.code).toBeNull();
    expect(lstatSync(path.join(dir, 'db', 'apiKey')).isFile()).toBe(true);
    expect(readFileSync(path.join(dir, 'db', 'apiKey'), 'utf8')).toBe(secret);
    expect(snapshot(victim.dir)).toEqual(victim.before);
  });

  it('without a planted link the same agent writes the file (the refusal above is specific)', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'atoll-mount-'));
    const run = await runAgentProcess({
      token,
      connections: ['db'],
      dir,
      until: (d) => existsSync(path.join(d, 'db', 'apiKey')),
    });
    expect(run.code).toBeNull();
    expect(readFileSync(path.join(dir, 'db', 'apiKey'), 'utf8')).toBe(secret);
  });
});

function snapshot(dir: string): Record<string, string> {
  return Object.fromEntries(
    readdirSync(dir)
      .sort()
      .map((name) => [name, readFileSync(path.join(dir, name), 'utf8')]),
  );
}
