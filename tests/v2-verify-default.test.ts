// The receiver verifies compressed extents by default: the kernel stores whatever ENCODED_WRITE hands
// it, so a corrupt payload (with a valid CRC: a buggy or hostile sender) would become a file that
// reads as EIO. Verified, it is a one-line error naming the command; --no-verify-compressed opts out.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SAMPLE_TEXT, corruptZstdFrame, zstdFrame } from './helpers/v2-verify.js';
import { makeBtrfs, requireBtrfs, type Btrfs } from './helpers/btrfs.js';
import { buildStream } from './helpers/stream-builder.js';
import { cli } from './helpers/cli.js';

const ok = requireBtrfs();
const B = (s: string): Buffer => Buffer.from(s);

function stream(name: string, payload: Buffer): Buffer {
  return buildStream(2, [
    { cmd: 'subvol', path: B(name), uuid: Buffer.alloc(16, name.length), ctransid: 7 },
    { cmd: 'mkfile', path: B('f'), ino: 257 },
    { cmd: 'encoded_write', path: B('f'), offset: 0, unencodedFileLen: 8192, unencodedLen: 8192, unencodedOffset: 0,
      compression: 2, encryption: 0, data: payload },
  ]);
}

describe.skipIf(!ok)('compressed extents are verified by default', () => {
  let fs: Btrfs;
  let dest: string;
  beforeAll(() => {
    fs = makeBtrfs({ sizeMiB: 128 });
    dest = join(fs.mnt, 'dest');
    mkdirSync(dest);
  });
  afterAll(() => fs?.cleanup());

  it('a valid zstd extent is stored (the check lets it through)', () => {
    const file = join(fs.mnt, 'good.stream');
    writeFileSync(file, stream('good', zstdFrame(SAMPLE_TEXT)));
    const r = cli(['receive', '-q', '-f', file, dest]);
    expect(r.stderr).toBe('');
    expect(r.status, r.stderr).toBe(0);
    expect(readFileSync(join(dest, 'good', 'f')).equals(SAMPLE_TEXT)).toBe(true);
  });

  it('a corrupt zstd payload is a one-line error naming the command, and nothing is marked received', () => {
    const corrupt = corruptZstdFrame(SAMPLE_TEXT);
    const file = join(fs.mnt, 'bad.stream');
    writeFileSync(file, stream('bad', corrupt));
    const r = cli(['receive', '-q', '-f', file, dest]);
    expect(r.status).toBe(1);
    const lines = r.stderr.split('\n').filter(Boolean);
    expect(lines.filter((l) => l.startsWith('ERROR: ')), r.stderr).toEqual([
      'ERROR: receive failed at command #3 (encoded_write) bad/f (stream byte 93): encoded_write f: corrupt zstd payload: zstd: Data corruption detected',
    ]);
    expect(lines).toContain(`partially received subvolume left at ${join(dest, 'bad')} (writable, not marked received)`);
  });

  it('--no-verify-compressed hands the same payload to the kernel, which accepts it unchecked', () => {
    const corrupt = corruptZstdFrame(SAMPLE_TEXT);
    const file = join(fs.mnt, 'bad2.stream');
    writeFileSync(file, stream('bad2', corrupt));
    const r = cli(['receive', '-q', '--no-verify-compressed', '-f', file, dest]);
    expect(r.stderr).toBe('');
    expect(r.status, r.stderr).toBe(0);
    expect(() => readFileSync(join(dest, 'bad2', 'f'))).toThrow(/EIO|i\/o error/i);
  });
});
