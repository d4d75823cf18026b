import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { open, rename, unlink } from 'node:fs/promises';
import path from 'node:path';

/**
 * Replaces `file` with `content` atomically: a temporary file in the same
 * directory is written, fsynced and renamed over the target, and the
 * directory fsynced, so a reader sees the old value or the new one, never a
 * torn or empty file, even across a crash. Returns false (and writes
 * nothing) when the file already holds exactly `content`. Never follows a
 * link at `file`: one is read as absent and replaced by the rename.
 */
export async function writeFileAtomic(file: string, content: string, mode: number): Promise<boolean> {
  const current = await readRegularFile(file);
  if (current === content) return false;
  const dir = path.dirname(file);
  const temp = path.join(dir, `.${path.basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  const handle = await open(
    temp,
    constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
    mode,
  );
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

/** The content of `file` if it is a regular file (not a link, FIFO or device), else undefined. */
async function readRegularFile(file: string): Promise<string | undefined> {
  const handle = await open(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK).catch(
    () => undefined,
  );
  if (handle === undefined) return undefined;
  try {
    if (!(await handle.stat()).isFile()) return undefined;
    return await handle.readFile('utf8');
  } finally {
    await handle.close();
  }
}

async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    await handle.sync();
  } catch {
    // Some filesystems (and platforms) cannot fsync a directory; the rename is still atomic.
  } finally {
    await handle.close();
  }
}
