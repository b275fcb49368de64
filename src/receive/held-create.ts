// MKFILE, MKDIR, SYMLINK, MKNOD, MKFIFO and MKSOCK create a new inode under an orphan name
// (`o<ino>-<gen>-0`), and the sender's next command is almost always the RENAME that gives it its
// name. Holding the create for one command lets the receive make the inode at its final name directly:
// one rename fewer per new inode, which is about a third of the kernel's work in a full receive
// (btrfs_rename in the profile of btrfs-progs, docs/benchmarks.md).
import type { Command, MkdirCommand, MkfileCommand, MknodCommand, RenameCommand, SymlinkCommand } from '../stream/commands.js';

export type CreateCommand = MkfileCommand | MkdirCommand | MknodCommand | SymlinkCommand;

/** A create command kept back until the next record shows whether a RENAME of it follows. */
export interface HeldCreate {
  cmd: CreateCommand;
  /** Its record's index and offset, so that a failure still names it. */
  index: number;
  offset: number;
}

export function isCreate(cmd: Command): cmd is CreateCommand {
  switch (cmd.cmd) {
    case 'mkfile': case 'mkdir': case 'symlink': case 'mknod': case 'mkfifo': case 'mksock': return true;
    default: return false;
  }
}

/** Keep `cmd` past its record: the reader recycles its buffers, so the byte fields are copied. */
export function holdCreate(cmd: CreateCommand, index: number, offset: number): HeldCreate {
  const copy = cmd.cmd === 'symlink'
    ? { ...cmd, path: Buffer.from(cmd.path), target: Buffer.from(cmd.target) }
    : { ...cmd, path: Buffer.from(cmd.path) };
  return { cmd: copy, index, offset };
}

/** Whether `next` renames the held inode away from its orphan name (so the two may become one create). */
export function renamesHeld(held: HeldCreate, next: Command): next is RenameCommand {
  return next.cmd === 'rename' && next.path.equals(held.cmd.path);
}
