import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { writeFileAtomic } from './atomic-file.js';

describe('writeFileAtomic', () => {
  let dir = '';
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('replaces the file with the given mode, leaves no temporary files and skips identical content', async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'atoll-atomic-'));
    const file = path.join(dir, 'password');
    expect(await writeFileAtomic(file, 'one', 0o400)).toBe(true);
    expect(readFileSync(file, 'utf8')).toBe('one');
    expect(statSync(file).mode & 0o777).toBe(0o400);
    const inode = statSync(file).ino;
    expect(await writeFileAtomic(file, 'one', 0o400)).toBe(false);
    expect(statSync(file).ino).toBe(inode);
    expect(await writeFileAtomic(file, 'two', 0o400)).toBe(true);
    expect(readFileSync(file, 'utf8')).toBe('two');
    expect(statSync(file).ino).not.toBe(inode);
    expect(readdirSync(dir)).toEqual(['password']);
  });
});
