// Moves the stream from the kernel's pipe to the output while the ioctl runs on another thread
// (protocol.md §5.5). To an fd: splice(2) on a worker thread, as progs' reader thread does (measured:
// a read/write loop through libuv's pool took ~1.9x progs' wall time for a 1.1 GiB v1 send). To a Node
// Writable (in-process use): reads through libuv's pool and back-pressure via 'drain', so memory stays
// bounded by the stream's high-water mark.
import { read } from 'node:fs';
import type { Writable } from 'node:stream';
import { copyPipeOffThread } from '../sys/send-ioctl.js';

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

/**
 * Copy everything readable from `readFd` to `sink` until EOF (the kernel's ioctl returned and the
 * write end was closed). Returns the byte count. `outPipeSize`: try to enlarge an fd output that is a
 * pipe (progs does for v2). A failing sink rejects at once; the caller then
 * closes `readFd` so the kernel's next write fails with EPIPE and the ioctl ends.
 */
export async function pumpPipe(
  readFd: number, sink: StreamSink, chunkSize: number, outPipeSize = 0, onBytes?: (bytes: number) => void,
): Promise<number> {
  if (sink.kind === 'fd') {
    if (!onBytes) return copyPipeOffThread(readFd, sink.fd, chunkSize, outPipeSize);
    // --progress: the worker keeps its byte count in shared memory; look at it 10 times a second.
    const counter = new Float64Array(new SharedArrayBuffer(8));
    const timer = setInterval(() => onBytes(counter[0]!), 100);
    try {
      const total = await copyPipeOffThread(readFd, sink.fd, chunkSize, outPipeSize, counter);
      onBytes(total);
      return total;
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
