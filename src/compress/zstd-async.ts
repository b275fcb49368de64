// zstd decoding off the main thread: the system's libzstd called through koffi's asynchronous calls,
// which run on libuv's thread pool. No worker thread (each costs ~10 MiB of resident memory): the
// receive keeps applying earlier commands while extents decode in parallel (docs/benchmarks.md).
//
// Only the fast path of decodeZstd is done here: a single frame whose declared content size fits the
// output. Callers check that first with zstdFramePlan(); anything else goes to the synchronous decoder.
import { createRequire } from 'node:module';
import { CorruptDataError } from './errors.js';
import { zstdContentSize, zstdFrameSize } from './zstd.js';

type Koffi = typeof import('koffi');
type Fn = ((...args: unknown[]) => unknown) & { async(...args: unknown[]): void };

/** Same limit as the synchronous decoder (btrfs writes window logs ≤ 17). */
const WINDOW_LOG_MAX = 20;
const ZSTD_d_windowLogMax = 100;

interface Lib {
  createDCtx: Fn;
  setParameter: Fn;
  decompressDCtx: Fn;
  isError: Fn;
  getErrorName: Fn;
}

let lib: Lib | null | undefined;

function load(): Lib | null {
  if (lib !== undefined) return lib;
  try {
    const koffi = createRequire(import.meta.url)('koffi') as Koffi;
    const z = koffi.load('libzstd.so.1');
    lib = {
      createDCtx: z.func('void *ZSTD_createDCtx()') as Fn,
      setParameter: z.func('size_t ZSTD_DCtx_setParameter(void *dctx, int param, int value)') as Fn,
      decompressDCtx: z.func('size_t ZSTD_decompressDCtx(void *dctx, uint8_t *dst, size_t cap, const uint8_t *src, size_t n)') as Fn,
      isError: z.func('unsigned int ZSTD_isError(size_t code)') as Fn,
      getErrorName: z.func('const char *ZSTD_getErrorName(size_t code)') as Fn,
    };
  } catch {
    lib = null; // no system libzstd: callers decode synchronously
  }
  return lib;
}

/** Whether asynchronous zstd decoding is available (the system's libzstd.so.1 loads). */
export function zstdAsyncAvailable(): boolean {
  return load() !== null;
}

/** A decompression context for one decode at a time (libzstd contexts are not shared between threads). */
export class ZstdAsyncContext {
  private readonly dctx: unknown;

  constructor() {
    const l = load();
    if (!l) throw new Error('libzstd.so.1 is not available');
    const dctx = l.createDCtx();
    if (dctx === null) throw new Error('ZSTD_createDCtx failed');
    l.setParameter(dctx, ZSTD_d_windowLogMax, WINDOW_LOG_MAX);
    this.dctx = dctx;
  }

  /**
   * Decode `frame` (exactly one frame, as zstdFramePlan() returned it) into `out` on the thread pool.
   * Resolves to the bytes produced; rejects with CorruptDataError. `frame` and `out` must not be
   * touched until it settles.
   */
  decode(frame: Buffer, out: Buffer): Promise<number> {
    const l = lib!;
    return new Promise((resolve, reject) => {
      l.decompressDCtx.async(this.dctx, out, out.length, frame, frame.length, (err: unknown, ret: unknown) => {
        if (err) return reject(err instanceof Error ? err : new Error(String(err)));
        const code = ret as number | bigint;
        if (l.isError(code)) return reject(new CorruptDataError('zstd', String(l.getErrorName(code))));
        resolve(Number(code));
      });
    });
  }
}

/**
 * The frame to decode asynchronously, or undefined when the payload needs the synchronous decoder
 * (no declared content size, or more than `outLen`). Throws CorruptDataError for a bad frame, like
 * decodeZstd.
 */
export function zstdFramePlan(data: Buffer, outLen: number): Buffer | undefined {
  const frame = data.subarray(0, zstdFrameSize(data));
  const declared = zstdContentSize(frame);
  return declared !== null && declared <= outLen ? frame : undefined;
}
