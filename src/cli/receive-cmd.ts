// `btrfs-ts receive`: apply a send stream under DEST, or print it with --dump (no filesystem needed).
import type { Command } from 'commander';
import type { ReceiveOptions } from '../receive/receive.js';
import type { ByteSource } from '../stream/source.js';
import { openSync } from 'node:fs';
import { UsageError, commander, describeFsError, increase, parseCount, stderrLog, verbosityOf } from './common.js';

/** The options --dump uses (main.ts parses the common --dump command lines itself, without commander). */
export interface DumpCliOptions {
  file?: string;
  e?: boolean;
  json?: boolean;
  ignoreUnknown?: boolean;
  progress?: boolean;
  quiet?: boolean;
}

interface ReceiveCliOptions {
  verbose: number;
  quiet?: boolean;
  file?: string;
  e?: boolean;
  chroot?: boolean;
  maxErrors: number;
  m?: string;
  forceDecompress?: boolean;
  dump?: boolean;
  json?: boolean;
  ignoreUnknown?: boolean;
  deleteOnFailure?: boolean;
  verifyCompressed?: boolean;
  progress?: boolean;
}

const DESCRIPTION = `Receive subvolumes from a send stream.

Reads a stream made by "btrfs send" or "btrfs-ts send" (protocol v1, v2 or v3)
and recreates the subvolumes it describes under DEST, a directory on a mounted
btrfs filesystem. An incremental stream needs its parent (and any clone
sources) to have been received there before. Each received subvolume is set
read-only once complete. The receive fails if a subvolume of the same name
already exists in DEST, or if the parent has been modified since it was
received.

With --dump, nothing is written anywhere: the stream is validated and each
command is printed on one line, in the format of "btrfs receive --dump"
(or as JSON Lines with --json). DEST is then not allowed.`;

const AFTER = `
Input:
  Without -f the stream is read from standard input. A file may hold several
  streams one after the other (e.g. "btrfs send A B"); all are received, and,
  unlike btrfs-progs, --dump prints all of them (use -e to stop after the first).

Errors and exit status:
  Every problem is reported as one line "ERROR: ..." on standard error; a
  damaged stream is named with the command number, its name and the byte
  offset. Exit status is 0 on success and 1 on any failure, including usage
  errors. -E counts failing commands; running out of input (a truncated
  stream) is always fatal, whatever -E says.

Differences from btrfs-progs:
  Unknown command numbers (from a newer sender) stop the receive with an
  error instead of being skipped silently; --ignore-unknown skips them.
  Strings are checked more strictly (no NUL bytes, attribute sizes, the
  attributes each command needs), and one command may not exceed 16 MiB.

Caveats:
  Until a subvolume is set read-only at its end, anyone with write access to
  DEST can change it, and the copy is then not exact: keep DEST private while
  receiving. A crafted incremental stream may clone data from other
  subvolumes of the destination filesystem: receive only streams from
  sources you trust, and protect them in transit.

Examples:
  btrfs send /mnt/snap | btrfs-ts receive /backup
  btrfs-ts receive -f snap.stream /backup
  ssh host btrfs send -p /mnt/snap1 /mnt/snap2 | btrfs-ts receive /backup
  btrfs-ts receive --dump -f snap.stream
  btrfs-ts receive --dump --json < snap.stream | jq -c 'select(.cmd=="rename")'`;

export function receiveCommand(): Command {
  const { Command, Option } = commander();
  return new Command('receive')
    .usage('[options] DEST\n       btrfs-ts receive --dump [--json] [options]')
    .summary('receive subvolumes from a stream, or print it (--dump)')
    .description(DESCRIPTION)
    .argument('[DEST]', 'directory on a mounted btrfs where the subvolumes are created')
    .option('-v, --verbose', 'more messages; repeat for more (-vv: one line per command)', increase, 0)
    .option('-q, --quiet', 'print nothing except errors')
    .option('-f, --file <FILE>', 'read the stream from FILE instead of standard input')
    .option('-e', 'stop after the first END marker: the rest of the input is not read (lets a stream be embedded in other data)')
    .option('-C, --chroot', 'confine the receive to DEST with chroot(2) (needs root)')
    .addOption(new Option('-E, --max-errors <NERR>', 'stop when NERR commands have failed; 0 means never stop for failing commands')
      .argParser(parseCount).default(1))
    .option('-m <ROOTMOUNT>', 'mount point of the top level of the destination filesystem, for when /proc/self/mounts cannot be read (e.g. in a chroot)')
    .option('--force-decompress', 'decompress compressed data (streams from "send --compressed-data") and write it normally, instead of passing it to the filesystem with encoded I/O')
    .option('--dump', 'print the stream\'s commands, one line each (format of "btrfs receive --dump"); changes nothing, takes no DEST')
    .option('--json', 'with --dump: print one JSON object per command (JSON Lines) instead; see docs/usage.md for the schema')
    .option('--delete-on-failure', 'delete a partially received subvolume when the receive fails (btrfs-progs leaves it)')
    .option('--verify-compressed', 'decode each compressed extent before handing it to the filesystem, which does not check it, so a corrupt payload is an error instead of unreadable data (the default; costs 20-30 % of the receive time of a zstd stream)')
    .option('--no-verify-compressed', 'hand compressed extents to the filesystem unchecked (faster; a corrupt payload then gives EIO when the file is read)')
    .option('--ignore-unknown', 'skip commands with unknown numbers instead of failing (data they carry is lost)')
    .option('--progress', 'show a progress line on stderr: bytes, rate, elapsed time, current path, and with -f FILE the percentage and ETA (default: only when stderr is a terminal, and never with --dump)')
    .option('--no-progress', 'do not show the progress line (-q also hides it)')
    .addHelpText('after', AFTER)
    .action(async (dest: string | undefined, opts: ReceiveCliOptions) => {
      await runReceive(dest, opts);
    });
}

/** Standard input, or FILE opened here so a missing file is reported as progs does. */
function inputOf(file: string | undefined): ByteSource {
  if (file === undefined || file === '-') return 0;
  try {
    return openSync(file, 'r');
  } catch (err) {
    throw new Error(`cannot open ${file}: ${describeFsError(err)}`);
  }
}

async function runReceive(dest: string | undefined, opts: ReceiveCliOptions): Promise<void> {
  if (opts.json && !opts.dump) throw new UsageError('receive: --json works only with --dump');
  if (opts.dump) {
    if (dest !== undefined) throw new UsageError('receive: --dump takes no DEST argument');
    await runDump(opts);
    return;
  }
  if (dest === undefined) throw new UsageError('receive: missing DEST (the directory to receive into); only --dump works without one');
  const options: ReceiveOptions = {
    dest,
    input: inputOf(opts.file),
    verbosity: verbosityOf(opts),
    stopAtEnd: opts.e === true,
    chroot: opts.chroot === true,
    maxErrors: opts.maxErrors,
    forceDecompress: opts.forceDecompress === true,
    log: stderrLog,
  };
  if (opts.m !== undefined) options.rootMount = opts.m;
  if (opts.deleteOnFailure) options.deleteOnFailure = true;
  options.verifyEncoded = opts.verifyCompressed !== false;
  if (opts.ignoreUnknown) (options as ReceiveOptions & { skipUnknownCommands?: boolean }).skipUnknownCommands = true;
  // Loaded only here: the receive engine pulls in FFI (koffi), which --dump does not need.
  const { receive } = await import('../receive/receive.js');
  const { inputSize, receiveProgressSummary, startProgress } = await import('../progress/cli.js');
  const progress = startProgress({ progress: opts.progress, quiet: opts.quiet, total: inputSize(opts.file), log: stderrLog });
  options.log = progress.log;
  options.onProgress = progress.onProgress;
  const summary = await progress.run(() => receive(options));
  progress.finish(receiveProgressSummary(summary));
}

/** `receive --dump`: print the stream. */
export async function runDump(opts: DumpCliOptions): Promise<void> {
  const { dumpStream } = await import('../dump/dump.js');
  const dumpOptions = (input: ByteSource): Parameters<typeof dumpStream>[0] => ({
    input,
    format: opts.json ? 'json' : 'progs',
    stopAtFirstEnd: opts.e === true,
    skipUnknownCommands: opts.ignoreUnknown === true,
  });
  try {
    if (opts.progress !== true) {
      // --dump shows progress only when asked (its output usually shares the terminal): nothing to load.
      await dumpStream(dumpOptions(inputOf(opts.file)));
      return;
    }
    const { countingInput, inputSize, startProgress } = await import('../progress/cli.js');
    const dumpProgress = startProgress({ progress: true, quiet: opts.quiet, total: inputSize(opts.file), verb: 'read' });
    let input = inputOf(opts.file);
    if (dumpProgress.enabled && typeof input === 'number') input = countingInput(input, (n) => dumpProgress.onProgress(n));
    const summary = await dumpProgress.run(() => dumpStream(dumpOptions(input)));
    dumpProgress.finish({ commands: summary.commands });
  } catch (err) {
    // A failed read (not a bad stream, not a closed stdout) names the input.
    const code = (err as NodeJS.ErrnoException)?.code;
    const { StreamError } = await import('../stream/errors.js');
    if (typeof code === 'string' && code !== 'EPIPE' && !(err instanceof StreamError)) {
      throw new Error(`cannot read ${opts.file ?? 'standard input'}: ${describeFsError(err)}`);
    }
    throw err;
  }
}
