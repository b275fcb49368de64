// Moves the stream from the kernel's pipe to the output while the ioctl runs on another thread
// (protocol.md §5.5). To an fd: splice(2) on a worker thread, as progs' reader thread does (measured:
// a read/write loop through libuv's pool took ~1.9x progs' wall time for a 1.1 GiB v1 send). To a Node
// Writable (in-process use): reads through libuv's pool and back-pressure via 'drain', so memory stays
// bounded by the stream's high-water mark.
import { read } from 'node:fs';
import type { Writable } from 'node:stream';
import { copyPipeOffThread, type PipeCopyOptions } from '../sys/send-ioctl.js';

/** Where a send writes: an fd (`name`: the -f path, for messages) or a Node stream. */
export type StreamSink = { kind: 'fd'; fd: number; name?: string } | { kind: 'writable'; stream: Writable };

function readChunk(fd: number, buf: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    read(fd, buf, 0, buf.length, null, (err, n) => (err ? reject(err) : resolve(n)));
  });
}

/** Write to a Writable, honouring back-pressure; rejects if the stream errors or closes first. */
function writeToStream(stream: Writable, chunk: Buffer): Promise<void> {
  if (stream.destroyed || stream.writableEnded) {
    return Promise.reject(Object.assign(new Error('write after the output stream closed'), { code: 'EPIPE' }));
  }
  if (stream.write(chunk)) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const cleanup = (): void => {
      stream.off('drain', onDrain);
      stream.off('error', onError);
      stream.off('close', onClose);
    };
    const onDrain = (): void => { cleanup(); resolve(); };
    const onError = (e: Error): void => { cleanup(); reject(e); };
    const onClose = (): void => {
      cleanup();
      reject(Object.assign(new Error('the output stream closed'), { code: 'EPIPE' }));
    };
    stream.on('drain', onDrain);
    stream.once('error', onError);
    stream.once('close', onClose);
  });
}

/** How pumpPipe copies: `chunk` bytes at a time (unless paced); the rest as copyPipeOffThread's (fd sinks). */
export interface PumpOptions extends Pick<PipeCopyOptions, 'outPipeSize' | 'paceMaxMicros'> {
  chunk: number;
}

/**
 * Copy everything readable from `readFd` to `sink` until EOF (the kernel's ioctl returned and the
 * write end was closed). Returns the byte count. A failing sink rejects at once; the caller then
 * closes `readFd` so the kernel's next write fails with EPIPE and the ioctl ends.
 */
export async function pumpPipe(
  readFd: number, sink: StreamSink, how: PumpOptions, onBytes?: (bytes: number) => void,
): Promise<number> {
  const { chunk: chunkSize, outPipeSize = 0, paceMaxMicros = 0 } = how;
  if (sink.kind === 'fd') {
    if (!onBytes) return (await copyPipeOffThread(readFd, sink.fd, chunkSize, { outPipeSize, paceMaxMicros })).bytes;
    // --progress: the worker keeps its byte count in shared memory; look at it 10 times a second.
    const progress = new Float64Array(new SharedArrayBuffer(8));
    const timer = setInterval(() => onBytes(progress[0]!), 100);
    try {
      const { bytes } = await copyPipeOffThread(readFd, sink.fd, chunkSize, { outPipeSize, progress, paceMaxMicros });
      onBytes(bytes);
      return bytes;
    } finally {
      clearInterval(timer);
    }
  }
  let total = 0;
  for (;;) {
    // A fresh buffer per chunk: the Writable may hold on to it after write() returns.
    const buf = Buffer.allocUnsafe(chunkSize);
    const n = await readChunk(readFd, buf);
    if (n === 0) return total;
    await writeToStream(sink.stream, n === buf.length ? buf : buf.subarray(0, n));
    total += n;
    onBytes?.(total);
  }
}
