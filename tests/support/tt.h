/* SPDX-License-Identifier: Apache-2.0 */
/* One include for the tests: cmocka, the public API, the read-back helpers and scratch dirs. */
#ifndef TFPROF_TEST_TT_H
#define TFPROF_TEST_TT_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "test_util.h"
#include "tfprof/tfprof.h"
#include "xspace_read.h"

/* A per-test scratch logdir: tt_setup() makes a new empty one (named after the test program),
 * tt_teardown() stops a session the test left running and removes it. Use them as cmocka
 * setup/teardown functions. */
extern char *tt_logdir;
int tt_setup(void **state);
int tt_teardown(void **state);

/* Runs tfprof_stop(), asserts success and reads the profile back. */
XSpace *tt_stop_and_read(void);
/* The warning that contains needle, or NULL. */
const char *tt_find_msg(char *const *msgs, size_t n, const char *needle);
/* The first number in the warning that contains needle, or -1 when there is none. */
long long tt_warning_count(const XSpace *s, const char *needle);
/* The host plane's line for the calling thread. */
const XLine *tt_my_line(const XSpace *s);
const XPlane *tt_host(const XSpace *s);

#endif
