// btrfs-ts as a library: the stream codec, send, receive and dump.
//
//   import { readStream, send, receive, dumpStream } from 'btrfs-ts';
export * from './stream/index.js';
export { receive } from './receive/receive.js';
export type { ReceiveOptions, ReceiveSummary } from './receive/receive.js';
export { send } from './send/send.js';
export type { SendOptions } from './send/send.js';
export { dumpStream } from './dump/dump.js';
export type { DumpOptions, DumpSummary } from './dump/dump.js';
export { ProgsDumpFormatter, formatUuid } from './dump/progs-dump.js';
export { JsonDumpFormatter, recordToJson, jsonBytes, bytesFromJson } from './dump/json.js';
export type { JsonBytes } from './dump/json.js';
export { OutBuffer } from './dump/out-buffer.js';
export { formatLocalTime, loadZone } from './dump/localtime.js';
// Errors, progress line and send-size estimate (friendliness helper; additive).
export { ReceiveError } from './receive/errors.js';
export { SendError } from './send/errors.js';
export { createProgress, progressEnabled, summaryLine, formatBytes, formatDuration, formatRate } from './progress/index.js';
export type { Progress, ProgressOptions, ProgressStream, ProgressSummary, ProgressChoice } from './progress/index.js';
export { estimateSendSize } from './progress/estimate.js';
