// The one error type the send driver throws for things a user can fix: its message is exactly the text
// btrfs-progs prints after "ERROR: " (the CLI adds the prefix and exits 1).
export class SendError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SendError';
  }
}
