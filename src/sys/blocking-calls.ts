// Send's two long blocking calls (BTRFS_IOC_SEND, and the pipe copy beside it), each on a plain thread
// of its own through our Node-API module native/blocking-calls.c, instead of a worker thread each: a
// worker is a whole V8 isolate, ~10 MiB of resident memory and ~25 ms to start. (Not libuv's pool: calls
// that last a whole send could take all its threads; see the C file.) Optional like every native module
// here: when it was not built (or BTRFS_TS_NO_NATIVE_CALLS=1), send-ioctl.ts uses worker threads.
import { loadNativeModule, nativeModulePath } from './native-module.js';

export const BLOCKING_CALLS_MODULE_PATH = nativeModulePath('blocking-calls');

/**
 * [return value (or bytes copied), errno (0 if none), failing system call (copyPipe) or null, calls that
 * moved data (copyPipe; 0 for ioctl)].
 */
export type CallResult = [number, number, string | null, number];

export interface BlockingCalls {
  ioctl(fd: number, request: number, args: Uint8Array, keepAlive: Uint8Array | null): Promise<CallResult>;
  copyPipe(
    inFd: number, outFd: number, chunk: number, outPipeSize: number, progress: Float64Array | null, paceMaxMicros: number,
  ): Promise<CallResult>;
}

/** The module, or null when it is not there (not built, another Node ABI, or disabled). */
export function blockingCalls(): BlockingCalls | null {
  return loadNativeModule<BlockingCalls>('blocking-calls', 'BTRFS_TS_NO_NATIVE_CALLS');
}
