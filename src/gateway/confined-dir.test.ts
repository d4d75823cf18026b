import { mkdirSync, mkdtempSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { openConfinedChild, openConfinedRoot, SymlinkRefused } from './confined-dir.js';

describe('confined directories', () => {
  it('creates and opens a real child directory and works through its descriptor', async () => {
    const base = mkdtempSync(path.join(tmpdir(), 'atoll-confined-'));
    const root = await openConfinedRoot(base);
    const child = await openConfinedChild(root, 'db', path.join(base, 'db'));
    writeFileSync(path.join(child.path, 'f'), 'x');
    await child.close();
    await root.close();
    expect(readdirSync(path.join(base, 'db'))).toEqual(['f']);
  });

  it('refuses a symbolic link in place of the child, naming it, and touches nothing behind it', async () => {
    const base = mkdtempSync(path.join(tmpdir(), 'atoll-confined-'));
    const elsewhere = mkdtempSync(path.join(tmpdir(), 'atoll-elsewhere-'));
    symlinkSync(elsewhere, path.join(base, 'db'));
    const root = await openConfinedRoot(base);
    await expect(openConfinedChild(root, 'db', path.join(base, 'db'))).rejects.toEqual(
      new SymlinkRefused(path.join(base, 'db')),
    );
    await root.close();
    expect(readdirSync(elsewhere)).toEqual([]);
  });

  it('refuses a link to a file too, and names that are not one path component', async () => {
    const base = mkdtempSync(path.join(tmpdir(), 'atoll-confined-'));
    mkdirSync(path.join(base, 'real'));
    writeFileSync(path.join(base, 'file'), 'x');
    symlinkSync(path.join(base, 'file'), path.join(base, 'db'));
    const root = await openConfinedRoot(base);
    await expect(openConfinedChild(root, 'db', 'db')).rejects.toBeInstanceOf(SymlinkRefused);
    await expect(openConfinedChild(root, '..', '..')).rejects.toThrow('single path component');
    await expect(openConfinedChild(root, 'real/../x', 'x')).rejects.toThrow('single path component');
    await root.close();
  });
});
