/* SPDX-License-Identifier: Apache-2.0 */
/* Internal declarations shared by the files of the tfprof Python extension (module.c: sessions
 * and the module; trace.c: the Trace type; args.c: keyword arguments as typed tfprof arguments;
 * pytrace.c: Python function tracing).
 * Every function here runs with the GIL held unless it says otherwise. */
#ifndef TFPROF_PY_PYTFPROF_H
#define TFPROF_PY_PYTFPROF_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

#include <tfprof/tfprof.h>

/* Typed arguments converted from Python keyword arguments, with the references that keep the
 * UTF-8 of their keys and string values alive for as long as the arguments are used. Small sets
 * live inline (a Trace with a step_num allocates nothing more). */
#define TFPROF_PY_INLINE_ARGS 4
struct tfprof__pyargs {
	struct tfprof_arg *args;
	PyObject **keep;
	size_t n, nkeep;
	struct tfprof_arg inline_args[TFPROF_PY_INLINE_ARGS];
	PyObject *inline_keep[2 * TFPROF_PY_INLINE_ARGS];
};

/* Converts n keyword values (values[i] named by the str kwnames[i]) into typed arguments:
 * bool -> BOOL, int (and objects with __index__) -> I64, U64 above the int64 range, str beyond
 * that; float -> F64; str -> STR; anything else -> str(value). Strings that are not valid UTF-8
 * (lone surrogates) are kept with backslash escapes. Returns 0, or -1 with a Python exception set
 * (str(value) raised, or out of memory); a is then empty. */
int tfprof__pyargs_from_vector(struct tfprof__pyargs *a, PyObject *const *values, PyObject *kwnames,
			       size_t n);
/* The same from a keyword dict (may be NULL). */
int tfprof__pyargs_from_dict(struct tfprof__pyargs *a, PyObject *kwargs);
/* Drops the references and any allocation; a may be passed again to a from_ function after. */
void tfprof__pyargs_clear(struct tfprof__pyargs *a);

/* The UTF-8 of a str, with lone surrogates written as backslash escapes so that no name is ever
 * refused. *keep receives a new reference to what owns the returned bytes. NULL with an
 * exception set on failure. */
const char *tfprof__py_utf8(PyObject *s, PyObject **keep);

/* The Trace type and its module-level hooks (trace.c). */
extern PyTypeObject tfprof__TraceType;
int tfprof__trace_init_module(PyObject *module);
/* Whether Python scopes are recorded (ProfilerOptions.host_tracer_level > 0). */
extern int tfprof__py_record_host;
/* Bumped at every start() (and in a fork child) so that each thread names its line in the next
 * session again from its threading name. */
extern uint64_t tfprof__py_generation;

/* Names the calling thread's line after its threading name when it has not done so in this
 * session yet (trace.c); the Python tracer calls it so that a thread traced only through its
 * functions carries its name too. */
void tfprof__py_name_thread_if_needed(void);

/* Python function tracing (pytrace.c), python_tracer_level=1. start installs the hooks on every
 * thread and on threads started later; stop removes them. Both return 0, or -1 with a Python
 * exception set. */
int tfprof__pytrace_start(void);
int tfprof__pytrace_stop(void);
/* Frees the names of code objects freed since, once no session records (after stop()). */
void tfprof__pytrace_release_retired(void);
/* In a fork child (plain stores only): the hooks left there remove themselves. */
void tfprof__pytrace_fork_child(void);

#endif /* TFPROF_PY_PYTFPROF_H */
