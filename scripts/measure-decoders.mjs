#!/usr/bin/env node
// Measures (not a test) the ENCODED_WRITE decoders and the cost of `verify` on real kernel extents.
// Needs root, btrfs-progs and a build (`npx tsc -p .`). Usage: node scripts/measure-decoders.mjs [MiB]
// For each codec: write a corpus on a compress-force=<codec> loop btrfs in /dev/shm, `btrfs send
// --compressed-data`, read the stream with our reader, then time
//   decode      decodeExtent() of every ENCODED_WRITE payload (MB/s of decoded bytes)
//   encoded     applyEncodedWrite (ioctl) into a compression-less btrfs, verify off
//   verified    the same with verify on (trial decode first)
//   fallback    forceDecompress (decode + pwrite)
import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodeExtent } from '../dist/compress/index.js';
import { applyEncodedWrite } from '../dist/receive/encoded-write.js';
import { readStream } from '../dist/stream/index.js';

const corpusMiB = Number(process.argv[2] ?? 64);
const run = (cmd, args, opts = {}) => execFileSync(cmd, args, { maxBuffer: 1 << 30, ...opts });

function makeFs(sizeMiB, mountOptions) {
  const dir = mkdtempSync('/dev/shm/btrfs-ts-measure-');
  const img = join(dir, 'fs.img');
  const mnt = join(dir, 'mnt');
  run('mkdir', ['-p', mnt]);
  run('truncate', ['-s', `${sizeMiB}M`, img]);
  run('mkfs.btrfs', ['-q', img]);
  run('mount', ['-o', ['loop', mountOptions].filter(Boolean).join(','), img, mnt]);
  return {
    dir, mnt,
    cleanup() {
      spawnSync('umount', [mnt]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A mixed corpus: system text and binaries, like a real tree (compressible ~2-4×). */
function corpus(limit) {
  const files = [];
  let total = 0;
  const walk = (dir) => {
    let entries;
    try { entries = readdirSync(dir, { withFileTypes: true }); } catch { return; }
    for (const e of entries) {
      if (total >= limit) return;
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) {
        try {
          const st = statSync(p);
          if (st.size < 1024 || st.size > 8 << 20) continue;
          files.push(readFileSync(p));
          total += st.size;
        } catch { /* unreadable */ }
      }
    }
  };
  for (const root of ['/usr/share/doc', '/usr/lib/x86_64-linux-gnu', '/usr/share', '/usr/bin']) walk(root);
  return files;
}

const mbps = (bytes, ms) => (bytes / 1e6 / (ms / 1000)).toFixed(0);

const files = corpus(corpusMiB << 20);
console.log(`corpus: ${files.length} files, ${(files.reduce((a, b) => a + b.length, 0) / 1048576).toFixed(1)} MiB`);
for (const codec of ['zstd', 'zlib', 'lzo']) {
  const src = makeFs(corpusMiB * 3 + 256, `compress-force=${codec}`);
  const dst = makeFs(corpusMiB * 8 + 512, '');
  try {
    run('btrfs', ['-q', 'subvolume', 'create', join(src.mnt, 's')]);
    files.forEach((content, i) => writeFileSync(join(src.mnt, 's', `f${i}`), content));
    run('btrfs', ['-q', 'subvolume', 'snapshot', '-r', join(src.mnt, 's'), join(src.mnt, 'snap')]);
    const streamFile = join(src.dir, 'stream');
    run('btrfs', ['-q', 'send', '--compressed-data', '-f', streamFile, join(src.mnt, 'snap')]);
    const cmds = [];
    for await (const { command } of readStream(streamFile)) if (command.cmd === 'encoded_write') cmds.push(command);
    const decodedBytes = cmds.reduce((a, c) => a + c.unencodedFileLen, 0);
    const encodedBytes = cmds.reduce((a, c) => a + c.data.length, 0);

    const time = (fn) => { const t = performance.now(); fn(); return performance.now() - t; };
    const decodeOnce = () => { for (const c of cmds) decodeExtent({ compression: c.compression ?? 0, data: c.data, unencodedLen: c.unencodedLen }); };
    decodeOnce(); // warm up
    const decodeMs = Math.min(time(decodeOnce), time(decodeOnce), time(decodeOnce));

    const applyAll = (tag, opts) => {
      const dir = join(dst.mnt, tag);
      run('mkdir', [dir]);
      const fds = new Map();
      const ms = time(() => {
        for (const c of cmds) {
          const name = c.path.toString();
          let fd = fds.get(name);
          if (fd === undefined) fds.set(name, (fd = openSync(join(dir, name), 'w+')));
          applyEncodedWrite(fd, c, { forceDecompress: false, verify: false, onFallback() {}, ...opts });
        }
      });
      for (const fd of fds.values()) closeSync(fd);
      run('sync', []);
      return ms;
    };
    // Alternate the modes and keep each one's best of 3 (page-cache writeback makes single runs noisy).
    const best = { enc: Infinity, ver: Infinity, fallback: Infinity };
    for (let round = 0; round < 3; round++) {
      best.fallback = Math.min(best.fallback, applyAll(`fallback${round}`, { forceDecompress: true }));
      best.enc = Math.min(best.enc, applyAll(`encoded${round}`, {}));
      best.ver = Math.min(best.ver, applyAll(`verified${round}`, { verify: true }));
    }
    const { enc, ver, fallback: fallbackMs } = best;
    console.log(`${codec}: ${cmds.length} ENCODED_WRITEs, ${(decodedBytes / 1048576).toFixed(1)} MiB decoded from ${(encodedBytes / 1048576).toFixed(1)} MiB`
      + ` | decode ${mbps(decodedBytes, decodeMs)} MB/s | ioctl ${mbps(decodedBytes, enc)} MB/s | ioctl+verify ${mbps(decodedBytes, ver)} MB/s`
      + ` (verify costs ${((ver / enc - 1) * 100).toFixed(0)}%) | forceDecompress ${mbps(decodedBytes, fallbackMs)} MB/s (file bytes/s)`);
  } finally {
    src.cleanup();
    dst.cleanup();
  }
}
