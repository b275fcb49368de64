// A small realistic tree for the demo: text copied from the machine (documentation, Python's
// standard library), so compression ratios are those of real files. If those directories are
// missing, generated text of the same flavour stands in.
import * as fs from 'node:fs';
import { join, relative } from 'node:path';

export interface CorpusStats {
  files: number;
  bytes: number;
  sources: string[];
}

const MiB = 1024 * 1024;

/** Candidate source directories, in the order they are drawn from. */
function sourceDirs(): string[] {
  const dirs = ['/usr/share/doc'];
  try {
    for (const name of fs.readdirSync('/usr/lib').sort()) if (/^python3(\.\d+)?$/.test(name)) dirs.push(join('/usr/lib', name));
  } catch { /* no /usr/lib */ }
  return dirs.filter((d) => fs.existsSync(d));
}

/**
 * Copy regular files (and relative symlinks) from `from` into `to` (same relative paths) until
 * `budget` bytes are used. Returns what was copied.
 */
function copySome(from: string, to: string, budget: number, stats: CorpusStats): void {
  const stack = [from];
  while (stack.length && stats.bytes < budget) {
    const dir = stack.pop()!;
    let names: string[];
    try {
      names = fs.readdirSync(dir).sort().reverse();
    } catch {
      continue;
    }
    for (const name of names) {
      if (stats.bytes >= budget) return;
      const src = join(dir, name);
      const dst = join(to, relative(from, src));
      let st: fs.Stats;
      try {
        st = fs.lstatSync(src);
      } catch {
        continue;
      }
      if (st.isDirectory()) {
        if (name === '__pycache__' || name === 'site-packages' || name === 'dist-packages') continue;
        stack.push(src);
        continue;
      }
      try {
        fs.mkdirSync(join(dst, '..'), { recursive: true });
        if (st.isSymbolicLink()) {
          const target = fs.readlinkSync(src);
          if (!target.startsWith('/')) fs.symlinkSync(target, dst);
        } else if (st.isFile() && st.size <= 4 * MiB) {
          fs.copyFileSync(src, dst);
          fs.chmodSync(dst, st.mode & 0o7777);
          fs.utimesSync(dst, st.atime, st.mtime);
          stats.files++;
          stats.bytes += st.size;
        }
      } catch { /* unreadable or odd file: skip */ }
    }
  }
}

/** Deterministic prose-like text, for machines without /usr/share/doc. */
function generatedText(length: number, seed: number): Buffer {
  const words = ['btrfs', 'send', 'receive', 'snapshot', 'extent', 'subvolume', 'stream', 'compressed', 'inode',
    'the', 'a', 'of', 'to', 'and', 'data', 'metadata', 'kernel', 'file', 'directory', 'copy-on-write'];
  let x = seed >>> 0 || 1;
  const out: string[] = [];
  let size = 0;
  while (size < length) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    const w = words[x % words.length]!;
    const piece = x % 11 === 0 ? `${w}.\n` : `${w} `;
    out.push(piece);
    size += piece.length;
  }
  return Buffer.from(out.join('').slice(0, length));
}

/** Fill `dir` with about `budget` bytes of real text files. */
export function fillWithRealFiles(dir: string, budget: number): CorpusStats {
  const stats: CorpusStats = { files: 0, bytes: 0, sources: [] };
  const dirs = sourceDirs();
  dirs.forEach((src, i) => {
    const share = Math.round((budget * (i + 1)) / dirs.length);
    const before = stats.bytes;
    copySome(src, join(dir, src.replace(/^\/usr\//, '').replace(/\//g, '-')), share, stats);
    if (stats.bytes > before) stats.sources.push(src);
  });
  for (let i = 0; stats.bytes < budget / 2; i++) {
    const data = generatedText(256 * 1024, i + 1);
    fs.mkdirSync(join(dir, 'generated'), { recursive: true });
    fs.writeFileSync(join(dir, 'generated', `text-${i}.txt`), data);
    stats.files++;
    stats.bytes += data.length;
    if (i === 0) stats.sources.push('generated text');
  }
  return stats;
}

/** All regular files under `dir` (relative paths), sorted. */
export function listFiles(dir: string, rel = ''): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(join(dir, rel), { withFileTypes: true })) {
    const r = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...listFiles(dir, r));
    else if (e.isFile()) out.push(r);
  }
  return out.sort();
}
