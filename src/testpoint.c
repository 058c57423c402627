/* SPDX-License-Identifier: Apache-2.0 */
/* The hook behind TFPROF_TESTPOINT(), compiled only into the test-only copy of the library
 * (tfprof_testpoint_static), never into libtfprof. */
#include "testpoint.h"

#include <stddef.h>

static tfprof__testpoint_hook hook;

void tfprof__testpoint_set_hook(tfprof__testpoint_hook h)
{
	__atomic_store_n(&hook, h, __ATOMIC_RELEASE);
}

void tfprof__testpoint(const char *name)
{
	tfprof__testpoint_hook h = __atomic_load_n(&hook, __ATOMIC_ACQUIRE);
	if (h)
		h(name);
}
