// `btrfs-ts receive --dump` through the built CLI: stdin and -f, concatenated streams, JSON, and bad
// input (one `ERROR:` line naming the byte offset, exit 1, the commands before it still printed).
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { CLI, cli } from './helpers/cli.js';
import { buildStream, commandOffsets, raw, tlv } from './helpers/stream-builder.js';
import { Attr } from '../src/stream/protocol.js';

const FIX = join(import.meta.dirname, 'fixtures', 'dump');
const fixture = (name: string): Buffer => readFileSync(join(FIX, name));

function errorLines(stderr: string): string[] {
  return stderr.split('\n').filter(Boolean);
}

describe('btrfs-ts receive --dump (CLI)', () => {
  it('reads -f FILE and standard input alike, identical to btrfs-progs', () => {
    const want = fixture('incr-v2.america_new_york.dump').toString('latin1');
    const fromFile = cli(['receive', '--dump', '-f', join(FIX, 'incr-v2.stream')], undefined, { TZ: 'America/New_York' });
    expect(fromFile.status).toBe(0);
    expect(fromFile.stdout).toBe(want);
    const fromStdin = cli(['receive', '--dump'], fixture('incr-v2.stream'), { TZ: 'America/New_York' });
    expect(fromStdin.status).toBe(0);
    expect(fromStdin.stdout).toBe(want);
    expect(fromStdin.stderr).toBe('');
    const dash = cli(['receive', '--dump', '-f', '-'], fixture('incr-v2.stream'), { TZ: 'America/New_York' });
    expect(dash.stdout).toBe(want);
  });

  it('dumps all concatenated streams; -e stops at the first END', () => {
    const both = Buffer.concat([fixture('full-v1.stream'), fixture('incr-v2.stream')]);
    const all = cli(['receive', '--dump'], both, { TZ: 'UTC' });
    expect(all.status).toBe(0);
    expect(all.stdout).toBe(fixture('full-v1.utc.dump').toString('latin1') + fixture('incr-v2.utc.dump').toString('latin1'));
    const first = cli(['receive', '--dump', '-e'], both, { TZ: 'UTC' });
    expect(first.status).toBe(0);
    expect(first.stdout).toBe(fixture('full-v1.utc.dump').toString('latin1'));
  });

  it('--json writes JSON Lines with the byte offset of every command', () => {
    const r = cli(['receive', '--dump', '--json', '-f', join(FIX, 'two-streams.stream')]);
    expect(r.status).toBe(0);
    const recs = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { index: number; byteOffset: number; stream: number; cmd: string });
    const offsets = commandOffsets(fixture('two-streams.stream'));
    expect(recs.map((x) => x.byteOffset)).toEqual(offsets);
    expect(recs.filter((x) => x.cmd === 'end').map((x) => x.stream)).toEqual([0, 1]);
  });

  it('a bad CRC: earlier commands printed, then one ERROR line with command and offset, exit 1', () => {
    const stream = Buffer.from(fixture('incr-v1.stream'));
    const offsets = commandOffsets(stream);
    const victim = offsets[5]!;
    stream[victim + 12] ^= 0x40; // a body byte: the CRC no longer matches
    const r = cli(['receive', '--dump'], stream, { TZ: 'UTC' });
    expect(r.status).toBe(1);
    expect(r.stdout.split('\n').slice(0, 5).join('\n')).toBe(fixture('incr-v1.utc.dump').toString('latin1').split('\n').slice(0, 5).join('\n'));
    expect(r.stdout.split('\n').filter(Boolean)).toHaveLength(5);
    const lines = errorLines(r.stderr);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^ERROR: .*CRC.*#6.*/i);
    expect(lines[0]).toContain(`byte ${victim}`);
  });

  it('a truncated stream and an empty input are errors, never success', () => {
    const cut = fixture('incr-v1.stream').subarray(0, 3000);
    const r = cli(['receive', '--dump'], cut);
    expect(r.status).toBe(1);
    expect(errorLines(r.stderr)).toHaveLength(1);
    expect(r.stderr).toMatch(/^ERROR: .*byte \d+/);
    const empty = cli(['receive', '--dump'], Buffer.alloc(0));
    expect(empty.status).toBe(1);
    expect(errorLines(empty.stderr)).toEqual([expect.stringMatching(/^ERROR: .*empty/)]);
  });

  it('not a stream, and a missing file', () => {
    const r = cli(['receive', '--dump'], Buffer.from('this is not a btrfs send stream at all'));
    expect(r.status).toBe(1);
    expect(errorLines(r.stderr)).toEqual([expect.stringMatching(/^ERROR: .*magic/)]);
    const missing = cli(['receive', '--dump', '-f', '/nonexistent/stream']);
    expect(missing.status).toBe(1);
    expect(errorLines(missing.stderr)).toEqual([expect.stringMatching(/^ERROR: .*\/nonexistent\/stream/)]);
  });

  it('an unknown command stops the dump unless --ignore-unknown', () => {
    const stream = buildStream(1, [
      { cmd: 'subvol', path: Buffer.from('s'), uuid: Buffer.alloc(16, 1), ctransid: 1 },
      raw(99, [tlv(Attr.PATH, 'x')]),
      { cmd: 'mkfile', path: Buffer.from('after'), ino: 257 },
    ]);
    const strict = cli(['receive', '--dump'], stream);
    expect(strict.status).toBe(1);
    expect(errorLines(strict.stderr)).toEqual([expect.stringMatching(/^ERROR: .*99/)]);
    expect(strict.stdout).toMatch(/^subvol /);
    const lenient = cli(['receive', '--dump', '--ignore-unknown'], stream);
    expect(lenient.status).toBe(0);
    expect(lenient.stdout).toContain('mkfile          ./s/after\n');
  });

  it('a closed pipe on stdout ends the dump quietly', () => {
    const big = Buffer.concat(Array.from({ length: 30 }, () => fixture('full-v1.stream')));
    const r = spawnSync('bash', ['-c', `'${process.execPath}' '${CLI}' receive --dump | head -c 100 >/dev/null; echo "\${PIPESTATUS[0]}"`],
      { input: big });
    expect(r.stderr.toString()).toBe('');
    expect(['0', '1']).toContain(r.stdout.toString().trim());
  });
});
