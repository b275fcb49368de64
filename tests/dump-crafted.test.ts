// Differential test: crafted streams with every command and awkward values (all byte values in names,
// NUL in xattr values, negative/huge times, huge ids, trailing slashes, PATH_MAX) dumped by the
// installed `btrfs receive --dump` (btrfs-progs 6.2) and by us, in several time zones. No root needed.
import { describe, expect, it, beforeAll, afterAll } from 'vitest';
import fc from 'fast-check';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Command, Timespec } from '../src/stream/commands.js';
import { buildStream } from './helpers/stream-builder.js';
import { dumpToBuffer, firstDifference } from './helpers/dump-capture.js';

const haveProgs = spawnSync('btrfs', ['--version']).status === 0;
if (!haveProgs && process.env.CI) throw new Error('btrfs-progs is required in CI for tests/dump-crafted.test.ts');

const B = (s: string | number[]): Buffer => (typeof s === 'string' ? Buffer.from(s, 'latin1') : Buffer.from(s));
const uuid = (fill: number): Buffer => Buffer.alloc(16, fill);
async function* once(b: Buffer): AsyncGenerator<Buffer> {
  yield b;
}
const ts = (sec: number, nsec = 0): Timespec => ({ sec, nsec });

/** Every byte value except NUL, in a few names (slashes included: they are path separators). */
const ALL_BYTES = B(Array.from({ length: 255 }, (_, i) => i + 1));
const ODD = [B('with space'), B('tab\there'), B('nl\nx'), B('bs\\x'), B([0xff, 0xfe, 0x80]), B('ünï'), B('%s%n'), ALL_BYTES];

const TIMES = [0, -1, 1, 981173106, -2147483648, 2147483647, 2147483648, -5000000000, -2500000000, 1e11,
  253402300800, -62167219200, -62167219201, 1636264799, 1636264800, 1615705199, 1615705200, 4102444800];

function commonCommands(version: number): Command[] {
  const cmds: Command[] = [
    { cmd: 'subvol', path: B('sub vol\n'), uuid: uuid(0xab), ctransid: 42 },
    { cmd: 'chown', path: B(''), uid: 0, gid: 0 },
    { cmd: 'mkdir', path: B('dir/'), ino: 257 },
    { cmd: 'mkfile', path: B('o258-7-0'), ino: 258 },
    { cmd: 'mknod', path: B('dev'), ino: 259, rdev: 0x11112c70, mode: 0o20644 },
    { cmd: 'mknod', path: B('blk'), ino: 260, rdev: 0, mode: 0o60000 },
    { cmd: 'mkfifo', path: B('fifo'), ino: 261, rdev: 0, mode: 0o10644 },
    { cmd: 'mksock', path: B('sock'), ino: 262, rdev: 0, mode: 0o140755 },
    { cmd: 'truncate', path: B('o258-7-0'), size: 2 ** 53 - 1 },
    { cmd: 'chmod', path: B('o258-7-0'), mode: 0o7777 },
    { cmd: 'chmod', path: B('o258-7-0'), mode: 0 },
    { cmd: 'chown', path: B('o258-7-0'), uid: 2 ** 32 + 5, gid: 2 ** 53 - 1 },
    { cmd: 'write', path: B('o258-7-0'), offset: 2 ** 40, data: Buffer.alloc(3000, 7) },
    { cmd: 'write', path: B('o258-7-0'), offset: 0, data: Buffer.alloc(0) },
    { cmd: 'clone', path: B('o258-7-0'), offset: 4096, len: 8192, cloneUuid: uuid(1), cloneCtransid: 3, clonePath: B('src with space\n\xff'), cloneOffset: 12288 },
    { cmd: 'clone', path: B('dir//'), offset: 0, len: 1, cloneUuid: uuid(0), cloneCtransid: 0, clonePath: B('/abs//'), cloneOffset: 0 },
    { cmd: 'set_xattr', path: B('o258-7-0'), name: B('user.a b\n\xff'), value: B('val\nue\x00after nul') },
    { cmd: 'set_xattr', path: B('o258-7-0'), name: B('user.empty'), value: B('') },
    { cmd: 'set_xattr', path: B('o258-7-0'), name: B('system.posix_acl_access'), value: B([2, 0, 0, 0, 1, 0, 6, 0, 0xff, 0xff, 0xff, 0xff]) },
    { cmd: 'set_xattr', path: B('o258-7-0'), name: B('user.hi'), value: B([0xc3, 0xa9, 0x7f, 0x1b, 0x5c]) },
    { cmd: 'remove_xattr', path: B('o258-7-0'), name: B('user.a b\n\xff') },
    { cmd: 'update_extent', path: B('o258-7-0'), offset: 123, size: 456 },
    { cmd: 'unlink', path: B('gone') },
    { cmd: 'rmdir', path: B('gone dir/') },
    { cmd: 'snapshot', path: B('snap'), uuid: uuid(0xff), ctransid: 2 ** 53 - 1, cloneUuid: uuid(0x12), cloneCtransid: 0 },
    { cmd: 'mkfile', path: B('after snapshot'), ino: 300 },
  ];
  ODD.forEach((name, i) => {
    cmds.push({ cmd: 'mkfile', path: name, ino: 400 + i });
    cmds.push({ cmd: 'rename', path: B(`o${400 + i}`), to: Buffer.concat([B('d/'), name]) });
    cmds.push({ cmd: 'link', path: Buffer.concat([name, B('.lnk')]), target: name });
    cmds.push({ cmd: 'symlink', path: B(`s${i}`), ino: 500 + i, target: name });
  });
  // Long paths: the printed path pushes the details right (no padding).
  cmds.push({ cmd: 'chmod', path: B('x'.repeat(31)), mode: 0o644 });
  cmds.push({ cmd: 'chmod', path: B('x'.repeat(200)), mode: 0o644 });
  for (let i = 0; i < TIMES.length; i += 3) {
    const t = (k: number): number => TIMES[Math.min(i + k, TIMES.length - 1)]!;
    cmds.push({ cmd: 'utimes', path: B(`t${i}`), atime: ts(t(0), 999999999), mtime: ts(t(1)), ctime: ts(t(2), 1), ...(version >= 2 ? { otime: ts(-7) } : {}) });
  }
  if (version >= 2) {
    cmds.push(
      { cmd: 'fallocate', path: B('o258-7-0'), mode: 3, offset: 131072, size: 32768 },
      { cmd: 'fallocate', path: B('o258-7-0'), mode: 0, offset: 0, size: 1 },
      { cmd: 'fileattr', path: B('o258-7-0'), flags: 0x100 },
      { cmd: 'fileattr', path: B('o258-7-0'), flags: 2 ** 40 + 16 },
      { cmd: 'encoded_write', path: B('o258-7-0'), offset: 0, unencodedFileLen: 131072, unencodedLen: 131072, unencodedOffset: 0, compression: 2, encryption: 0, data: Buffer.alloc(20480, 1) },
      { cmd: 'encoded_write', path: B('enc no comp'), offset: 4096, unencodedFileLen: 5, unencodedLen: 4096, unencodedOffset: 7, data: Buffer.alloc(10, 1) },
      { cmd: 'write', path: B('big v2 write'), offset: 0, data: Buffer.alloc(131072, 3) },
    );
  }
  return cmds;
}

let dir = '';
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'btrfs-ts-dump-crafted-'));
});
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function progsDump(stream: Buffer, tz: string, name: string): { stdout: Buffer; status: number | null } {
  const file = join(dir, name);
  writeFileSync(file, stream);
  const r = spawnSync('btrfs', ['receive', '--dump', '-f', file], { env: { ...process.env, TZ: tz }, maxBuffer: 1 << 26 });
  return { stdout: r.stdout, status: r.status };
}

describe.skipIf(!haveProgs)('dump of crafted streams matches btrfs-progs 6.2', () => {
  for (const version of [1, 2]) {
    for (const tz of ['UTC', 'America/New_York', 'Asia/Kolkata', 'Europe/Amsterdam', 'Australia/Lord_Howe', 'EST5EDT,M3.2.0,M11.1.0', '']) {
      it(`v${version}, TZ=${JSON.stringify(tz)}`, async () => {
        const stream = buildStream(version, commonCommands(version));
        const progs = progsDump(stream, tz, `v${version}.stream`);
        expect(progs.status).toBe(0);
        const { out } = await dumpToBuffer({ input: once(stream), timeZone: tz });
        expect(firstDifference(out, progs.stdout)).toBeUndefined();
      });
    }
  }

  it('a path that would overflow PATH_MAX: same output up to it, then an error', async () => {
    const stream = buildStream(1, [
      { cmd: 'subvol', path: B('s'), uuid: uuid(1), ctransid: 1 },
      { cmd: 'mkfile', path: B('fine'), ino: 257 },
      { cmd: 'mkfile', path: B('y'.repeat(4095)), ino: 258 },
      { cmd: 'mkfile', path: B('never printed'), ino: 259 },
    ]);
    const progs = progsDump(stream, 'UTC', 'pathmax.stream');
    expect(progs.status).toBe(1);
    const chunks: Buffer[] = [];
    const { dumpStream } = await import('../src/dump/dump.js');
    await expect(dumpStream({ input: once(stream), timeZone: 'UTC', output: (c) => chunks.push(c) }))
      .rejects.toThrow(/command #3 \(mkfile\) at byte \d+: mkfile: path too long/);
    expect(firstDifference(Buffer.concat(chunks), progs.stdout)).toBeUndefined();
  });

  it('a path just under PATH_MAX is printed like progs', async () => {
    const stream = buildStream(1, [
      { cmd: 'subvol', path: B('s'), uuid: uuid(1), ctransid: 1 },
      { cmd: 'mkfile', path: B('y'.repeat(4096 - 2 - 3 - 1)), ino: 258 },
    ]);
    const progs = progsDump(stream, 'UTC', 'pathmax-ok.stream');
    expect(progs.status).toBe(0);
    const { out } = await dumpToBuffer({ input: once(stream), timeZone: 'UTC' });
    expect(firstDifference(out, progs.stdout)).toBeUndefined();
  });
});

describe.skipIf(!haveProgs)('dump of random command sequences matches btrfs-progs 6.2', () => {
  const bytes = (max: number): fc.Arbitrary<Buffer> =>
    fc.uint8Array({ minLength: 0, maxLength: max }).map((a) => Buffer.from(a.map((b) => (b === 0 ? 0x41 : b))));
  const name = fc.oneof(bytes(40), fc.constantFrom(B(''), B('a/'), B('dir//x/'), B('/lead'), B('sp ace')));
  const u64 = fc.oneof(fc.integer({ min: 0, max: 4096 }), fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }));
  const time = fc.record({ sec: fc.oneof(fc.integer({ min: -3e10, max: 3e10 }), fc.integer({ min: -(2 ** 52), max: 2 ** 52 })), nsec: fc.integer({ min: 0, max: 999999999 }) });
  const command = (version: number): fc.Arbitrary<Command> => fc.oneof(
    fc.record({ cmd: fc.constant('mkfile' as const), path: name, ino: u64 }),
    fc.record({ cmd: fc.constant('mkdir' as const), path: name, ino: u64 }),
    fc.record({ cmd: fc.constantFrom('mknod' as const, 'mkfifo' as const, 'mksock' as const), path: name, ino: u64, rdev: u64, mode: u64 }),
    fc.record({ cmd: fc.constant('symlink' as const), path: name, ino: u64, target: bytes(60) }),
    fc.record({ cmd: fc.constant('rename' as const), path: name, to: name }),
    fc.record({ cmd: fc.constant('link' as const), path: name, target: name }),
    fc.record({ cmd: fc.constantFrom('unlink' as const, 'rmdir' as const), path: name }),
    fc.record({ cmd: fc.constant('set_xattr' as const), path: name, name: bytes(30), value: fc.uint8Array({ maxLength: 80 }).map((a) => Buffer.from(a)) }),
    fc.record({ cmd: fc.constant('remove_xattr' as const), path: name, name: bytes(30) }),
    fc.record({ cmd: fc.constant('write' as const), path: name, offset: u64, data: fc.integer({ min: 0, max: 3000 }).map((n) => Buffer.alloc(n)) }),
    fc.record({ cmd: fc.constant('clone' as const), path: name, offset: u64, len: u64, cloneUuid: fc.uint8Array({ minLength: 16, maxLength: 16 }).map((a) => Buffer.from(a)), cloneCtransid: u64, clonePath: name, cloneOffset: u64 }),
    fc.record({ cmd: fc.constant('truncate' as const), path: name, size: u64 }),
    fc.record({ cmd: fc.constant('chmod' as const), path: name, mode: u64 }),
    fc.record({ cmd: fc.constant('chown' as const), path: name, uid: u64, gid: u64 }),
    fc.record({ cmd: fc.constant('utimes' as const), path: name, atime: time, mtime: time, ctime: time }, { requiredKeys: ['cmd', 'path', 'atime', 'mtime', 'ctime'] })
      .map((c) => (version >= 2 ? { ...c, otime: c.atime } : c)),
    fc.record({ cmd: fc.constant('update_extent' as const), path: name, offset: u64, size: u64 }),
    fc.record({ cmd: fc.constantFrom('subvol' as const), path: bytes(20), uuid: fc.uint8Array({ minLength: 16, maxLength: 16 }).map((a) => Buffer.from(a)), ctransid: u64 }),
    ...(version >= 2 ? [
      fc.record({ cmd: fc.constant('fallocate' as const), path: name, mode: fc.integer({ min: 0, max: 0xffffffff }), offset: u64, size: u64 }),
      fc.record({ cmd: fc.constant('fileattr' as const), path: name, flags: u64 }),
      fc.record({ cmd: fc.constant('encoded_write' as const), path: name, offset: u64, unencodedFileLen: u64, unencodedLen: u64, unencodedOffset: u64,
        compression: fc.integer({ min: 0, max: 7 }), encryption: fc.constant(0), data: fc.integer({ min: 0, max: 2000 }).map((n) => Buffer.alloc(n)) }),
    ] : []),
  ) as fc.Arbitrary<Command>;

  for (const version of [1, 2]) {
    it(`v${version}: 4 random streams of 300 commands, TZ=America/New_York`, async () => {
      const streams = fc.sample(fc.array(command(version), { minLength: 300, maxLength: 300 }), { numRuns: 4, seed: 42 + version });
      for (const [i, cmds] of streams.entries()) {
        const first: Command = { cmd: 'subvol', path: B('start'), uuid: uuid(9), ctransid: 1 };
        const stream = buildStream(version, [first, ...cmds]);
        const progs = progsDump(stream, 'America/New_York', `random-v${version}-${i}.stream`);
        expect(progs.status).toBe(0);
        const { out } = await dumpToBuffer({ input: once(stream), timeZone: 'America/New_York' });
        expect(firstDifference(out, progs.stdout), `stream ${i}`).toBeUndefined();
      }
    });
  }
});
