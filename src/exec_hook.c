/* The exec family, interposed by the shared library (tfprof-start preloads it): an activated
 * image writes its profile before exec replaces it, because no exit handler runs then and the
 * events of every image but the last were lost. Only the shared library carries this file: a
 * static copy would clash with libc's definitions. Outside activation every call goes straight
 * to libc's function (one relaxed check of a flag in activate.c).
 *
 * glibc's execvp, execl and the others do not call execve through an interposable symbol, so
 * each member of the family is wrapped; posix_spawn, system and popen make a child process,
 * which is profiled as a process of its own, and are left alone. */
#include "activate.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <unistd.h>

#define EXEC_API __attribute__((visibility("default")))

/* libc's function called name, resolved once (a race resolves it twice to the same value). */
static void *next_fn(void **slot, const char *name)
{
	void *f = __atomic_load_n(slot, __ATOMIC_RELAXED);
	if (!f) {
		f = dlsym(RTLD_NEXT, name);
		__atomic_store_n(slot, f, __ATOMIC_RELAXED);
	}
	return f;
}

/* Defines the wrapper `name`: the profile is written first, and when the exec fails (it
 * returns) the session starts again, with errno as the exec left it. */
#define EXEC_WRAPPER(name, params, ...)                                                   \
	EXEC_API int name params                                                          \
	{                                                                                 \
		static void *real;                                                        \
		int (*f) params = (int (*) params)next_fn(&real, #name);                  \
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

EXEC_WRAPPER(execve, (const char *path, char *const argv[], char *const envp[]), path, argv, envp)
EXEC_WRAPPER(execv, (const char *path, char *const argv[]), path, argv)
EXEC_WRAPPER(execvp, (const char *file, char *const argv[]), file, argv)
EXEC_WRAPPER(execvpe, (const char *file, char *const argv[], char *const envp[]), file, argv, envp)
EXEC_WRAPPER(fexecve, (int fd, char *const argv[], char *const envp[]), fd, argv, envp)
EXEC_WRAPPER(execveat, (int dirfd, const char *path, char *const argv[], char *const envp[], int flags),
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
