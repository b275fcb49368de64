/* A send stream's frames checked as its bytes go by (frame-check.c). */
#ifndef BTRFS_TS_FRAME_CHECK_H
#define BTRFS_TS_FRAME_CHECK_H
#include <stddef.h>
#include <stdint.h>

enum frame_check_phase {
  FRAME_CHECK_STREAM_HEADER,
  FRAME_CHECK_COMMAND_HEADER,
  FRAME_CHECK_BODY,
  FRAME_CHECK_STOPPED,
};

struct frame_check {
  enum frame_check_phase phase;
  uint8_t header[17];       /* the header being gathered (a stream header is the longer one) */
  size_t have;              /* bytes of it so far */
  uint16_t command;         /* the current frame's command, CRC and body bytes still to come */
  uint32_t stored_crc;
  uint32_t crc;
  uint64_t body_left;
  uint64_t offset;          /* bytes fed so far */
  uint64_t verified_through;/* every frame before this offset was found good */
};

void frame_check_init(struct frame_check *fc);
/* The next n bytes of the stream. */
void frame_check_feed(struct frame_check *fc, const uint8_t *p, size_t n);
#endif
