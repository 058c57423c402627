/* SPDX-License-Identifier: Apache-2.0 */
/* Python function tracing, ProfilerOptions(python_tracer_level=1): while a session started with
 * it records, every Python function call on every thread becomes a tfprof scope named like
 * TensorFlow's Python tracer ("$<file basename>:<first line> <function>"), recorded through the
 * same per-thread buffers as the Trace scopes and CUDA calls of that thread, so it nests with
 * them. Before Python 3.12 the C-level profile hook (PyEval_SetProfile) feeds it; from 3.12 on,
 * sys.monitoring does. C functions (builtins) are not traced: a Python function is what a user
 * reads in their code, and tracing every builtin call would double the cost per call. */
#include "pytfprof.h"

#include <stdlib.h>
#include <string.h>

#if PY_VERSION_HEX >= 0x030C0000
#define PYTRACE_MONITORING 1
#define request_code_extra_index PyUnstable_Eval_RequestCodeExtraIndex
#define code_get_extra PyUnstable_Code_GetExtra
#define code_set_extra PyUnstable_Code_SetExtra
#else
#define PYTRACE_MONITORING 0
#define request_code_extra_index _PyEval_RequestCodeExtraIndex
#define code_get_extra _PyCode_GetExtra
#define code_set_extra _PyCode_SetExtra
#endif

/* The call-site descriptor of one code object, made at its first call and kept in the code
 * object's co_extra slot, so a call formats no string and the library records a pointer rather
 * than a copy of the name. */
struct py_site {
	struct tfprof_site site;
	struct py_site *next; /* on the retired list once its code object is gone */
	char name[];
};

/* Sites of code objects freed since the last stop(). Records of the running session may still
 * point at them, so they are freed only once nothing records. Touched with the GIL held only. */
static struct py_site *retired;
static Py_ssize_t extra_index = -1;

/* Tracing is on (hooks installed by this module); read by the hooks under the GIL. */
static int active;
/* Bumped at each install, so that a thread drops the handles it kept from an earlier session. */
static uint64_t trace_gen;

/* The functions a thread is inside, deepest last. The library opens at most 256 scopes per
 * thread (deeper ones are counted in the profile's warnings), so deeper calls are only counted
 * here, to keep calls and returns paired. */
#define PYTRACE_STACK 256
static _Thread_local struct {
	uint64_t gen;
	uint32_t depth;
	tfprof_scope open[PYTRACE_STACK];
} th;

/* co_extra's free function: called with the GIL held when a code object is deallocated. */
static void retire_site(void *p)
{
	struct py_site *s = p;
	if (!s)
		return;
	s->next = retired;
	retired = s;
}

void tfprof__pytrace_release_retired(void)
{
	/* Under tfprof-start's session (or another owner's) records may still point at them. */
	if (tfprof_enabled())
		return;
	while (retired) {
		struct py_site *s = retired;
		retired = s->next;
		free(s);
	}
}

/* The last path component, as TensorFlow's tsl::io::Basename writes it. */
static const char *basename_of(const char *path)
{
	const char *slash = strrchr(path, '/');
	return slash ? slash + 1 : path;
}

static struct py_site *make_site(PyCodeObject *co)
{
	PyObject *fkeep = NULL, *nkeep = NULL;
	const char *file = co->co_filename ? tfprof__py_utf8(co->co_filename, &fkeep) : NULL;
	const char *func = co->co_name ? tfprof__py_utf8(co->co_name, &nkeep) : NULL;
	struct py_site *s = NULL;
	if (!file || !func) {
		PyErr_Clear();
		file = file ? file : "<unknown>";
		func = func ? func : "<unknown>";
	}
	file = basename_of(file);
	int n = snprintf(NULL, 0, "$%s:%d %s", file, co->co_firstlineno, func);
	if (n >= 0 && (s = malloc(sizeof *s + (size_t)n + 1))) {
		snprintf(s->name, (size_t)n + 1, "$%s:%d %s", file, co->co_firstlineno, func);
		s->site = (struct tfprof_site){ s->name, NULL, 0, 0, NULL };
		s->next = NULL;
	}
	Py_XDECREF(fkeep);
	Py_XDECREF(nkeep);
	return s;
}

/* The site of a code object, made on its first call. NULL when memory ran out: the call is then
 * recorded as "(unnamed)" rather than dropped, so that the nesting stays whole. */
static struct tfprof_site *site_of(PyCodeObject *co)
{
	void *p = NULL;
	if (code_get_extra((PyObject *)co, extra_index, &p) == 0 && p)
		return &((struct py_site *)p)->site;
	PyErr_Clear();
	struct py_site *s = make_site(co);
	if (!s)
		return NULL;
	if (code_set_extra((PyObject *)co, extra_index, s)) {
		PyErr_Clear();
		/* Not attached to the code object: retired at once, so it lives until stop(). */
		retire_site(s);
	}
	return &s->site;
}

static void call_begins(PyCodeObject *co)
{
	if (th.gen != trace_gen) {
		th.gen = trace_gen;
		th.depth = 0;
	}
	tfprof__py_name_thread_if_needed();
	struct tfprof_site *site = site_of(co);
	tfprof_scope h = site ? tfprof_scope_begin_site(site, NULL, 0) : tfprof_scope_begin("(unnamed)", NULL, 0);
	if (th.depth < PYTRACE_STACK)
		th.open[th.depth] = h;
	th.depth++;
}

/* A return (or a yield, or a frame left by an exception). Returns of frames that were entered
 * before tracing began find the stack empty and are ignored. */
static void call_ends(void)
{
	if (th.gen != trace_gen || th.depth == 0)
		return;
	th.depth--;
	if (th.depth < PYTRACE_STACK)
		tfprof_scope_end(th.open[th.depth]);
}

#if !PYTRACE_MONITORING
/* The C-level profile hook. Python calls it for PyTrace_RETURN when a frame returns, yields or is
 * left by an exception, so calls and returns pair up even when frames unwind. */
static int profile_hook(PyObject *obj, PyFrameObject *frame, int what, PyObject *arg)
{
	(void)obj;
	(void)arg;
	if (!active) {
		/* A hook left behind (a fork child, a thread that missed the stop) removes itself. */
		PyEval_SetProfile(NULL, NULL);
		return 0;
	}
	if (what == PyTrace_CALL) {
		PyCodeObject *co = PyFrame_GetCode(frame);
		call_begins(co);
		Py_DECREF(co);
	} else if (what == PyTrace_RETURN) {
		call_ends();
	}
	return 0;
}

/* threading.setprofile() takes a Python callable, which each new threading.Thread installs as
 * its profile function before run(): this one replaces itself with the C hook at its first event,
 * so a new thread pays the Python-level call only once. */
static PyObject *thread_bootstrap(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
	(void)self;
	if (nargs != 3) {
		PyErr_SetString(PyExc_TypeError, "_thread_bootstrap(frame, event, arg)");
		return NULL;
	}
	if (!active) {
		PyEval_SetProfile(NULL, NULL);
		Py_RETURN_NONE;
	}
	PyEval_SetProfile(profile_hook, NULL);
	if (PyFrame_Check(args[0]) && PyUnicode_Check(args[1]) &&
	    PyUnicode_CompareWithASCIIString(args[1], "call") == 0) {
		PyCodeObject *co = PyFrame_GetCode((PyFrameObject *)args[0]);
		call_begins(co);
		Py_DECREF(co);
	}
	Py_RETURN_NONE;
}

static PyMethodDef bootstrap_def = { "_thread_bootstrap", (PyCFunction)(void (*)(void))thread_bootstrap,
				     METH_FASTCALL, NULL };
static PyObject *bootstrap;

static int threading_setprofile(PyObject *fn)
{
	PyObject *threading = PyImport_ImportModule("threading");
	if (!threading)
		return -1;
	PyObject *r = PyObject_CallMethod(threading, "setprofile", "O", fn);
	Py_DECREF(threading);
	Py_XDECREF(r);
	return r ? 0 : -1;
}

/* Sets (or, with NULL, clears) the hook on every thread of the interpreter. Safe with the GIL
 * held: the other threads are not running Python code meanwhile. Clearing leaves alone the
 * threads whose profile function is someone else's (cProfile). */
static int set_all_threads(Py_tracefunc fn)
{
	PyThreadState *me = PyThreadState_Get();
	for (PyThreadState *ts = PyInterpreterState_ThreadHead(me->interp); ts; ts = PyThreadState_Next(ts)) {
		if (!fn && ts->c_profilefunc != profile_hook)
			continue;
		if (_PyEval_SetProfile(ts, fn, NULL) < 0)
			return -1;
	}
	return 0;
}

static int install(void)
{
	if (!bootstrap && !(bootstrap = PyCFunction_New(&bootstrap_def, NULL)))
		return -1;
	if (threading_setprofile(bootstrap) || set_all_threads(profile_hook))
		return -1;
	return 0;
}

static int uninstall(void)
{
	int rc = threading_setprofile(Py_None);
	if (set_all_threads(NULL))
		rc = -1;
	return rc;
}
#else
/* sys.monitoring (3.12+): the events that start a frame's run (PY_START, PY_RESUME, PY_THROW)
 * and those that end it (PY_RETURN, PY_YIELD, PY_UNWIND) pair up on every thread, exceptions
 * included. The callbacks are C functions, so the monitor's own work raises no events. */
static int tool_id = -1;

static PyObject *mon_begin(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
	(void)self;
	if (active && nargs >= 1 && PyCode_Check(args[0]))
		call_begins((PyCodeObject *)args[0]);
	Py_RETURN_NONE;
}

static PyObject *mon_end(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
	(void)self;
	(void)args;
	(void)nargs;
	if (active)
		call_ends();
	Py_RETURN_NONE;
}

static PyMethodDef mon_begin_def = { "_monitor_begin", (PyCFunction)(void (*)(void))mon_begin,
				     METH_FASTCALL, NULL };
static PyMethodDef mon_end_def = { "_monitor_end", (PyCFunction)(void (*)(void))mon_end,
				   METH_FASTCALL, NULL };
static PyObject *begin_cb, *end_cb;

static const char *const begin_events[] = { "PY_START", "PY_RESUME", "PY_THROW" };
static const char *const end_events[] = { "PY_RETURN", "PY_YIELD", "PY_UNWIND" };

/* Registers fn (or None) for the named events of our tool; ORs their bits into *mask. */
static int register_events(PyObject *mon, PyObject *events, const char *const *names, size_t n,
			   PyObject *fn, long *mask)
{
	for (size_t i = 0; i < n; i++) {
		PyObject *bit = PyObject_GetAttrString(events, names[i]);
		if (!bit)
			return -1;
		*mask |= PyLong_AsLong(bit);
		PyObject *r = PyObject_CallMethod(mon, "register_callback", "iOO", tool_id, bit, fn);
		Py_DECREF(bit);
		if (!r)
			return -1;
		Py_DECREF(r);
	}
	return 0;
}

static int uninstall(void);

static int install(void)
{
	if (!begin_cb && !(begin_cb = PyCFunction_New(&mon_begin_def, NULL)))
		return -1;
	if (!end_cb && !(end_cb = PyCFunction_New(&mon_end_def, NULL)))
		return -1;
	/* A tool id left registered (a fork child's) is handed back first. */
	if (tool_id >= 0 && uninstall())
		PyErr_Clear();
	PyObject *sys = PyImport_ImportModule("sys");
	PyObject *mon = sys ? PyObject_GetAttrString(sys, "monitoring") : NULL;
	Py_XDECREF(sys);
	if (!mon)
		return -1;
	int rc = -1;
	PyObject *events = PyObject_GetAttrString(mon, "events");
	if (!events)
		goto out;
	/* The profiler's id first; cProfile may hold it, so the two ids no tool claims after. */
	static const int ids[] = { 2, 3, 4 };
	for (size_t i = 0; i < sizeof ids / sizeof ids[0] && tool_id < 0; i++) {
		PyObject *r = PyObject_CallMethod(mon, "use_tool_id", "is", ids[i], "tfprof");
		if (r)
			tool_id = ids[i];
		else
			PyErr_Clear();
		Py_XDECREF(r);
	}
	if (tool_id < 0) {
		PyErr_SetString(PyExc_RuntimeError, "tfprof: every sys.monitoring tool id is taken");
		goto out;
	}
	long mask = 0;
	if (register_events(mon, events, begin_events, 3, begin_cb, &mask) ||
	    register_events(mon, events, end_events, 3, end_cb, &mask))
		goto out;
	PyObject *r = PyObject_CallMethod(mon, "set_events", "il", tool_id, mask);
	Py_XDECREF(r);
	rc = r ? 0 : -1;
out:
	Py_XDECREF(events);
	Py_DECREF(mon);
	return rc;
}

static int uninstall(void)
{
	if (tool_id < 0)
		return 0;
	PyObject *sys = PyImport_ImportModule("sys");
	PyObject *mon = sys ? PyObject_GetAttrString(sys, "monitoring") : NULL;
	Py_XDECREF(sys);
	if (!mon)
		return -1;
	int rc = 0;
	PyObject *events = PyObject_GetAttrString(mon, "events");
	long mask = 0;
	PyObject *r = PyObject_CallMethod(mon, "set_events", "ii", tool_id, 0);
	if (!r || !events || register_events(mon, events, begin_events, 3, Py_None, &mask) ||
	    register_events(mon, events, end_events, 3, Py_None, &mask))
		rc = -1;
	Py_XDECREF(r);
	PyErr_Clear();
	r = PyObject_CallMethod(mon, "free_tool_id", "i", tool_id);
	Py_XDECREF(r);
	if (!r)
		rc = -1;
	tool_id = -1;
	Py_XDECREF(events);
	Py_DECREF(mon);
	return rc;
}
#endif

int tfprof__pytrace_start(void)
{
	if (active)
		return 0;
	if (extra_index < 0 && (extra_index = request_code_extra_index(retire_site)) < 0) {
		PyErr_SetString(PyExc_RuntimeError, "tfprof: no code object extra slot left for the Python tracer");
		return -1;
	}
	trace_gen++;
	active = 1;
	if (install()) {
		active = 0;
		PyObject *et, *ev, *tb;
		PyErr_Fetch(&et, &ev, &tb);
		uninstall();
		PyErr_Restore(et, ev, tb);
		return -1;
	}
	return 0;
}

int tfprof__pytrace_stop(void)
{
	if (!active)
		return 0;
	active = 0;
	/* The functions of the thread calling stop() (stop() itself, the user's wrappers around it)
	 * end here, where tracing ends: left open they would be flagged "still open at stop" in
	 * every traced profile. Other threads' functions are still running and are flagged so. */
	if (th.gen == trace_gen) {
		while (th.depth > 0)
			call_ends();
	}
	return uninstall();
}

void tfprof__pytrace_fork_child(void)
{
	/* Only a plain store: the hooks left in the child remove themselves at their next event. */
	active = 0;
}
