// `btrfs-ts send` against `btrfs send` on the same snapshots: the streams must be byte-identical (the
// kernel makes them; we only choose the ioctl's arguments), and failures must print the same one line
// and exit 1. Runs the real CLI (bin/btrfs-ts.js → dist/, built by `npm test`).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { chmodSync, closeSync, mkdirSync, openSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { Writable } from 'node:stream';
import { send, SendError } from '../src/send/send.js';
import { makeBtrfs, requireBtrfs, type Btrfs } from './helpers/btrfs.js';
import { makeSubvolume, mutateTree, populateVariedTree, seededBytes, snapshot } from './helpers/populate.js';

const ok = requireBtrfs();
const CLI = join(dirname(fileURLToPath(import.meta.url)), '..', 'bin', 'btrfs-ts.js');

function ours(args: string[], opts: { stdout?: number } = {}): SpawnSyncReturns<Buffer> {
  return spawnSync(process.execPath, [CLI, 'send', ...args], {
    stdio: ['ignore', opts.stdout ?? 'pipe', 'pipe'], maxBuffer: 1 << 30, timeout: 120_000,
  });
}
function progs(args: string[], opts: { stdout?: number } = {}): SpawnSyncReturns<Buffer> {
  return spawnSync('btrfs', ['send', ...args], {
    stdio: ['ignore', opts.stdout ?? 'pipe', 'pipe'], maxBuffer: 1 << 30, timeout: 120_000,
  });
}

/** Where two buffers first differ (for a readable failure). */
function firstDifference(a: Buffer, b: Buffer): string {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return `first difference at byte ${i} (lengths ${a.length}, ${b.length})`;
  return a.length === b.length ? 'identical' : `one is a prefix of the other (lengths ${a.length}, ${b.length})`;
}

/**
 * Our one ERROR line is progs' line, optionally followed by "; <hint>" (src/hints: the progs part
 * stays first, word for word).
 */
function expectSameError(mine: string[], theirs: string): void {
  expect(mine).toHaveLength(1);
  const line = mine[0]!;
  expect(line.slice(0, theirs.length)).toBe(theirs);
  if (line.length > theirs.length) expect(line.slice(theirs.length, theirs.length + 2)).toBe('; ');
}

describe.skipIf(!ok)('btrfs-ts send is byte-identical to btrfs send', () => {
  let fs: Btrfs;
  let m: string;
  let out: string;
  const S = (name: string): string => join(m, name);

  beforeAll(() => {
    fs = makeBtrfs({ sizeMiB: 768, mountOptions: 'compress-force=zstd' });
    m = fs.mnt;
    out = join(dirname(m), 'out');
    mkdirSync(out);
    makeSubvolume(S('src'));
    populateVariedTree(S('src'));
    snapshot(S('src'), S('s1'));
    mutateTree(S('src'));
    snapshot(S('src'), S('s2'));
    writeFileSync(join(S('src'), 'third.txt'), 'a third state\n');
    snapshot(S('src'), S('s3'));
    // An unrelated subvolume (for "parent determination failed") and a big one (for broken pipes).
    makeSubvolume(S('other'));
    writeFileSync(join(S('other'), 'x'), 'x');
    snapshot(S('other'), S('other-snap'));
    makeSubvolume(S('bigsrc'));
    writeFileSync(join(S('bigsrc'), 'big.bin'), seededBytes(48 * 1024 * 1024, 7));
    snapshot(S('bigsrc'), S('big'));
    mkdirSync(join(S('src'), 'plain-dir'));
  }, 180_000);

  afterAll(() => fs?.cleanup());

  const cases: [string, () => string[]][] = [
    ['v1 full', () => [S('s1')]],
    ['--proto 2', () => ['--proto', '2', S('s1')]],
    ['--proto 0 (kernel highest)', () => ['--proto', '0', S('s1')]],
    ['--compressed-data', () => ['--compressed-data', S('s1')]],
    ['incremental -p (v1)', () => ['-p', S('s1'), S('s2')]],
    ['incremental -p --compressed-data', () => ['--compressed-data', '-p', S('s1'), S('s2')]],
    ['-c only: automatic parent', () => ['-c', S('s1'), S('s2')]],
    ['-c with several subvolumes: each sent one joins the clone sources', () => ['-c', S('s1'), S('s2'), S('s3')]],
    ['-p plus -c', () => ['-p', S('s1'), '-c', S('s2'), S('s3')]],
    ['two -c: the parent is the one closest in ctransid to the origin', () => ['-c', S('s1'), '-c', S('s2'), S('s3')]],
    ['two -c in the other order', () => ['-c', S('s2'), '-c', S('s1'), S('s3')]],
    ['--no-data --compressed-data -p', () => ['--no-data', '--compressed-data', '-p', S('s1'), S('s2')]],
    ['--proto 0 --compressed-data -p', () => ['--proto', '0', '--compressed-data', '-p', S('s1'), S('s3')]],
    ['--no-data incremental', () => ['--no-data', '-p', S('s1'), S('s2')]],
    ['--no-data --proto 2 full', () => ['--no-data', '--proto', '2', S('s1')]],
    ['several subvolumes (concatenated streams)', () => [S('s1'), S('s2'), S('s3')]],
    ['several subvolumes with -e (one stream)', () => ['-e', S('s1'), S('s2'), S('s3')]],
    ['-e with --compressed-data and -p', () => ['-e', '--compressed-data', '-p', S('s1'), S('s2'), S('s3')]],
  ];

  it.each(cases)('%s (-f FILE)', (name, args) => {
    const slug = name.replace(/[^a-z0-9]+/gi, '-');
    const theirs = join(out, `${slug}.progs`);
    const mine = join(out, `${slug}.ours`);
    const p = progs(['-q', '-f', theirs, ...args()]);
    expect(p.stderr.toString()).toBe('');
    expect(p.status, p.stderr.toString()).toBe(0);
    const o = ours(['-q', '-f', mine, ...args()]);
    expect(o.stderr.toString()).toBe('');
    expect(o.status, o.stderr.toString()).toBe(0);
    const a = readFileSync(theirs);
    const b = readFileSync(mine);
    expect(b.length).toBeGreaterThan(17);
    expect(firstDifference(a, b)).toBe('identical');
    // -f creates the file 0600, as progs.
    expect(statSync(mine).mode & 0o777).toBe(0o600);
  }, 120_000);

  it('--compressed-data really sent compressed extents (smaller than the same v2 stream)', () => {
    const size = (slug: string): number => statSync(join(out, `${slug}.ours`)).size;
    expect(size('-compressed-data')).toBeLessThan(size('-proto-2') * 0.8);
  });

  it('to stdout (a file) with "At subvol" messages on stderr', () => {
    const theirsPath = join(out, 'stdout.progs');
    const minePath = join(out, 'stdout.ours');
    const fdA = openSync(theirsPath, 'w');
    const fdB = openSync(minePath, 'w');
    try {
      const p = progs(['--compressed-data', S('s1'), S('s2')], { stdout: fdA });
      const o = ours(['--compressed-data', S('s1'), S('s2')], { stdout: fdB });
      expect(p.status, p.stderr.toString()).toBe(0);
      expect(o.status, o.stderr.toString()).toBe(0);
      expect(o.stderr.toString()).toBe(p.stderr.toString());
      expect(o.stderr.toString()).toBe(`At subvol ${S('s1')}\nAt subvol ${S('s2')}\n`);
    } finally {
      closeSync(fdA);
      closeSync(fdB);
    }
    expect(firstDifference(readFileSync(theirsPath), readFileSync(minePath))).toBe('identical');
  }, 120_000);

  it('through a pipe into a consumer (stdout is a pipe): same bytes as progs', () => {
    const p = progs(['-q', '--proto', '2', S('big')]);
    const o = ours(['-q', '--proto', '2', S('big')]);
    expect(o.status, o.stderr.toString()).toBe(0);
    expect(o.stdout.length).toBeGreaterThan(48 * 1024 * 1024);
    expect(firstDifference(p.stdout, o.stdout)).toBe('identical');
  }, 120_000);

  it('to a non-blocking stdout (EAGAIN from splice is waited out): same bytes', () => {
    // The parent makes its stdout non-blocking (as Node does once process.stdout is used), then runs
    // the CLI with that stdout inherited.
    const koffiPath = createRequire(import.meta.url).resolve('koffi');
    const script = `const k = require(${JSON.stringify(koffiPath)});
      const fcntl = k.load('libc.so.6').func('fcntl', 'int', ['int', 'int', 'int']);
      fcntl(1, 4 /* F_SETFL */, fcntl(1, 3 /* F_GETFL */, 0) | 0o4000 /* O_NONBLOCK */);
      if (!(fcntl(1, 3, 0) & 0o4000)) process.exit(99);
      const r = require('child_process').spawnSync(process.execPath, ${JSON.stringify([CLI, 'send', '-q', '--proto', '2'])}.concat(process.argv[1]),
        { stdio: ['ignore', 'inherit', 'inherit'] });
      process.exit(r.status ?? 98);`;
    const o = spawnSync(process.execPath, ['-e', script, S('big')], { maxBuffer: 1 << 30, timeout: 120_000 });
    expect(o.status, o.stderr.toString()).toBe(0);
    const p = progs(['-q', '--proto', '2', S('big')]);
    expect(firstDifference(p.stdout, o.stdout)).toBe('identical');
  }, 120_000);

  it('-f onto an existing file truncates it and keeps its mode', () => {
    const path = join(out, 'existing');
    writeFileSync(path, Buffer.alloc(10 * 1024 * 1024, 1));
    chmodSync(path, 0o644);
    expect(ours(['-q', '-f', path, S('s3')]).status).toBe(0);
    const theirs = join(out, 'existing.progs');
    expect(progs(['-q', '-f', theirs, S('s3')]).status).toBe(0);
    expect(firstDifference(readFileSync(theirs), readFileSync(path))).toBe('identical');
    expect(statSync(path).mode & 0o777).toBe(0o644);
  }, 60_000);

  describe('failures: the same one line as progs, exit 1', () => {
    const failures: [string, () => string[]][] = [
      ['not read-only', () => [S('src')]],
      ['not a subvolume', () => [join(S('src'), 'plain-dir')]],
      ['does not exist', () => [join(m, 'nope')]],
      ['not on btrfs', () => ['/dev/shm']],
      ['parent not read-only', () => ['-p', S('src'), S('s2')]],
      ['clone source not read-only', () => ['-c', S('src'), S('s2')]],
      ['clone source not a subvolume', () => ['-c', join(S('src'), 'plain-dir'), S('s2')]],
      ['parent not a subvolume', () => ['-p', join(S('src'), 'plain-dir'), S('s2')]],
      ['clone source missing', () => ['-c', join(m, 'nope'), S('s2')]],
      ['second subvolume not on btrfs', () => [S('s1'), '/dev/shm']],
      ['no parent among the clone sources', () => ['-c', S('other-snap'), S('s2')]],
      ['unsupported version (kernel says EPROTO)', () => ['--proto', '3', S('s1')]],
      ['-f in a missing directory', () => ['-f', join(out, 'no', 'such', 'file'), S('s1')]],
    ];
    // After an ioctl failure progs closes the pipe while its reader thread may still be reading it;
    // when that thread loses the race it adds "failed to read stream from kernel: Bad file descriptor"
    // (sometimes cut short, even to a bare "ERROR: ", or glued to the line before: the process exits while it prints) and exits
    // 9, or 1 (seen in CI and here, up to 4 runs in 5). That second line is progs' bug.
    const progsRace = /failed to read stream from kernel/;
    /** The race's line, whole or cut short anywhere (even right after "ERROR: ", seen 4 times in 80 runs). */
    const isRaceLine = (line: string): boolean =>
      progsRace.test(line) || (line.startsWith('ERROR: ') && 'failed to read stream from kernel'.startsWith(line.slice(7).trimEnd()));
    /** stderr as lines, each "ERROR: " starting a line of its own. */
    const errorLines = (stderr: Buffer): string[] => stderr.toString().replace(/(?<=[^\n])ERROR: /g, '\nERROR: ').split('\n');
    it.each(failures)('%s', (_name, args) => {
      const p = progs(args());
      const o = ours(args());
      const raced = errorLines(p.stderr).some(isRaceLine);
      if (raced) expect([1, 9]).toContain(p.status);
      else expect(p.status).toBe(1);
      expect(o.status, o.stderr.toString()).toBe(1);
      expect(o.stderr.toString()).not.toMatch(progsRace);
      const theirs = errorLines(p.stderr).filter((l) => l.startsWith('ERROR: ') && !isRaceLine(l));
      const mine = o.stderr.toString().split('\n').filter((l) => l.startsWith('ERROR: '));
      expect(theirs).toHaveLength(1);
      expectSameError(mine, theirs[0]!);
      expect(o.stdout.length).toBe(0);
    }, 60_000);

    it('refuses to write the stream to a terminal (under script(1), a pty)', () => {
      const haveScript = spawnSync('script', ['--version']).status === 0;
      if (!haveScript) return; // util-linux `script` missing: the check itself is covered in send-logic
      const run = (cmd: string): string => spawnSync('script', ['-qec', cmd, '/dev/null'], { encoding: 'utf8', timeout: 60_000 }).stdout;
      const mine = run(`${process.execPath} ${CLI} send ${S('s1')}; echo "exit=$?"`);
      const theirs = run(`btrfs send ${S('s1')}; echo "exit=$?"`);
      expect(mine).toMatch(/ERROR: not dumping send stream into a terminal, redirect it into a file\r?\nexit=1/);
      expect(theirs).toMatch(/ERROR: not dumping send stream into a terminal, redirect it into a file\r?\nexit=1/);
    }, 60_000);

    it('as a non-root user: the same refusal as progs', () => {
      if (spawnSync('setpriv', ['--version']).status !== 0) return;
      chmodSync(dirname(m), 0o755);
      const asNobody = (cmd: string[]): SpawnSyncReturns<Buffer> => spawnSync('setpriv',
        ['--reuid=65534', '--regid=65534', '--clear-groups', ...cmd], { timeout: 60_000 });
      const o = asNobody([process.execPath, CLI, 'send', S('s1')]);
      const p = asNobody(['btrfs', 'send', S('s1')]);
      expect(p.status).toBe(1);
      expect(o.status, o.stderr.toString()).toBe(1);
      expectSameError(o.stderr.toString().trim().split('\n'), p.stderr.toString().trim());
    }, 60_000);
  });

  describe('in-process send() into a Node stream', () => {
    const base = { cloneSources: [], noData: false, compressedData: false, omitEnd: false, verbosity: 0 };

    it('writes the same bytes as progs, honouring back-pressure', async () => {
      const chunks: Buffer[] = [];
      let maxBuffered = 0;
      const sink = new Writable({
        highWaterMark: 64 * 1024,
        write(chunk: Buffer, _enc, done) {
          chunks.push(chunk);
          maxBuffered = Math.max(maxBuffered, sink.writableLength);
          setImmediate(done); // a slow consumer
        },
      });
      await send({ ...base, subvolumes: [S('s1'), S('s2')], compressedData: true, omitEnd: true, output: sink });
      const p = progs(['-q', '-e', '--compressed-data', S('s1'), S('s2')]);
      expect(firstDifference(p.stdout, Buffer.concat(chunks))).toBe('identical');
      expect(maxBuffered).toBeLessThanOrEqual(64 * 1024 + 144 * 1024);
    }, 60_000);

    it('a consumer that fails stops the send (rejects, ioctl ended)', async () => {
      let seen = 0;
      const sink = new Writable({
        write(chunk: Buffer, _enc, done) {
          seen += chunk.length;
          done(seen > 1024 * 1024 ? new Error('consumer gave up') : null);
        },
      });
      sink.on('error', () => {});
      const started = Date.now();
      await expect(send({ ...base, subvolumes: [S('big')], output: sink })).rejects.toThrow(/failed to read stream from kernel/);
      expect(Date.now() - started).toBeLessThan(20_000);
      expect(seen).toBeLessThan(48 * 1024 * 1024);
    }, 60_000);

    it('a kernel that only speaks v1 is refused a v2 request before any ioctl', async () => {
      const sink = new Writable({ write(_c, _e, done) { done(); } });
      await expect(send({ ...base, subvolumes: [S('s1')], proto: 2, kernelVersion: 1, output: sink }))
        .rejects.toThrow(new SendError('requested version 2 but kernel supports only 1'));
      await expect(send({ ...base, subvolumes: [S('s1')], proto: 0, compressedData: true, kernelVersion: 1, output: sink }))
        .rejects.toThrow(new SendError('kernel does not support --compressed-data'));
    });

    it('messages: "At subvol" per subvolume, verbose lines with -v, nothing with -q', async () => {
      const run = async (verbosity: number, noData = false): Promise<string[]> => {
        const lines: string[] = [];
        const sink = new Writable({ write(_c, _e, done) { done(); } });
        await send({ ...base, subvolumes: [S('s1')], verbosity, noData, output: sink, log: (l) => lines.push(l) });
        return lines;
      };
      expect(await run(0)).toEqual([]);
      expect(await run(1)).toEqual([`At subvol ${S('s1')}`]);
      expect(await run(2, true)).toEqual(['Mode NO_FILE_DATA enabled', 'Protocol version requested: 1 (supported 2)',
        `At subvol ${S('s1')}`, 'BTRFS_IOC_SEND returned 0']);
    }, 60_000);
  });

  it('a receiver that goes away ends the send promptly with exit 1 and the ioctl finished', async () => {
    const child = spawn(process.execPath, [CLI, 'send', '-q', S('big')], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    // Read a little, then close our end of the pipe like a dying receiver.
    await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
    const closedAt = Date.now();
    child.stdout.destroy();
    const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
    expect(code).toBe(1);
    expect(Date.now() - closedAt).toBeLessThan(10_000);
    // Node's 'pipe' stdio is a socket pair: closed with unread bytes in it, the writer gets ECONNRESET
    // instead of EPIPE (timing decides which; progs reports either the same way).
    expect(stderr).toMatch(/ERROR: failed to read stream from kernel: (Broken pipe|Connection reset by peer)\n/);
    // No send left running in the kernel: the snapshot can be deleted (EPERM while a send uses it).
    const del = spawnSync('btrfs', ['subvolume', 'delete', S('big')]);
    expect(del.stderr.toString()).toBe('');
    expect(del.status).toBe(0);
  }, 60_000);
});
