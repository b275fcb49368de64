// Decoding consecutive zstd ENCODED_WRITEs in parallel (--force-decompress, --verify-compressed).
//
// Commands are still applied strictly in stream order on the main thread: a run of ENCODED_WRITEs to
// the same file is decoded on libuv's thread pool (src/compress/zstd-async.ts, up to SLOTS at once)
// while the earlier ones are written; any other command first waits until every queued extent is
// written. So nothing is reordered, an error names its own command, and memory is bounded by SLOTS
// payload copies and decode buffers. Each job owns a copy of its payload: the reader recycles its
// buffers once the next command is read.
import type { EncodedWriteCommand } from '../stream/commands.js';
import { Compression } from '../stream/protocol.js';
import { MAX_UNENCODED_LEN, checkSlice } from '../compress/index.js';
import { ZstdAsyncContext, zstdAsyncAvailable, zstdFramePlan } from '../compress/zstd-async.js';

/** Extents decoded at once (libuv's pool has 4 threads; the reader's read-ahead uses one now and then). */
const SLOTS = 4;
/** Payload copy buffers start at this size (kernel extents are at most 128 KiB compressed). */
const INITIAL_INPUT = 256 * 1024;
const INITIAL_OUTPUT = 128 * 1024;

interface Slot {
  ctx: ZstdAsyncContext;
  input: Buffer;
  output: Buffer;
}

export interface DecodeJob {
  /** 1-based command index and byte offset of the command, for error messages. */
  index: number;
  offset: number;
  /** The command with its path and payload copied (valid after the reader moves on). */
  cmd: EncodedWriteCommand;
  /** Settles when decoding is over; then `decoded` (the whole extent) or `error` is set. */
  done: Promise<void>;
  decoded?: Buffer;
  error?: unknown;
  slot: Slot;
}

export class DecodeAhead {
  readonly queue: DecodeJob[] = [];
  private readonly free: Slot[] = [];

  private constructor() {}

  /**
   * A decode-ahead queue when decoding is needed for every extent, libzstd can run async, and it was
   * asked for (BTRFS_TS_DECODE_AHEAD=1). Off by default: on the 2-core benchmark machine, under load,
   * it was 2–8 % *slower* than decoding inline (thread hand-offs and the payload copy cost more CPU than
   * the overlap saved; docs/benchmarks.md, "What we tried"). Worth it only with idle cores.
   */
  static create(opts: { forceDecompress: boolean; verify: boolean }): DecodeAhead | undefined {
    if (!opts.forceDecompress && !opts.verify) return undefined;
    if (process.env.BTRFS_TS_DECODE_AHEAD !== '1' || !zstdAsyncAvailable()) return undefined;
    return new DecodeAhead();
  }

  /** Whether `cmd` can be decoded ahead: plain zstd with sane fields (anything odd takes the normal path). */
  eligible(cmd: EncodedWriteCommand): boolean {
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

  /** Whether `cmd` writes to the file of the queued extents (only such runs are decoded together). */
  sameFile(cmd: EncodedWriteCommand): boolean {
    return this.queue.length === 0 || this.queue[0]!.cmd.path.equals(cmd.path);
  }

  get full(): boolean {
    return this.queue.length >= SLOTS;
  }

  /** Start decoding; undefined when this payload needs the synchronous decoder (the caller applies it). */
  start(cmd: EncodedWriteCommand, index: number, offset: number): DecodeJob | undefined {
    let frame: Buffer | undefined;
    try {
      frame = zstdFramePlan(cmd.data, cmd.unencodedLen);
    } catch {
      return undefined; // the synchronous path reports the corrupt frame
    }
    if (frame === undefined) return undefined;
    const slot = this.free.pop() ?? {
      ctx: new ZstdAsyncContext(), input: Buffer.allocUnsafe(INITIAL_INPUT), output: Buffer.allocUnsafe(INITIAL_OUTPUT),
    };
    if (slot.input.length < cmd.data.length) slot.input = Buffer.allocUnsafe(cmd.data.length);
    if (slot.output.length < cmd.unencodedLen) slot.output = Buffer.allocUnsafe(cmd.unencodedLen);
    cmd.data.copy(slot.input);
    const data = slot.input.subarray(0, cmd.data.length);
    const out = slot.output.subarray(0, cmd.unencodedLen);
    const job: DecodeJob = {
      index, offset, slot,
      cmd: { ...cmd, path: Buffer.from(cmd.path), data },
      done: Promise.resolve(),
    };
    job.done = slot.ctx.decode(data.subarray(0, frame.length), out).then(
      (produced) => {
        // Zero the tail explicitly (libzstd may use the unused end of the output as scratch space).
        out.fill(0, produced);
        job.decoded = out;
      },
      (error: unknown) => { job.error = error; },
    );
    this.queue.push(job);
    return job;
  }

  /** The oldest job, once decoded; its slot is reused after the caller is done with it (next call). */
  async next(): Promise<DecodeJob> {
    const job = this.queue.shift()!;
    await job.done;
    return job;
  }

  /** The job's buffers may be reused. */
  release(job: DecodeJob): void {
    this.free.push(job.slot);
  }
}
