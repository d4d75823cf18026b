import { describe, expect, it } from 'vitest';
import { INSTALL_SERVICES, requireTool, runTool } from './tools.js';

describe('missing test tools name their fix', () => {
  it('runTool turns spawn ENOENT into the install command', async () => {
    await expect(runTool('atoll-no-such-tool-install-db', ['--help'])).rejects.toThrow(
      `atoll-no-such-tool-install-db is not installed: run \`${INSTALL_SERVICES}\``,
    );
  });

  it('runTool passes other failures through unchanged', async () => {
    await expect(runTool('sh', ['-c', 'exit 3'])).rejects.toMatchObject({ code: 3 });
    expect((await runTool('sh', ['-c', 'echo ok'])).stdout).toBe('ok\n');
  });

  it('requireTool accepts what is on PATH and refuses what is not', () => {
    expect(() => requireTool('sh')).not.toThrow();
    expect(() => requireTool('atoll-no-such-server')).toThrow(INSTALL_SERVICES);
  });
});
