import { constants, existsSync } from 'node:fs';
import { lstat, mkdir, open, type FileHandle } from 'node:fs/promises';
import path from 'node:path';

/**
 * A directory opened without following symbolic links, addressed through
 * its open descriptor (`/proc/self/fd/N`, Linux) so later operations cannot
 * be redirected by swapping a path component for a link after the check:
 * this is openat(2) with O_NOFOLLOW, which Node does not expose directly.
 * The credentials volume is shared with the application container; a
 * compromised application must not be able to make the agent write or
 * delete files elsewhere by planting a link at `<dir>/<connection>`.
 */
export interface ConfinedDirectory {
  /** A path through the descriptor; join names onto it, never `..`. */
  readonly path: string;
  close(): Promise<void>;
}

export class SymlinkRefused extends Error {
  constructor(readonly component: string) {
    super(
      `refusing to follow a symbolic link at ${component}: the credentials directory must hold only real directories and files`,
    );
    this.name = 'SymlinkRefused';
  }
}

const DIRECTORY_NO_FOLLOW = constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW;

/** Opens `dir` itself (which must be a real directory, not a link) as the root of confinement. */
export async function openConfinedRoot(dir: string): Promise<ConfinedDirectory> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  return openNoFollow(dir, dir);
}

/** Opens (creating it, mode 0700) the child directory `name` of `parent`, refusing a link there. */
export async function openConfinedChild(
  parent: ConfinedDirectory,
  name: string,
  shownAs: string,
): Promise<ConfinedDirectory> {
  if (name === '' || name === '.' || name === '..' || name.includes('/'))
    throw new Error('a confined child is a single path component');
  const target = path.join(parent.path, name);
  await mkdir(target, { mode: 0o700 }).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'EEXIST') throw err;
  });
  return openNoFollow(target, shownAs);
}

async function openNoFollow(target: string, shownAs: string): Promise<ConfinedDirectory> {
  let handle: FileHandle;
  try {
    handle = await open(target, DIRECTORY_NO_FOLLOW);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ELOOP' || code === 'ENOTDIR') {
      const st = await lstat(target).catch(() => undefined);
      if (st?.isSymbolicLink()) throw new SymlinkRefused(shownAs);
    }
    throw err;
  }
  return {
    // Without /proc (not Linux) the checked path is used: the link check still holds, but not against a swap racing it.
    path: PROC_FD ? `/proc/self/fd/${handle.fd}` : target,
    close: () => handle.close(),
  };
}

const PROC_FD = existsSync('/proc/self/fd');
