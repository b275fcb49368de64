// A send whose output is a regular file lets the kernel write the file itself (src/send/direct-file.ts):
// one copy of the stream instead of progs' two, and no copying thread. The kernel writes at its own
// offset from 0, not at the file's position, so the direct route is taken only where the bytes land
// exactly where progs' would; everything else keeps the pipe. These tests pin down which outputs take
// which route, and that every route leaves the same bytes (and file position) as btrfs send.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import {
  closeSync, constants as C, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeFileSync, writeSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { appendToOwnFile, directFileTarget } from '../src/send/direct-file.js';
import { fileStatusFlags, filePosition, makePipe } from '../src/sys/send-ioctl.js';
import { send } from '../src/send/send.js';
import { makeBtrfs, requireBtrfs, type Btrfs } from './helpers/btrfs.js';
import { makeSubvolume, populateVariedTree, seededBytes, snapshot } from './helpers/populate.js';

const CLI = join(dirname(fileURLToPath(import.meta.url)), '..', 'bin', 'btrfs-ts.js');

/** `bash -c script`, with $CLI naming our CLI; fails the test on a non-zero exit. */
function bash(script: string): string {
  const r = spawnSync('bash', ['-c', script], {
    encoding: 'utf8', timeout: 120_000, env: { ...process.env, CLI: `${process.execPath} ${CLI}` },
  });
  expect(r.status, r.stderr).toBe(0);
  return r.stderr;
}

describe('which outputs the kernel may write directly', () => {
  let dir: string;
  beforeAll(() => { dir = mkdtempSync('/dev/shm/btrfs-ts-direct-'); });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const withFd = <T>(path: string, flags: number, use: (fd: number) => T): T => {
    const fd = openSync(path, flags, 0o600);
    try {
      return use(fd);
    } finally {
      closeSync(fd);
    }
  };

  it('an empty regular file at position 0: yes', () => {
    withFd(join(dir, 'empty'), C.O_WRONLY | C.O_CREAT | C.O_TRUNC, (fd) => {
      expect(directFileTarget(fd)).toEqual({ fd, append: false, sizeBefore: 0 });
    });
  });

  it('a regular file with content, opened without O_APPEND: no (the kernel would overwrite it from byte 0)', () => {
    const path = join(dir, 'full');
    writeFileSync(path, 'earlier content\n');
    withFd(path, C.O_WRONLY, (fd) => expect(directFileTarget(fd)).toBeUndefined());
  });

  it('an empty file whose position is not 0: no', () => {
    withFd(join(dir, 'moved'), C.O_RDWR | C.O_CREAT | C.O_TRUNC, (fd) => {
      writeSync(fd, 'x');
      // Still not empty; and once truncated behind our back, the position stays at 1.
      expect(directFileTarget(fd)).toBeUndefined();
      spawnSync('truncate', ['-s', '0', join(dir, 'moved')]);
      expect(statSync(join(dir, 'moved')).size).toBe(0);
      expect(filePosition(fd)).toBe(1);
      expect(directFileTarget(fd)).toBeUndefined();
    });
  });

  it('a file in append mode, even with content: yes (the kernel\'s writes append too)', () => {
    const path = join(dir, 'append');
    writeFileSync(path, 'header\n');
    withFd(path, C.O_WRONLY | C.O_APPEND, (fd) => {
      expect(directFileTarget(fd)).toEqual({ fd, append: true, sizeBefore: 7 });
    });
  });

  it('the file -f opened itself is put in append mode, so every subvolume\'s stream can be written directly', () => {
    withFd(join(dir, 'own'), C.O_WRONLY | C.O_CREAT | C.O_TRUNC, (fd) => {
      appendToOwnFile(fd);
      expect(fileStatusFlags(fd) & C.O_APPEND).toBe(C.O_APPEND);
      writeSync(fd, 'first stream');
      expect(directFileTarget(fd)).toEqual({ fd, append: true, sizeBefore: 12 });
    });
    // Not a pipe or a device: they are left as they are.
    withFd('/dev/null', C.O_WRONLY, (fd) => {
      appendToOwnFile(fd);
      expect(fileStatusFlags(fd) & C.O_APPEND).toBe(0);
    });
  });

  it('a pipe and /dev/null: no (they keep progs\' pipe and splice)', () => {
    const [r, w] = makePipe();
    try {
      expect(directFileTarget(w)).toBeUndefined();
    } finally {
      closeSync(r);
      closeSync(w);
    }
    withFd('/dev/null', C.O_WRONLY, (fd) => expect(directFileTarget(fd)).toBeUndefined());
  });
});

const ok = requireBtrfs();

describe.skipIf(!ok)('a send into a regular file is the stream btrfs send writes', () => {
  let fs: Btrfs;
  let s1: string;
  let s2: string;
  let out: string;

  beforeAll(() => {
    fs = makeBtrfs({ sizeMiB: 512, mountOptions: 'compress-force=zstd' });
    makeSubvolume(join(fs.mnt, 'src'));
    populateVariedTree(join(fs.mnt, 'src'));
    s1 = join(fs.mnt, 's1');
    snapshot(join(fs.mnt, 'src'), s1);
    writeFileSync(join(fs.mnt, 'src', 'big.bin'), seededBytes(8 * 1024 * 1024, 3));
    s2 = join(fs.mnt, 's2');
    snapshot(join(fs.mnt, 'src'), s2);
    out = mkdtempSync('/dev/shm/btrfs-ts-direct-out-');
  }, 120_000);

  afterAll(() => {
    fs?.cleanup();
    if (out) rmSync(out, { recursive: true, force: true });
  });

  const progsStream = (args: string): Buffer => {
    const path = join(out, 'progs.stream');
    bash(`btrfs send -q ${args} -f ${path}`);
    return readFileSync(path);
  };

  it('stdout appended to (>>): what was there, then the stream', () => {
    // progs cannot do this one: splice(2) refuses an O_APPEND file (EINVAL).
    const path = join(out, 'appended');
    writeFileSync(path, 'earlier\n');
    bash(`$CLI send -q ${s1} >> ${path}`);
    expect(readFileSync(path).equals(Buffer.concat([Buffer.from('earlier\n'), progsStream(s1)]))).toBe(true);
  }, 120_000);

  it('stdout shared with the shell: the file position ends after the stream, so what follows is not overwritten', () => {
    const script = (tool: string, path: string): string =>
      `{ ${tool} send -q --compressed-data ${s1} ${s2}; echo after; } > ${path}`;
    bash(script('$CLI', join(out, 'shared.ours')));
    bash(script('btrfs', join(out, 'shared.progs')));
    const ours = readFileSync(join(out, 'shared.ours'));
    expect(ours.subarray(-6).toString()).toBe('after\n');
    expect(ours.equals(readFileSync(join(out, 'shared.progs')))).toBe(true);
  }, 120_000);

  it('several subvolumes into one -f file (all written directly, in append mode): same bytes', () => {
    const path = join(out, 'several.ours');
    bash(`$CLI send -q -e -f ${path} ${s1} ${s2}`);
    expect(readFileSync(path).equals(progsStream(`-e ${s1} ${s2}`))).toBe(true);
  }, 120_000);

  it('into a file on the same filesystem as the snapshot, until that filesystem is full: one clear error, no hang', () => {
    const small = makeBtrfs({ sizeMiB: 300 });
    try {
      makeSubvolume(join(small.mnt, 'v'));
      writeFileSync(join(small.mnt, 'v', 'random.bin'), seededBytes(150 * 1024 * 1024, 9));
      snapshot(join(small.mnt, 'v'), join(small.mnt, 'snap'));
      const target = join(small.mnt, 'out.stream');
      const r = spawnSync(process.execPath, [CLI, 'send', '-q', '-f', target, join(small.mnt, 'snap')], {
        encoding: 'utf8', timeout: 60_000,
      });
      expect(r.error).toBeUndefined();
      expect(r.status).toBe(1);
      expect(r.stderr).toBe(`ERROR: failed to write stream to '${target}': No space left on device\n`);
      // Nothing was left holding the snapshot: it can be deleted.
      expect(spawnSync('btrfs', ['subvolume', 'delete', join(small.mnt, 'snap')]).status).toBe(0);
    } finally {
      small.cleanup();
    }
  }, 120_000);

  it('a file opened O_DIRECT: not written directly (kernel_write would need aligned lengths)', () => {
    const path = join(out, 'direct-io.ours');
    const fd = openSync(path, C.O_WRONLY | C.O_CREAT | C.O_TRUNC | C.O_DIRECT, 0o600);
    try {
      expect(directFileTarget(fd)).toBeUndefined();
      appendToOwnFile(fd);
      expect(fileStatusFlags(fd) & C.O_APPEND).toBe(0);
      expect(directFileTarget(fd)).toBeUndefined();
    } finally {
      closeSync(fd);
    }
  });

  it('--progress counts the bytes the kernel wrote into the file', async () => {
    const path = join(out, 'progress.ours');
    const fd = openSync(path, C.O_WRONLY | C.O_CREAT | C.O_TRUNC, 0o600);
    const seen: number[] = [];
    try {
      await send({
        subvolumes: [s2], cloneSources: [], noData: false, compressedData: false, omitEnd: false, verbosity: 0,
        outputFd: fd, log: () => {}, onProgress: (n) => seen.push(n),
      });
    } finally {
      closeSync(fd);
    }
    const size = statSync(path).size;
    expect(size).toBeGreaterThan(8 * 1024 * 1024);
    expect(seen.at(-1)).toBe(size);
    expect(seen.every((n, i) => i === 0 || n >= seen[i - 1]!)).toBe(true);
    expect(readFileSync(path).equals(progsStream(s2))).toBe(true);
  }, 120_000);
});
