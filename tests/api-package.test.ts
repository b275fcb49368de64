// The package as a user gets it: `npm pack`, installed into a scratch project, imported by name from
// plain JavaScript and from strict TypeScript, running the examples of docs/api.md (extracted from the
// markdown, so the documentation cannot drift from what works).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { docExamples } from './helpers/doc-examples.js';
import { makeBtrfs, requireBtrfs, run, type Btrfs } from './helpers/btrfs.js';
import { readStream } from '../src/stream/reader.js';

const repo = resolve(import.meta.dirname, '..');
const examples = docExamples(join(repo, 'docs/api.md'));
const byName = (name: string) => {
  const ex = examples.find((e) => e.name === name);
  if (!ex) throw new Error(`docs/api.md has no example ${name}`);
  return ex;
};

let tmp = '';
let proj = '';

/** Run one example in one flavor; returns stdout (throws with stderr on failure). */
function runExample(flavor: 'js' | 'ts', name: string, args: string[], cwd: string): string {
  const file = flavor === 'js' ? join(proj, 'js', `${name}.mjs`) : join(proj, 'ts-out', `${name}.js`);
  const r = spawnSync(process.execPath, [file, ...args], { cwd, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${flavor} example ${name} failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}

// Long steps run asynchronously: a blocked event loop makes vitest's worker miss its heartbeats.
const exec = promisify(execFile);

beforeAll(async () => {
  // The test suite builds dist/ first (npm test). Build here only when there is nothing built (this file
  // run alone on a fresh checkout): rebuilding under the running suite would make the CLI bundle older
  // than dist/ for a moment, and CLI tests running meanwhile would not use it (bin/btrfs-ts.js).
  if (!existsSync(join(repo, 'dist/index.js')) || !existsSync(join(repo, 'dist/cli/main.bundle.cjs'))) {
    await exec(join(repo, 'node_modules/.bin/tsc'), ['-p', repo]).catch(() => undefined);
    await exec(process.execPath, [join(repo, 'scripts/bundle-cli.mjs')]).catch(() => undefined);
  }
  expect(existsSync(join(repo, 'dist/index.js'))).toBe(true);
  tmp = mkdtempSync(join(tmpdir(), 'btrfs-ts-api-'));
  const packed = (await exec('npm', ['pack', '--ignore-scripts', '--pack-destination', tmp], { cwd: repo }))
    .stdout.trim().split('\n').at(-1)!;
  proj = join(tmp, 'proj');
  mkdirSync(join(proj, 'js'), { recursive: true });
  mkdirSync(join(proj, 'ts'), { recursive: true });
  writeFileSync(join(proj, 'package.json'), JSON.stringify({ name: 'scratch', version: '1.0.0', private: true, type: 'module' }));
  await exec('npm', ['install', join(tmp, packed), '--no-audit', '--no-fund', '--prefer-offline'], { cwd: proj });
  for (const ex of examples) {
    writeFileSync(join(proj, 'js', `${ex.name}.mjs`), ex.code);
    writeFileSync(join(proj, 'ts', `${ex.name}.ts`), ex.code);
  }
  writeFileSync(join(proj, 'tsconfig.json'), JSON.stringify({
    compilerOptions: {
      target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmitOnError: false,
      outDir: 'ts-out', rootDir: 'ts', typeRoots: [join(repo, 'node_modules/@types')], types: ['node'],
    },
    include: ['ts/*.ts'],
  }));
}, 240_000);

afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('the packed package', () => {
  it('exports the documented API by name', () => {
    const r = spawnSync(process.execPath, ['--input-type=module', '-e',
      "const m = await import('btrfs-ts'); console.log(Object.keys(m).sort().join(' '))"], { cwd: proj, encoding: 'utf8' });
    expect(r.stderr).toBe('');
    const names = r.stdout.trim().split(' ');
    for (const name of ['readStream', 'StreamWriter', 'encodeCommand', 'encodeStreamHeader', 'receive', 'send',
      'dumpStream', 'createProgress', 'progressEnabled', 'StreamError', 'ReceiveError', 'SendError']) {
      expect(names).toContain(name);
    }
  });

  it('type-checks every docs/api.md example as strict TypeScript', async () => {
    const r = await exec(join(repo, 'node_modules/.bin/tsc'), ['-p', proj]).catch((e: { stdout: string; stderr: string }) => e);
    expect(r.stdout + r.stderr).toBe('');
  });

  it('runs the stream examples in JavaScript and TypeScript with the documented output', () => {
    const outputs: Record<string, Buffer> = {};
    for (const flavor of ['js', 'ts'] as const) {
      const cwd = join(proj, `run-${flavor}`);
      mkdirSync(cwd, { recursive: true });
      for (const name of ['write-stream', 'read-stream', 'dump', 'progress']) {
        const ex = byName(name);
        expect(ex.needsBtrfs).toBe(false);
        expect(runExample(flavor, name, [], cwd), `${flavor} ${name}`).toBe(ex.output);
      }
      outputs[flavor] = readFileSync(join(cwd, 'hello.stream'));
    }
    // Both languages wrote the same bytes, and btrfs-progs reads them as we do.
    expect(outputs.js!.equals(outputs.ts!)).toBe(true);
    if (spawnSync('which', ['btrfs']).status === 0) {
      const dump = run('btrfs', ['receive', '--dump', '-f', join(proj, 'run-js', 'hello.stream')], {}).toString();
      expect(dump.split('\n')[0]).toMatch(/^subvol +\.\/hello +uuid=4c6f7265-6d20-6970-7375-6d20646f6c6f transid=1$/);
    }
  });
});

const haveBtrfs = requireBtrfs();
describe.skipIf(!haveBtrfs)('the packed package on a real btrfs', () => {
  let fs: Btrfs;
  beforeAll(() => {
    fs = makeBtrfs({ sizeMiB: 256 });
    run('btrfs', ['-q', 'subvolume', 'create', join(fs.mnt, 'vol')]);
    mkdirSync(join(fs.mnt, 'vol/dir'));
    writeFileSync(join(fs.mnt, 'vol/dir/a.txt'), 'aaa\n');
    writeFileSync(join(fs.mnt, 'vol/big.bin'), Buffer.alloc(300_000, 7));
    run('btrfs', ['-q', 'subvolume', 'snapshot', '-r', join(fs.mnt, 'vol'), join(fs.mnt, 's1')]);
    writeFileSync(join(fs.mnt, 'vol/dir/b.txt'), 'bbb\n');
    run('btrfs', ['-q', 'subvolume', 'snapshot', '-r', join(fs.mnt, 'vol'), join(fs.mnt, 's2')]);
  }, 60_000);
  afterAll(() => fs?.cleanup());

  it('receives the written stream with the receive example, in both languages', () => {
    for (const flavor of ['js', 'ts'] as const) {
      const dest = join(fs.mnt, `recv-${flavor}`);
      mkdirSync(dest);
      const stream = join(proj, `run-${flavor}`, 'hello.stream');
      expect(runExample(flavor, 'receive', [stream, dest], proj)).toBe(byName('receive').output);
      expect(readFileSync(join(dest, 'hello/greeting.txt'), 'utf8')).toBe('hello, btrfs\n');
      expect(run('btrfs', ['property', 'get', join(dest, 'hello'), 'ro']).toString().trim()).toBe('ro=true');
    }
  });

  it('receives with a progress line through onProgress and log (receive-progress example)', () => {
    for (const flavor of ['js', 'ts'] as const) {
      const dest = join(fs.mnt, `recv-progress-${flavor}`);
      mkdirSync(dest);
      const stream = join(proj, `run-${flavor}`, 'hello.stream');
      const file = join(proj, 'ts-out', 'receive-progress.js');
      const r = spawnSync(process.execPath, [flavor === 'js' ? join(proj, 'js', 'receive-progress.mjs') : file, stream, dest], { encoding: 'utf8' });
      expect(r.status).toBe(0);
      expect(r.stdout).toBe(byName('receive-progress').output);
      // stderr is not a terminal here: plain lines (no redraws), the message, then 100 % and the summary.
      expect(r.stderr).not.toContain('\r');
      const lines = r.stderr.trimEnd().split('\n');
      expect(lines).toContain('At subvol hello');
      expect(lines.at(-2)).toMatch(/^\[100%\] 377 B \/ 377 B  .* ETA 0:00$/);
      expect(lines.at(-1)).toMatch(/^received 377 B, 8 commands in 0:00 \(.*\)$/);
    }
  });

  it('sends full and incremental streams with the send example, counting what btrfs send produces', async () => {
    const countsOf = async (args: string[]): Promise<string> => {
      const bytes = run('btrfs', ['send', '-q', '--proto', '2', ...args]);
      const counts = new Map<string, number>();
      for await (const { command } of readStream(Readable.from([bytes]))) counts.set(command.cmd, (counts.get(command.cmd) ?? 0) + 1);
      return [...counts].map(([cmd, n]) => `${cmd} ${n}`).sort().join(', ') + '\n';
    };
    const s1 = join(fs.mnt, 's1');
    const s2 = join(fs.mnt, 's2');
    const full = await countsOf([s1]);
    const incremental = await countsOf(['-p', s1, s2]);
    expect(incremental).toContain('snapshot 1');
    for (const flavor of ['js', 'ts'] as const) {
      expect(runExample(flavor, 'send', [s1], proj)).toBe(full);
      expect(runExample(flavor, 'send', [s2, s1], proj)).toBe(incremental);
    }
  });
});
