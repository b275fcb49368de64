// dup(2) and fcntl(2) for reading a pipe (stream/byte-reader.ts): from native/fd-calls.c, or through koffi
// when that module is missing (koffi costs ~8 MiB of resident memory, which `--dump` from a pipe otherwise
// never loads). Both return the system call's raw result: -1 on failure.
import { loadNativeModule } from './native-module.js';

export interface FdCalls {
  dup(fd: number): number;
  /** Only commands whose argument is an int (F_GETFL, F_SETFL, F_GETPIPE_SZ, F_SETPIPE_SZ). */
  fcntl(fd: number, cmd: number, arg: number): number;
}

let calls: FdCalls | undefined;

/** The native module's calls, or koffi's (loaded only then). */
export async function fdCalls(): Promise<FdCalls> {
  if (calls === undefined) {
    const native = loadNativeModule<FdCalls>('fd-calls', 'BTRFS_TS_NO_NATIVE_FD_CALLS');
    if (native !== null) {
      calls = native;
    } else {
      const { libc } = await import('./libc.js');
      calls = {
        dup: libc.func('int dup(int)') as (fd: number) => number,
        fcntl: libc.func('fcntl', 'int', ['int', 'int', 'int']) as (fd: number, cmd: number, arg: number) => number,
      };
    }
  }
  return calls;
}
