// `receive --dump`: read a stream and print every command, in btrfs-progs' text format or as JSON Lines.
// Unlike btrfs-progs (which stops after the first END), every concatenated stream is dumped unless
// `stopAtFirstEnd` is set.
import { readStream, type ReaderOptions, type StreamRecord } from '../stream/reader.js';
import type { ByteSource } from '../stream/source.js';
import { StreamError, describeCommand } from '../stream/errors.js';
import { OutBuffer } from './out-buffer.js';
import { ProgsDumpFormatter, DumpPathError } from './progs-dump.js';
import { JsonDumpFormatter } from './json.js';
import { loadZone } from './localtime.js';

export interface DumpOptions {
  input: ByteSource;
  /** 'progs' (default): `btrfs receive --dump` text; 'json': one JSON object per line. */
  format?: 'progs' | 'json';
  /** Where the dump goes: a file descriptor (default 1) or a function receiving chunks. */
  output?: number | ((chunk: Buffer) => void);
  /** Stop after the first END (progs' behaviour; `-e`). */
  stopAtFirstEnd?: boolean;
  /** Skip unknown command numbers instead of failing. */
  skipUnknownCommands?: boolean;
  maxCommandSize?: number;
  /** Time zone for the text format (a TZ value); default: the process' TZ, like progs. */
  timeZone?: string;
}

export interface DumpSummary {
  /** Commands dumped (END included). */
  commands: number;
  /** Streams seen. */
  streams: number;
  /** Bytes of dump output. */
  outputBytes: number;
}

/** Dump a stream. On bad input, what was dumped so far is written out, then a StreamError is thrown. */
export async function dumpStream(opts: DumpOptions): Promise<DumpSummary> {
  const out = new OutBuffer(opts.output ?? 1);
  const json = opts.format === 'json' ? new JsonDumpFormatter(out) : undefined;
  const text = json ? undefined : new ProgsDumpFormatter(out, opts.timeZone === undefined ? {} : { zone: loadZone(opts.timeZone) });
  // Each record is formatted before the next is read, so the reader may recycle its buffers.
  const readerOpts: ReaderOptions = { reuseBuffers: true };
  if (opts.stopAtFirstEnd) readerOpts.stopAtFirstEnd = true;
  if (opts.skipUnknownCommands) readerOpts.skipUnknownCommands = true;
  if (opts.maxCommandSize !== undefined) readerOpts.maxCommandSize = opts.maxCommandSize;
  let commands = 0;
  let stream = -1;
  let last: StreamRecord | undefined;
  try {
    for await (const rec of readStream(opts.input, readerOpts)) {
      last = rec;
      if (rec.stream !== stream) {
        stream = rec.stream;
        text?.newStream();
      }
      if (json) json.format(rec);
      else text!.format(rec.command);
      commands++;
    }
  } catch (err) {
    out.flush();
    if (err instanceof DumpPathError && last) {
      throw new StreamError(`${describeCommand(last.index, last.command.cmd)} at byte ${last.offset}: ${err.message}`,
        last.offset, last.index, last.command.cmd);
    }
    throw err;
  }
  out.flush();
  return { commands, streams: stream + 1, outputBytes: out.written };
}
