// The receive's hot file system calls: native/fs-calls.c when it is built (a plain Node-API call), or the
// same calls through koffi. Either way each returns the call's result, or -errno when it fails, and a
// path is a Buffer without its NUL (docs/benchmarks.md: ~250k calls a receive, each cheaper natively).
import { writeSync } from 'node:fs';
import { cPath, koffi, libc } from './libc.js';
import { loadNativeModule } from './native-module.js';

export interface FsCalls {
  openat(dirfd: number, path: Buffer, flags: number, mode: number): number;
  openat2(dirfd: number, path: Buffer, flags: number, mode: number, resolve: number): number;
  mkdirat(dirfd: number, path: Buffer, mode: number): number;
  fchmod(fd: number, mode: number): number;
  /** Linux ≥ 6.6; -ENOSYS before. */
  fchmodat2(dirfd: number, path: Buffer, mode: number, flags: number): number;
  /** `times`: two struct timespec (32 bytes). */
  utimensat(dirfd: number, path: Buffer, times: Uint8Array, flags: number): number;
  futimens(fd: number, times: Uint8Array): number;
  /** `statbuf`: room for glibc's struct stat (144 bytes). */
  fstatat(dirfd: number, path: Buffer, statbuf: Uint8Array, flags: number): number;
  close(fd: number): number;
  /** pwrite(2) of buffer[start, start + length) at `position`: the bytes written (maybe fewer). */
  pwrite(fd: number, buffer: Uint8Array, start: number, length: number, position: number): number;
}

/** struct open_how (openat2), checked against the kernel's by the ABI test (re-exported by fs.ts). */
export const OpenHowLayout = { struct: 'open_how', size: 24, flags: 0, mode: 8, resolve: 16 } as const;

/** BTRFS_IOC_ENCODED_WRITE with its struct built natively (native/fs-calls.c only). */
export type NativeEncodedWrite = (
  fd: number, request: number, data: Uint8Array, offset: number, len: number,
  unencodedLen: number, unencodedOffset: number, compression: number, encryption: number,
) => number;

const SYS_openat2 = 437;
const SYS_fchmodat2 = 452;

/** The same calls through koffi (the fallback; tests compare the two). */
export function fsCallsViaKoffi(): FsCalls {
  const negErrno = (r: number | bigint): number => (Number(r) < 0 ? -koffi.errno() : Number(r));
  const openat = libc.func('int openat(int dirfd, const uint8_t *path, int flags, uint32_t mode)');
  const openat2 = libc.func('long syscall(long nr, int dirfd, const uint8_t *path, uint8_t *how, size_t size)');
  const mkdirat = libc.func('int mkdirat(int dirfd, const uint8_t *path, uint32_t mode)');
  const fchmod = libc.func('int fchmod(int fd, uint32_t mode)');
  const fchmodat2 = libc.func('long syscall(long nr, int dirfd, const uint8_t *path, uint32_t mode, int flags)');
  const utimensat = libc.func('int utimensat(int dirfd, const uint8_t *path, const uint8_t *times, int flags)');
  const futimens = libc.func('int futimens(int fd, const uint8_t *times)');
  const fstatat = libc.func('int fstatat(int dirfd, const uint8_t *path, _Out_ uint8_t *statbuf, int flags)');
  const close = libc.func('int close(int fd)');
  const how = Buffer.alloc(OpenHowLayout.size);
  return {
    openat: (dirfd, path, flags, mode) => negErrno(openat(dirfd, cPath(path), flags, mode)),
    openat2: (dirfd, path, flags, mode, resolve) => {
      how.writeBigUInt64LE(BigInt(flags >>> 0), OpenHowLayout.flags);
      how.writeBigUInt64LE(BigInt(mode >>> 0), OpenHowLayout.mode);
      how.writeBigUInt64LE(BigInt(resolve >>> 0), OpenHowLayout.resolve);
      return negErrno(openat2(SYS_openat2, dirfd, cPath(path), how, how.length));
    },
    mkdirat: (dirfd, path, mode) => negErrno(mkdirat(dirfd, cPath(path), mode)),
    fchmod: (fd, mode) => negErrno(fchmod(fd, mode)),
    fchmodat2: (dirfd, path, mode, flags) => negErrno(fchmodat2(SYS_fchmodat2, dirfd, cPath(path), mode, flags)),
    utimensat: (dirfd, path, times, flags) => negErrno(utimensat(dirfd, cPath(path), times, flags)),
    futimens: (fd, times) => negErrno(futimens(fd, times)),
    fstatat: (dirfd, path, statbuf, flags) => negErrno(fstatat(dirfd, cPath(path), statbuf, flags)),
    close: (fd) => negErrno(close(fd)),
    pwrite: (fd, buffer, start, length, position) => {
      try {
        return writeSync(fd, buffer, start, length, position);
      } catch (e) {
        const errno = (e as { errno?: number }).errno;
        if (typeof errno === 'number') return -Math.abs(errno);
        throw e;
      }
    },
  };
}

type NativeFsCalls = FsCalls & { encodedWrite: NativeEncodedWrite };
const native = loadNativeModule<NativeFsCalls>('fs-calls', 'BTRFS_TS_NO_NATIVE_FS_CALLS');

/** The calls in use: native when built, else koffi's. */
export const fsCalls: FsCalls = native ?? fsCallsViaKoffi();

/** ENCODED_WRITE in one native call, or undefined (then encoded-io.ts formats the struct for koffi). */
export const nativeEncodedWrite: NativeEncodedWrite | undefined = native?.encodedWrite;
