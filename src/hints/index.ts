// Helpful endings for the errors users hit most. Each function returns the sentence to append to the
// plain error (after "; "), saying what probably happened and what to do. The plain part stays
// first, so a message still starts the way btrfs-progs' does.
//
// Pure functions: the engines call them where they know the context, and tests can check the words.

/** Join an error and its hint: "cannot find parent subvolume X; looked ...". */
export function withHint(message: string, hint: string | undefined): string {
  return hint === undefined || message.includes(hint) ? message : `${message}; ${hint}`;
}

/** The parent of an incremental stream was not found (receive, SNAPSHOT command). */
export function missingParentHint(parentCtransid: number, mountPath: string): string {
  return `looked for it (ctransid ${parentCtransid}) among the received UUIDs and the subvolume UUIDs of the whole ` +
    `filesystem mounted at ${mountPath}; receive that parent snapshot here first, or make the stream with a -p ` +
    'parent this filesystem already has';
}

/** The input had no bytes at all. */
export const EMPTY_STREAM_HINT =
  'the sending side wrote nothing, so it probably failed: look at its error message (e.g. btrfs send\'s)';

/** The input stopped in the middle of a stream. */
export const TRUNCATED_STREAM_HINT =
  'the stream is cut short, so the sending side (or the pipe, ssh or file copy in between) probably failed: ' +
  'look at its error message';

/**
 * For stream errors of the reader: empty input and truncation get a hint, other problems (bad CRC,
 * bad magic) do not. Recognised by the reader's message wording, which its tests pin.
 */
export function streamErrorHint(message: string): string | undefined {
  if (message.startsWith('empty stream')) return EMPTY_STREAM_HINT;
  if (message.startsWith('unexpected end of stream')) return TRUNCATED_STREAM_HINT;
  return undefined;
}

const ORPHAN_NAME = /^o\d+-\d+-\d+$/;

/** The first path component that looks like a sender's temporary orphan name (o<ino>-<gen>-<n>). */
export function orphanComponent(...paths: (Buffer | string | undefined)[]): string | undefined {
  for (const path of paths) {
    if (path === undefined) continue;
    const text = typeof path === 'string' ? path : path.toString('latin1');
    for (const part of text.split('/')) if (ORPHAN_NAME.test(part)) return part;
  }
  return undefined;
}

/** ENOENT on a path through an orphan name: the receiver's parent is not what the sender assumed. */
export function orphanEnoentHint(orphan: string): string {
  return `${orphan} is a temporary name the sender gives inodes it creates or moves, and it is missing here; ` +
    'that usually means the stream was made with a -p parent other than the one received here ' +
    '(or the parent was changed after it was received), or a bug in the sending kernel';
}

/** EPERM/EACCES while not root. `what`: 'receive' or 'send'. */
export function notRootHint(what: 'receive' | 'send'): string {
  return what === 'send'
    ? 'send needs root (CAP_SYS_ADMIN): run it as root, e.g. with sudo'
    : 'receive needs root (it creates subvolumes, device nodes and owners): run it as root, e.g. with sudo';
}

/** Whether the current process is root (hints about permissions are only given to non-root users). */
export function isRoot(): boolean {
  return process.geteuid?.() === 0;
}

/** The destination (receive) or subvolume (send) is not on btrfs. */
export function notBtrfsHint(what: 'receive' | 'send'): string {
  return what === 'send'
    ? 'send works only on subvolumes of a mounted btrfs: give the path of a read-only snapshot there'
    : 'receive into a directory of a mounted btrfs filesystem';
}

/** Send of a subvolume (or -p/-c parent) that is not read-only. */
export function readWriteHint(path: string): string {
  return `send needs a read-only snapshot: make one with "btrfs subvolume snapshot -r ${path} ${path}.ro" ` +
    'and send that';
}

const ENOENT = 2;
const EPERM = 1;
const EACCES = 13;

/** errno of a SysError (src/sys/libc.ts) or a Node fs error, when there is one. */
export function errnoOf(error: unknown): number | undefined {
  const e = error as { errno?: unknown } | undefined;
  if (e === null || typeof e !== 'object' || typeof e.errno !== 'number') return undefined;
  return Math.abs(e.errno);
}

/** A permission error while not root: say to run as root. */
export function permissionHint(error: unknown, what: 'receive' | 'send'): string | undefined {
  const errno = errnoOf(error);
  return (errno === EPERM || errno === EACCES) && !isRoot() ? notRootHint(what) : undefined;
}

/** The hint for a receive command that failed with `error` (orphan-name ENOENT, or permissions). */
export function receiveCommandHint(command: object, error: unknown): string | undefined {
  if (errnoOf(error) === ENOENT) {
    const cmd = command as { path?: unknown; to?: unknown; target?: unknown };
    const paths = [cmd.path, cmd.to, cmd.target].filter((p): p is Buffer => Buffer.isBuffer(p));
    const orphan = orphanComponent(...paths);
    if (orphan !== undefined) return orphanEnoentHint(orphan);
  }
  return permissionHint(error, 'receive');
}
