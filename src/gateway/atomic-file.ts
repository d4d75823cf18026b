import { randomBytes } from 'node:crypto';
import { open, readFile, rename, unlink } from 'node:fs/promises';
import path from 'node:path';

/**
 * Replaces `file` with `content` atomically: a temporary file in the same
 * directory is written, fsynced and renamed over the target, and the
 * directory fsynced, so a reader sees the old value or the new one, never a
 * torn or empty file, even across a crash. Returns false (and writes
 * nothing) when the file already holds exactly `content`.
 */
export async function writeFileAtomic(file: string, content: string, mode: number): Promise<boolean> {
  const current = await readFile(file, 'utf8').catch(() => undefined);
  if (current === content) return false;
  const dir = path.dirname(file);
  const temp = path.join(dir, `.${path.basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  const handle = await open(temp, 'wx', mode);
  try {
    await handle.writeFile(content, 'utf8');
    await handle.sync();
  } catch (err) {
    await handle.close();
    await unlink(temp).catch(() => undefined);
    throw err;
  }
  await handle.close();
  try {
    await rename(temp, file);
  } catch (err) {
    await unlink(temp).catch(() => undefined);
    throw err;
  }
  await syncDirectory(dir);
  return true;
}

async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } catch {
    // Some filesystems (and platforms) cannot fsync a directory; the rename is still atomic.
  } finally {
    await handle.close();
  }
}
