// Pure checks of the receive engine (no root needed): stream path validation and mount-table lookup.
import { describe, it, expect } from 'vitest';
import { checkName, checkPath } from '../src/receive/path-resolver.js';
import { findMountPoint } from '../src/receive/destination.js';
import { commandFailure } from '../src/receive/errors.js';

const B = (s: string): Buffer => Buffer.from(s, 'latin1');

describe('checkPath / checkName', () => {
  it.each(['', 'a', 'a/b/c', 'o257-7-0', '.hidden', '..dots', 'a/..b/c.', 'name with space', '\xff\xfe', 'L'.repeat(300)])('accepts %j', (p) => {
    expect(() => checkPath(B(p))).not.toThrow();
  });
  it.each([
    ['..', "'..' component"], ['../x', "'..' component"], ['a/../../x', "'..' component"], ['a/..', "'..' component"],
    ['.', "'.' component"], ['a/./b', "'.' component"], ['/etc/passwd', 'is absolute'], ['a//b', 'empty component'],
    ['a/', 'empty component'], ['a\0b', 'NUL byte'],
  ])('refuses %j (%s)', (p, why) => {
    expect(() => checkPath(B(p), 'path')).toThrow(new RegExp(`^unsafe path '.*': .*${why.replace(/[.]/g, '\\.')}`));
  });
  it('subvolume names are single components', () => {
    expect(() => checkName(B('snap'))).not.toThrow();
    expect(() => checkName(B('a/b'))).toThrow(/unsafe subvolume name 'a\/b': must be a single component/);
    expect(() => checkName(B(''))).toThrow(/is empty/);
    expect(() => checkName(B('..'))).toThrow(/'\.\.' component/);
  });
  it('shows unprintable bytes escaped', () => {
    expect(() => checkPath(B('x\n/../y'))).toThrow(/unsafe path 'x\\012\/\.\.\/y'/);
  });
});

describe('findMountPoint', () => {
  const mounts = [
    '/dev/sda1 / ext4 rw 0 0',
    '/dev/loop0 /mnt/data btrfs rw 0 0',
    'tmpfs /mnt/data/tmp tmpfs rw 0 0',
    '/dev/loop1 /mnt/with\\040space btrfs rw 0 0',
    '/dev/loop2 /mnt/data btrfs rw,subvol=/x 0 0',
  ].join('\n');
  it('picks the longest (and last) mount point containing the path', () => {
    expect(findMountPoint('/mnt/data/dest', mounts)).toEqual({ mnt: '/mnt/data', type: 'btrfs' });
    expect(findMountPoint('/mnt/data/tmp/x', mounts)).toEqual({ mnt: '/mnt/data/tmp', type: 'tmpfs' });
    expect(findMountPoint('/mnt/datax', mounts)).toEqual({ mnt: '/', type: 'ext4' });
    expect(findMountPoint('/mnt/with space/r', mounts)).toEqual({ mnt: '/mnt/with space', type: 'btrfs' });
  });
});

describe('failure line', () => {
  it('names the command, path, stream offset and cause on one line', () => {
    expect(commandFailure(12, 'write', 'snap/a/b', 4096, new Error('pwrite b failed: No space left on device (ENOSPC)')))
      .toBe('receive failed at command #12 (write) snap/a/b (stream byte 4096): pwrite b failed: No space left on device (ENOSPC)');
  });
});
