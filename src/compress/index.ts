// Decoders for btrfs compressed extents (zstd, zlib, LZO in the btrfs container).
export { CorruptDataError } from './errors.js';
export { lzo1xDecompress, lzo1xWorstCompressedSize } from './lzo1x.js';
export { decodeBtrfsLzo, lzoSectorSize } from './btrfs-lzo.js';
export { decodeZstd, zstdFrameSize } from './zstd.js';
export { decodeZlib } from './zlib.js';
export {
  MAX_UNENCODED_LEN, EncodedExtentError, compressionName, decodeExtent, decodeSlice, checkSlice,
} from './decode-extent.js';
export type { EncodedExtent, EncodedSlice } from './decode-extent.js';
