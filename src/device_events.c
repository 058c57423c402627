/* SPDX-License-Identifier: Apache-2.0 */
/* Frees what GPU tracing handed to the merger (see device_events.h); shared by the CUPTI build
 * and the build without CUPTI headers. */
#include "device_events.h"

#include <stdlib.h>
#include <string.h>

#include "profile.h"

void tfprof__gpu_result_free(struct tfprof__gpu_result *r)
{
	if (!r)
		return;
	while (r->events) {
		struct tfprof__dev_chunk *c = r->events;
		r->events = c->next;
		free(c);
	}
	for (size_t i = 0; i < r->nnames; i++)
		free(r->names[i]);
	free(r->names);
	free(r->devices);
	tfprof__msgs_free(r->errors, r->nerrors);
	tfprof__msgs_free(r->warnings, r->nwarnings);
	memset(r, 0, sizeof *r);
}
