// The benchmark's corpus: a fixed selection of /usr files copied into a read-only snapshot.
// Files are taken in the order of a hash of their path: deterministic, and a representative mix of
// sizes and kinds (a plain path order would start with a few huge libraries).
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Create subvolume `data` on `mnt`, copy files of /usr (in path-hash order) until their
 * apparent size reaches `sizeMiB`, and snapshot it read-only as `snap`.
 */
export function buildCorpus(mnt: string, sizeMiB: number): { files: number; bytes: number } {
  const listing = execFileSync('find', ['/usr', '-xdev', '-type', 'f', '-size', '-64M', '-printf', '%s %P\\n'], {
    encoding: 'utf8', maxBuffer: 512 << 20,
  });
  const entries = listing.split('\n').filter(Boolean).map((line) => {
    const space = line.indexOf(' ');
    const path = line.slice(space + 1);
    return { size: Number(line.slice(0, space)), path, key: createHash('md5').update(path).digest('hex') };
  }).sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const target = sizeMiB * 1048576;
  const chosen: string[] = [];
  let bytes = 0;
  for (const entry of entries) {
    if (bytes >= target) break;
    chosen.push(entry.path);
    bytes += entry.size;
  }
  const listFile = join(mnt, '.corpus-list');
  writeFileSync(listFile, chosen.join('\0') + '\0');
  execFileSync('btrfs', ['subvolume', 'create', join(mnt, 'data')], { stdio: 'ignore' });
  execFileSync('bash', ['-c',
    `tar -C /usr --null -T '${listFile}' -cf - | tar -C '${join(mnt, 'data')}' -xf -`]);
  execFileSync('btrfs', ['subvolume', 'snapshot', '-r', join(mnt, 'data'), join(mnt, 'snap')], { stdio: 'ignore' });
  execFileSync('sync');
  return { files: chosen.length, bytes };
}
