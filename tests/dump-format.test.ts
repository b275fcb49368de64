// Units of the dump: escaping, path joining, glibc-exact local time (checked against glibc itself via a
// tiny C program when a compiler is present), JSON byte strings, and the output buffer.
import { describe, expect, it, beforeAll, afterAll } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, openSync, closeSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { escapeToString, writeEscaped } from '../src/dump/escape.js';
import { OutBuffer } from '../src/dump/out-buffer.js';
import { pathCat, formatUuid, ProgsDumpFormatter } from '../src/dump/progs-dump.js';
import { formatLocalTime, loadZone, parsePosixTz, parseTzif } from '../src/dump/localtime.js';
import { bytesFromJson, jsonBytes, recordToJson } from '../src/dump/json.js';

const B = (s: string | number[]): Buffer => (typeof s === 'string' ? Buffer.from(s, 'latin1') : Buffer.from(s));

describe('escaping like btrfs-progs print_path_escaped', () => {
  it('escapes the named controls, space and backslash, and octal for the rest', () => {
    expect(escapeToString(B('a b\\c\n\t\r\x07\x08\x1b\x0c\x0b'))).toBe('a\\ b\\\\c\\n\\t\\r\\a\\b\\e\\f\\v');
    expect(escapeToString(B([0x01, 0x7f, 0x80, 0xff, 0x7e, 0x21]))).toBe('\\001\\177\\200\\377~!');
    expect(escapeToString(B('plain/path-1.txt'))).toBe('plain/path-1.txt');
  });

  it('writeEscaped returns the printed width and writes the same bytes as escapeToString', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), (arr) => {
      const chunks: Buffer[] = [];
      const out = new OutBuffer((c) => chunks.push(c), 64);
      const width = writeEscaped(out, Buffer.from(arr));
      out.flush();
      const text = Buffer.concat(chunks).toString('latin1');
      expect(text).toBe(escapeToString(Buffer.from(arr)));
      expect(width).toBe(text.length);
    }));
  });
});

describe('paths and uuids', () => {
  it('joins like path_cat_out: one trailing slash dropped from each part', () => {
    expect(pathCat(B('.'), B('snap'), 't').toString()).toBe('./snap');
    expect(pathCat(B('./snap'), B(''), 't').toString()).toBe('./snap/');
    expect(pathCat(B('./snap/'), B('a/b/'), 't').toString()).toBe('./snap/a/b');
    expect(pathCat(B('./snap'), B('dir//'), 't').toString()).toBe('./snap/dir/');
    expect(pathCat(B('./s'), B('/abs'), 't').toString()).toBe('./s//abs');
  });

  it('refuses what would not fit PATH_MAX, as progs', () => {
    expect(() => pathCat(B('./s'), B('x'.repeat(4091)), 'mkfile')).toThrow(/mkfile: path too long/);
    expect(pathCat(B('./s'), B('x'.repeat(4090)), 'mkfile').length).toBe(4094);
  });

  it('prints uuids in canonical form', () => {
    expect(formatUuid(Buffer.from('405c4a7a5507354ca12117e2f613571b', 'hex'))).toBe('405c4a7a-5507-354c-a121-17e2f613571b');
  });
});

describe('local time like glibc localtime_r + strftime("%FT%T%z")', () => {
  it('formats UTC, negative times and years without padding', () => {
    const utc = loadZone('UTC');
    expect(formatLocalTime(0, utc)).toBe('1970-01-01T00:00:00+0000');
    expect(formatLocalTime(-1, utc)).toBe('1969-12-31T23:59:59+0000');
    expect(formatLocalTime(981173106, utc)).toBe('2001-02-03T04:05:06+0000');
    expect(formatLocalTime(-62167219201, utc)).toBe('-1-12-31T23:59:59+0000');
    expect(formatLocalTime(-60000000000, utc)).toBe('68-09-03T13:20:00+0000');
    expect(formatLocalTime(253402300800, utc)).toBe('10000-01-01T00:00:00+0000');
    expect(formatLocalTime(2 ** 53 - 1, utc)).toBe('285428751-11-12T07:36:31+0000');
  });

  it('follows DST and old local mean time offsets from the zone files', () => {
    const ny = loadZone('America/New_York');
    expect(formatLocalTime(1615705199, ny)).toBe('2021-03-14T01:59:59-0500');
    expect(formatLocalTime(1615705200, ny)).toBe('2021-03-14T03:00:00-0400');
    expect(formatLocalTime(-3000000000, ny)).toBe('1874-12-07T13:43:58-0456');
    expect(formatLocalTime(4102444800, ny)).toBe('2099-12-31T19:00:00-0500'); // past the table: footer rule
    const kolkata = loadZone('Asia/Kolkata');
    expect(formatLocalTime(0, kolkata)).toBe('1970-01-01T05:30:00+0530');
    expect(formatLocalTime(-3000000000, kolkata)).toBe('1874-12-08T00:01:10+0521');
  });

  it('reads TZ like glibc: POSIX strings, empty, unknown names, leading colon', () => {
    expect(formatLocalTime(0, loadZone(''))).toBe('1970-01-01T00:00:00+0000');
    expect(formatLocalTime(0, loadZone('No/Such_Zone'))).toBe('1970-01-01T00:00:00+0000');
    expect(formatLocalTime(0, loadZone(':America/New_York'))).toBe('1969-12-31T19:00:00-0500');
    expect(formatLocalTime(0, loadZone('<+0330>-3:30'))).toBe('1970-01-01T03:30:00+0330');
    const est = loadZone('EST5EDT,M3.2.0,M11.1.0');
    expect(formatLocalTime(1700000000, est)).toBe('2023-11-14T17:13:20-0500');
    expect(formatLocalTime(1690000000, est)).toBe('2023-07-22T00:26:40-0400');
    expect(parsePosixTz('X')).toBeUndefined();
    expect(parseTzif(B('not a zone file at all, not at all, really not, no'))).toBeUndefined();
  });

  describe('against glibc itself', () => {
    let dir = '';
    let oracle = '';
    beforeAll(() => {
      dir = mkdtempSync(join(tmpdir(), 'btrfs-ts-tz-'));
      writeFileSync(join(dir, 'tf.c'), `#include <stdio.h>
#include <stdlib.h>
#include <time.h>
int main(int c, char **v) { char b[64]; struct tm tm; for (int i = 1; i < c; i++) { time_t t = strtoll(v[i], 0, 10);
  if (!localtime_r(&t, &tm)) { puts("FAIL"); continue; } strftime(b, sizeof b, "%FT%T%z", &tm); puts(b); } return 0; }
`);
      const cc = spawnSync('cc', ['-O1', '-o', join(dir, 'tf'), join(dir, 'tf.c')]);
      if (cc.status === 0) oracle = join(dir, 'tf');
      else if (process.env.CI) throw new Error(`cannot build the glibc time oracle: ${cc.stderr}`);
    });
    afterAll(() => {
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    const zones = ['UTC', 'America/New_York', 'Asia/Kolkata', 'Europe/Amsterdam', 'Australia/Lord_Howe', 'America/Sao_Paulo',
      'Pacific/Chatham', 'Africa/Casablanca', 'Europe/Dublin', 'America/St_Johns', 'right/Europe/Paris', 'Antarctica/Troll',
      'EST5EDT,M3.2.0,M11.1.0', 'CET-1CEST,M3.5.0,M10.5.0/3', 'NZST-12NZDT,M9.5.0,M4.1.0/3', '<-03>3<-02>,J60/1,300/25', ''];
    it('gives the same text for thousands of times in many zones', () => {
      if (!oracle) return;
      let seed = 7;
      const rnd = (): number => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
      const times = [0, -1, 2147483647, -2147483648, 2 ** 53 - 1, -(2 ** 53 - 1), 78796799, 78796800, 1483228826, 1483228827];
      for (let i = 0; i < 1500; i++) times.push(Math.floor((rnd() - 0.5) * 1.2e10));
      for (let i = 0; i < 300; i++) times.push(Math.floor((rnd() - 0.5) * 4e11));
      for (let i = 0; i < 500; i++) times.push(Math.floor(2.1e9 + rnd() * 1e9)); // beyond the tables: footer rules
      for (const tz of zones) {
        const want = spawnSync(oracle, times.map(String), { env: { TZ: tz }, maxBuffer: 1 << 24 }).stdout.toString().split('\n');
        const zone = loadZone(tz);
        const bad = times.filter((t, i) => formatLocalTime(t, zone) !== want[i]).slice(0, 3)
          .map((t) => `${tz} ${t}: ${formatLocalTime(t, zone)} vs ${want[times.indexOf(t)]}`);
        expect(bad).toEqual([]);
      }
    });
  });
});

describe('JSON byte strings', () => {
  it('are strings for valid UTF-8 and base64 objects otherwise, always reversible', () => {
    expect(jsonBytes(B('plain'))).toBe('plain');
    expect(jsonBytes(Buffer.from('ünï', 'utf8'))).toBe('ünï');
    expect(jsonBytes(B([0xff, 0xfe]))).toEqual({ base64: '//4=' });
    expect(jsonBytes(B([0xed, 0xa0, 0x80]))).toEqual({ base64: '7aCA' }); // an encoded surrogate is not UTF-8
    fc.assert(fc.property(fc.uint8Array({ maxLength: 64 }), (arr) => {
      const b = Buffer.from(arr);
      const roundTrip = bytesFromJson(JSON.parse(JSON.stringify(jsonBytes(b))) as ReturnType<typeof jsonBytes>);
      expect(roundTrip.equals(b)).toBe(true);
    }));
  });

  it('records carry position, stream, version and every field (data replaced by len)', () => {
    const o = recordToJson({
      index: 3, offset: 99, stream: 1, version: 2,
      command: { cmd: 'encoded_write', path: B([0x80]), offset: 4096, unencodedFileLen: 5, unencodedLen: 6, unencodedOffset: 0, data: Buffer.alloc(7) },
    });
    expect(o).toEqual({ index: 3, byteOffset: 99, stream: 1, version: 2, cmd: 'encoded_write', path: { base64: 'gA==' }, offset: 4096,
      unencodedFileLen: 5, unencodedLen: 6, unencodedOffset: 0, len: 7, compression: 0, encryption: 0 });
    const u = recordToJson({ index: 1, offset: 17, stream: 0, version: 1, command: { cmd: 'utimes', path: B('f'), atime: { sec: -5, nsec: 1 }, mtime: { sec: 0, nsec: 0 }, ctime: { sec: 1, nsec: 2 } } });
    expect(u).toMatchObject({ atime: { sec: -5, nsec: 1 }, ctime: { sec: 1, nsec: 2 } });
    expect(u).not.toHaveProperty('otime');
  });
});

describe('formatter and output buffer', () => {
  it('prints v3 enable_verity as current btrfs-progs does', () => {
    const chunks: Buffer[] = [];
    const out = new OutBuffer((c) => chunks.push(c));
    const f = new ProgsDumpFormatter(out, { zone: loadZone('UTC') });
    f.format({ cmd: 'subvol', path: B('v'), uuid: Buffer.alloc(16), ctransid: 1 });
    f.format({ cmd: 'enable_verity', path: B('f'), algorithm: 1, blockSize: 4096, salt: Buffer.alloc(8), sig: Buffer.alloc(0) });
    f.format({ cmd: 'end' });
    out.flush();
    expect(Buffer.concat(chunks).toString()).toBe(
      'subvol          ./v                             uuid=00000000-0000-0000-0000-000000000000 transid=1\n' +
      'enable_verity   ./v/f                           algorithm=1 block_size=4096 salt_len=8 sig_len=0\n');
  });

  it('writes through to a file descriptor in large chunks, items larger than the buffer included', () => {
    const dir = mkdtempSync(join(tmpdir(), 'btrfs-ts-out-'));
    try {
      const file = join(dir, 'out');
      const fd = openSync(file, 'w');
      const out = new OutBuffer(fd, 16);
      out.latin1('hello ');
      out.bytes(Buffer.alloc(40, 0x61));
      out.spaces(3);
      out.byte(0x0a);
      out.utf8('ü\n');
      out.flush();
      closeSync(fd);
      expect(readFileSync(file).toString()).toBe(`hello ${'a'.repeat(40)}   \nü\n`);
      expect(out.written).toBe(53);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
