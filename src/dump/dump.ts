// `receive --dump`: read a stream and print every command, in btrfs-progs' text format or as JSON Lines.
// Unlike btrfs-progs (which stops after the first END), every concatenated stream is dumped unless
// `stopAtFirstEnd` is set.
import type { ByteSource } from '../stream/source.js';
import { StreamError, describeCommand } from '../stream/errors.js';
import { FINISHED, FRAME, FrameParser } from '../stream/frame-parser.js';
import { openByteWindow } from '../stream/byte-reader.js';
import { decodeCommand, scanFrame } from '../stream/decode.js';
import type { Command } from '../stream/commands.js';
import { COMMAND_NAMES } from '../stream/protocol.js';
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
  const parser = new FrameParser({
    stopAtFirstEnd: opts.stopAtFirstEnd === true,
    skipUnknownCommands: opts.skipUnknownCommands === true,
    ...(opts.maxCommandSize !== undefined ? { maxCommandSize: opts.maxCommandSize } : {}),
  });
  const out = new OutBuffer(opts.output ?? 1);
  const json = opts.format === 'json' ? new JsonDumpFormatter(out) : undefined;
  const text = json ? undefined : new ProgsDumpFormatter(out, opts.timeZone === undefined ? {} : { zone: loadZone(opts.timeZone) });
  // Each command is printed before the next is read, so the window may recycle its buffers; nothing
  // else is waited for, so a regular file is read in cache-sized pieces, ahead on a native thread.
  const w = openByteWindow(opts.input, { reuse: true, parserBound: true, exact: opts.stopAtFirstEnd === true });
  let commands = 0;
  let stream = -1;
  // The loop runs synchronously over the bytes at hand: it awaits only to refill the window.
  try {
    for (;;) {
      const step = parser.next(w);
      if (step === FRAME) {
        if (parser.stream !== stream) {
          stream = parser.stream;
          text?.newStream();
        }
        if (text) {
          // The common commands are printed straight from the frame; the others through a Command.
          scanFrame(parser.buf, parser.frame, parser.len, parser.cmdNum, parser.dataRunsToEnd, parser.index, parser.at);
          if (!text.formatFrame(parser.cmdNum, parser.buf)) text.format(decodeFrame(parser));
        } else {
          json!.format({ command: decodeFrame(parser), index: parser.index, offset: parser.at, stream, version: parser.version });
        }
        commands++;
      } else if (step === FINISHED) {
        break;
      } else if (!(await w.ensure(step)) && parser.endOfInput(w)) {
        break;
      }
    }
  } catch (err) {
    out.flush();
    if (err instanceof DumpPathError) {
      const name = COMMAND_NAMES[parser.cmdNum]!;
      throw new StreamError(`${describeCommand(parser.index, name)} at byte ${parser.at}: ${err.message}`,
        parser.at, parser.index, name);
    }
    throw err;
  } finally {
    await w.release();
  }
  out.flush();
  return { commands, streams: stream + 1, outputBytes: out.written };
}

function decodeFrame(p: FrameParser): Command {
  return decodeCommand(p.buf, p.frame, p.len, p.cmdNum, p.dataRunsToEnd, p.index, p.at);
}
