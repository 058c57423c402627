/* SPDX-License-Identifier: Apache-2.0 */
/* The exec family, interposed by the shared library (tfprof-start preloads it): an activated
 * image writes its profile before exec replaces it, because no exit handler runs then and the
 * events of every image but the last were lost. Only the shared library carries this file: a
 * static copy would clash with libc's definitions. Outside activation every call goes straight
 * to libc's function (one relaxed check of a flag in activate.c).
 *
 * glibc's execvp, execl and the others do not call execve through an interposable symbol, so
 * each member of the family is wrapped; posix_spawn, system and popen make a child process,
 * which is profiled as a process of its own, and are left alone.
 *
 * Limit: writing the profile takes locks and allocates, so an activated program that execs
 * from inside a signal handler (execve is async-signal-safe) can deadlock if the signal
 * interrupted tfprof or malloc holding a lock. Programs that re-exec on a signal usually set a
 * flag in the handler and exec from their main loop, which is safe. */
#include "activate.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <unistd.h>

#define EXEC_API __attribute__((visibility("default")))

/* libc's functions, resolved when the library loads: a vfork() child that execs must not be the
 * first to call dlsym (it runs on its parent's memory, with the parent's other threads live). */
enum { F_EXECVE, F_EXECV, F_EXECVP, F_EXECVPE, F_FEXECVE, F_EXECVEAT, F_COUNT };
static const char *const names[F_COUNT] = { "execve", "execv", "execvp", "execvpe", "fexecve", "execveat" };
static void *real_fns[F_COUNT];

__attribute__((constructor(101))) static void exec_hook_init(void)
{
	for (int i = 0; i < F_COUNT; i++)
		real_fns[i] = dlsym(RTLD_NEXT, names[i]);
}

/* Defines the wrapper `name`: the profile is written first, and when the exec fails (it
 * returns) the session starts again, with errno as the exec left it. */
#define EXEC_WRAPPER(name, which, params, ...)                                            \
	EXEC_API int name params                                                          \
	{                                                                                 \
		int (*f) params = (int (*) params)real_fns[which];                        \
		if (!f) /* an exec from a constructor that ran before ours */            \
			f = (int (*) params)(real_fns[which] = dlsym(RTLD_NEXT, #name));  \
		if (!f) {                                                                 \
			errno = ENOSYS;                                                   \
			return -1;                                                        \
		}                                                                         \
		bool restart = tfprof__activate_before_exec();                            \
		int rc = f(__VA_ARGS__);                                                  \
		int saved = errno;                                                        \
		tfprof__activate_exec_failed(restart);                                    \
		errno = saved;                                                            \
		return rc;                                                                \
	}

EXEC_WRAPPER(execve, F_EXECVE, (const char *path, char *const argv[], char *const envp[]), path, argv, envp)
EXEC_WRAPPER(execv, F_EXECV, (const char *path, char *const argv[]), path, argv)
EXEC_WRAPPER(execvp, F_EXECVP, (const char *file, char *const argv[]), file, argv)
EXEC_WRAPPER(execvpe, F_EXECVPE, (const char *file, char *const argv[], char *const envp[]), file, argv, envp)
EXEC_WRAPPER(fexecve, F_FEXECVE, (int fd, char *const argv[], char *const envp[]), fd, argv, envp)
EXEC_WRAPPER(execveat, F_EXECVEAT, (int dirfd, const char *path, char *const argv[], char *const envp[], int flags),
	     dirfd, path, argv, envp, flags)

/* The list forms gather their arguments and go through the vector forms above. */
#define GATHER_ARGS(arg0, ap, argv)                                                       \
	size_t n_ = 1;                                                                    \
	va_start(ap, arg0);                                                               \
	while (va_arg(ap, const char *))                                                  \
		n_++;                                                                     \
	va_end(ap);                                                                       \
	char *argv[n_ + 1];                                                               \
	argv[0] = (char *)arg0;                                                           \
	va_start(ap, arg0);                                                               \
	for (size_t i_ = 1; i_ <= n_; i_++)                                               \
		argv[i_] = va_arg(ap, char *); /* the last one read is the NULL */        \

EXEC_API int execl(const char *path, const char *arg0, ...)
{
	va_list ap;
	GATHER_ARGS(arg0, ap, argv)
	va_end(ap);
	return execv(path, argv);
}

EXEC_API int execlp(const char *file, const char *arg0, ...)
{
	va_list ap;
	GATHER_ARGS(arg0, ap, argv)
	va_end(ap);
	return execvp(file, argv);
}

EXEC_API int execle(const char *path, const char *arg0, ...)
{
	va_list ap;
	GATHER_ARGS(arg0, ap, argv)
	char *const *envp = va_arg(ap, char *const *);
	va_end(ap);
	return execve(path, argv, envp);
}
