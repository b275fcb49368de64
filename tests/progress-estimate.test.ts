// The total behind `send --progress --estimate`: from a --no-data stream, the size the real stream will
// have. Checked against the framing of real WRITE commands and against real btrfs send output.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, writeFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { makeBtrfs, requireBtrfs, run, type Btrfs } from './helpers/btrfs.js';
import { estimateFromNoDataStream, estimateSendSize, writeCommandsSize } from '../src/progress/estimate.js';
import { readStream } from '../src/stream/reader.js';
import { encodeCommand, splitWrite } from '../src/stream/writer.js';
import { send } from '../src/send/send.js';

describe('writeCommandsSize', () => {
  it('equals the bytes of the WRITE commands that carry the data, in v1 and v2', () => {
    const path = Buffer.from('dir/some file.bin');
    for (const version of [1, 2]) {
      for (const size of [1, 4095, 49152, 49153, 131072, 131073, 1_000_000]) {
        const pieces = splitWrite({ cmd: 'write', path, offset: 0, data: Buffer.alloc(size) }, version);
        const actual = pieces.reduce((n, c) => n + encodeCommand(c, version).length, 0);
        expect(writeCommandsSize(size, path.length, version), `v${version} ${size}`).toBe(actual);
      }
    }
  });
});

const ok = requireBtrfs();
describe.skipIf(!ok)('estimate on real snapshots', () => {
  let fs: Btrfs;
  let snap = '';
  beforeAll(() => {
    fs = makeBtrfs({ sizeMiB: 512 });
    const vol = join(fs.mnt, 'vol');
    run('btrfs', ['-q', 'subvolume', 'create', vol]);
    run('sh', ['-c', `head -c 10M /dev/urandom > '${vol}/a'; head -c 300001 /dev/urandom > '${vol}/odd'`]);
    writeFileSync(join(vol, 'inline'), 'small inline file\n');
    mkdirSync(join(vol, 'dir'));
    for (let i = 1; i <= 200; i++) writeFileSync(join(vol, 'dir', `s${i}`), Buffer.alloc(i * 777, i));
    run('sh', ['-c', `dd if=/dev/urandom of='${vol}/sparse' bs=64K count=3 seek=10 2>/dev/null`]);
    run('setfattr', ['-n', 'user.x', '-v', 'hello', join(vol, 'a')]);
    snap = join(fs.mnt, 'snap');
    run('btrfs', ['-q', 'subvolume', 'snapshot', '-r', vol, snap]);
  }, 60_000);
  afterAll(() => fs?.cleanup());

  for (const proto of [1, 2]) {
    it(`is exact for a full send, protocol ${proto} (btrfs send --no-data vs btrfs send)`, async () => {
      const noData = run('btrfs', ['send', '-q', '--proto', String(proto), '--no-data', snap]);
      const real = run('btrfs', ['send', '-q', '--proto', String(proto), snap]);
      expect(await estimateFromNoDataStream(readStream(Readable.from([noData])))).toBe(real.length);
    });
  }

  it('estimateSendSize runs our own --no-data send in memory and gets the same number', async () => {
    const out = join(fs.mnt, '..', 'real.stream');
    run('btrfs', ['send', '-q', '--proto', '2', '-f', out, snap]);
    const estimate = await estimateSendSize({
      subvolumes: [snap], cloneSources: [], noData: false, compressedData: false, omitEnd: false, proto: 2, verbosity: 1,
      log: () => { throw new Error('the estimate pass must print nothing'); },
    }, send);
    expect(estimate).toBe(statSync(out).size);
  });
});
