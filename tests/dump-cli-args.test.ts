// The command lines `receive --dump` runs without commander (main.ts plainDumpArgs): the plain forms are
// recognized, everything else is left to commander (which prints help, usage errors and suggestions).
import { describe, expect, it } from 'vitest';
import { plainDumpArgs } from '../src/cli/main.js';
import { cli } from './helpers/cli.js';

describe('receive --dump command lines parsed without commander', () => {
  it('recognizes the plain forms', () => {
    expect(plainDumpArgs(['receive', '--dump'])).toEqual({});
    expect(plainDumpArgs(['receive', '--dump', '-f', 'x.stream'])).toEqual({ file: 'x.stream' });
    expect(plainDumpArgs(['receive', '-f', 'x', '--dump', '-e', '--json'])).toEqual({ file: 'x', e: true, json: true });
    expect(plainDumpArgs(['receive', '--file=a b', '--dump', '--ignore-unknown', '-q', '--no-progress']))
      .toEqual({ file: 'a b', ignoreUnknown: true, quiet: true, progress: false });
  });

  it('leaves everything else to commander', () => {
    for (const args of [
      ['receive'], ['receive', '/mnt'], ['receive', '--dump', '/mnt'], ['send', '--dump'], ['receive', '--dump', '--help'],
      ['receive', '--dump', '--progress'], ['receive', '--dump', '-f'], ['receive', '--dump', '-f', '-'],
      ['receive', '--dump', '-f', 'a', '-f', 'b'], ['receive', '--dump', '--dump'], ['receive', '--dump', '-ef', 'x'],
      ['receive', '--dump', '--jsn'], ['receive', '--dump', '--', '-f'], ['--dump', 'receive'],
    ]) {
      expect(plainDumpArgs(args)).toBeUndefined();
    }
  });

  it('both ways give the same results through the CLI', () => {
    const typo = cli(['receive', '--dump', '--jsn']);
    expect(typo.status).toBe(1);
    expect(typo.stderr).toMatch(/^ERROR: unknown option '--jsn'/);
    const dest = cli(['receive', '--dump', '/mnt']);
    expect(dest.stderr).toBe('ERROR: receive: --dump takes no DEST argument\n');
    const missing = cli(['receive', '--dump', '-f', '/nonexistent/x']);
    expect(missing.status).toBe(1);
    expect(missing.stderr).toBe('ERROR: cannot open /nonexistent/x: No such file or directory\n');
  });
});
