// The one place that loads libc through koffi, and the error type every system call failure becomes.
import { createRequire } from 'node:module';
// CommonJS packages are loaded with require: an ESM `import` of CJS makes Node load its CJS export
// scanner (WebAssembly), about 10 MiB of resident memory (measured, docs/benchmarks.md).
const koffi = createRequire(import.meta.url)('koffi') as typeof import('koffi');
import { constants as osConstants } from 'node:os';

export const libc = koffi.load('libc.so.6');
export { koffi };

const errnoNames = new Map<number, string>(
  Object.entries(osConstants.errno).map(([name, value]) => [value as number, name]),
);

/** Text for an errno value, as strerror(3) gives it. */
const strerrorRaw = libc.func('const char *strerror(int errnum)');
export function strerror(errno: number): string {
  return strerrorRaw(errno) as string;
}

/** A failed system call: names the call, the path it was about (if any) and errno. */
export class SysError extends Error {
  readonly syscall: string;
  readonly path: string | undefined;
  readonly errno: number;
  /** Symbolic errno, e.g. 'ENOENT'. */
  readonly code: string;

  constructor(syscall: string, errno: number, path?: string | Buffer) {
    const where = path === undefined ? '' : ` ${typeof path === 'string' ? path : printablePath(path)}`;
    const code = errnoNames.get(errno) ?? `E${errno}`;
    super(`${syscall}${where} failed: ${strerror(errno)} (${code})`);
    this.name = 'SysError';
    this.syscall = syscall;
    this.path = path === undefined ? undefined : typeof path === 'string' ? path : printablePath(path);
    this.errno = errno;
    this.code = code;
  }
}

/** A path as it may be shown to a person: bytes that are not printable ASCII become \ooo escapes. */
export function printablePath(path: Buffer): string {
  let out = '';
  for (const byte of path) {
    if (byte >= 0x20 && byte < 0x7f && byte !== 0x5c) out += String.fromCharCode(byte);
    else out += '\\' + byte.toString(8).padStart(3, '0');
  }
  return out;
}

/** The errno of the last call made through koffi on this thread. */
export function lastErrno(): number {
  return koffi.errno();
}

/** Throw a SysError when a libc call returned -1 (or any negative value). */
export function check(result: number, syscall: string, path?: string | Buffer): number {
  if (result < 0) throw new SysError(syscall, koffi.errno(), path);
  return result;
}

const TWO_32 = 2 ** 32;
/**
 * A safe integer (negative too) as a little-endian signed 64-bit field of a C struct, written as two
 * 32-bit halves: no BigInt per field on the hot paths (times, ENCODED_WRITE's arguments).
 */
export function putInt64LE(b: Buffer, value: number, at: number): void {
  const hi = Math.floor(value / TWO_32);
  b.writeUInt32LE(value - hi * TWO_32, at);
  b.writeInt32LE(hi, at + 4);
}

/** A NUL-terminated copy of a raw path, for passing to C. */
export function cPath(path: Buffer | string): Buffer {
  const bytes = typeof path === 'string' ? Buffer.from(path) : path;
  const out = Buffer.allocUnsafe(bytes.length + 1);
  bytes.copy(out);
  out[bytes.length] = 0;
  return out;
}

/** ioctl(2) with a preformatted argument buffer (fast: no object marshalling). */
export const ioctlRaw = libc.func('int ioctl(int fd, unsigned long request, _Inout_ uint8_t *arg)');
/** ioctl(2) whose argument is a plain integer. */
export const ioctlInt = libc.func('ioctl', 'int', ['int', 'unsigned long', 'unsigned long']);

export function ioctl(fd: number, request: number, arg: Buffer, name: string, path?: string | Buffer): number {
  return check(ioctlRaw(fd, request, arg) as number, name, path);
}
