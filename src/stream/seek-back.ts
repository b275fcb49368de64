// Giving read-ahead bytes back to a regular file: after `-e` the caller's fd must sit just past END,
// however far ahead we read.

let lseekFn: ((fd: number, off: number, whence: number) => number) | undefined;
const SEEK_CUR = 1;

/** Move fd's file position back by `unread` bytes (koffi is loaded only when there is something to give back). */
export async function seekBack(fd: number, unread: number): Promise<void> {
  if (unread <= 0) return;
  const { libc } = await import('../sys/libc.js');
  lseekFn ??= libc.func('int64_t lseek(int, int64_t, int)') as (fd: number, off: number, whence: number) => number;
  lseekFn(fd, -unread, SEEK_CUR);
}
