// ENABLE_VERITY (v3) reaches FS_IOC_ENABLE_VERITY on a read-only fd after the data; where the kernel
// has no fs-verity (as on the reference VM) the failure is one clear line and nothing is finalized.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdirSync, readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { requireBtrfs, makeBtrfs, type Btrfs } from './helpers/btrfs.js';
import { buildStream } from './helpers/stream-builder.js';
import { subvolInfo } from '../src/lab/loop-btrfs.js';
import { receive } from '../src/receive/receive.js';

const ok = requireBtrfs();
const B = (s: string): Buffer => Buffer.from(s);
async function* bytes(b: Buffer): AsyncGenerator<Buffer> { yield b; }

describe.skipIf(!ok)('ENABLE_VERITY', () => {
  let fs: Btrfs;
  beforeAll(() => { fs = makeBtrfs({ sizeMiB: 128 }); });
  afterAll(() => fs?.cleanup());

  it('is applied to the file (or fails clearly without fs-verity support)', async () => {
    const dest = join(fs.mnt, 'd');
    mkdirSync(dest);
    const stream = buildStream(3, [
      { cmd: 'subvol', path: B('s'), uuid: randomBytes(16), ctransid: 5 },
      { cmd: 'mkfile', path: B('v'), ino: 257 },
      { cmd: 'write', path: B('v'), offset: 0, data: randomBytes(10000) },
      { cmd: 'enable_verity', path: B('v'), algorithm: 1, blockSize: 4096, salt: Buffer.alloc(0), sig: Buffer.alloc(0) },
    ]);
    const log: string[] = [];
    let error: Error | undefined;
    try {
      await receive({ dest, input: bytes(stream), verbosity: 1, stopAtEnd: false, chroot: false, maxErrors: 1, forceDecompress: false, log: (l) => log.push(l) });
    } catch (e) { error = e as Error; }
    if (error) {
      expect(error.message).toMatch(/^receive failed at command #4 \(enable_verity\) s\/v \(stream byte \d+\): cannot enable verity on s\/v: fs-verity is not supported/);
      expect(subvolInfo(join(dest, 's')).readonly).toBe(false);
    } else {
      expect(subvolInfo(join(dest, 's')).readonly).toBe(true);
    }
    expect(readFileSync(join(dest, 's', 'v')).length).toBe(10000);
  });
});
