/* Encodes a merged profile as a tensorflow.profiler.XSpace protobuf (via protobuf-c) and writes
 * it to disk without ever exposing a partial file. */
#ifndef TFPROF_XSPACE_WRITE_H
#define TFPROF_XSPACE_WRITE_H

#include <stddef.h>
#include <stdint.h>

#include "profile.h"

/* Encodes p into a new malloc'd buffer. Returns 0 or -ENOMEM. */
int tfprof__xspace_encode(const struct tfprof__profile *p, uint8_t **out, size_t *len);

#endif
