// Real zstd frames for hand-made ENCODED_WRITE commands, padded to a 4 KiB sector as btrfs stores them.
import { compress } from 'zstd-napi';

/** 8 KiB of text that compresses, but not to nothing (so the frame has a body worth garbling). */
export const SAMPLE_TEXT = Buffer.from(Array.from({ length: 3000 }, (_, i) => `${(i * 7919) % 1000},`).join('')).subarray(0, 8192);

export function zstdFrame(data: Buffer): Buffer {
  const frame = compress(data);
  const padded = Buffer.alloc(Math.ceil(frame.length / 4096) * 4096);
  frame.copy(padded);
  return padded;
}

/** The same frame with its compressed blocks garbled (magic and frame header left intact). */
export function corruptZstdFrame(data: Buffer): Buffer {
  const frame = compress(data);
  for (let i = 12; i < frame.length - 4; i++) frame[i] ^= 0x5a;
  const padded = Buffer.alloc(4096);
  frame.copy(padded);
  return padded;
}
