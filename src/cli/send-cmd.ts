// `btrfs-ts send`: write the send stream of one or more read-only subvolumes.
import { Command, Option } from 'commander';
import { isatty } from 'node:tty';
import type { SendOptions } from '../send/send.js';
import { UsageError, collect, increase, parseCount, stderrLog, verbosityOf } from './common.js';

interface SendCliOptions {
  e?: boolean;
  parent: string[];
  cloneSrc: string[];
  i?: string;
  file?: string;
  data: boolean;
  proto?: number;
  compressedData?: boolean;
  verbose: number;
  quiet?: boolean;
  progress?: boolean;
  estimate?: boolean;
}

const DESCRIPTION = `Send the contents of subvolumes as a stream.

Writes a stream of commands that "btrfs receive" or "btrfs-ts receive" can
replay to recreate each SUBVOL on another btrfs filesystem. Every subvolume
involved (sent, parent, clone source) must be read-only, e.g. made with
"btrfs subvolume snapshot -r".

A full send (no -p, no -c) carries the whole subvolume. An incremental send
(-p PARENT) carries only the differences from PARENT, which the receiving side
must already have, unchanged. Clone sources (-c) are subvolumes present on both
sides whose data the stream may reference instead of copying it; with -c but
no -p, a suitable parent is chosen among the clone sources.`;

const AFTER = `
Protocol versions:
  1   the original format, readable by any btrfs-progs (default)
  2   larger writes, fallocate/fileattr commands, and compressed data
      (--compressed-data); needs Linux >= 6.0 and a v2-capable receiver
  3   adds fs-verity; only kernels built with experimental btrfs features
  0   the highest version the running kernel supports

Output and exit status:
  Without -f the stream goes to standard output, which must not be a terminal.
  "At subvol SUBVOL" is printed on standard error for each subvolume (-q
  silences it). Errors are one line "ERROR: ..."; the exit status is 0 on
  success, 1 on any failure, including usage errors.

Examples:
  btrfs-ts send /mnt/snap1 | btrfs receive /backup
  btrfs-ts send -p /mnt/snap1 /mnt/snap2 | ssh host btrfs receive /backup
  btrfs-ts send --compressed-data -f snap2.stream /mnt/snap2
  btrfs-ts send --no-data -p /mnt/snap1 /mnt/snap2 | btrfs-ts receive --dump`;

export function sendCommand(): Command {
  return new Command('send')
    .usage('[options] SUBVOL [SUBVOL...]')
    .summary('send read-only subvolumes as a stream (full or incremental)')
    .description(DESCRIPTION)
    .argument('<SUBVOL...>', 'read-only subvolumes to send, in this order')
    .option('-e', 'with several subvolumes: write them as one stream (one header, one END after the last) instead of one complete stream each')
    .option('-p, --parent <PARENT>', 'send only the differences from PARENT, a read-only subvolume the receiver already has', collect, [])
    .option('-c, --clone-src <CLONE_SRC>', 'a read-only subvolume present on both sides whose extents may be shared (repeatable)', collect, [])
    .addOption(new Option('-i <CLONE_SRC>', 'removed long ago; use -c').hideHelp())
    .option('-f, --file <OUTFILE>', 'write the stream to OUTFILE (created or truncated) instead of standard output')
    .option('--no-data', 'send metadata only (NO_FILE_DATA mode): writes become "update_extent" records; the stream cannot rebuild files but shows what changed')
    .addOption(new Option('--proto <N>', 'protocol version: 1, 2, 3, or 0 for the highest the kernel supports; default 1, or 2 with --compressed-data')
      .argParser(parseCount))
    .option('--compressed-data', 'send compressed extents as they are on disk, without decompressing (protocol 2 or later; implies --proto 2 when --proto is not given)')
    .option('-v, --verbose', 'more messages; repeat for more', increase, 0)
    .option('-q, --quiet', 'print nothing except errors')
    .option('--progress', 'show a progress line on stderr: bytes sent, rate, elapsed time (default: only when stderr is a terminal)')
    .option('--no-progress', 'do not show the progress line (-q also hides it)')
    .option('--estimate', 'with the progress line: first run a metadata-only (--no-data) send to estimate the total, for a percentage and ETA; costs up to half the send time on trees of many small files')
    .addHelpText('after', AFTER)
    .action(async (subvols: string[], opts: SendCliOptions) => {
      await runSend(subvols, opts);
    });
}

async function runSend(subvolumes: string[], opts: SendCliOptions): Promise<void> {
  // As progs: a too-high --proto goes to the kernel (which answers EPROTO), and send() itself refuses
  // --compressed-data with --proto 1 in progs' words; only what progs refuses before parsing is here.
  if (opts.i !== undefined) throw new UsageError('option -i was removed, use -c instead');
  if (opts.parent.length > 1) throw new UsageError('you cannot have more than one parent (-p)');
  if (opts.file === undefined && isatty(1)) {
    throw new UsageError('not dumping send stream into a terminal, redirect it into a file');
  }
  const options: SendOptions = {
    subvolumes,
    cloneSources: opts.cloneSrc,
    noData: !opts.data,
    compressedData: opts.compressedData === true,
    omitEnd: opts.e === true,
    verbosity: verbosityOf(opts),
    log: stderrLog,
  };
  if (opts.parent.length === 1) options.parent = opts.parent[0];
  if (opts.file !== undefined) options.outFile = opts.file;
  else options.outputFd = 1;
  if (opts.proto !== undefined) options.proto = opts.proto;
  const { send } = await import('../send/send.js'); // loaded on use: keeps other commands' start-up fast
  const { startProgress } = await import('../progress/cli.js');
  const { estimateSendSize } = await import('../progress/estimate.js');
  const progress = startProgress({ progress: opts.progress, quiet: opts.quiet, verb: 'sent', log: stderrLog });
  if (progress.enabled && opts.estimate) progress.progress.setTotal(await estimateSendSize(options, send), true);
  options.log = progress.log;
  options.onProgress = progress.onProgress;
  await progress.run(() => send(options));
  progress.finish({});
}
