// Shared steps of the receive tests: send with `btrfs send`, receive with both `btrfs receive` and our
// receive(), compare.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { run } from './btrfs.js';
import { receive, type ReceiveOptions, type ReceiveSummary } from '../../src/receive/receive.js';

/** `btrfs send` of `snap` (with optional parent) to `file`. */
export function btrfsSend(snap: string, file: string, opts: { proto?: number; parent?: string; compressed?: boolean; noData?: boolean; extra?: string[] } = {}): void {
  const args = ['send', '-q', '--proto', String(opts.proto ?? 1), '-f', file];
  if (opts.compressed) args.push('--compressed-data');
  if (opts.noData) args.push('--no-data');
  if (opts.parent) args.push('-p', opts.parent);
  args.push(...(opts.extra ?? []));
  args.push(snap);
  run('btrfs', args);
}

/** `btrfs receive -f file dest` (dest created). */
export function btrfsReceive(file: string, dest: string, extra: string[] = []): void {
  mkdirSync(dest, { recursive: true });
  run('btrfs', ['receive', ...extra, '-f', file, dest]);
}

/** Our receive() with quiet defaults, messages collected. */
export async function ourReceive(file: string | ReceiveOptions['input'], dest: string, opts: Partial<ReceiveOptions> = {}): Promise<{ summary: ReceiveSummary; log: string[] }> {
  mkdirSync(dest, { recursive: true });
  const log: string[] = [];
  const summary = await receive({
    dest, input: file, verbosity: 1, stopAtEnd: false, chroot: false, maxErrors: 1, forceDecompress: false,
    log: (l) => log.push(l), ...opts,
  });
  return { summary, log };
}

/** Run our receive and return the error it rejects with (fails the test if it succeeds). */
export async function ourReceiveFailure(input: ReceiveOptions['input'], dest: string, opts: Partial<ReceiveOptions> = {}): Promise<{ error: Error; log: string[] }> {
  const log: string[] = [];
  try {
    await ourReceive(input, dest, { ...opts, log: (l) => log.push(l) });
  } catch (error) {
    return { error: error as Error, log };
  }
  throw new Error(`receive into ${dest} succeeded but was expected to fail; log:\n${log.join('\n')}`);
}

export const sub = (...parts: string[]): string => join(...parts);
