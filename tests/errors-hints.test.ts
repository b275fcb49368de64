// The hint texts on their own: when each applies, and that a hint is added once.
import { describe, expect, it } from 'vitest';
import {
  orphanComponent, permissionHint, receiveCommandHint, streamErrorHint, withHint, EMPTY_STREAM_HINT, TRUNCATED_STREAM_HINT,
} from '../src/hints/index.js';

describe('hints', () => {
  it('finds orphan names in any path component, and nothing else', () => {
    expect(orphanComponent(Buffer.from('o257-7-0'))).toBe('o257-7-0');
    expect(orphanComponent(Buffer.from('a/b'), Buffer.from('o263-18-0/sub/z'))).toBe('o263-18-0');
    expect(orphanComponent(Buffer.from('o257-7'), Buffer.from('xo257-7-0'), Buffer.from('o257-7-0x'))).toBeUndefined();
  });

  it('explains ENOENT only when an orphan name is involved', () => {
    const enoent = { errno: 2 };
    expect(receiveCommandHint({ cmd: 'rename', path: Buffer.from('a'), to: Buffer.from('o260-18-0') }, enoent)).toMatch(/^o260-18-0 is a temporary name/);
    expect(receiveCommandHint({ cmd: 'unlink', path: Buffer.from('plain/name') }, enoent)).toBeUndefined();
    expect(receiveCommandHint({ cmd: 'unlink', path: Buffer.from('o1-2-3') }, { errno: 17 })).toBeUndefined();
  });

  it('tells only non-root users about root', () => {
    const expected = process.geteuid?.() === 0 ? undefined : 'send needs root (CAP_SYS_ADMIN): run it as root, e.g. with sudo';
    expect(permissionHint({ errno: 1 }, 'send')).toBe(expected);
    expect(permissionHint({ errno: -13 }, 'send')).toBe(expected);
    expect(permissionHint({ errno: 2 }, 'send')).toBeUndefined();
    expect(permissionHint(new Error('no errno'), 'send')).toBeUndefined();
  });

  it('recognises empty and truncated streams by the reader\'s wording', () => {
    expect(streamErrorHint('empty stream: no stream header at byte 0')).toBe(EMPTY_STREAM_HINT);
    expect(streamErrorHint('unexpected end of stream inside command #3 (write) at byte 9: expected 5 more bytes')).toBe(TRUNCATED_STREAM_HINT);
    expect(streamErrorHint('stream corrupt: bad CRC32C in command #1 (subvol) at byte 17')).toBeUndefined();
  });

  it('adds a hint once', () => {
    expect(withHint('a', 'b')).toBe('a; b');
    expect(withHint(withHint('a', 'b'), 'b')).toBe('a; b');
    expect(withHint('a', undefined)).toBe('a');
  });
});
