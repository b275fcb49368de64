// The FFI layer: libc through koffi, btrfs ioctls, subvolume metadata, *at file system calls.
export * from './libc.js';
export * from './constants.js';
export * from './btrfs-ioctl.js';
export {
  RootItemLayout, RootRefLayout, readRootItem, findSubvolByUuid, findSubvolsByUuid, subvolPathFromTop, subvolPathFromTopRaw,
  type RootItemInfo,
} from './subvolume.js';
export * as fs from './fs.js';
