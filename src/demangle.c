/* SPDX-License-Identifier: Apache-2.0 */
/* Demangling through the C++ ABI runtime (see demangle.h). */
#include "demangle.h"

#include <stddef.h>
#include <stdlib.h>

/* Declared by <cxxabi.h> for C++; the symbol is plain C ABI in libstdc++. */
extern char *__cxa_demangle(const char *mangled, char *out, size_t *len, int *status);

char *tfprof__demangle(const char *name)
{
	if (!name || name[0] != '_' || name[1] != 'Z')
		return NULL;
	int status = 0;
	char *d = __cxa_demangle(name, NULL, NULL, &status);
	if (status != 0) {
		free(d);
		return NULL;
	}
	return d;
}
