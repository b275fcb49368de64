/*
 * Prints the kernel ABI numbers btrfs-ts uses, from the system's own <linux/...> headers, one
 * `NAME VALUE` line each: ioctl request numbers and flags by their C macro name, struct sizes as
 * `struct.size`, field offsets as `struct.field`. tests/sys-abi.test.ts compiles this, runs it and
 * compares every line with src/sys/constants.ts and the `...Layout` tables exported by the src/sys modules.
 * A header that is missing prints `MISSING <header>` instead of its lines.
 * Build: cc -o abi-check native/abi-check.c
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <fcntl.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <stddef.h>
#include <linux/btrfs.h>
#include <linux/btrfs_tree.h>
#include <linux/fs.h>
#if __has_include(<linux/fsverity.h>)
#include <linux/fsverity.h>
#define HAVE_FSVERITY 1
#endif
#if __has_include(<linux/openat2.h>)
#include <linux/openat2.h>
#define HAVE_OPENAT2 1
#endif
#if __has_include(<linux/falloc.h>)
#include <linux/falloc.h>
#define HAVE_FALLOC 1
#endif

#define NUM(name) printf("%s %llu\n", #name, (unsigned long long)(name))
#define SNUM(name) printf("%s %lld\n", #name, (long long)(name))
#define SIZE(s) printf("%s.size %zu\n", #s, sizeof(struct s))
#define OFF(s, f) printf("%s.%s %zu\n", #s, #f, offsetof(struct s, f))

int main(void) {
  /* ioctl request numbers */
  NUM(BTRFS_IOC_SUBVOL_CREATE);
  NUM(BTRFS_IOC_SNAP_CREATE_V2);
  NUM(BTRFS_IOC_SNAP_DESTROY);
  NUM(BTRFS_IOC_SNAP_DESTROY_V2);
  NUM(BTRFS_IOC_SUBVOL_GETFLAGS);
  NUM(BTRFS_IOC_SUBVOL_SETFLAGS);
  NUM(BTRFS_IOC_SET_RECEIVED_SUBVOL);
  NUM(BTRFS_IOC_CLONE_RANGE);
  NUM(BTRFS_IOC_TREE_SEARCH);
  NUM(BTRFS_IOC_INO_LOOKUP);
  NUM(BTRFS_IOC_SEND);
  NUM(BTRFS_IOC_ENCODED_WRITE);
  NUM(BTRFS_IOC_ENCODED_READ);
  NUM(FS_IOC_GETFLAGS);
  NUM(FS_IOC_SETFLAGS);
  NUM(FICLONERANGE);

  /* open/at flags and syscall numbers (FsConst in src/sys/fs.ts) */
  NUM(O_RDONLY); NUM(O_WRONLY); NUM(O_RDWR); NUM(O_CREAT); NUM(O_EXCL); NUM(O_TRUNC);
  NUM(O_DIRECTORY); NUM(O_NOFOLLOW); NUM(O_NOATIME); NUM(O_CLOEXEC); NUM(O_PATH); NUM(O_NONBLOCK);
  SNUM(AT_FDCWD); NUM(AT_SYMLINK_NOFOLLOW); NUM(AT_REMOVEDIR); NUM(AT_EMPTY_PATH);
  NUM(SYS_openat2);

  /* glibc struct stat (StatLayout in src/sys/fs.ts) */
  SIZE(stat);
  OFF(stat, st_ino);
  OFF(stat, st_mode);
  OFF(stat, st_uid);
  OFF(stat, st_gid);
  OFF(stat, st_size);
  OFF(stat, st_blksize);

  /* flags and tree/key ids */
  NUM(BTRFS_SUBVOL_RDONLY);
  NUM(BTRFS_FIRST_FREE_OBJECTID);
  NUM(BTRFS_FS_TREE_OBJECTID);
  NUM(BTRFS_ROOT_TREE_OBJECTID);
  NUM(BTRFS_UUID_TREE_OBJECTID);
  NUM(BTRFS_ROOT_ITEM_KEY);
  NUM(BTRFS_ROOT_BACKREF_KEY);
  NUM(BTRFS_UUID_KEY_SUBVOL);
  NUM(BTRFS_UUID_KEY_RECEIVED_SUBVOL);
  NUM(BTRFS_SEND_FLAG_NO_FILE_DATA);
  NUM(BTRFS_SEND_FLAG_OMIT_STREAM_HEADER);
  NUM(BTRFS_SEND_FLAG_OMIT_END_CMD);
  NUM(BTRFS_SEND_FLAG_VERSION);
  NUM(BTRFS_SEND_FLAG_COMPRESSED);

  /* structs and the fields btrfs-ts reads or writes */
  SIZE(btrfs_ioctl_vol_args);
  OFF(btrfs_ioctl_vol_args, fd);
  OFF(btrfs_ioctl_vol_args, name);
  SIZE(btrfs_ioctl_vol_args_v2);
  OFF(btrfs_ioctl_vol_args_v2, fd);
  OFF(btrfs_ioctl_vol_args_v2, transid);
  OFF(btrfs_ioctl_vol_args_v2, flags);
  OFF(btrfs_ioctl_vol_args_v2, name);
  SIZE(btrfs_ioctl_received_subvol_args);
  OFF(btrfs_ioctl_received_subvol_args, uuid);
  OFF(btrfs_ioctl_received_subvol_args, stransid);
  OFF(btrfs_ioctl_received_subvol_args, rtransid);
  OFF(btrfs_ioctl_received_subvol_args, stime);
  OFF(btrfs_ioctl_received_subvol_args, rtime);
  OFF(btrfs_ioctl_received_subvol_args, flags);
  OFF(btrfs_ioctl_received_subvol_args, reserved);
  SIZE(btrfs_ioctl_clone_range_args);
  OFF(btrfs_ioctl_clone_range_args, src_fd);
  OFF(btrfs_ioctl_clone_range_args, src_offset);
  OFF(btrfs_ioctl_clone_range_args, src_length);
  OFF(btrfs_ioctl_clone_range_args, dest_offset);
  SIZE(btrfs_ioctl_search_key);
  OFF(btrfs_ioctl_search_key, tree_id);
  OFF(btrfs_ioctl_search_key, min_objectid);
  OFF(btrfs_ioctl_search_key, max_objectid);
  OFF(btrfs_ioctl_search_key, min_offset);
  OFF(btrfs_ioctl_search_key, max_offset);
  OFF(btrfs_ioctl_search_key, min_transid);
  OFF(btrfs_ioctl_search_key, max_transid);
  OFF(btrfs_ioctl_search_key, min_type);
  OFF(btrfs_ioctl_search_key, max_type);
  OFF(btrfs_ioctl_search_key, nr_items);
  SIZE(btrfs_ioctl_search_header);
  OFF(btrfs_ioctl_search_header, transid);
  OFF(btrfs_ioctl_search_header, objectid);
  OFF(btrfs_ioctl_search_header, offset);
  OFF(btrfs_ioctl_search_header, type);
  OFF(btrfs_ioctl_search_header, len);
  SIZE(btrfs_ioctl_search_args);
  OFF(btrfs_ioctl_search_args, key);
  OFF(btrfs_ioctl_search_args, buf);
  SIZE(btrfs_ioctl_ino_lookup_args);
  OFF(btrfs_ioctl_ino_lookup_args, treeid);
  OFF(btrfs_ioctl_ino_lookup_args, objectid);
  OFF(btrfs_ioctl_ino_lookup_args, name);
  SIZE(btrfs_ioctl_send_args);
  OFF(btrfs_ioctl_send_args, send_fd);
  OFF(btrfs_ioctl_send_args, clone_sources_count);
  OFF(btrfs_ioctl_send_args, clone_sources);
  OFF(btrfs_ioctl_send_args, parent_root);
  OFF(btrfs_ioctl_send_args, flags);
  OFF(btrfs_ioctl_send_args, version);
  OFF(btrfs_ioctl_send_args, reserved);
  SIZE(btrfs_ioctl_encoded_io_args);
  OFF(btrfs_ioctl_encoded_io_args, iov);
  OFF(btrfs_ioctl_encoded_io_args, iovcnt);
  OFF(btrfs_ioctl_encoded_io_args, offset);
  OFF(btrfs_ioctl_encoded_io_args, flags);
  OFF(btrfs_ioctl_encoded_io_args, len);
  OFF(btrfs_ioctl_encoded_io_args, unencoded_len);
  OFF(btrfs_ioctl_encoded_io_args, unencoded_offset);
  OFF(btrfs_ioctl_encoded_io_args, compression);
  OFF(btrfs_ioctl_encoded_io_args, encryption);
  OFF(btrfs_ioctl_encoded_io_args, reserved);
  SIZE(btrfs_root_item);
  OFF(btrfs_root_item, generation);
  OFF(btrfs_root_item, flags);
  OFF(btrfs_root_item, generation_v2);
  OFF(btrfs_root_item, uuid);
  OFF(btrfs_root_item, parent_uuid);
  OFF(btrfs_root_item, received_uuid);
  OFF(btrfs_root_item, ctransid);
  OFF(btrfs_root_item, otransid);
  OFF(btrfs_root_item, stransid);
  OFF(btrfs_root_item, rtransid);
  OFF(btrfs_root_item, ctime);
  OFF(btrfs_root_item, otime);
  OFF(btrfs_root_item, stime);
  OFF(btrfs_root_item, rtime);
  SIZE(btrfs_root_ref);
  OFF(btrfs_root_ref, dirid);
  OFF(btrfs_root_ref, sequence);
  OFF(btrfs_root_ref, name_len);

#ifdef HAVE_FSVERITY
  NUM(FS_IOC_ENABLE_VERITY);
  SIZE(fsverity_enable_arg);
  OFF(fsverity_enable_arg, version);
  OFF(fsverity_enable_arg, hash_algorithm);
  OFF(fsverity_enable_arg, block_size);
  OFF(fsverity_enable_arg, salt_size);
  OFF(fsverity_enable_arg, salt_ptr);
  OFF(fsverity_enable_arg, sig_size);
  OFF(fsverity_enable_arg, __reserved1);
  OFF(fsverity_enable_arg, sig_ptr);
  OFF(fsverity_enable_arg, __reserved2);
#else
  printf("MISSING <linux/fsverity.h>\n");
#endif
#ifdef HAVE_OPENAT2
  NUM(RESOLVE_NO_XDEV);
  NUM(RESOLVE_NO_MAGICLINKS);
  NUM(RESOLVE_NO_SYMLINKS);
  NUM(RESOLVE_BENEATH);
  NUM(RESOLVE_IN_ROOT);
  NUM(RESOLVE_CACHED);
  SIZE(open_how);
  OFF(open_how, flags);
  OFF(open_how, mode);
  OFF(open_how, resolve);
#else
  printf("MISSING <linux/openat2.h>\n");
#endif
#ifdef HAVE_FALLOC
  NUM(FALLOC_FL_KEEP_SIZE);
  NUM(FALLOC_FL_PUNCH_HOLE);
  NUM(FALLOC_FL_NO_HIDE_STALE);
  NUM(FALLOC_FL_COLLAPSE_RANGE);
  NUM(FALLOC_FL_ZERO_RANGE);
  NUM(FALLOC_FL_INSERT_RANGE);
  NUM(FALLOC_FL_UNSHARE_RANGE);
#else
  printf("MISSING <linux/falloc.h>\n");
#endif
  return 0;
}
