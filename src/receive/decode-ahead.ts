// zstd ENCODED_WRITEs decoded ahead on a helper thread (native/zstd-ahead.c) while the receive applies
// the commands before them (--force-decompress, and the check of compressed extents before they are
// written as they are).
//
// The receive submits an extent as soon as it reads it and takes the result when the extent's turn
// comes (src/receive/record-queue.ts keeps stream order, and the payload in its own copy of the frame).
// Memory: LOOKAHEAD decode buffers of the largest extent seen (128 KiB for kernel streams: 768 KiB) with
// --force-decompress; none when extents are only checked (each thread decodes into scratch space of its own).
import type { EncodedWriteCommand } from '../stream/commands.js';
import { Compression } from '../stream/protocol.js';
import { MAX_UNENCODED_LEN, checkSlice } from '../compress/index.js';
import { ZstdAheadPool, zstdFramePlan } from '../compress/zstd-ahead.js';

/** Extents submitted ahead at most: the helper is woken once 4 wait (WAKE_BATCH in native/zstd-ahead.c). */
export const LOOKAHEAD = 6;
/** Slot buffers start at the kernel's largest extent, so they are allocated once. */
const INITIAL_SIZE = 128 * 1024;

interface Slot {
  id: number;
  output: Buffer;
}

/** One extent submitted to the helper; finish() it exactly once. */
export interface DecodeJob {
  slot: Slot;
  /** The decoded extent's view in the slot (exactly unencodedLen bytes); none when only checking. */
  out: Buffer | undefined;
}

/** The decoded extent, or (when only checking) nothing: it decodes; or what decoding threw. */
export type DecodeResult = { decoded?: Buffer; error?: undefined } | { decoded?: undefined; error: unknown };

export class DecodeAhead {
  private readonly free: Slot[] = [];
  private inUse = 0;

  /** @param checkOnly extents are only checked, not kept decoded (no output buffers). */
  private constructor(private readonly pool: ZstdAheadPool, private readonly checkOnly: boolean) {
    for (let id = Math.min(LOOKAHEAD, pool.slots) - 1; id >= 0; id--) {
      this.free.push({ id, output: Buffer.alloc(0) });
    }
  }

  /**
   * A decode-ahead pool when extents must be decoded, the native module and the system's libzstd.so.1
   * are there, and BTRFS_TS_DECODE_AHEAD is not 0 (the switch for A/B measurements).
   */
  static create(opts: { forceDecompress: boolean; verify: boolean }): DecodeAhead | undefined {
    if (!opts.forceDecompress && !opts.verify) return undefined;
    if (process.env.BTRFS_TS_DECODE_AHEAD === '0') return undefined;
    const pool = ZstdAheadPool.create();
    return pool ? new DecodeAhead(pool, !opts.forceDecompress) : undefined;
  }

  /** All slots hold a job: the oldest must be finished before another is submitted. */
  get full(): boolean {
    return this.free.length === 0;
  }

  /** Jobs submitted and not finished yet. */
  get pending(): number {
    return this.inUse;
  }

  /**
   * Queue `cmd`'s payload for the helper: cmd.data must stay as it is until finish(). Undefined when
   * the payload is not plain zstd with sane fields (the synchronous path decodes it and reports what is
   * wrong) or no slot is free.
   */
  submit(cmd: EncodedWriteCommand): DecodeJob | undefined {
    if (this.free.length === 0 || !eligible(cmd)) return undefined;
    let frameLen: number;
    try {
      const frame = zstdFramePlan(cmd.data, cmd.unencodedLen);
      if (frame === undefined) return undefined;
      frameLen = frame.length;
    } catch {
      return undefined;
    }
    const slot = this.free.pop()!;
    let out: Buffer | undefined;
    if (this.checkOnly) {
      this.pool.submitCheck(slot.id, cmd.data.subarray(0, frameLen), cmd.unencodedLen);
    } else {
      if (slot.output.length < cmd.unencodedLen) slot.output = Buffer.allocUnsafe(Math.max(INITIAL_SIZE, cmd.unencodedLen));
      out = slot.output.subarray(0, cmd.unencodedLen);
      this.pool.submit(slot.id, cmd.data.subarray(0, frameLen), out);
    }
    this.inUse++;
    return { slot, out };
  }

  /**
   * The job's result (decoding it here if the helper has not started it). The slot is free again
   * afterwards: use `decoded` before the next submit().
   */
  finish(job: DecodeJob): DecodeResult {
    let result: DecodeResult;
    try {
      const produced = this.pool.finish(job.slot.id);
      if (job.out === undefined) {
        result = {};
      } else {
        // Zero the tail explicitly (libzstd may use the unused end of the output as scratch space).
        job.out.fill(0, produced);
        result = { decoded: job.out };
      }
    } catch (error) {
      result = { error };
    }
    this.inUse--;
    this.free.push(job.slot);
    return result;
  }

  /** How finish() found its jobs (BTRFS_TS_DECODE_AHEAD_STATS=1 prints it at the end of a receive). */
  stats(): { self: number; waited: number; done: number } {
    return this.pool.stats();
  }

  /** Stop the helper (jobs not finished are dropped). */
  close(): void {
    this.pool.close();
  }
}

/** Plain zstd with fields the decoder accepts; anything odd takes the synchronous path. */
export function eligible(cmd: EncodedWriteCommand): boolean {
  if (cmd.compression !== Compression.ZSTD || (cmd.encryption ?? 0) !== 0) return false;
  if (cmd.unencodedLen <= 0 || cmd.unencodedLen > MAX_UNENCODED_LEN) return false;
  try {
    checkSlice({ compression: cmd.compression, data: cmd.data, unencodedLen: cmd.unencodedLen,
      unencodedOffset: cmd.unencodedOffset, unencodedFileLen: cmd.unencodedFileLen });
  } catch {
    return false;
  }
  return true;
}
