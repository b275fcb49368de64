// Sample commands (one or more of every kind) and fast-check arbitraries for codec tests.
import fc from 'fast-check';
import type { Command } from '../../src/stream/commands.js';
import { COMMAND_VERSION } from '../../src/stream/protocol.js';
import { COMMAND_LAYOUT } from '../../src/stream/writer.js';

const b = (s: string): Buffer => Buffer.from(s, 'latin1');
const uuidA = Buffer.from('405c4a7a5507354ca12117e2f613571b', 'hex');
const uuidB = Buffer.from('00112233445566778899aabbccddeeff', 'hex');
const ts = (sec: number, nsec: number) => ({ sec, nsec });

/** Every command kind, with edge values (empty root path, negative times, big offsets, odd bytes). */
export function sampleCommands(version: number): Command[] {
  const all: Command[] = [
    { cmd: 'subvol', path: b('snap1'), uuid: uuidA, ctransid: 8 },
    { cmd: 'snapshot', path: b('snap2'), uuid: uuidB, ctransid: 12, cloneUuid: uuidA, cloneCtransid: 8 },
    { cmd: 'chown', path: b(''), uid: 0, gid: 0 },
    { cmd: 'chmod', path: b(''), mode: 0o755 },
    { cmd: 'mkfile', path: b('o257-7-0'), ino: 257 },
    { cmd: 'mkdir', path: b('o258-7-0'), ino: 258 },
    { cmd: 'mknod', path: b('dev'), ino: 259, rdev: (8 << 8) | 1, mode: 0o60644 },
    { cmd: 'mkfifo', path: b('fifo'), ino: 260, rdev: 0, mode: 0o10644 },
    { cmd: 'mksock', path: b('sock'), ino: 261, rdev: 0, mode: 0o140755 },
    { cmd: 'symlink', path: b('lnk'), ino: 262, target: b('../some/where\xff') },
    { cmd: 'rename', path: b('o257-7-0'), to: b('dir/f\xe9\x01') },
    { cmd: 'link', path: b('hard'), target: b('dir/f\xe9\x01') },
    { cmd: 'unlink', path: b('hard') },
    { cmd: 'rmdir', path: b('olddir') },
    { cmd: 'set_xattr', path: b('f'), name: b('user.x'), value: Buffer.from([0, 1, 2, 0, 255]) },
    { cmd: 'set_xattr', path: b('f'), name: b('user.empty'), value: Buffer.alloc(0) },
    { cmd: 'remove_xattr', path: b('f'), name: b('user.x') },
    { cmd: 'write', path: b('f'), offset: 0, data: Buffer.from('hello world\n') },
    { cmd: 'write', path: b('f'), offset: 2 ** 40 + 4096, data: Buffer.alloc(0) },
    { cmd: 'write', path: b('big'), offset: 4096, data: Buffer.alloc(49152, 0xab) },
    {
      cmd: 'clone', path: b('f2'), offset: 8192, len: 4096, cloneUuid: uuidA, cloneCtransid: 8,
      clonePath: b('f'), cloneOffset: 0,
    },
    { cmd: 'truncate', path: b('f'), size: 12345 },
    { cmd: 'utimes', path: b('f'), atime: ts(1700000000, 1), mtime: ts(-1, 999999999), ctime: ts(0, 0) },
    { cmd: 'update_extent', path: b('f'), offset: 0, size: 131072 },
  ];
  if (version >= 2) {
    all.push(
      { cmd: 'write', path: b('big2'), offset: 0, data: Buffer.alloc(131072, 0xcd) },
      {
        cmd: 'utimes', path: b('f'), atime: ts(1, 2), mtime: ts(3, 4), ctime: ts(5, 6),
        otime: ts(-86400 * 365 * 100, 500),
      },
      { cmd: 'fallocate', path: b('f'), mode: 3, offset: 4096, size: 8192 },
      { cmd: 'fileattr', path: b('f'), flags: 0x10 | 2 ** 32 },
      {
        cmd: 'encoded_write', path: b('c'), offset: 0, unencodedFileLen: 131072, unencodedLen: 131072,
        unencodedOffset: 0, compression: 2, encryption: 0, data: Buffer.alloc(5000, 7),
      },
      {
        cmd: 'encoded_write', path: b('c'), offset: 131072, unencodedFileLen: 4096, unencodedLen: 8192,
        unencodedOffset: 4096, data: Buffer.from([1, 2, 3]),
      },
      {
        cmd: 'encoded_write', path: b('c'), offset: 4096, unencodedFileLen: 4096, unencodedLen: 4096,
        unencodedOffset: 0, compression: 1, data: Buffer.from([9]),
      },
    );
  }
  if (version >= 3) {
    all.push({ cmd: 'enable_verity', path: b('f'), algorithm: 1, blockSize: 4096, salt: Buffer.alloc(32, 1), sig: Buffer.alloc(0) });
  }
  all.push({ cmd: 'end' });
  return all;
}

// ---- fast-check arbitraries ----

const name = fc.array(fc.integer({ min: 1, max: 255 }), { maxLength: 40 }).map((a) => Buffer.from(a));
const bytes = (max: number) => fc.uint8Array({ maxLength: max }).map((a) => Buffer.from(a));
const u64 = fc.oneof(fc.maxSafeNat(), fc.nat(70000));
const u32 = fc.nat({ max: 0xffffffff });
const uuid = fc.uint8Array({ minLength: 16, maxLength: 16 }).map((a) => Buffer.from(a));
const timespec = fc.record({ sec: fc.integer({ min: -(2 ** 52), max: 2 ** 52 }), nsec: fc.nat(999999999) });

export function arbCommand(version: number): fc.Arbitrary<Command> {
  const data = bytes(version >= 2 ? 70000 : 2000);
  const arbs: Record<Command['cmd'], fc.Arbitrary<Command>> = {
    subvol: fc.record({ cmd: fc.constant('subvol' as const), path: name, uuid, ctransid: u64 }),
    snapshot: fc.record({
      cmd: fc.constant('snapshot' as const), path: name, uuid, ctransid: u64, cloneUuid: uuid, cloneCtransid: u64,
    }),
    mkfile: fc.record({ cmd: fc.constant('mkfile' as const), path: name, ino: u64 }),
    mkdir: fc.record({ cmd: fc.constant('mkdir' as const), path: name, ino: u64 }),
    mknod: fc.record({ cmd: fc.constant('mknod' as const), path: name, ino: u64, rdev: u64, mode: u64 }),
    mkfifo: fc.record({ cmd: fc.constant('mkfifo' as const), path: name, ino: u64, rdev: u64, mode: u64 }),
    mksock: fc.record({ cmd: fc.constant('mksock' as const), path: name, ino: u64, rdev: u64, mode: u64 }),
    symlink: fc.record({ cmd: fc.constant('symlink' as const), path: name, ino: u64, target: name }),
    rename: fc.record({ cmd: fc.constant('rename' as const), path: name, to: name }),
    link: fc.record({ cmd: fc.constant('link' as const), path: name, target: name }),
    unlink: fc.record({ cmd: fc.constant('unlink' as const), path: name }),
    rmdir: fc.record({ cmd: fc.constant('rmdir' as const), path: name }),
    set_xattr: fc.record({ cmd: fc.constant('set_xattr' as const), path: name, name, value: bytes(300) }),
    remove_xattr: fc.record({ cmd: fc.constant('remove_xattr' as const), path: name, name }),
    write: fc.record({ cmd: fc.constant('write' as const), path: name, offset: u64, data }),
    clone: fc.record({
      cmd: fc.constant('clone' as const), path: name, offset: u64, len: u64, cloneUuid: uuid, cloneCtransid: u64,
      clonePath: name, cloneOffset: u64,
    }),
    truncate: fc.record({ cmd: fc.constant('truncate' as const), path: name, size: u64 }),
    chmod: fc.record({ cmd: fc.constant('chmod' as const), path: name, mode: u64 }),
    chown: fc.record({ cmd: fc.constant('chown' as const), path: name, uid: u64, gid: u64 }),
    utimes: fc.record(
      { cmd: fc.constant('utimes' as const), path: name, atime: timespec, mtime: timespec, ctime: timespec, otime: timespec },
      { requiredKeys: ['cmd', 'path', 'atime', 'mtime', 'ctime'] },
    ),
    end: fc.constant({ cmd: 'end' as const }),
    update_extent: fc.record({ cmd: fc.constant('update_extent' as const), path: name, offset: u64, size: u64 }),
    fallocate: fc.record({ cmd: fc.constant('fallocate' as const), path: name, mode: u32, offset: u64, size: u64 }),
    fileattr: fc.record({ cmd: fc.constant('fileattr' as const), path: name, flags: u64 }),
    encoded_write: fc.record(
      {
        cmd: fc.constant('encoded_write' as const), path: name, offset: u64, unencodedFileLen: u64, unencodedLen: u64,
        unencodedOffset: u64, compression: u32, encryption: u32, data,
      },
      { requiredKeys: ['cmd', 'path', 'offset', 'unencodedFileLen', 'unencodedLen', 'unencodedOffset', 'data'] },
    ),
    enable_verity: fc.record({
      cmd: fc.constant('enable_verity' as const), path: name, algorithm: fc.nat(255), blockSize: u32,
      salt: bytes(32), sig: bytes(500),
    }),
  };
  const allowed = (Object.keys(arbs) as Command['cmd'][])
    .filter((k) => k !== 'end' && (COMMAND_VERSION[COMMAND_LAYOUT[k].num] ?? 1) <= version);
  return fc.oneof(...allowed.map((k) => arbs[k]));
}

/** Commands with every Buffer turned into a hex string, for fast deep equality of large data. */
export function comparable(x: unknown): unknown {
  if (Buffer.isBuffer(x)) return `hex:${x.toString('hex')}`;
  if (Array.isArray(x)) return x.map(comparable);
  if (x && typeof x === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(x)) if (v !== undefined) out[k] = comparable(v);
    return out;
  }
  return x;
}
