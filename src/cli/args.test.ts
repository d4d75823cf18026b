import { describe, expect, it } from 'vitest';
import { flag, flags, helpText, keyValues, parseCommandArgs, UsageError, wantsHelp } from './args.js';
import { COMMANDS } from './commands.js';

describe('the CLI flag table', () => {
  it('help lists every flag of every command, from the same table the parser uses', () => {
    for (const spec of Object.values(COMMANDS)) {
      const text = helpText(spec);
      expect(text.startsWith(`Usage: atoll ${spec.name}`)).toBe(true);
      for (const f of spec.flags) expect(text, `${spec.name} --${f.name}`).toContain(`--${f.name}`);
      expect(text).toContain('-h, --help');
    }
  });

  it('parses --name value, --name=value, -n value and repeatable flags', () => {
    const args = parseCommandArgs(COMMANDS.seal, [
      'conn',
      '--type',
      'http-api',
      '-n',
      'acme',
      '--set=baseURL=https://x.example',
      '--set',
      'auth=bearer',
      '--field',
      'token',
    ]);
    expect(args.positional).toEqual(['conn']);
    expect(flag(args, 'type')).toBe('http-api');
    expect(flag(args, 'namespace')).toBe('acme');
    expect(keyValues(args, 'set')).toEqual([
      ['baseURL', 'https://x.example'],
      ['auth', 'bearer'],
    ]);
    expect(flags(args, 'field')).toEqual(['token']);
  });

  it('refuses unknown flags, a value-less --set pair and a single-valued flag given twice', () => {
    expect(() => parseCommandArgs(COMMANDS.status, ['--namspace', 'x'])).toThrow(UsageError);
    expect(() => parseCommandArgs(COMMANDS.status, ['--namspace', 'x'])).toThrow(
      /'--namspace'[\s\S]*atoll status --help/,
    );
    expect(() => keyValues(parseCommandArgs(COMMANDS.connect, ['c', '--set', 'novalue']), 'set')).toThrow(
      '--set novalue: expected key=value',
    );
    expect(() => parseCommandArgs(COMMANDS.seal, ['c', '--type', 'a', '--type', 'b'])).toThrow(
      '--type was given 2 times',
    );
    expect(() => parseCommandArgs(COMMANDS.agent, ['--once=yes'])).toThrow(UsageError);
  });

  it('sees --help and -h anywhere before a -- terminator', () => {
    expect(wantsHelp(['x', '--set', 'a=b', '-h'])).toBe(true);
    expect(wantsHelp(['--help'])).toBe(true);
    expect(wantsHelp(['x', '--', '--help'])).toBe(false);
    expect(wantsHelp(['x', '--set', 'a=b'])).toBe(false);
  });
});
