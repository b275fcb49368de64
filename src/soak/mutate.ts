// Mutation operators over real send streams: bit flips, byte splices, insertions/deletions, command
// and attribute length edits, attribute type/value edits, duplicated/removed/reordered commands,
// truncations, header edits and hostile path sequences (escapes via '..', absolute paths, symlinks,
// NUL bytes, foreign clone sources). Structure-aware edits are re-framed with or without CRC fix-up,
// so mutations reach the command handlers as well as the CRC check. Deterministic per Rng.
import { Rng } from './prng.js';
import { A, C, buildCommand, joinStream, joinTlvs, splitStream, splitTlvs, u64, type RawCommand, type RawStream } from './stream-edit.js';

export interface Mutant {
  bytes: Buffer;
  /** What was done, for the failure report. */
  ops: string[];
}

export interface MutateContext {
  /** Absolute path of the canary directory (hostile paths aim at it). */
  canary?: string;
  /** How many '../' lead from inside the received subvolume to the canary's parent. */
  escapeDepth?: number;
}

const U64_EDGES: bigint[] = [0n, 1n, 4095n, 4096n, 65535n, 65536n, 131072n, 2n ** 31n - 1n, 2n ** 32n - 1n, 2n ** 32n,
  2n ** 53n, 2n ** 62n, 2n ** 63n - 1n, 2n ** 63n, 2n ** 64n - 1n];
const U32_EDGES = [0, 1, 9, 10, 255, 4096, 65535, 65536, 131072, 0x7fffffff, 0x80000000, 0xfffffff0, 0xffffffff];
const INT_ATTRS = new Set<number>([A.CTRANSID, A.INO, A.SIZE, A.MODE, A.UID, A.GID, A.RDEV, A.FILE_OFFSET,
  A.CLONE_CTRANSID, A.CLONE_OFFSET, A.CLONE_LEN, 25, 26, 27, 28, 29, 30]);
const PATH_ATTRS = new Set<number>([A.PATH, A.PATH_TO, A.PATH_LINK, A.CLONE_PATH, A.XATTR_NAME]);

function pickCommandIndex(s: RawStream, rng: Rng, withBody = false): number {
  const candidates = s.commands.map((c, i) => [c, i] as const).filter(([c]) => !withBody || c.body.length > 0);
  if (candidates.length === 0) return -1;
  return rng.pick(candidates)[1];
}

function flipBits(buf: Buffer, rng: Rng, count: number): Buffer {
  const out = Buffer.from(buf);
  for (let i = 0; i < count && out.length; i++) out[rng.int(out.length)]! ^= 1 << rng.int(8);
  return out;
}

function hostilePath(rng: Rng, ctx: MutateContext): Buffer {
  const up = '../'.repeat(ctx.escapeDepth ?? 3);
  const canary = ctx.canary ?? '/nonexistent-canary';
  return Buffer.from(rng.pick([
    `${up}canary/evil-${rng.int(100)}`,
    `${up}canary/file0`,
    `${canary}/evil-abs`,
    '../x', '..', '.', '', '/', '//', 'a//b', './a', 'a/./b', 'a/../..', `${'x/'.repeat(2100)}y`, 'L'.repeat(300),
    'nul\0../../evil', `${up}${up}${up}tmp/btrfs-ts-fuzz-escape`,
  ]), 'latin1');
}

function editTlvs(c: RawCommand, version: number, rng: Rng, ctx: MutateContext, ops: string[]): RawCommand {
  const tlvs = splitTlvs(c.body, version).map((t) => ({ ...t }));
  if (tlvs.length === 0) return c;
  const i = rng.int(tlvs.length);
  const t = tlvs[i]!;
  const kind = rng.pick(['type', 'len', 'value', 'drop', 'dup', 'shrink', 'grow'] as const);
  switch (kind) {
    case 'type': {
      const to = rng.chance(0.5) ? rng.int(41) : rng.pick([0, 19, 35, 36, 0xffff, ...INT_ATTRS, ...PATH_ATTRS]);
      ops.push(`attr#${i} type ${t.type}->${to}`);
      t.type = to;
      t.implicit = to === A.DATA && version >= 2 && i === tlvs.length - 1;
      break;
    }
    case 'len': {
      // Edit the raw length field in the body (framing of the TLVs breaks, not of the command).
      if (t.implicit) return c;
      const body = Buffer.from(c.body);
      const to = rng.pick([0, 1, t.value.length - 1, t.value.length + 1, 0xffff, rng.int(0x10000)]) & 0xffff;
      body.writeUInt16LE(to, t.at + 2);
      ops.push(`attr#${i} len ${t.value.length}->${to}`);
      return { ...c, body };
    }
    case 'value': {
      if (INT_ATTRS.has(t.type) && t.value.length === 8) {
        const v = rng.chance(0.7) ? rng.pick(U64_EDGES) : t.value.readBigUInt64LE(0) + BigInt(rng.range(-4096, 4096));
        t.value = u64(v);
        ops.push(`attr#${i}(${t.type}) = ${v}`);
      } else if (t.value.length === 4) {
        const v = rng.pick(U32_EDGES);
        const b = Buffer.alloc(4);
        b.writeUInt32LE(v, 0);
        t.value = b;
        ops.push(`attr#${i}(${t.type}) = ${v}`);
      } else if (PATH_ATTRS.has(t.type) || rng.chance(0.3)) {
        t.value = hostilePath(rng, ctx);
        ops.push(`attr#${i}(${t.type}) = ${JSON.stringify(t.value.toString('latin1').slice(0, 60))}`);
      } else {
        t.value = flipBits(t.value, rng, rng.range(1, 4));
        ops.push(`attr#${i}(${t.type}) bits`);
      }
      break;
    }
    case 'drop':
      tlvs.splice(i, 1);
      ops.push(`attr#${i} dropped`);
      break;
    case 'dup':
      tlvs.splice(rng.int(tlvs.length + 1), 0, { ...t, implicit: false });
      ops.push(`attr#${i} duplicated`);
      break;
    case 'shrink':
      t.value = t.value.subarray(0, rng.int(t.value.length + 1));
      ops.push(`attr#${i} value cut to ${t.value.length}`);
      break;
    default:
      t.value = Buffer.concat([t.value, Buffer.alloc(rng.range(1, 64), rng.int(256))]);
      ops.push(`attr#${i} value grown to ${t.value.length}`);
  }
  return { ...c, body: joinTlvs(tlvs) };
}

/** A hostile sequence inserted after the first command (which creates the subvolume). */
function hostileSequence(s: RawStream, rng: Rng, ctx: MutateContext, ops: string[], forceHostile?: number): RawCommand[] {
  const v = s.version;
  const up = '../'.repeat(ctx.escapeDepth ?? 3);
  const canary = ctx.canary ?? '/nonexistent-canary';
  const data = Buffer.from('pwned by a hostile stream\n');
  const mode = (m: number): Buffer => u64(m);
  const uuid = s.commands[0] ? splitTlvs(s.commands[0].body, v).find((t) => t.type === A.UUID)?.value ?? Buffer.alloc(16) : Buffer.alloc(16);
  const which = forceHostile ?? rng.int(8);
  ops.push(`hostile sequence #${which}`);
  const B = (cmd: number, attrs: [number, Buffer | string][]): RawCommand => buildCommand(cmd, attrs, v);
  switch (which) {
    case 0: // '..' escape, create + write + chmod
      return [B(C.MKFILE, [[A.PATH, `${up}canary/evil0`], [A.INO, u64(9999)]]),
        B(C.WRITE, [[A.PATH, `${up}canary/evil0`], [A.FILE_OFFSET, u64(0)], [A.DATA, data]]),
        B(C.CHMOD, [[A.PATH, `${up}canary/file0`], [A.MODE, mode(0o777)]])];
    case 1: // symlink to the canary dir, then create/write through it
      return [B(C.SYMLINK, [[A.PATH, 'zzesc1'], [A.INO, u64(9998)], [A.PATH_LINK, canary]]),
        B(C.MKFILE, [[A.PATH, 'zzesc1/evil1'], [A.INO, u64(9997)]]),
        B(C.WRITE, [[A.PATH, 'zzesc1/evil1'], [A.FILE_OFFSET, u64(0)], [A.DATA, data]]),
        B(C.MKDIR, [[A.PATH, 'zzesc1/evildir'], [A.INO, u64(9996)]])];
    case 2: // symlink to a canary file, then data and metadata commands on the link itself
      return [B(C.SYMLINK, [[A.PATH, 'zzesc2'], [A.INO, u64(9995)], [A.PATH_LINK, `${canary}/file0`]]),
        B(C.WRITE, [[A.PATH, 'zzesc2'], [A.FILE_OFFSET, u64(0)], [A.DATA, data]]),
        B(C.TRUNCATE, [[A.PATH, 'zzesc2'], [A.SIZE, u64(1)]]),
        B(C.CHMOD, [[A.PATH, 'zzesc2'], [A.MODE, mode(0o4777)]]),
        B(C.CHOWN, [[A.PATH, 'zzesc2'], [A.UID, u64(1234)], [A.GID, u64(1234)]]),
        B(C.SET_XATTR, [[A.PATH, 'zzesc2'], [A.XATTR_NAME, 'user.evil'], [A.XATTR_DATA, 'x']]),
        B(C.UTIMES, [[A.PATH, 'zzesc2'], [A.ATIME, Buffer.alloc(12)], [A.MTIME, Buffer.alloc(12)], [A.CTIME, Buffer.alloc(12)]])];
    case 3: // rename/link/unlink/rmdir reaching out
      return [B(C.RENAME, [[A.PATH, `${up}canary/file1`], [A.PATH_TO, 'stolen']]),
        B(C.LINK, [[A.PATH, 'stolen2'], [A.PATH_LINK, `${up}canary/file0`]]),
        B(C.UNLINK, [[A.PATH, `${up}canary/file0`]]),
        B(C.RMDIR, [[A.PATH, `${up}canary/dir/empty`]])];
    case 4: // absolute paths
      return [B(C.MKFILE, [[A.PATH, `${canary}/evil4`], [A.INO, u64(9994)]]),
        B(C.MKDIR, [[A.PATH, `/${canary}/evil4d`], [A.INO, u64(9993)]]),
        B(C.SET_XATTR, [[A.PATH, `${canary}/file0`], [A.XATTR_NAME, 'user.evil'], [A.XATTR_DATA, 'x']])];
    case 5: // clone from outside the subvolume
      return [B(C.MKFILE, [[A.PATH, 'zzclone'], [A.INO, u64(9992)]]),
        B(C.CLONE, [[A.PATH, 'zzclone'], [A.FILE_OFFSET, u64(0)], [A.CLONE_LEN, u64(4096)], [A.CLONE_UUID, uuid],
          [A.CLONE_CTRANSID, u64(1)], [A.CLONE_PATH, `${up}canary/file0`], [A.CLONE_OFFSET, u64(0)]]),
        B(C.CLONE, [[A.PATH, `${up}canary/file1`], [A.FILE_OFFSET, u64(0)], [A.CLONE_LEN, u64(4096)], [A.CLONE_UUID, uuid],
          [A.CLONE_CTRANSID, u64(1)], [A.CLONE_PATH, 'zzclone'], [A.CLONE_OFFSET, u64(0)]])];
    case 6: // symlink loop/chain to '..' and through it
      return [B(C.SYMLINK, [[A.PATH, 'zzup'], [A.INO, u64(9991)], [A.PATH_LINK, '..']]),
        B(C.MKFILE, [[A.PATH, `zzup/${'zzup/'.repeat(0)}${up.slice(3)}canary/evil6`], [A.INO, u64(9990)]]),
        B(C.RENAME, [[A.PATH, 'zzup'], [A.PATH_TO, 'zzup2']]),
        B(C.MKNOD, [[A.PATH, 'zzup2/evilnode'], [A.INO, u64(9989)], [A.MODE, mode(0o20666)], [A.RDEV, u64(259)]])];
    default: // NUL bytes and a device node
      return [B(C.MKFILE, [[A.PATH, `ok\0${up}canary/evil7`], [A.INO, u64(9988)]]),
        B(C.MKNOD, [[A.PATH, `${up}canary/evilnode`], [A.INO, u64(9987)], [A.MODE, mode(0o60666)], [A.RDEV, u64(2049)]])];
  }
}

/** One structural or byte-level mutation applied to `s` in place; returns byte-level post edits. */
function mutateOnce(s: RawStream, rng: Rng, ctx: MutateContext, corpus: Buffer[], ops: string[]): ((b: Buffer) => Buffer)[] {
  const post: ((b: Buffer) => Buffer)[] = [];
  const fix = rng.chance(0.7);
  const op = rng.weighted([
    [6, 'bitflip'], [3, 'splice'], [3, 'insdel'], [3, 'cmdlen'], [10, 'tlv'], [2, 'cmdnum'], [3, 'dupcmd'],
    [3, 'dropcmd'], [2, 'swapcmd'], [4, 'truncate'], [1, 'garbage'], [1, 'header'], [3, 'hostile'], [2, 'rawflip'],
  ] as const);
  const i = pickCommandIndex(s, rng, op === 'bitflip' || op === 'splice' || op === 'insdel' || op === 'tlv');
  const c = i >= 0 ? s.commands[i]! : undefined;
  const tag = (what: string): void => {
    ops.push(`${what}${i >= 0 ? ` in command #${i + 1} (cmd ${c?.cmd})` : ''}${fix ? ' +crc' : ''}`);
  };
  switch (op) {
    case 'bitflip':
      if (!c) break;
      s.commands[i] = { ...c, body: flipBits(c.body, rng, rng.range(1, 8)), fixCrc: fix };
      tag('bit flips');
      break;
    case 'splice': {
      if (!c) break;
      const donor = rng.pick(corpus);
      const len = rng.range(1, Math.min(256, c.body.length));
      const at = rng.int(c.body.length - len + 1);
      const from = rng.int(Math.max(1, donor.length - len));
      const body = Buffer.from(c.body);
      donor.copy(body, at, from, from + len);
      s.commands[i] = { ...c, body, fixCrc: fix };
      tag(`splice ${len} bytes at ${at}`);
      break;
    }
    case 'insdel': {
      if (!c) break;
      const at = rng.int(c.body.length + 1);
      const n = rng.range(1, 64);
      const body = rng.chance(0.5)
        ? Buffer.concat([c.body.subarray(0, at), Buffer.alloc(n, rng.int(256)), c.body.subarray(at)])
        : Buffer.concat([c.body.subarray(0, at), c.body.subarray(Math.min(c.body.length, at + n))]);
      s.commands[i] = { ...c, body, fixCrc: fix };
      tag(`insert/delete ${n} bytes at ${at}`);
      break;
    }
    case 'cmdlen': {
      if (!c) break;
      // Raw edit of the u32 len in the serialized bytes: find the command's offset after joining.
      const offset = 17 + s.commands.slice(0, i).reduce((n, x) => n + 10 + x.body.length, 0);
      const to = rng.chance(0.8) ? rng.pick([...U32_EDGES, c.body.length - 1, c.body.length + 1, 16 * 1024 * 1024, 16 * 1024 * 1024 + 1])
        : rng.u32();
      post.push((b) => {
        if (offset + 4 <= b.length) b.writeUInt32LE(to >>> 0, offset);
        return b;
      });
      tag(`command length ${c.body.length}->${to >>> 0}`);
      break;
    }
    case 'tlv':
      if (!c) break;
      s.commands[i] = { ...editTlvs(c, s.version, rng, ctx, ops), fixCrc: fix };
      tag('attribute edit');
      break;
    case 'cmdnum': {
      if (!c) break;
      const to = rng.pick([0, 1, 2, 3, 15, 21, 25, 26, 27, 28, 100, 0xffff]);
      s.commands[i] = { ...c, cmd: to, fixCrc: fix };
      tag(`command number ${c.cmd}->${to}`);
      break;
    }
    case 'dupcmd':
      if (!c) break;
      s.commands.splice(rng.int(s.commands.length + 1), 0, { ...c });
      tag('duplicate');
      break;
    case 'dropcmd':
      if (!c) break;
      s.commands.splice(i, 1);
      tag('remove');
      break;
    case 'swapcmd': {
      const j = pickCommandIndex(s, rng);
      if (!c || j < 0) break;
      [s.commands[i], s.commands[j]] = [s.commands[j]!, c];
      tag(`swap with #${j + 1}`);
      break;
    }
    case 'truncate':
      post.push((b) => b.subarray(0, rng.int(b.length)));
      ops.push('truncate');
      break;
    case 'garbage':
      s.trailing = Buffer.concat([s.trailing, flipBits(rng.pick(corpus).subarray(0, rng.range(1, 40)), rng, 2)]);
      ops.push('garbage after END');
      break;
    case 'header': {
      const h = Buffer.from(s.header);
      if (rng.chance(0.5)) h.writeUInt32LE(rng.pick([0, 1, 2, 3, 4, 0xffffffff]), 13);
      else h[rng.int(13)]! ^= 1 << rng.int(8);
      s.header = h;
      ops.push(`header ${h.toString('hex')}`);
      break;
    }
    case 'hostile':
      s.commands.splice(Math.min(1, s.commands.length), 0, ...hostileSequence(s, rng, ctx, ops));
      break;
    default:
      post.push((b) => flipBits(b, rng, rng.range(1, 16)));
      ops.push('raw bit flips anywhere');
  }
  return post;
}

/** Mutate one of the corpus streams with 1-4 mutations. */
export function mutateStream(corpus: Buffer[], rng: Rng, ctx: MutateContext = {}): Mutant {
  const pickIdx = rng.int(corpus.length);
  const s = splitStream(corpus[pickIdx]!);
  const ops = [`corpus stream #${pickIdx}`];
  const post: ((b: Buffer) => Buffer)[] = [];
  const n = rng.weighted([[6, 1], [3, 2], [1, 4]] as const);
  for (let k = 0; k < n; k++) post.push(...mutateOnce(s, rng, ctx, corpus, ops));
  let bytes = joinStream(s);
  for (const f of post) bytes = f(Buffer.from(bytes));
  return { bytes, ops };
}

/** A real stream with hostile sequence #`which` (0-7) inserted after its first command (CRCs fixed). */
export function hostileMutant(stream: Buffer, which: number, ctx: MutateContext): Mutant {
  const s = splitStream(stream);
  const ops: string[] = [];
  s.commands.splice(Math.min(1, s.commands.length), 0, ...hostileSequence(s, new Rng(which), ctx, ops, which));
  return { bytes: joinStream(s), ops };
}
