export { createProgress, summaryLine } from './reporter.js';
export type { Progress, ProgressOptions, ProgressStream, ProgressSummary } from './reporter.js';
export { progressEnabled } from './options.js';
export type { ProgressChoice } from './options.js';
export { formatBytes, formatDuration, formatRate, displayPath } from './format.js';
