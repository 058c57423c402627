/* SPDX-License-Identifier: Apache-2.0 */
/* Encodes a merged profile as a tensorflow.profiler.XSpace protobuf: the lines, events and stats
 * by hand, the rest with protobuf-c, byte for byte what protobuf-c alone would write. */
#ifndef TFPROF_XSPACE_WRITE_H
#define TFPROF_XSPACE_WRITE_H

#include <stddef.h>
#include <stdint.h>

#include "profile.h"

/* Encodes p into a new malloc'd buffer of exactly *len bytes. Returns 0 or -ENOMEM. */
int tfprof__xspace_encode(const struct tfprof__profile *p, uint8_t **out, size_t *len);

/* The same bytes through protobuf-c's own packing of a whole message tree: the reference that
 * tfprof__xspace_encode must match (tests, TFPROF_VERIFY_ENCODER=1). Slower, and needs the
 * tree's memory on top. */
int tfprof__xspace_encode_pbc(const struct tfprof__profile *p, uint8_t **out, size_t *len);

/* Encodes p again with protobuf-c and aborts, saying where, when data differs: session.c calls
 * it for every profile when TFPROF_VERIFY_ENCODER=1, which scripts/test sets for the whole suite. */
void tfprof__xspace_verify(const struct tfprof__profile *p, const uint8_t *data, size_t len);

#endif
