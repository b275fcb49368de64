// Pure pieces of the send driver: protocol choice, per-subvolume flags, parent choice, mount lookup,
// the ioctl argument block. No filesystem needed.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { chooseProtocol, subvolumeSendFlags, kernelSendStreamVersion } from '../src/send/protocol-choice.js';
import { chooseParent, type SubvolLookup, type SubvolSummary } from '../src/send/parent.js';
import { longestMount, parseMounts, pathIsInDir, findMountRoot, stripMountPoint } from '../src/send/mounts.js';
import {
  encodeSendArgs, SendArgsLayout, makePipe, trySetPipeSize, getPipeSize, ioctlOffThread, copyPipeOffThread,
} from '../src/sys/send-ioctl.js';
import { Ioctl, SendFlag } from '../src/sys/constants.js';
import { SendError } from '../src/send/errors.js';
import { koffi } from '../src/sys/libc.js';
import { closeSync, mkdtempSync, openSync, readSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';

const { VERSION, OMIT_STREAM_HEADER: OMIT_HDR, OMIT_END_CMD: OMIT_END } = SendFlag;

describe('chooseProtocol (progs cmd_send rules)', () => {
  it('defaults to v1, with FLAG_VERSION when the kernel knows versions', () => {
    expect(chooseProtocol(undefined, false, 2)).toEqual({ version: 1, flags: VERSION, bigBuffers: true });
    expect(chooseProtocol(undefined, false, 1)).toEqual({ version: 1, flags: 0, bigBuffers: false });
  });
  it('--proto 0 passes 0 (= kernel highest); --proto 2/3 pass through to the kernel', () => {
    expect(chooseProtocol(0, false, 2).version).toBe(0);
    expect(chooseProtocol(2, false, 2).version).toBe(2);
    expect(chooseProtocol(3, false, 2).version).toBe(3); // the kernel answers EPROTO, as with progs
  });
  it('--compressed-data implies 2 only when --proto is not given', () => {
    expect(chooseProtocol(undefined, true, 2).version).toBe(2);
    expect(chooseProtocol(0, true, 2).version).toBe(0);
    expect(() => chooseProtocol(1, true, 2)).toThrow(
      new SendError('--compressed-data requires protocol version >= 2 (requested 1)'));
  });
  it('refuses what a v1-only kernel cannot do, with progs messages', () => {
    expect(() => chooseProtocol(2, false, 1)).toThrow(new SendError('requested version 2 but kernel supports only 1'));
    expect(() => chooseProtocol(0, true, 1)).toThrow(new SendError('kernel does not support --compressed-data'));
    // progs lets plain --compressed-data through on a v1 kernel (request 2, no FLAG_VERSION): EINVAL there.
    expect(chooseProtocol(undefined, true, 1)).toEqual({ version: 2, flags: 0, bigBuffers: false });
  });
  it('rejects versions that do not fit a u32', () => {
    expect(() => chooseProtocol(2 ** 32, false, 2)).toThrow(/too big/);
  });
});

describe('kernelSendStreamVersion', () => {
  it('reads sysfs; missing or garbage means 1', () => {
    const dir = mkdtempSync(join(tmpdir(), 'btrfs-ts-send-'));
    try {
      writeFileSync(join(dir, 'v'), '2\n');
      expect(kernelSendStreamVersion(join(dir, 'v'))).toBe(2);
      writeFileSync(join(dir, 'v'), 'junk');
      expect(kernelSendStreamVersion(join(dir, 'v'))).toBe(1);
      expect(kernelSendStreamVersion(join(dir, 'missing'))).toBe(1);
    } finally {
      rmSync(dir, { recursive: true });
    }
  });
});

describe('subvolumeSendFlags (several subvolumes, §1.8)', () => {
  it('without -e every subvolume gets a complete stream', () => {
    for (let i = 0; i < 3; i++) expect(subvolumeSendFlags(VERSION, i, 3, false)).toBe(VERSION);
  });
  it('with -e: first omits END, middle omits both, last omits the header', () => {
    expect(subvolumeSendFlags(0, 0, 3, true)).toBe(OMIT_END);
    expect(subvolumeSendFlags(0, 1, 3, true)).toBe(OMIT_END | OMIT_HDR);
    expect(subvolumeSendFlags(0, 2, 3, true)).toBe(OMIT_HDR);
    expect(subvolumeSendFlags(VERSION, 0, 1, true)).toBe(VERSION);
  });
  it('property: exactly one header and one END across the sequence', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 20 }), fc.boolean(), (n, e) => {
      const flags = Array.from({ length: n }, (_, i) => subvolumeSendFlags(0, i, n, e));
      const headers = flags.filter((f) => !(f & OMIT_HDR)).length;
      const ends = flags.filter((f) => !(f & OMIT_END)).length;
      return e ? headers === 1 && ends === 1 && !(flags[0]! & OMIT_HDR) && !(flags[n - 1]! & OMIT_END)
        : headers === n && ends === n;
    }));
  });
});

describe('chooseParent (progs find_good_parent)', () => {
  const uuid = (n: number): Buffer => Buffer.alloc(16, n);
  const zero = Buffer.alloc(16);
  // 256 = origin subvolume; 257..260 snapshots of it; 300 = unrelated; 301 = snapshot of 300.
  const subvols: SubvolSummary[] = [
    { rootId: 256, uuid: uuid(1), parentUuid: zero, ctransid: 100 },
    { rootId: 257, uuid: uuid(2), parentUuid: uuid(1), ctransid: 10 },
    { rootId: 258, uuid: uuid(3), parentUuid: uuid(1), ctransid: 90 },
    { rootId: 259, uuid: uuid(4), parentUuid: uuid(1), ctransid: 120 },
    { rootId: 260, uuid: uuid(5), parentUuid: uuid(1), ctransid: 200 },
    { rootId: 300, uuid: uuid(6), parentUuid: zero, ctransid: 5 },
    { rootId: 301, uuid: uuid(7), parentUuid: uuid(6), ctransid: 6 },
  ];
  const lookup: SubvolLookup = {
    byRootId: (id) => subvols.find((s) => s.rootId === id),
    byUuid: (u) => subvols.find((s) => s.uuid.equals(u)),
  };
  it('takes the origin itself when it is a clone source', () => {
    expect(chooseParent(260, [257, 256], lookup)).toBe(256);
  });
  it('else the sibling snapshot whose ctransid is closest to the origin', () => {
    expect(chooseParent(260, [257, 258, 259], lookup)).toBe(258); // |90-100| = 10 < |120-100| = 20
    expect(chooseParent(260, [257, 259], lookup)).toBe(259);
  });
  it('the first of equally close candidates wins', () => {
    const tie: SubvolSummary[] = [...subvols, { rootId: 262, uuid: uuid(9), parentUuid: uuid(1), ctransid: 110 }];
    const l: SubvolLookup = { byRootId: (id) => tie.find((s) => s.rootId === id), byUuid: (u) => tie.find((s) => s.uuid.equals(u)) };
    expect(chooseParent(260, [262, 258], l)).toBe(262);
    expect(chooseParent(260, [258, 262], l)).toBe(258);
  });
  it('a clone source that is the sent subvolume itself counts (send -c S S)', () => {
    expect(chooseParent(260, [260], lookup)).toBe(260);
  });
  it('fails when nothing is related or the subvolume has no origin', () => {
    expect(chooseParent(260, [301], lookup)).toBeUndefined();
    expect(chooseParent(256, [257], lookup)).toBeUndefined();
    expect(chooseParent(999, [257], lookup)).toBeUndefined();
  });
});

describe('mount lookup (progs find_mount_root)', () => {
  const mounts = parseMounts([
    '/dev/root / ext4 rw 0 0',
    'tmpfs /dev/shm tmpfs rw 0 0',
    '/dev/loop0 /dev/shm/a/mnt btrfs rw 0 0',
    '/dev/loop1 /dev/shm/a/mnt\\040two btrfs rw 0 0',
    'tmpfs /dev/shm/a/mnt/tmp tmpfs rw 0 0',
    '/dev/loop2 /dev/shm/a/mnt btrfs rw 0 0',
  ].join('\n'));
  it('decodes octal escapes', () => {
    expect(mounts[3]!.dir).toBe('/dev/shm/a/mnt two');
  });
  it('matches whole components, the longest wins, later entries win ties', () => {
    expect(pathIsInDir('/dev/shm/a/mnt', '/dev/shm/a/mnt2')).toBe(false);
    expect(pathIsInDir('/', '/x')).toBe(true);
    expect(longestMount(mounts, '/dev/shm/a/mnt/snap')).toBe(mounts[5]);
    expect(longestMount(mounts, '/dev/shm/a/mnt two/snap')?.dir).toBe('/dev/shm/a/mnt two');
    expect(longestMount(mounts, '/dev/shm/a/mnt/tmp/x')?.type).toBe('tmpfs');
    expect(longestMount(mounts, '/dev/shm/a/mntx')?.type).toBe('tmpfs');
  });
  it('says whether the mount is btrfs', () => {
    const text = '/dev/root / ext4 rw 0 0\n';
    expect(findMountRoot('/etc', text)).toEqual({ kind: 'not-btrfs' });
    expect(findMountRoot('/etc', '')).toEqual({ kind: 'none' });
    expect(findMountRoot('/', '/dev/x / btrfs rw 0 0\n')).toEqual({ kind: 'btrfs', root: '/' });
  });
  it('strips the mount point', () => {
    expect(stripMountPoint('/mnt', '/mnt/a/b')).toBe('a/b');
    expect(stripMountPoint('/mnt', '/mnt')).toBe('');
    expect(stripMountPoint('/', '/a')).toBe('a');
  });
});

describe('BTRFS_IOC_SEND argument block', () => {
  it('lays out every field and points at the clone-source array', () => {
    const { args, cloneSources } = encodeSendArgs({
      sendFd: 7, cloneSources: [257, 2 ** 40], parentRoot: 257, flags: VERSION | SendFlag.COMPRESSED, version: 2,
    });
    const L = SendArgsLayout;
    expect(args.length).toBe(72);
    expect(args.buffer).toBeInstanceOf(SharedArrayBuffer);
    expect(args.readBigInt64LE(L.send_fd)).toBe(7n);
    expect(args.readBigUInt64LE(L.clone_sources_count)).toBe(2n);
    expect(args.readBigUInt64LE(L.clone_sources)).toBe(BigInt(koffi.address(cloneSources)));
    expect(args.readBigUInt64LE(L.parent_root)).toBe(257n);
    expect(args.readBigUInt64LE(L.flags)).toBe(BigInt(VERSION | SendFlag.COMPRESSED));
    expect(args.readUInt32LE(L.version)).toBe(2);
    expect(args.subarray(L.reserved).every((b) => b === 0)).toBe(true);
    expect(cloneSources.readBigUInt64LE(8)).toBe(2n ** 40n);
  });
  it('a full send without clone sources passes a NULL array', () => {
    const { args } = encodeSendArgs({ sendFd: 1, cloneSources: [], parentRoot: 0, flags: 0, version: 0 });
    expect(args.readBigUInt64LE(SendArgsLayout.clone_sources)).toBe(0n);
  });
});

describe('ioctl off the main thread', () => {
  it("reports the worker thread's errno, not the main thread's", async () => {
    const { args } = encodeSendArgs({ sendFd: 1, cloneSources: [], parentRoot: 0, flags: 0, version: 0 });
    await expect(ioctlOffThread(987654, Ioctl.BTRFS_IOC_SEND, args, 'BTRFS_IOC_SEND'))
      .rejects.toMatchObject({ name: 'SysError', errno: 9, code: 'EBADF' });
    const fd = openSync('/dev/null', 'r');
    try {
      await expect(ioctlOffThread(fd, Ioctl.BTRFS_IOC_SEND, args, 'BTRFS_IOC_SEND', '/dev/null'))
        .rejects.toMatchObject({ errno: 25, code: 'ENOTTY', path: '/dev/null' });
    } finally {
      closeSync(fd);
    }
  });
  it('refuses an argument block that the worker could not see', async () => {
    await expect(ioctlOffThread(0, Ioctl.BTRFS_IOC_SEND, Buffer.alloc(72), 'BTRFS_IOC_SEND')).rejects.toThrow(/shared memory/);
  });
  it('copies a pipe to an fd on a worker thread (splice), and reports EPIPE from a closed reader', async () => {
    const [r, w] = makePipe();
    const [r2, w2] = makePipe();
    const copying = copyPipeOffThread(r, w2, 64 * 1024);
    writeSync(w, Buffer.from('hello through splice'));
    closeSync(w);
    expect(await copying).toEqual({ bytes: 20, transfers: 1 });
    closeSync(w2);
    const got = Buffer.alloc(64);
    expect(got.subarray(0, readSync(r2, got)).toString()).toBe('hello through splice');
    closeSync(r);
    // Now a reader that is gone: EPIPE comes back as a SysError.
    const [r3, w3] = makePipe();
    const [r4, w4] = makePipe();
    closeSync(r4);
    writeSync(w3, Buffer.from('x'));
    closeSync(w3);
    await expect(copyPipeOffThread(r3, w4, 4096)).rejects.toMatchObject({ errno: 32, code: 'EPIPE' });
    closeSync(r3);
    closeSync(w4);
  });
});

describe('pipe plumbing', () => {
  it('pipe2 gives two fds; F_SETPIPE_SZ takes 144 KiB (rounded to a power of two pages)', () => {
    const [r, w] = makePipe();
    try {
      expect(trySetPipeSize(w, 144 * 1024)).toBeGreaterThanOrEqual(144 * 1024);
      expect(getPipeSize(r)).toBeGreaterThanOrEqual(144 * 1024);
    } finally {
      closeSync(r);
      closeSync(w);
    }
  });
});
