/* SPDX-License-Identifier: Apache-2.0 */
/* Environment access for the library (see env.h). Some programs define their own getenv and
 * setenv: bash does, and keeps its variables in tables of its own. tfprof is loaded into such
 * programs by tfprof-start, and its constructor runs before their main: calling bash's setenv
 * there creates bash's variable tables before bash does, after which bash's getenv looks only in
 * them and finds nothing: TFPROF_LOGDIR and every other setting were lost, and tfprof had changed
 * the program's state before its main ran. So the library never calls the program's versions:
 * it reads the C library's environ directly and sets variables through the C library's
 * setenv. */
#include "env.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>

extern char **environ;

const char *tfprof__getenv(const char *name)
{
	if (!name || !*name || getauxval(AT_SECURE))
		return NULL;
	size_t n = strlen(name);
	for (char **e = environ; e && *e; e++)
		if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
			return *e + n + 1;
	return NULL;
}

int tfprof__setenv(const char *name, const char *value)
{
	/* The next setenv after this object is the C library's, also where the program defines
	 * one (the program comes first in the search order) and where tfprof is linked into the
	 * program itself. A handful of calls at load, so it is looked up each time. */
	int (*libc_setenv)(const char *, const char *, int) = dlsym(RTLD_NEXT, "setenv");
	if (!libc_setenv)
		libc_setenv = setenv;
	return libc_setenv(name, value, 1) ? -errno : 0;
}
