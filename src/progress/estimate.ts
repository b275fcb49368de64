// A total for `send --progress --estimate`: run the same send with --no-data first (the kernel then
// emits UPDATE_EXTENT {path, offset, size} instead of the file data) and add up what the real stream
// would contain: every command as it is, plus, for each UPDATE_EXTENT, the WRITE commands that would
// carry its bytes. Exact for plain full sends up to the per-WRITE framing; an over-estimate when
// extents are sent as CLONE or compressed ENCODED_WRITE (no-data mode reports them uncompressed).
//
// Cost, measured (docs/progress.md): ~0.3 % of the real send for a snapshot of big files, 40-50 % for
// one with tens of thousands of small files (data in page cache). Hence opt-in.
import { PassThrough } from 'node:stream';
import type { StreamRecord } from '../stream/reader.js';
import { readStream } from '../stream/reader.js';
import {
  COMMAND_HEADER_SIZE, MAX_WRITE_V1, MAX_WRITE_V2, STREAM_HEADER_SIZE, TLV_HEADER_SIZE,
} from '../stream/protocol.js';
import { encodeCommand } from '../stream/writer.js';
import type { SendOptions } from '../send/send.js';

/** Bytes of the WRITE commands carrying `size` bytes of one file whose stream path is `pathLength` long. */
export function writeCommandsSize(size: number, pathLength: number, version: number): number {
  const chunk = version >= 2 ? MAX_WRITE_V2 : MAX_WRITE_V1;
  const count = Math.max(1, Math.ceil(size / chunk));
  // header + PATH tlv + FILE_OFFSET tlv (u64) + DATA (v1: a full tlv header; v2+: only its 2-byte type)
  const framing = COMMAND_HEADER_SIZE + TLV_HEADER_SIZE + pathLength + TLV_HEADER_SIZE + 8 + (version >= 2 ? 2 : TLV_HEADER_SIZE);
  return count * framing + size;
}

/** The size the stream would have with data, from the records of the same stream made with --no-data. */
export async function estimateFromNoDataStream(records: AsyncIterable<StreamRecord>): Promise<number> {
  let total = 0;
  let lastStream = -1;
  for await (const record of records) {
    if (record.stream !== lastStream) {
      total += STREAM_HEADER_SIZE;
      lastStream = record.stream;
    }
    const c = record.command;
    if (c.cmd === 'update_extent') total += writeCommandsSize(c.size, c.path.length, record.version);
    else total += encodeCommand(c, record.version).length;
  }
  return total;
}

/**
 * Run `sendFn` (normally `send`) with --no-data into memory and estimate the real stream's size.
 * Messages of that pass are dropped; the real send prints its own.
 */
export async function estimateSendSize(
  options: SendOptions, sendFn: (o: SendOptions) => Promise<void>,
): Promise<number> {
  const pipe = new PassThrough({ highWaterMark: 1 << 20 });
  const sending = sendFn({
    ...options, noData: true, outFile: undefined, outputFd: undefined, output: pipe, verbosity: 0, log: () => {},
  }).then(() => { pipe.end(); }, (e: unknown) => { pipe.destroy(e as Error); throw e; });
  // -e sends one stream over several subvolumes: read to the real end, not the first END.
  const [estimate] = await Promise.all([estimateFromNoDataStream(readStream(pipe)), sending]);
  return estimate;
}
