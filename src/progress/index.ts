export { createProgress, summaryLine } from './reporter.js';
export type { Progress, ProgressOptions, ProgressStream, ProgressSummary } from './reporter.js';
export { progressEnabled } from './options.js';
export type { ProgressChoice } from './options.js';
export { formatBytes, formatDuration, formatRate, displayPath } from './format.js';
export { startProgress, inputSize, countingInput, receiveProgressSummary } from './cli.js';
export type { CliProgress, ProgressSetup } from './cli.js';
