// Reading ahead of the command being applied, so that zstd extents can be decoded on the helper thread
// (decode-ahead.ts) while the commands before them are applied.
//
// Commands are applied strictly in stream order, from the head of a bounded queue. A frame is queued
// only while something is queued before it: its raw bytes are copied into a ring (byte-ring.ts), as
// the reader recycles its buffers, and it is decoded when its turn comes. An ENCODED_WRITE is decoded
// when read and its payload (in the ring) submitted for decoding at once. The queue is drained from its
// head while LOOKAHEAD extents are pending or MAX_RECORDS frames wait, completely when none is pending
// or the ring is full. Memory: RING_SIZE (512 KiB; 1 MiB was no faster) plus decode-ahead's output
// slots (768 KiB), and no JS object per queued frame, so the young-generation GC promotes nothing
// (peak RSS +2-3 MiB on the lab stream; copied commands and fresh Buffers cost +10-30 MiB).
//
// Errors keep today's order: an apply error is thrown at once (the frames after it are never applied);
// a read error (truncated or corrupt stream) is thrown after the frames read before it are applied,
// and a frame that does not decode throws when its turn comes, as it would have without the queue.
import type { Command, EncodedWriteCommand } from '../stream/commands.js';
import { Cmd, COMMAND_HEADER_SIZE } from '../stream/protocol.js';
import { decodeCommand } from '../stream/decode.js';
import { decodeFrame, type FrameFeed, type RawFrame } from '../stream/reader.js';
import type { DecodeAhead, DecodeJob } from './decode-ahead.js';
import { ByteRing } from './byte-ring.js';

/** Frames queued at most (a file's commands between two extents are ~10). */
const MAX_RECORDS = 256;
/**
 * Bytes of copied frames at most: LOOKAHEAD extents (~14 KiB compressed on average, 128 KiB at most)
 * and the commands between them. A full ring only means a short pause in the read-ahead.
 */
const RING_SIZE = 512 * 1024;

export type ApplyFn = (command: Command, index: number, offset: number, job?: DecodeJob) => void;

/** Read `frames` (a feed, or any async iterable) and apply each command, in order, decoding zstd extents ahead. */
export async function applyWithDecodeAhead(frames: FrameFeed | AsyncIterable<RawFrame>, ahead: DecodeAhead, apply: ApplyFn): Promise<void> {
  const feed: FrameFeed = typeof frames === 'function' ? frames : async (onFrame) => {
    for await (const f of frames) onFrame(f);
  };
  const ring = new ByteRing(RING_SIZE);
  // The queue: a circular list of MAX_RECORDS entries, one field per array.
  const at = new Int32Array(MAX_RECORDS); // frame position in the ring
  const len = new Int32Array(MAX_RECORDS);
  const cmdNum = new Int32Array(MAX_RECORDS);
  const runsToEnd = new Uint8Array(MAX_RECORDS);
  const index = new Float64Array(MAX_RECORDS);
  const offset = new Float64Array(MAX_RECORDS);
  const mark = new Int32Array(MAX_RECORDS); // the ring's mark after the frame
  const decoded: (EncodedWriteCommand | undefined)[] = new Array(MAX_RECORDS).fill(undefined);
  const jobs: (DecodeJob | undefined)[] = new Array(MAX_RECORDS).fill(undefined);
  let head = 0;
  let count = 0;
  const decodeQueued = (i: number): Command =>
    decodeCommand(ring.buf, at[i]!, len[i]!, cmdNum[i]!, runsToEnd[i] === 1, index[i]!, offset[i]!);

  const applyHead = (): void => {
    const i = head;
    head = (head + 1) % MAX_RECORDS;
    count--;
    const job = jobs[i];
    const command = decoded[i] ?? decodeQueued(i);
    decoded[i] = jobs[i] = undefined;
    apply(command, index[i]!, offset[i]!, job);
    ring.release(mark[i]!, count === 0);
  };

  /** Queue the frame (copied); false when the ring has no room. */
  const enqueue = (f: RawFrame): boolean => {
    const size = COMMAND_HEADER_SIZE + f.len;
    const pos = ring.alloc(size);
    if (pos < 0) return false;
    f.buf.copy(ring.buf, pos, f.frame, f.frame + size);
    const i = (head + count) % MAX_RECORDS;
    count++;
    at[i] = pos; len[i] = f.len; cmdNum[i] = f.cmdNum; runsToEnd[i] = f.dataRunsToEnd ? 1 : 0;
    index[i] = f.index; offset[i] = f.at; mark[i] = ring.mark;
    if (f.cmdNum === Cmd.ENCODED_WRITE) submit(i);
    return true;
  };

  /** Decode the queued ENCODED_WRITE and start decoding its payload (left to the apply if odd). */
  const submit = (i: number): void => {
    let cmd: Command;
    try {
      cmd = decodeQueued(i);
    } catch {
      return; // decoded again, and reported, when its turn comes
    }
    const job = ahead.submit(cmd as EncodedWriteCommand);
    decoded[i] = cmd as EncodedWriteCommand;
    jobs[i] = job;
  };

  /** One frame from the feed: applied at once when nothing waits before it, else queued behind. */
  const onFrame = (f: RawFrame): void => {
    if (count === 0 && f.cmdNum !== Cmd.ENCODED_WRITE) {
      // Nothing ahead of it and nothing to decode: apply it from the reader's buffer, no copy.
      apply(decodeFrame(f), f.index, f.at);
      return;
    }
    if (!enqueue(f)) {
      // The ring is full: apply everything queued. A frame larger than the whole ring is applied
      // from the reader's buffer (its extent decoded inline).
      while (count > 0) applyHead();
      if (!enqueue(f)) {
        apply(decodeFrame(f), f.index, f.at);
        return;
      }
    }
    // Keep frames back only while an extent they precede is decoding.
    while (count > 0 && (ahead.full || count >= MAX_RECORDS || ahead.pending === 0)) applyHead();
  };

  /** Whether the error came from applying a command (else from reading the stream). */
  let applyFailed = false;
  try {
    await feed((f) => {
      try {
        onFrame(f);
      } catch (e) {
        applyFailed = true;
        throw e;
      }
    });
  } catch (error) {
    // A read error comes after the frames read before it are applied (an apply error first, if one fails).
    if (!applyFailed) while (count > 0) applyHead();
    throw error;
  }
  while (count > 0) applyHead();
}
