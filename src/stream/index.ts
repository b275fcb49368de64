// The stream codec's public surface.
export * from './protocol.js';
export * from './commands.js';
export * from './crc32c.js';
export * from './source.js';
export * from './errors.js';
export * from './reader.js';
export * from './writer.js';
export { openByteWindow, FD_CHUNK_SIZE } from './byte-reader.js';
export type { ByteWindow } from './byte-reader.js';
