// zstd extents: one frame, zero-padded to the sector. We find where the frame ends (zstd parses
// the block headers), then decode exactly that frame with libzstd: the system's, through our own
// native/zstd-ahead.c when it is built (one libzstd in the process, not two: zstd-napi is not loaded;
// docs/compression.md), else zstd-napi's.
// A frame that does not declare its size, or declares more than wanted, always goes through
// zstd-napi's streaming decoder.
import { createRequire } from 'node:module';
import { loadNativeModule } from '../sys/native-module.js';
import { CorruptDataError } from './errors.js';

type Binding = typeof import('zstd-napi/binding.js');
// Loaded on first use: a receive that never decodes zstd does not pay its resident memory (~3 MiB).
let bindingLoaded: Binding | undefined;
function zstdBinding(): Binding {
  return (bindingLoaded ??= createRequire(import.meta.url)('zstd-napi/binding') as Binding);
}

/** What native/zstd-ahead.c offers for one frame on the calling thread (libzstd's error name on failure). */
interface NativeFrameCalls {
  frameSize(data: Uint8Array): number | string;
  /** -1: the frame does not say. */
  contentSize(frame: Uint8Array): number | string;
  decode(frame: Uint8Array, out: Uint8Array): number | string;
}
let nativeCalls: NativeFrameCalls | null | undefined;
function native(): NativeFrameCalls | null {
  if (nativeCalls === undefined) {
    // BTRFS_TS_NO_NATIVE_ZSTD=1: zstd-napi for everything (the switch for A/B measurements; checked here,
    // as decode-ahead loads the same module).
    const off = process.env.BTRFS_TS_NO_NATIVE_ZSTD === '1';
    const m = off ? null : loadNativeModule<Partial<NativeFrameCalls>>('zstd-ahead');
    const complete = m && typeof m.frameSize === 'function' && typeof m.contentSize === 'function' && typeof m.decode === 'function';
    nativeCalls = complete ? m as NativeFrameCalls : null;
  }
  return nativeCalls;
}

/** A native call's number, or its libzstd error name as a CorruptDataError. */
function checked(result: number | string): number {
  if (typeof result === 'string') throw new CorruptDataError('zstd', result);
  return result;
}

const ZSTD_MAGIC = 0xfd2fb528;
/** btrfs writes frames with window log ≤ 17; 2^20 leaves room and refuses hostile 128 MiB windows. */
const WINDOW_LOG_MAX = 20;

let dctx: InstanceType<Binding['DCtx']> | undefined;
function context(): InstanceType<Binding['DCtx']> {
  if (!dctx) {
    dctx = new (zstdBinding().DCtx)();
    dctx.setParameter(zstdBinding().DParameter.windowLogMax, WINDOW_LOG_MAX);
  }
  return dctx;
}

function corrupt(error: unknown): CorruptDataError {
  return new CorruptDataError('zstd', error instanceof Error ? error.message : String(error));
}

/** Byte length of the zstd frame at the start of `data` (the rest is padding). */
export function zstdFrameSize(data: Uint8Array): number {
  if (data.length < 4) throw new CorruptDataError('zstd', `payload of ${data.length} bytes is too short for a frame`, 0);
  const magic = (data[0]! | (data[1]! << 8) | (data[2]! << 16) | (data[3]! << 24)) >>> 0;
  if (magic !== ZSTD_MAGIC) throw new CorruptDataError('zstd', `bad frame magic 0x${magic.toString(16).padStart(8, '0')}`, 0);
  const calls = native();
  if (calls) return checked(calls.frameSize(data));
  try {
    return zstdBinding().findFrameCompressedSize(data);
  } catch (error) {
    throw corrupt(error);
  }
}

/** Declared decoded size of a frame (null when the frame does not say); CorruptDataError if unreadable. */
export function zstdContentSize(frame: Uint8Array): number | null {
  const calls = native();
  if (calls) {
    const size = checked(calls.contentSize(frame));
    return size < 0 ? null : size;
  }
  try {
    return zstdBinding().getFrameContentSize(frame);
  } catch (error) {
    throw corrupt(error);
  }
}

/**
 * Decode the first zstd frame of `data` into `out` (length = the most we want). Output beyond
 * `out.length` is dropped (not an error). Returns the number of bytes written.
 */
export function decodeZstd(data: Uint8Array, out: Uint8Array): number {
  const frame = data.subarray(0, zstdFrameSize(data));
  const declared = zstdContentSize(frame);
  const calls = native();
  if (calls && declared !== null && declared <= out.length) return checked(calls.decode(frame, out));
  const ctx = context();
  try {
    if (declared !== null && declared <= out.length) {
      // Fast path (all btrfs frames): one call; zstd checks the declared size and any checksum.
      return ctx.decompress(out, frame);
    }
    // Unknown or larger than wanted: stream into `out` and stop when it is full.
    ctx.reset(zstdBinding().ResetDirective.sessionOnly);
    let produced = 0;
    let consumed = 0;
    for (;;) {
      const [remaining, wrote, read] = ctx.decompressStream(out.subarray(produced), frame.subarray(consumed));
      produced += wrote;
      consumed += read;
      if (remaining === 0) return produced; // frame complete
      if (produced === out.length) return produced; // truncated on purpose
      if (wrote === 0 && read === 0) throw new CorruptDataError('zstd', 'frame is truncated');
    }
  } catch (error) {
    if (error instanceof CorruptDataError) throw error;
    throw corrupt(error);
  } finally {
    ctx.reset(zstdBinding().ResetDirective.sessionOnly);
  }
}
