// zstd extents decoded on a helper thread (native/zstd-ahead.c) while the receive applies earlier
// commands. A job that the helper has not started when its result is needed is decoded right there, on
// the receive's own thread, so this is never slower than decoding inline (docs/benchmarks.md).
//
// Only the fast path of decodeZstd is done here: a single frame whose declared content size fits the
// output. Callers check that first with zstdFramePlan(); anything else goes to the synchronous decoder.
import { loadNativeModule, nativeModulePath } from '../sys/native-module.js';
import { CorruptDataError } from './errors.js';
import { zstdContentSize, zstdFrameSize } from './zstd.js';

export const ZSTD_AHEAD_MODULE_PATH = nativeModulePath('zstd-ahead');

interface ZstdAheadModule {
  /** A pool with its helper thread; undefined when the system's libzstd.so.1 cannot be loaded. */
  create(): object | undefined;
  submit(pool: object, slot: number, frame: Buffer, out: Buffer): void;
  submitCheck(pool: object, slot: number, frame: Buffer, outLen: number): void;
  /** Bytes produced, or libzstd's error name. */
  finish(pool: object, slot: number): number | string;
  close(pool: object): void;
  /** [decoded by finish() itself, waited for the helper, found done] (for measuring). */
  stats(pool: object): number[];
  /** Jobs a pool holds at once. */
  SLOTS: number;
}

/** The module, or null (extents are then decoded inline). */
function loadModule(): ZstdAheadModule | null {
  return loadNativeModule<ZstdAheadModule>('zstd-ahead');
}

/** A helper thread with its own libzstd context, and up to `SLOTS` jobs queued for it. */
export class ZstdAheadPool {
  readonly slots: number;

  private constructor(private readonly native: ZstdAheadModule, private readonly pool: object) {
    this.slots = native.SLOTS;
  }

  /** A pool, or undefined when the module was not built or the system has no libzstd.so.1. */
  static create(): ZstdAheadPool | undefined {
    const native = loadModule();
    const pool = native?.create();
    return native && pool ? new ZstdAheadPool(native, pool) : undefined;
  }

  /** Queue `frame` (exactly one frame, as zstdFramePlan() returned it) to be decoded into `out`.
   *  Neither may be touched until finish(slot). */
  submit(slot: number, frame: Buffer, out: Buffer): void {
    this.native.submit(this.pool, slot, frame, out);
  }

  /**
   * Queue `frame` only to check that it decodes, to at most `outLen` (≤ 128 KiB) bytes: it is decoded
   * into the decoding thread's own scratch space, so no output buffer is needed. The frame may not be
   * touched until finish(slot).
   */
  submitCheck(slot: number, frame: Buffer, outLen: number): void {
    this.native.submitCheck(this.pool, slot, frame, outLen);
  }

  /** The bytes the job in `slot` produced (decoding it here if the helper has not started it). */
  finish(slot: number): number {
    const result = this.native.finish(this.pool, slot);
    if (typeof result === 'string') throw new CorruptDataError('zstd', result);
    return result;
  }

  close(): void {
    this.native.close(this.pool);
  }

  /** How finish() found its jobs: decoded by the caller itself, still running on the helper, done. */
  stats(): { self: number; waited: number; done: number } {
    const [self = 0, waited = 0, done = 0] = this.native.stats(this.pool);
    return { self, waited, done };
  }
}

/**
 * The frame to decode ahead, or undefined when the payload needs the synchronous decoder (no declared
 * content size, or more than `outLen`). Throws CorruptDataError for a bad frame, like decodeZstd.
 */
export function zstdFramePlan(data: Buffer, outLen: number): Buffer | undefined {
  const frame = data.subarray(0, zstdFrameSize(data));
  const declared = zstdContentSize(frame);
  return declared !== null && declared <= outLen ? frame : undefined;
}
