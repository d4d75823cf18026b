import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { COMMANDS } from '../src/cli/commands.js';
import { ExternalConnections, Namespaces } from '../src/kube/resources.js';
import { atollCli } from './support/cli.js';
import { admin, createWorkspace, devState, kubectl, randomSecret, uniqueName } from './support/cluster.js';

/**
 * The CLI as a newcomer meets it: --help on every subcommand (and nothing
 * else happens), a second `atoll dev` over a running one, a namespace
 * without a Workspace, a typo in --set, no kubeconfig at all.
 */

const atoll = atollCli;

async function clusterAnswers(): Promise<boolean> {
  return (await kubectl(['get', '--raw', '/readyz'])).code === 0;
}

describe('atoll <command> --help', () => {
  for (const spec of Object.values(COMMANDS)) {
    it(`atoll ${spec.name} --help and -h print usage and every flag, and do nothing else`, async () => {
      for (const help of ['--help', '-h']) {
        // Given the running instance's state dir and kubeconfig, a command that ignored --help would act on it.
        const out = await atoll([spec.name, help, '--dir', devState().dir, '--kubeconfig', devState().kubeconfig], {
          timeoutMs: 15_000,
        });
        expect(out.code, out.stderr).toBe(0);
        expect(out.stderr).toBe('');
        expect(out.stdout).toContain(`Usage: atoll ${spec.name}`);
        for (const f of spec.flags) expect(out.stdout).toContain(`--${f.name}`);
        expect(out.stdout).toContain('--help');
        // status did not query: no table.
        expect(out.stdout).not.toMatch(/^NAME\s/m);
      }
    });
  }

  it('left the running `atoll dev` alone (state file present, API server answering)', async () => {
    expect(existsSync(path.join(devState().dir, 'state.json'))).toBe(true);
    expect(await clusterAnswers()).toBe(true);
  });

  it('`atoll help seal` prints the same help; an unknown flag names itself and where to look', async () => {
    const help = await atoll(['help', 'seal']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('--field');
    const typo = await atoll(['status', '--namspace', 'x']);
    expect(typo.code).toBe(64);
    expect(typo.stderr).toContain("'--namspace'");
    expect(typo.stderr).toContain('atoll status --help');
  });
});

describe('atoll dev over a running instance', () => {
  it('refuses, says how to reach or stop it, and leaves it running', async () => {
    const out = await atoll(['dev', '--dir', devState().dir], { timeoutMs: 30_000 });
    expect(out.code).not.toBe(0);
    expect(out.stderr).toContain('already running');
    expect(out.stderr).toContain(`export KUBECONFIG=${devState().kubeconfig}`);
    expect(out.stderr).toMatch(/kill \d+/);
    expect(existsSync(path.join(devState().dir, 'state.json'))).toBe(true);
    expect(await clusterAnswers()).toBe(true);
  });
});

describe('atoll status', () => {
  it('exits 1 for a namespace without a Workspace, naming the fix', async () => {
    const ns = uniqueName('nows');
    await admin().create(Namespaces, { metadata: { name: ns } });
    const out = await atoll(['status', '-n', ns, '--kubeconfig', devState().kubeconfig]);
    expect(out.code).toBe(1);
    expect(out.stderr).toContain(`namespace ${ns} has no Workspace`);
    expect(out.stdout).toBe('');
  });
});

describe('atoll connect without a terminal', () => {
  const ns = uniqueName('conn');
  beforeAll(async () => {
    await createWorkspace(ns);
  });

  it('refuses a mistyped --set before reading anything, listing the known settings', async () => {
    const password = randomSecret('piped');
    const out = await atoll(
      [
        'connect',
        'typo',
        '--type',
        'postgresql',
        '-n',
        ns,
        '--set',
        'hots=db.internal',
        '--set',
        'user=app',
        '--kubeconfig',
        devState().kubeconfig,
      ],
      { input: `${password}\n` },
    );
    expect(out.code).not.toBe(0);
    expect(out.stderr).toContain('spec.settings.hots is not a known setting');
    expect(out.stderr).toMatch(/known settings: .*host/);
    expect(out.stdout + out.stderr).not.toContain(password);
    expect(await admin().tryGet(ExternalConnections, 'typo', ns)).toBeUndefined();
  });

  it('never exits 0 without creating: missing settings on piped input are named', async () => {
    const out = await atoll(
      ['connect', 'piped', '--type', 'postgresql', '-n', ns, '--kubeconfig', devState().kubeconfig],
      { input: 'db.internal\napp\nsecret\n' },
    );
    expect(out.code).not.toBe(0);
    expect(out.stderr).toContain('missing: host, user');
    expect(await admin().tryGet(ExternalConnections, 'piped', ns)).toBeUndefined();
  });

  it('creates with every setting given and the credential on stdin', async () => {
    const out = await atoll(
      [
        'connect',
        'piped-ok',
        '--type',
        'postgresql',
        '-n',
        ns,
        '--set',
        'host=db.internal',
        '--set',
        'user=app',
        '--kubeconfig',
        devState().kubeconfig,
      ],
      { input: `${randomSecret('pg')}\n` },
    );
    expect(out.code, out.stderr).toBe(0);
    expect(await admin().tryGet(ExternalConnections, 'piped-ok', ns)).toBeDefined();
  });
});

describe('atoll without a kubeconfig', () => {
  const home = mkdtempSync(path.join(tmpdir(), 'atoll-home-'));
  const env = { PATH: process.env.PATH, HOME: home };

  it('says none was found and how to get one', async () => {
    const out = await atoll(['status'], { env });
    expect(out.code).toBe(64);
    expect(out.stderr).toContain('no kubeconfig found');
    expect(out.stderr).not.toContain('skipTLSVerify');
  });

  it('names a KUBECONFIG or --kubeconfig file that does not exist', async () => {
    const viaEnv = await atoll(['status'], { env: { ...env, KUBECONFIG: path.join(home, 'nope') } });
    expect(viaEnv.stderr).toContain(`KUBECONFIG names ${path.join(home, 'nope')}, which does not exist`);
    const viaFlag = await atoll(['status', '--kubeconfig', path.join(home, 'nope')], { env });
    expect(viaFlag.stderr).toContain(`--kubeconfig ${path.join(home, 'nope')}: no such file`);
  });
});
