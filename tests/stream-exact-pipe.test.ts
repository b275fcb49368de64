// `-e` on a pipe: stop right after the first END and leave every later byte in the pipe for the next
// reader, as in `while btrfs-ts receive -e DIR; do :; done < pipe` (src/stream/exact-fd-window.ts).
import { describe, it, expect, afterAll } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { requireBtrfs, makeBtrfs, run, type Btrfs } from './helpers/btrfs.js';
import { makeSubvolume, snapshot } from './helpers/populate.js';
import { btrfsSend } from './helpers/receive-harness.js';

const CLI = resolve(__dirname, '..', 'bin', 'btrfs-ts.js');
const FIXTURES = resolve(__dirname, 'fixtures', 'dump');
const tmp = mkdtempSync('/dev/shm/btrfs-ts-exact-pipe-');
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function sh(script: string): { status: number | null; stderr: string } {
  const r = spawnSync('bash', ['-c', script], { encoding: 'utf8', env: { ...process.env, TZ: 'UTC', NODE: process.execPath, CLI } });
  return { status: r.status, stderr: r.stderr };
}

describe('receive -e on a pipe reads nothing past the first END', () => {
  it('--dump -e twice on one pipe: each dumps its own stream, the rest of the pipe is untouched', () => {
    const a = join(FIXTURES, 'full-v1.stream');
    const b = join(FIXTURES, 'full-v2-lzo.stream');
    const c = join(FIXTURES, 'clone-src.stream');
    const r = sh(`cat '${a}' '${b}' '${c}' | { "$NODE" "$CLI" receive --dump -e > '${tmp}/1.dump' && ` +
      `"$NODE" "$CLI" receive --dump -e > '${tmp}/2.dump' && cat > '${tmp}/rest'; }`);
    expect(r.status, r.stderr).toBe(0);
    expect(readFileSync(join(tmp, '1.dump'), 'utf8')).toBe(readFileSync(join(FIXTURES, 'full-v1.utc.dump'), 'utf8'));
    expect(readFileSync(join(tmp, '2.dump'), 'utf8')).toBe(readFileSync(join(FIXTURES, 'full-v2-lzo.utc.dump'), 'utf8'));
    expect(readFileSync(join(tmp, 'rest')).equals(readFileSync(c))).toBe(true);
  });

  it('-e grows the pipe to 1 MiB first (two reads per command wake the writer far less often)', () => {
    const a = join(FIXTURES, 'full-v1.stream');
    const getPipeSize = `python3 -c 'import fcntl; print(fcntl.fcntl(0, 1032))'`; // F_GETPIPE_SZ
    const r = spawnSync('bash', ['-c', `cat '${a}' '${a}' | { ${getPipeSize}; "$NODE" "$CLI" receive --dump -e > /dev/null && ${getPipeSize}; cat > /dev/null; }`],
      { encoding: 'utf8', env: { ...process.env, NODE: process.execPath, CLI } });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.trim().split('\n').map(Number)).toEqual([65536, 1 << 20]);
  });

  it('without -e the whole pipe is read (all streams dumped)', () => {
    const a = join(FIXTURES, 'full-v1.stream');
    const r = sh(`cat '${a}' '${a}' | "$NODE" "$CLI" receive --dump > '${tmp}/both.dump'`);
    expect(r.status, r.stderr).toBe(0);
    const one = readFileSync(join(FIXTURES, 'full-v1.utc.dump'), 'utf8');
    expect(readFileSync(join(tmp, 'both.dump'), 'utf8')).toBe(one + one);
  });

  it('a stream cut inside a command is still an error naming the byte offset', () => {
    const a = readFileSync(join(FIXTURES, 'full-v1.stream'));
    writeFileSync(join(tmp, 'cut.stream'), a.subarray(0, 5000));
    const r = sh(`cat '${tmp}/cut.stream' | "$NODE" "$CLI" receive --dump -e > /dev/null`);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^ERROR: .*unexpected end of stream.* at byte 5000/m);
  });

  const ok = requireBtrfs();
  describe.skipIf(!ok)('on a real btrfs', () => {
    let fs: Btrfs;
    afterAll(() => fs?.cleanup());
    it('`while receive -e` takes two subvolumes, one per invocation, from one pipe', () => {
      fs = makeBtrfs({ sizeMiB: 300 });
      for (const name of ['one', 'two']) {
        makeSubvolume(join(fs.mnt, `${name}-vol`));
        writeFileSync(join(fs.mnt, `${name}-vol`, 'file'), `${name}\n`.repeat(2000));
        snapshot(join(fs.mnt, `${name}-vol`), join(fs.mnt, name));
        btrfsSend(join(fs.mnt, name), join(tmp, `${name}.stream`), { proto: 2, compressed: true });
      }
      run('mkdir', ['-p', join(fs.mnt, 'dest')]);
      const size = readFileSync(join(tmp, 'one.stream')).length + readFileSync(join(tmp, 'two.stream')).length;
      expect(size).toBeLessThan(60_000); // both fit in the pipe before the first receiver reads (sleep)
      const r = sh(`cat '${tmp}/one.stream' '${tmp}/two.stream' | { sleep 0.3; n=0; while "$NODE" "$CLI" receive -q -e '${fs.mnt}/dest'; ` +
        `do n=$((n+1)); [ $n -lt 5 ] || break; done; echo "received=$n" >&2; }`);
      // The third invocation finds the pipe empty and fails ("empty stream"): the loop ends there.
      expect(r.stderr).toContain('received=2');
      expect(readFileSync(join(fs.mnt, 'dest', 'one', 'file'), 'utf8')).toBe('one\n'.repeat(2000));
      expect(readFileSync(join(fs.mnt, 'dest', 'two', 'file'), 'utf8')).toBe('two\n'.repeat(2000));
    }, 60_000);
  });
});
