/**
 * Runs the Argo CD health checks (hack/argocd/*.lua) for real under Lua 5.1,
 * the language version of gopher-lua that Argo CD embeds, with `obj` set as a
 * global table exactly as Argo CD sets it.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { beforeAll, describe, expect, it } from 'vitest';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const LUA = 'lua5.1';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** A Lua 5.1 literal for a JSON value: objects and arrays become tables (arrays 1-based), null becomes nil. */
function toLua(value: Json): string {
  if (value === null) return 'nil';
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new Error('non-finite numbers have no JSON form');
    return String(value);
  }
  if (typeof value === 'string') return luaString(value);
  if (Array.isArray(value)) return `{${value.map(toLua).join(', ')}}`;
  return `{${Object.entries(value)
    .map(([k, v]) => `[${luaString(k)}] = ${toLua(v)}`)
    .join(', ')}}`;
}

/** A double-quoted Lua string; every byte outside printable ASCII becomes a decimal escape. */
function luaString(s: string): string {
  let out = '"';
  for (const byte of Buffer.from(s, 'utf8')) {
    if (byte === 0x22) out += '\\"';
    else if (byte === 0x5c) out += '\\\\';
    else if (byte >= 0x20 && byte < 0x7f) out += String.fromCharCode(byte);
    else out += `\\${byte}`;
  }
  return `${out}"`;
}

interface Health {
  status: string;
  message: string;
}

/** Evaluates a health script with `obj` bound, as Argo CD does, and returns its `hs` table. */
function runHealth(obj: Json): Health {
  const program = [
    `obj = ${toLua(obj)}`,
    `local hs = dofile(${luaString(path.join(root, 'hack', 'argocd', 'health.lua'))})`,
    'io.write(tostring(hs.status), "\\n", tostring(hs.message))',
  ].join('\n');
  const r = spawnSync(LUA, ['-'], { input: program, encoding: 'utf8' });
  if (r.error) throw new Error(`${LUA} is needed for this test: apt-get install -y lua5.1`, { cause: r.error });
  if (r.status !== 0) throw new Error(`lua exited with ${r.status}: ${r.stderr}`);
  const [status = '', ...message] = r.stdout.split('\n');
  return { status, message: message.join('\n') };
}

function condition(type: string, status: string, reason: string, message = `${type} is ${status}`): Json {
  return { type, status, reason, message, observedGeneration: 3, lastTransitionTime: '2025-01-01T00:00:00Z' };
}

function resource(kind: string, generation: number, status: Json | undefined): Json {
  const obj: { [key: string]: Json } = {
    apiVersion: 'atoll.dev/v1alpha1',
    kind,
    metadata: { name: 'x', namespace: 'acme', generation, finalizers: ['atoll.dev/finalizer'] },
    spec: {},
  };
  if (status !== undefined) obj.status = status;
  return obj;
}

const kinds = [
  {
    kind: 'Workspace',
    specific: ['RBACReady', 'EncryptionReady'],
    terminal: 'DuplicateWorkspace',
    transient: 'KMSUnavailable',
  },
  {
    kind: 'ExternalConnection',
    specific: ['CredentialsSealed', 'Reachable', 'Authenticated'],
    terminal: 'CiphertextRejected',
    transient: 'Unreachable',
  },
] as const;

beforeAll(() => {
  const r = spawnSync(LUA, ['-v'], { encoding: 'utf8' });
  if (r.error) throw new Error(`${LUA} is needed for this test: apt-get install -y lua5.1`, { cause: r.error });
});

describe('JSON to Lua table conversion', () => {
  it('round-trips strings with quotes, backslashes, newlines and non-ASCII through Lua', () => {
    const tricky = 'say "hi" \\ then\nnew line, tab\t, ümlaut, 🔑, ]] [[';
    const obj = resource('Workspace', 1, {
      observedGeneration: 1,
      conditions: [condition('Ready', 'True', 'Succeeded', tricky)],
    });
    expect(runHealth(obj)).toEqual({ status: 'Healthy', message: tricky });
  });

  it('renders arrays 1-based, null as nil and nested objects as keyed tables', () => {
    expect(toLua({ a: [1, 'b', null], 'k-1': { t: true } })).toBe('{["a"] = {1, "b", nil}, ["k-1"] = {["t"] = true}}');
  });
});

for (const k of kinds) {
  describe(`Argo CD health of a ${k.kind}`, () => {
    const allTrue = (generation: number, observed: number): Json =>
      resource(k.kind, generation, {
        observedGeneration: observed,
        conditions: [
          condition('Ready', 'True', 'Succeeded', 'All checks passed'),
          ...k.specific.map((t) => condition(t, 'True', 'Succeeded')),
        ],
      });

    it('is Healthy when Ready=True for the current generation', () => {
      expect(runHealth(allTrue(3, 3))).toEqual({ status: 'Healthy', message: 'All checks passed' });
    });

    it('is Progressing when the status was written for an older generation, even if Ready=True', () => {
      const h = runHealth(allTrue(4, 3));
      expect(h.status).toBe('Progressing');
      expect(h.message).toContain('generation 4');
    });

    it('is Progressing without a status, and without conditions', () => {
      expect(runHealth(resource(k.kind, 1, undefined)).status).toBe('Progressing');
      expect(runHealth(resource(k.kind, 1, { observedGeneration: 1 })).status).toBe('Progressing');
    });

    it('is Progressing while not Ready for a reason that retrying can fix', () => {
      const obj = resource(k.kind, 2, {
        observedGeneration: 2,
        conditions: [
          condition('Ready', 'False', k.transient, 'waiting'),
          condition(k.specific[0], 'False', k.transient, 'waiting'),
        ],
      });
      expect(runHealth(obj)).toEqual({ status: 'Progressing', message: `${k.transient}: waiting` });
    });

    it('is Degraded on a terminal reason, naming it', () => {
      const obj = resource(k.kind, 2, {
        observedGeneration: 2,
        conditions: [
          condition('Ready', 'False', k.terminal, 'fix the spec'),
          condition(k.specific[0], 'False', k.terminal, 'fix the spec'),
        ],
      });
      expect(runHealth(obj)).toEqual({ status: 'Degraded', message: `${k.terminal}: fix the spec` });
    });

    it('is Degraded when only a specific condition carries the terminal reason', () => {
      const obj = resource(k.kind, 2, {
        observedGeneration: 2,
        conditions: [
          condition('Ready', 'False', 'Reconciling', 'see conditions'),
          condition(k.specific[0], 'False', 'PolicyViolation', 'not allowed'),
        ],
      });
      expect(runHealth(obj)).toEqual({ status: 'Degraded', message: 'PolicyViolation: not allowed' });
    });

    it('is Progressing, not Degraded, when a terminal reason belongs to an older generation', () => {
      const obj = resource(k.kind, 5, {
        observedGeneration: 4,
        conditions: [condition('Ready', 'False', k.terminal, 'old')],
      });
      expect(runHealth(obj).status).toBe('Progressing');
    });

    it('is Progressing while being deleted', () => {
      const obj = allTrue(3, 3) as { metadata: { [key: string]: Json } };
      obj.metadata.deletionTimestamp = '2025-01-01T00:00:00Z';
      expect(runHealth(obj as unknown as Json)).toEqual({
        status: 'Progressing',
        message: `${k.kind} is being deleted`,
      });
    });

    it('is what config/argocd/argocd-cm-patch.yaml installs into Argo CD', () => {
      const patch = parse(readFileSync(path.join(root, 'config', 'argocd', 'argocd-cm-patch.yaml'), 'utf8')) as {
        data: Record<string, string>;
      };
      expect(patch.data[`resource.customizations.health.atoll.dev_${k.kind}`]).toBe(
        readFileSync(path.join(root, 'hack', 'argocd', 'health.lua'), 'utf8'),
      );
    });
  });
}
