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

const F_SETPIPE_SZ = 1031;
const F_GETPIPE_SZ = 1032;
/**
 * The buffer a pipe we read is grown to (from Linux's default 64 KiB): the writer then blocks, and wakes
 * us, far less often — `cat stream | btrfs-ts receive --dump` took 0.44–0.48 s instead of 0.53–0.70 s on
 * the compressed lab stream, and with `-e` (two reads per command) the 1 GiB v1 stream 2.05–2.29 s instead
 * of 2.8–3.9 s. 1 MiB is what an unprivileged process may ask for by default (/proc/sys/fs/pipe-max-size).
 */
const PIPE_BUFFER = 1 << 20;

/** Grows the pipe `fd` reads to PIPE_BUFFER; never shrinks it. Failing is harmless (a socket, or a user over the kernel's pipe limits). */
export async function growPipe(fd: number): Promise<void> {
  const calls = await fdCalls();
  const size = calls.fcntl(fd, F_GETPIPE_SZ, 0);
  if (size >= 0 && size < PIPE_BUFFER) calls.fcntl(fd, F_SETPIPE_SZ, PIPE_BUFFER);
}
