/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target for the profiler server's request decoder (src/server/request.c), which reads
 * bytes from any client that reaches the port: besides memory errors (the sanitizers), it aborts
 * on any accepted request that could make the server write outside what it promises (a name
 * with '/', "." or "..", a relative root, a root with such components, one outside the server
 * root). Built and run by scripts/fuzz server. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "request.h"

static int bad_component(const char *s, size_t n)
{
	return (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.');
}

static void check_name(const char *s, int may_be_empty)
{
	size_t n = strlen(s);
	if ((!n && !may_be_empty) || n > TFPROF__MAX_NAME || strchr(s, '/') || (n && bad_component(s, n)))
		abort();
}

static void check_root(const char *root, const char *server_root)
{
	if (root[0] != '/')
		abort();
	for (const char *p = root; *p;) {
		while (*p == '/')
			p++;
		size_t n = strcspn(p, "/");
		if (bad_component(p, n))
			abort();
		p += n;
	}
	size_t k = server_root ? strlen(server_root) : 0;
	if (server_root && (strncmp(root, server_root, k) || (root[k] && root[k] != '/')))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const roots[] = { NULL, "/tmp" };
	for (size_t i = 0; i < 2; i++) {
		struct tfprof__profile_req r;
		char msg[512];
		int rc = tfprof__decode_profile_request(data, size, roots[i], 600000, 1000000000000000000ull,
							&r, msg, sizeof msg);
		if (rc == TFPROF__RPC_OK) {
			check_name(r.session_id, 0);
			check_name(r.host, 1);
			check_root(r.root, roots[i]);
			if (!r.duration_ms || r.duration_ms > 600000)
				abort();
		} else if (!msg[0]) {
			abort(); /* every refusal says why */
		}
	}
	char sid[TFPROF__MAX_NAME + 1], msg[512];
	tfprof__decode_terminate_request(data, size, sid, sizeof sid, msg, sizeof msg);
	return 0;
}
