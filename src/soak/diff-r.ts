// Second opinion for the soak that shares no code with src/lab/compare-trees.ts: GNU
// `diff -rq --no-dereference` checks names, file types, contents and symlink targets.
// Metadata (modes, owners, times, xattrs, hard links) is left to the comparer.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';

type SpecialKind = 'fifo' | 'socket' | 'character special file' | 'block special file';

/** Fifos, sockets and device nodes under `root` (latin1 relative paths of the raw bytes), named as diff names them. */
function specialFiles(root: string): [string, SpecialKind][] {
  const out: [string, SpecialKind][] = [];
  const walk = (rel: string): void => {
    for (const name of fs.readdirSync(rawPath(root, rel), { encoding: 'buffer' })) {
      const child = rel ? `${rel}/${name.toString('latin1')}` : name.toString('latin1');
      const st = fs.lstatSync(rawPath(root, child));
      if (st.isDirectory()) walk(child);
      else if (st.isFIFO()) out.push([child, 'fifo']);
      else if (st.isSocket()) out.push([child, 'socket']);
      else if (st.isCharacterDevice()) out.push([child, 'character special file']);
      else if (st.isBlockDevice()) out.push([child, 'block special file']);
    }
  };
  walk('');
  return out;
}

function rawPath(root: string, rel: string): Buffer {
  return Buffer.from(rel ? `${root}/${rel}` : root, 'latin1');
}

/**
 * What `diff -r` reports between trees `a` and `b` ('' = same). diff never opens special files: it
 * lists every fifo, socket and device node that exists on both sides, even equal ones. Exactly those
 * lines are dropped when the type matches (and, for devices, the device number). Roots must be ASCII.
 */
export function diffR(a: string, b: string): string {
  const r = spawnSync('diff', ['-rq', '--no-dereference', '--', a, b], { env: { ...process.env, LC_ALL: 'C' }, maxBuffer: 64 << 20 });
  if (r.error) throw new Error(`diff -r ${a} ${b}: ${r.error.message}`);
  if (r.status !== 0 && r.status !== 1) throw new Error(`diff -r ${a} ${b}: exit ${r.status}: ${r.stderr.toString().trim()}`);
  let out = r.stdout.toString('latin1');
  for (const [rel, kind] of specialFiles(a)) {
    if (kind.endsWith('special file')) {
      const rb = fs.lstatSync(rawPath(b, rel), { bigint: true, throwIfNoEntry: false })?.rdev;
      if (rb !== fs.lstatSync(rawPath(a, rel), { bigint: true }).rdev) continue;
    }
    out = out.replace(`File ${a}/${rel} is a ${kind} while file ${b}/${rel} is a ${kind}\n`, () => '');
  }
  return out;
}
