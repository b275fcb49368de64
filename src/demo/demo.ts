// `btrfs-ts demo` (`npm run demo`): on a root shell with btrfs-progs installed, shows send and receive
// end to end on two throw-away loop-mounted filesystems in /dev/shm, and removes everything after.
//
//   source (compress-force=zstd)                          destination (no compression)
//   data ─snapshot→ snap1 ─send --compressed-data──────→ receive → snap1
//   edits  ─snapshot→ snap2 ─send -p snap1 --compressed-data→ receive → snap2
//
// send() writes into a Node stream that receive() reads, in this process. The received trees are
// compared with their sources; sizes of the v1 and v2 streams and the destination's on-disk usage
// (compsize) are printed.
import { spawnSync } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { Transform, Writable } from 'node:stream';
import { send, type SendOptions } from '../send/send.js';
import { receive } from '../receive/receive.js';
import { snapCreateV2, subvolCreate, subvolGetFlags } from '../sys/btrfs-ioctl.js';
import { BTRFS_SUBVOL_RDONLY } from '../sys/constants.js';
import { readRootItem } from '../sys/subvolume.js';
import { rootIdOf } from '../sys/btrfs-ioctl.js';
import { makeLoopFs, type LoopFs } from '../lab/loop-btrfs.js';
import { collectTree, diffTrees, formatDifference } from '../lab/compare-trees.js';
import { fillWithRealFiles, listFiles } from './corpus.js';
import { addExtras, editForIncremental } from './edits.js';

const MiB = 1024 * 1024;

export interface DemoOptions {
  /** Bytes of real files to copy into the source subvolume (default 32 MiB). */
  budget?: number;
  /** Where the lines go (default: stdout). */
  print?: (line: string) => void;
}

const mib = (n: number): string => (n < MiB ? `${(n / 1024).toFixed(1)} KiB` : `${(n / MiB).toFixed(1)} MiB`);
const secs = (ms: number): string => `${(ms / 1000).toFixed(2)} s`;
const rate = (bytes: number, ms: number): string => `${((bytes / MiB) / Math.max(ms / 1000, 1e-3)).toFixed(0)} MiB/s`;

function withDir<T>(path: string, use: (fd: number) => T): T {
  const fd = openSync(path, 'r');
  try {
    return use(fd);
  } finally {
    closeSync(fd);
  }
}

/** A read-only snapshot `name` of `src` in directory `dir` (BTRFS_IOC_SNAP_CREATE_V2). */
function snapshotReadOnly(src: string, dir: string, name: string): void {
  withDir(src, (srcFd) => withDir(dir, (dirFd) => snapCreateV2(dirFd, name, srcFd, true)));
}

/** Counts bytes flowing through. */
function counter(): { stream: Transform; bytes(): number } {
  let n = 0;
  const stream = new Transform({
    highWaterMark: MiB,
    transform(chunk: Buffer, _enc, done) {
      n += chunk.length;
      done(null, chunk);
    },
  });
  return { stream, bytes: () => n };
}

const baseSend: Omit<SendOptions, 'subvolumes'> = {
  cloneSources: [], noData: false, compressedData: false, omitEnd: false, verbosity: 0,
};

/** send() of `opts` piped into receive() at `dest`, both in this process. */
async function sendAndReceive(opts: Partial<SendOptions> & { subvolumes: string[] }, dest: string): Promise<{ bytes: number; ms: number }> {
  const start = performance.now();
  const count = counter();
  const sending = send({ ...baseSend, ...opts, output: count.stream }).then(
    () => { count.stream.end(); },
    (e: unknown) => { count.stream.destroy(e as Error); throw e; },
  );
  const receiving = receive({
    dest, input: count.stream, verbosity: 0, stopAtEnd: false, chroot: false, maxErrors: 1, forceDecompress: false,
  }).catch((e: unknown) => {
    // Nobody reads any more: end the stream so the sender stops too.
    count.stream.destroy();
    throw e;
  });
  const [s, r] = await Promise.allSettled([sending, receiving]);
  if (r.status === 'rejected') throw r.reason;
  if (s.status === 'rejected') throw s.reason;
  return { bytes: count.bytes(), ms: performance.now() - start };
}

/** Size of a send stream, counted and discarded. */
async function streamSize(opts: Partial<SendOptions> & { subvolumes: string[] }): Promise<number> {
  let n = 0;
  const sink = new Writable({
    highWaterMark: MiB,
    write(chunk: Buffer, _enc, done) { n += chunk.length; done(); },
  });
  await send({ ...baseSend, ...opts, output: sink });
  return n;
}

/** Received tree equals its source (everything but ctime/otime); returns the number of entries. */
function verifyTree(source: string, received: string): number {
  const a = collectTree(source);
  const b = collectTree(received);
  const diffs = diffTrees(a, b);
  if (diffs.length) {
    throw new Error(`demo: ${received} differs from ${source}: ${diffs.slice(0, 3).map((d) => formatDifference(d, ['source', 'received'])).join('; ')}`);
  }
  return a.size;
}

/** Received UUID = the source snapshot's UUID, and the received subvolume is read-only. */
function verifyReceivedIdentity(source: string, received: string): void {
  const srcItem = withDir(source, (fd) => readRootItem(fd, rootIdOf(fd)));
  const dstItem = withDir(received, (fd) => readRootItem(fd, rootIdOf(fd)));
  if (!srcItem || !dstItem) throw new Error(`demo: cannot read the root items of ${source} / ${received}`);
  if (!dstItem.receivedUuid.equals(srcItem.uuid)) throw new Error(`demo: ${received}: received UUID is not ${source}'s UUID`);
  if (dstItem.stransid !== srcItem.ctransid) throw new Error(`demo: ${received}: stransid ${dstItem.stransid} != ${srcItem.ctransid}`);
  const ro = withDir(received, (fd) => (subvolGetFlags(fd) & BTRFS_SUBVOL_RDONLY) !== 0);
  if (!ro) throw new Error(`demo: ${received} is not read-only`);
}

/** compsize's totals in bytes for a path, or undefined if compsize is not installed. */
function compsize(path: string): { disk: number; uncompressed: number; zstdPerc?: number } | undefined {
  const r = spawnSync('compsize', ['-b', path], { encoding: 'utf8' });
  if (r.error || r.status !== 0) return undefined;
  const total = /^TOTAL\s+(\d+)%\s+(\d+)\s+(\d+)/m.exec(r.stdout);
  if (!total) return undefined;
  const zstd = /^zstd\s+(\d+)%/m.exec(r.stdout);
  return { disk: Number(total[2]), uncompressed: Number(total[3]), ...(zstd ? { zstdPerc: Number(zstd[1]) } : {}) };
}

function checkPrerequisites(): void {
  if (process.getuid?.() !== 0) throw new Error('demo: must run as root (it creates loop devices and mounts btrfs)');
  for (const tool of ['mkfs.btrfs', 'losetup', 'mount']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) {
      throw new Error(`demo: ${tool} not found (install btrfs-progs and util-linux)`);
    }
  }
}

export async function runDemo(args: string[] = [], options: DemoOptions = {}): Promise<void> {
  if (args.includes('-h') || args.includes('--help')) {
    (options.print ?? console.log)('usage: btrfs-ts demo   (as root; takes ~10 s; leaves nothing behind)');
    return;
  }
  const print = options.print ?? ((line: string) => console.log(line));
  const budget = options.budget ?? 32 * MiB;
  checkPrerequisites();
  const t0 = performance.now();
  let source: LoopFs | undefined;
  let dest: LoopFs | undefined;
  try {
    source = makeLoopFs('demo-src', { sizeMiB: 512, mountOptions: ['compress-force=zstd'] });
    dest = makeLoopFs('demo-dst', { sizeMiB: 512 });
    print('btrfs-ts demo: send a snapshot with its compressed extents as they are, then an incremental one');
    print(`  source:      ${source.mnt}  (loop btrfs, compress-force=zstd)`);
    print(`  destination: ${dest.mnt}  (loop btrfs, no compression)`);

    const data = join(source.mnt, 'data');
    withDir(source.mnt, (fd) => subvolCreate(fd, 'data'));
    const corpus = fillWithRealFiles(data, budget);
    addExtras(data);
    print(`[1] filled subvolume data: ${corpus.files} files, ${mib(corpus.bytes)} from ${corpus.sources.join(', ')}`);
    print('    plus a hard link, a symlink, a reflinked copy of the largest file and a sparse file');
    snapshotReadOnly(data, source.mnt, 'snap1');
    print('[2] read-only snapshot data -> snap1');

    const snap1 = join(source.mnt, 'snap1');
    const full = await sendAndReceive({ subvolumes: [snap1], compressedData: true }, dest.mnt);
    print(`[3] send --compressed-data snap1 | receive: ${mib(full.bytes)} stream in ${secs(full.ms)} (${rate(full.bytes, full.ms)})`);
    const v1 = await streamSize({ subvolumes: [snap1] });
    const v2plain = await streamSize({ subvolumes: [snap1], proto: 2 });
    print(`    the same snapshot as a v1 stream: ${mib(v1)}; v2 without --compressed-data: ${mib(v2plain)}`);
    print(`    v2 with compressed data is ${((100 * full.bytes) / v1).toFixed(0)}% of v1 (zstd extents travel as they are on disk)`);

    const changed = editForIncremental(data);
    snapshotReadOnly(data, source.mnt, 'snap2');
    const snap2 = join(source.mnt, 'snap2');
    const incr = await sendAndReceive({ subvolumes: [snap2], parent: snap1, compressedData: true }, dest.mnt);
    print(`[4] edited ${changed} paths, snapshot -> snap2; send -p snap1 --compressed-data snap2 | receive: ${mib(incr.bytes)} in ${secs(incr.ms)}`);

    let entries = 0;
    for (const name of ['snap1', 'snap2']) {
      entries += verifyTree(join(source.mnt, name), join(dest.mnt, name));
      verifyReceivedIdentity(join(source.mnt, name), join(dest.mnt, name));
    }
    const files = listFiles(join(dest.mnt, 'snap2')).length;
    print(`[5] verified: received snap1 and snap2 equal their sources (${entries} entries compared: type, mode, owner,`);
    print(`    size, content, times, xattrs, links; ${files} files in snap2); received UUIDs set; both read-only`);

    const usage = compsize(join(dest.mnt, 'snap2'));
    if (usage) {
      const how = usage.zstdPerc !== undefined ? `zstd extents at ${usage.zstdPerc}%` : 'no compressed extents';
      print(`[6] destination (compsize): ${mib(usage.disk)} on disk for ${mib(usage.uncompressed)} of data, ${how}`);
      print('    (the destination is mounted without compression: the data stayed compressed because it was written as sent)');
    } else {
      print('[6] compsize not installed: skipped the on-disk usage of the destination');
    }
  } finally {
    dest?.cleanup();
    source?.cleanup();
  }
  print(`done in ${secs(performance.now() - t0)}; unmounted and removed both filesystems`);
}
