/* Checks the CRC32C of a send stream's command frames as its bytes go by, in order, piece after piece:
 * the read-ahead thread (read-ahead.c) runs it on each piece right after reading it, so that the
 * parser on the main thread can skip the frames already found good (src/stream/frame-parser.ts).
 *
 * It walks the frames exactly as the parser does: a 17-byte stream header, then frames of a 10-byte
 * header (u32 body length, u16 command, u32 CRC32C of the frame with this field as zeros) and the body.
 * It vouches only for a run of good frames from the start: `verified_through` is where the last of them
 * ends. It stops for good at the first frame whose CRC does not match and at END (what follows may be
 * another stream, which the parser handles). Everything after
 * that point the parser checks itself, and it reports every error, so this walker needs no messages.
 * Protocol: ../shared/protocol.md §1 (framing) and §1.5 (the raw CRC32C). */
#include "frame-check.h"
#include <string.h>

uint32_t btrfs_ts_crc32c(uint32_t crc, const uint8_t *buf, size_t len);

#define STREAM_HEADER_SIZE 17
#define COMMAND_HEADER_SIZE 10
#define CMD_END 21

void frame_check_init(struct frame_check *fc) {
  memset(fc, 0, sizeof *fc);
  fc->phase = FRAME_CHECK_STREAM_HEADER;
}

static uint32_t read_u32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* A complete command header is in fc->header: start the body's CRC. */
static void begin_body(struct frame_check *fc) {
  static const uint8_t zeros[4] = { 0, 0, 0, 0 };
  fc->body_left = read_u32(fc->header);
  fc->command = (uint16_t)(fc->header[4] | fc->header[5] << 8);
  fc->stored_crc = read_u32(fc->header + 6);
  fc->crc = btrfs_ts_crc32c(btrfs_ts_crc32c(0, fc->header, 6), zeros, 4);
  fc->phase = FRAME_CHECK_BODY;
}

/* The current frame's body is complete. */
static void end_frame(struct frame_check *fc) {
  if (fc->crc != fc->stored_crc) {
    fc->phase = FRAME_CHECK_STOPPED;
    return;
  }
  fc->verified_through = fc->offset;
  fc->phase = fc->command == CMD_END ? FRAME_CHECK_STOPPED : FRAME_CHECK_COMMAND_HEADER;
  fc->have = 0;
}

void frame_check_feed(struct frame_check *fc, const uint8_t *p, size_t n) {
  while (n > 0 && fc->phase != FRAME_CHECK_STOPPED) {
    if (fc->phase == FRAME_CHECK_BODY) {
      size_t take = n < fc->body_left ? n : (size_t)fc->body_left;
      fc->crc = btrfs_ts_crc32c(fc->crc, p, take);
      fc->body_left -= take;
      fc->offset += take;
      p += take;
      n -= take;
      if (fc->body_left == 0) end_frame(fc);
      continue;
    }
    /* A header, possibly split between pieces: gather it in fc->header. */
    size_t size = fc->phase == FRAME_CHECK_STREAM_HEADER ? STREAM_HEADER_SIZE : COMMAND_HEADER_SIZE;
    size_t take = size - fc->have < n ? size - fc->have : n;
    memcpy(fc->header + fc->have, p, take);
    fc->have += take;
    fc->offset += take;
    p += take;
    n -= take;
    if (fc->have < size) break;
    fc->have = 0;
    if (fc->phase == FRAME_CHECK_STREAM_HEADER) {
      /* The parser checks the magic and version; a first frame starts here either way. */
      fc->verified_through = fc->offset;
      fc->phase = FRAME_CHECK_COMMAND_HEADER;
    } else {
      begin_body(fc);
      if (fc->phase == FRAME_CHECK_BODY && fc->body_left == 0) end_frame(fc);
    }
  }
}
