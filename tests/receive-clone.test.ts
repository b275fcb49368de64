// CLONE sources: another received subvolume found by UUID, a range beyond the source's EOF (copied and
// extended instead of failing with EINVAL), an unknown source UUID.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdirSync, readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { requireBtrfs, makeBtrfs, type Btrfs } from './helpers/btrfs.js';
import { buildStream } from './helpers/stream-builder.js';
import { subvolInfo } from '../src/lab/loop-btrfs.js';
import { ourReceive, ourReceiveFailure } from './helpers/receive-harness.js';
import type { Command } from '../src/stream/commands.js';

const ok = requireBtrfs();
const B = (s: string): Buffer => Buffer.from(s);
async function* bytes(b: Buffer): AsyncGenerator<Buffer> { yield b; }

describe.skipIf(!ok)('CLONE', () => {
  let fs: Btrfs;
  let dest: string;
  const srcUuid = randomBytes(16);
  const data = randomBytes(8192);
  beforeAll(async () => {
    fs = makeBtrfs({ sizeMiB: 128 });
    dest = join(fs.mnt, 'dest');
    mkdirSync(dest);
    await ourReceive(bytes(buildStream(2, [
      { cmd: 'subvol', path: B('a'), uuid: srcUuid, ctransid: 10 },
      { cmd: 'mkdir', path: B('d'), ino: 257 },
      { cmd: 'mkfile', path: B('d/src'), ino: 258 },
      { cmd: 'write', path: B('d/src'), offset: 0, data },
    ])), dest);
  });
  afterAll(() => fs?.cleanup());

  const cloneFrom = (uuid: Buffer, len: number, offset = 0): Command =>
    ({ cmd: 'clone', path: B('dst'), offset, len, cloneUuid: uuid, cloneCtransid: 10, clonePath: B('d/src'), cloneOffset: 0 });

  it('clones from another received subvolume found by its received UUID', async () => {
    await ourReceive(bytes(buildStream(2, [
      { cmd: 'subvol', path: B('b'), uuid: randomBytes(16), ctransid: 11 },
      { cmd: 'mkfile', path: B('dst'), ino: 257 },
      cloneFrom(srcUuid, 8192, 4096),
    ])), dest);
    const got = readFileSync(join(dest, 'b', 'dst'));
    expect(got.length).toBe(4096 + 8192);
    expect(got.subarray(4096).equals(data)).toBe(true);
    expect(subvolInfo(join(dest, 'b')).readonly).toBe(true);
  });

  it('a range beyond the source EOF is copied and the destination extended (no EINVAL)', async () => {
    await ourReceive(bytes(buildStream(2, [
      { cmd: 'subvol', path: B('c'), uuid: randomBytes(16), ctransid: 12 },
      { cmd: 'mkfile', path: B('dst'), ino: 257 },
      cloneFrom(srcUuid, 16384),
    ])), dest);
    const got = readFileSync(join(dest, 'c', 'dst'));
    expect(got.length).toBe(16384);
    expect(got.subarray(0, 8192).equals(data)).toBe(true);
    expect(got.subarray(8192).every((b) => b === 0)).toBe(true);
  });

  it('an unknown source UUID is a clear error', async () => {
    const unknown = randomBytes(16);
    const { error } = await ourReceiveFailure(bytes(buildStream(2, [
      { cmd: 'subvol', path: B('e'), uuid: randomBytes(16), ctransid: 13 },
      { cmd: 'mkfile', path: B('dst'), ino: 257 },
      cloneFrom(unknown, 4096),
    ])), dest);
    expect(error.message).toMatch(/command #3 \(clone\) e\/dst .*clone: cannot find source subvolume [0-9a-f-]{36}/);
  });

  it('an overlapping clone within one file is refused like the kernel refuses it, not copied', async () => {
    const uuid = randomBytes(16);
    const { error } = await ourReceiveFailure(bytes(buildStream(2, [
      { cmd: 'subvol', path: B('f'), uuid, ctransid: 14 },
      { cmd: 'mkfile', path: B('dst'), ino: 257 },
      { cmd: 'write', path: B('dst'), offset: 0, data: randomBytes(16384) },
      { cmd: 'clone', path: B('dst'), offset: 4096, len: 8192, cloneUuid: uuid, cloneCtransid: 14, clonePath: B('dst'), cloneOffset: 0 },
    ])), dest);
    expect(error.message).toMatch(/command #4 \(clone\) f\/dst .*EINVAL/);
    expect(subvolInfo(join(dest, 'f')).readonly).toBe(false);
  });
});
