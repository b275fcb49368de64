// A regular file can take the stream straight from the kernel. BTRFS_IOC_SEND writes each command with
// kernel_write() into whatever `send_fd` is; progs always hands it a pipe and splices that pipe into its
// output, which for a file is a second copy of the whole stream, made by a second thread. Written
// directly, a send into a file on tmpfs takes 0.86x (v1) and 0.92x (compressed) of progs' time
// (docs/benchmarks.md).
//
// Only regular files: a pipe written directly wakes its reader for every command (measured slower than
// progs' spliced 64 KiB batches; sockets are left to the pipe too), and /dev/null and other devices
// refuse kernel_write.
//
// The kernel writes at an offset of its own that starts at 0 in every ioctl, not at the file's
// position. So the bytes land where progs' would only if the file is in append mode, or is empty with
// its position at 0; and afterwards the position is moved to the end, where progs' writes leave it.
import { fstatSync, constants as fsConstants } from 'node:fs';
import { fileStatusFlags, filePosition, seekToEnd, setFileStatusFlags } from '../sys/send-ioctl.js';

const O_APPEND = fsConstants.O_APPEND;
const O_DIRECT = fsConstants.O_DIRECT ?? 0o40000;

/** A regular file the kernel may write the stream into, and how big it was before. */
export interface DirectFile {
  fd: number;
  append: boolean;
  sizeBefore: number;
}

/** `fd` as a direct target, or undefined when the stream must go through a pipe (see above). */
export function directFileTarget(fd: number): DirectFile | undefined {
  const st = fstatSync(fd);
  if (!st.isFile()) return undefined;
  const flags = fileStatusFlags(fd);
  // O_DIRECT would make kernel_write demand aligned buffers and lengths, which commands are not.
  if ((flags & O_DIRECT) !== 0) return undefined;
  const append = (flags & O_APPEND) !== 0;
  if (!append && (st.size !== 0 || filePosition(fd) !== 0)) return undefined;
  return { fd, append, sizeBefore: st.size };
}

/** Bytes of the stream in the file so far. */
export function directBytesWritten(target: DirectFile): number {
  return fstatSync(target.fd).size - target.sizeBefore;
}

/** After the ioctl: the file position where writes through the fd would have left it. */
export function finishDirectFile(target: DirectFile): void {
  if (!target.append) seekToEnd(target.fd);
}

/**
 * For the file `-f` opened (and truncated) itself: append mode. Nobody else shares that open file, so
 * appending changes nothing but lets the kernel write every subvolume's stream directly, not only the
 * first one's. Anything but a plain regular file is left as it is.
 */
export function appendToOwnFile(fd: number): void {
  try {
    if (!fstatSync(fd).isFile()) return;
    const flags = fileStatusFlags(fd);
    if ((flags & O_DIRECT) === 0) setFileStatusFlags(fd, flags | O_APPEND);
  } catch {
    // Then the stream goes through the pipe, which reports what is wrong with the file.
  }
}
