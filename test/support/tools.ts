import { execFile } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';

/** The one command that installs every service the tests start (npm test's pretest runs it). */
export const INSTALL_SERVICES = 'sudo bash hack/install-services.sh';

function missingTool(command: string): Error {
  const err = new Error(
    `${path.basename(command)} is not installed: run \`${INSTALL_SERVICES}\` (npm test runs it first when it can)`,
  );
  err.name = 'MissingToolError';
  return err;
}

/** Throws a message naming the fix when `command` is neither a path nor on PATH. */
export function requireTool(command: string): void {
  const candidates = command.includes('/')
    ? [command]
    : (process.env.PATH ?? '')
        .split(path.delimiter)
        .filter(Boolean)
        .map((d) => path.join(d, command));
  for (const c of candidates) {
    try {
      accessSync(c, constants.X_OK);
      return;
    } catch {
      /* next */
    }
  }
  throw missingTool(command);
}

const execFileAsync = promisify(execFile);

/** execFile, with `spawn X ENOENT` turned into a message that names the install command. */
export async function runTool(
  command: string,
  args: string[],
  opts: Parameters<typeof execFileAsync>[2] = {},
): Promise<{ stdout: string; stderr: string }> {
  try {
    const r = await execFileAsync(command, args, { encoding: 'utf8', ...opts });
    return { stdout: String(r.stdout), stderr: String(r.stderr) };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' && (err as { path?: string }).path === command)
      throw missingTool(command);
    throw err;
  }
}
