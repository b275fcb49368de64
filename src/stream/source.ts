// Where stream bytes come from. The reader accepts any of these.
import type { Readable } from 'node:stream';

/** A file descriptor (e.g. 0 for stdin), a file path, a Node Readable, or any async iterable of bytes. */
export type ByteSource = number | string | Readable | NodeJS.ReadableStream | AsyncIterable<Uint8Array>;
