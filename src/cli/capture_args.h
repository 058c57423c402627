/* SPDX-License-Identifier: Apache-2.0 */
/* The text tfprof-capture takes apart before it talks to anyone: durations with their units,
 * worker addresses (host:port, an optional grpc:// prefix) and the names the server's answer
 * may give files. Pure functions, so that every rule is easy to test and to change in one place. */
#ifndef TFPROF_CAPTURE_ARGS_H
#define TFPROF_CAPTURE_ARGS_H

#include <stdbool.h>
#include <stdint.h>

/* The longest recording tfprof-capture asks for: a day. Longer is almost surely a typo, and a
 * server keeps the whole window in memory. */
#define CAPTURE_MAX_DURATION_MS (24ull * 3600 * 1000)

/* Parses a duration: a decimal number followed by "ms", "s" or "m", or by nothing (seconds).
 * Stores milliseconds (rounded to the nearest) in *ms. Returns false for anything else:
 * an empty string, a negative or non-finite number, an unknown unit, or more than
 * CAPTURE_MAX_DURATION_MS. Zero is accepted here; callers that need a positive value check. */
bool capture_parse_duration(const char *s, uint64_t *ms);

/* Parses a small non-negative integer no larger than max into *out. Returns false otherwise. */
bool capture_parse_level(const char *s, unsigned max, unsigned *out);

/* Checks one worker address and returns how far past a "grpc://" prefix it starts, or -1 when it
 * is not host:port (port 1..65535, an IPv6 host written in brackets, no spaces, slashes or
 * commas). *why gets a static phrase saying what is wrong. */
int capture_check_address(const char *addr, const char **why);

/* Whether host (the part of an address before the port) names this machine: localhost, a
 * loopback address, the unspecified address, or this machine's host name. A server there writes
 * where this tool can look. */
bool capture_host_is_local(const char *addr);

/* Whether a name (a run name, or a tool name from a ProfileResponse) may become a file name, or
 * part of one, in the run directory without leaving it or hiding: not empty, no '/', no "..",
 * no control characters, and not starting with '.'. */
bool capture_file_name_ok(const char *name);

#endif
