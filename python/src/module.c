/* SPDX-License-Identifier: Apache-2.0 */
/* tfprof._tfprof, the C extension behind the tfprof package: sessions (start, stop, the last
 * output), the exceptions, and the module itself. It calls the shared libtfprof.so.0 it was
 * linked with, which under tfprof-start is the copy already preloaded into the process, so the
 * Python scopes land in that session. The Python layer (tfprof/experimental.py) adds options,
 * delays and save=False on top. */
#include "pytfprof.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static PyObject *ProfilerError, *AlreadyRunningError, *NotRunningError;

/* This module started the running session (and so may stop it). */
static int own;
/* A stop() is merging and writing with the GIL released: no start() or stop() meanwhile. */
static int stopping;
/* The one warning that tfprof-start's session owns the profile has been given. */
static int env_warned;

/* A session started from the environment (tfprof-start sets TFPROF_START=1 for the programs it
 * runs). The library reads the C environment, so this does too. */
static int activated_by_environment(void)
{
	const char *s = getenv("TFPROF_START");
	return s && strcmp(s, "1") == 0;
}

/* The one warning for a program whose start()/stop() meet tfprof-start's session. Returns -1
 * when the warning was turned into an exception. */
static int warn_environment_owns(void)
{
	if (env_warned)
		return 0;
	env_warned = 1;
	return PyErr_WarnEx(PyExc_RuntimeWarning,
			    "tfprof: this program runs under tfprof-start, whose session records the "
			    "whole program: start() and stop() leave it running, the Python scopes are "
			    "recorded into it, and its profile is written when the program ends",
			    2);
}

static PyObject *py_start(PyObject *m, PyObject *args, PyObject *kw)
{
	(void)m;
	static char *kwlist[] = { "logdir", "disable_gpu", "record_host", "trace_python", NULL };
	PyObject *path = NULL;
	int disable_gpu = 0, record_host = 1, trace_python = 0;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "O&|ppp:start", kwlist, PyUnicode_FSConverter,
					 &path, &disable_gpu, &record_host, &trace_python))
		return NULL;
	const char *logdir = PyBytes_AS_STRING(path);
	if (!*logdir) {
		Py_DECREF(path);
		PyErr_SetString(PyExc_ValueError, "start(logdir): logdir must not be empty");
		return NULL;
	}
	if (own || stopping) {
		Py_DECREF(path);
		PyErr_SetString(AlreadyRunningError, "Another profiler is running.");
		return NULL;
	}
	TFPROF_OPTIONS(o, .disable_gpu = disable_gpu != 0);
	/* Threads name their lines again in the new session, under their current names. */
	tfprof__py_generation++;
	int rc = tfprof_start(logdir, &o);
	Py_DECREF(path);
	if (rc == 0) {
		own = 1;
		tfprof__py_record_host = record_host;
		/* Hooks that could not be installed leave no session behind: start() fails whole. */
		if (trace_python && tfprof__pytrace_start()) {
			own = 0;
			tfprof_stop();
			return NULL;
		}
		Py_RETURN_TRUE;
	}
	if (rc == TFPROF_ERR_ACTIVE && activated_by_environment()) {
		if (warn_environment_owns())
			return NULL;
		Py_RETURN_FALSE;
	}
	if (rc == TFPROF_ERR_ACTIVE)
		PyErr_SetString(AlreadyRunningError, "Another profiler is running.");
	else
		PyErr_Format(ProfilerError, "start(%R): %s", PyTuple_GET_SIZE(args) ? PyTuple_GET_ITEM(args, 0) : Py_None,
			     tfprof_strerror(rc));
	return NULL;
}

static PyObject *output_path(void)
{
	const char *p = tfprof_last_output();
	if (!*p)
		Py_RETURN_NONE;
	return PyUnicode_DecodeFSDefault(p);
}

static PyObject *py_stop(PyObject *m, PyObject *unused)
{
	(void)m;
	(void)unused;
	if (!own) {
		if (!stopping && activated_by_environment() && tfprof_enabled()) {
			if (warn_environment_owns())
				return NULL;
			Py_RETURN_NONE;
		}
		PyErr_SetString(NotRunningError,
				"Cannot export profiling results. No profiler is running.");
		return NULL;
	}
	own = 0;
	stopping = 1;
	/* The hooks go first, so that nothing of stop() itself is traced; a failure to remove them
	 * does not keep the profile from being written (the hooks then remove themselves). */
	PyObject *et = NULL, *ev = NULL, *tb = NULL;
	if (tfprof__pytrace_stop())
		PyErr_Fetch(&et, &ev, &tb);
	int rc;
	/* Merging and writing take a while: other Python threads keep running meanwhile. */
	Py_BEGIN_ALLOW_THREADS
	rc = tfprof_stop();
	Py_END_ALLOW_THREADS
	stopping = 0;
	tfprof__py_record_host = 1;
	tfprof__pytrace_release_retired();
	if (et) {
		PyErr_Restore(et, ev, tb);
		return NULL;
	}
	switch (rc) {
	case 0:
		return output_path();
	case TFPROF_ERR_FALLBACK: {
		PyObject *p = output_path();
		if (p && PyErr_WarnFormat(PyExc_RuntimeWarning, 2,
					  "tfprof: the logdir could not be written; the profile was "
					  "written to %U instead", p) < 0)
			Py_CLEAR(p);
		return p;
	}
	case TFPROF_ERR_NOT_ACTIVE:
		PyErr_SetString(NotRunningError,
				"Cannot export profiling results. No profiler is running.");
		return NULL;
	default:
		PyErr_Format(ProfilerError, "stop(): %s", tfprof_strerror(rc));
		return NULL;
	}
}

/* ---- The profiler server (tfprof.experimental.server) ---- */

/* Whether the capture in progress turned the Python tracer on; touched by the capture thread
 * only, with the GIL. */
static int capture_traces_python;

/* Runs on the server's capture thread when a capture starts: what TensorFlow's server does with
 * the capture's python_tracer_level and host_tracer_level, for this interpreter. */
static void on_capture_start(const struct tfprof_capture_info *info, void *ctx)
{
	(void)ctx;
	PyGILState_STATE g = PyGILState_Ensure();
	tfprof__py_generation++;
	tfprof__py_record_host = info->host_tracer_level > 0;
	capture_traces_python = 0;
	if (info->python_tracer_level > 0) {
		if (tfprof__pytrace_start() == 0)
			capture_traces_python = 1;
		else
			PyErr_WriteUnraisable(NULL); /* the capture goes on without Python calls */
	}
	PyGILState_Release(g);
}

static void on_capture_stop(const struct tfprof_capture_info *info, void *ctx)
{
	(void)info;
	(void)ctx;
	PyGILState_STATE g = PyGILState_Ensure();
	if (capture_traces_python && tfprof__pytrace_stop())
		PyErr_WriteUnraisable(NULL);
	capture_traces_python = 0;
	tfprof__py_record_host = 1;
	tfprof__pytrace_release_retired();
	PyGILState_Release(g);
}

static PyObject *py_server_start(PyObject *m, PyObject *arg)
{
	(void)m;
	const char *addr = PyUnicode_Check(arg) ? PyUnicode_AsUTF8(arg) : NULL;
	if (!addr) {
		if (!PyErr_Occurred())
			PyErr_SetString(PyExc_TypeError, "server_start(addr): addr must be a str");
		return NULL;
	}
	TFPROF_SERVER_OPTIONS(o, .on_capture_start = on_capture_start, .on_capture_stop = on_capture_stop);
	int rc = tfprof_server_start(addr, &o);
	if (rc) {
		const char *why = tfprof_server_last_error();
		PyErr_Format(rc == -EALREADY ? AlreadyRunningError : ProfilerError,
			     "profiler server on %s: %s", addr, *why ? why : tfprof_strerror(rc));
		return NULL;
	}
	return PyLong_FromLong(tfprof_server_port());
}

static PyObject *py_server_stop(PyObject *m, PyObject *unused)
{
	(void)m;
	(void)unused;
	int rc;
	/* A capture in progress is written first, and its hooks need the GIL. */
	Py_BEGIN_ALLOW_THREADS
	rc = tfprof_server_stop();
	Py_END_ALLOW_THREADS
	return PyBool_FromLong(rc == 0);
}

static PyObject *py_server_port(PyObject *m, PyObject *unused)
{
	(void)m;
	(void)unused;
	return PyLong_FromLong(tfprof_server_port());
}

static PyObject *py_last_output(PyObject *m, PyObject *unused)
{
	(void)m;
	(void)unused;
	return output_path();
}

static PyObject *py_enabled(PyObject *m, PyObject *unused)
{
	(void)m;
	(void)unused;
	return PyBool_FromLong(tfprof_enabled());
}

static PyObject *py_owns_session(PyObject *m, PyObject *unused)
{
	(void)m;
	(void)unused;
	return PyBool_FromLong(own);
}

/* The file of the libtfprof this extension calls: under tfprof-start, the preloaded one. */
static PyObject *py_library_path(PyObject *m, PyObject *unused)
{
	(void)m;
	(void)unused;
	Dl_info info;
	if (!dladdr((void *)tfprof_start, &info) || !info.dli_fname)
		Py_RETURN_NONE;
	return PyUnicode_DecodeFSDefault(info.dli_fname);
}

/* A forked child records nothing of the parent's (the library drops the session there): it
 * owns no session either, and its threads name their lines afresh. Only plain stores: a fork
 * child handler must not call into Python. */
static void fork_child(void)
{
	own = 0;
	stopping = 0;
	tfprof__py_record_host = 1;
	tfprof__py_generation++;
	tfprof__pytrace_fork_child();
}

static PyMethodDef module_methods[] = {
	{ "start", (PyCFunction)(void (*)(void))py_start, METH_VARARGS | METH_KEYWORDS,
	  "start(logdir, disable_gpu=False, record_host=True, trace_python=False) -> bool\n--\n\n"
	  "Starts a session (trace_python: every Python function call too); False when "
	  "tfprof-start's session already records this program." },
	{ "stop", py_stop, METH_NOARGS,
	  "stop() -> str | None\n--\n\nStops this module's session and writes the profile; returns "
	  "its path (None under tfprof-start, whose session goes on)." },
	{ "last_output", py_last_output, METH_NOARGS,
	  "last_output() -> str | None\n--\n\nThe path of the last profile written." },
	{ "enabled", py_enabled, METH_NOARGS, "enabled() -> bool\n--\n\nTrue while a session records." },
	{ "owns_session", py_owns_session, METH_NOARGS,
	  "owns_session() -> bool\n--\n\nTrue while a session started by start() runs." },
	{ "server_start", py_server_start, METH_O,
	  "server_start(addr) -> int\n--\n\nStarts the profiler server on addr (\"PORT\", "
	  "\"HOST:PORT\"); returns the port it listens on." },
	{ "server_stop", py_server_stop, METH_NOARGS,
	  "server_stop() -> bool\n--\n\nStops the profiler server (a capture in progress is written "
	  "first); False when none ran." },
	{ "server_port", py_server_port, METH_NOARGS,
	  "server_port() -> int\n--\n\nThe port the profiler server listens on, 0 when none runs." },
	{ "library_path", py_library_path, METH_NOARGS,
	  "library_path() -> str\n--\n\nThe libtfprof file this extension calls." },
	{ NULL, NULL, 0, NULL },
};

static struct PyModuleDef module_def = {
	PyModuleDef_HEAD_INIT,
	.m_name = "tfprof._tfprof",
	.m_doc = "The C extension behind the tfprof package (use tfprof and tfprof.experimental).",
	.m_size = -1,
	.m_methods = module_methods,
};

static PyObject *new_error(PyObject *module, const char *name, const char *doc, PyObject *base)
{
	char full[64];
	snprintf(full, sizeof full, "tfprof.%s", name);
	PyObject *e = PyErr_NewExceptionWithDoc(full, doc, base, NULL);
	if (!e)
		return NULL;
	Py_INCREF(e);
	if (PyModule_AddObject(module, name, e)) {
		Py_DECREF(e);
		Py_DECREF(e);
		return NULL;
	}
	return e;
}

PyMODINIT_FUNC PyInit__tfprof(void)
{
	PyObject *m = PyModule_Create(&module_def);
	if (!m)
		return NULL;
	if (!(ProfilerError = new_error(m, "ProfilerError", "A tfprof session could not do what was asked.",
					PyExc_RuntimeError)) ||
	    !(AlreadyRunningError = new_error(m, "AlreadyRunningError",
					      "start() while a profiler session is running.", ProfilerError)) ||
	    !(NotRunningError = new_error(m, "NotRunningError", "stop() without a running session.",
					  ProfilerError)) ||
	    tfprof__trace_init_module(m)) {
		Py_DECREF(m);
		return NULL;
	}
	pthread_atfork(NULL, NULL, fork_child);
	return m;
}
