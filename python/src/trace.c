/* SPDX-License-Identifier: Apache-2.0 */
/* tfprof.Trace: the context manager behind `with tfprof.experimental.Trace(name, **kwargs) as tm`,
 * a tfprof scope on the calling thread. Built for the loop body it sits in: with no session a
 * call returns one shared, inert Trace (no allocation), and with one it begins and ends a C
 * scope directly, with the keyword values converted once, when the Trace is made. */
#include "pytfprof.h"

#include <pythread.h>

enum { TRACE_MADE, TRACE_ENTERED, TRACE_EXITED };

typedef struct {
	PyObject_HEAD
	tfprof_scope scope;
	unsigned long thread; /* the thread that entered it */
	uint8_t state;
	/* Made while a session recorded: only such a Trace records (TensorFlow decides this when
	 * the Trace is made too). */
	uint8_t record;
	const char *name;
	PyObject *name_keep;
	struct tfprof__pyargs args;
} TraceObject;

int tfprof__py_record_host = 1;
uint64_t tfprof__py_generation = 1;

/* The Trace every call returns while nothing records: it does nothing and is never freed. */
static TraceObject *inert;
static PyObject *threading_module;
/* The generation in which this thread last named its line, and the events since it last found
 * no name to use in that generation. */
static _Thread_local uint64_t named_generation;
static _Thread_local uint32_t name_misses;

/* Names the calling thread's line in the profile after its threading name, as the user reads
 * it in their code (MainThread, Thread-1 (worker), "loader"). The name comes from threading's
 * table of started threads, never from threading.current_thread(): under sys.monitoring (3.12+)
 * a new thread's first events come from threading's own bootstrap, before the thread enters
 * that table, and current_thread() would then invent a "Dummy-N" thread for it (and keep it).
 * A thread not in the table yet is asked again at its next events; one that never enters it
 * (started by C code) keeps its OS name. Failing to name a line is not the user's error. */
static void name_thread(void)
{
	enum { MAX_MISSES = 256 };
	PyObject *active = PyObject_GetAttrString(threading_module, "_active");
	PyObject *key = PyLong_FromUnsignedLong(PyThread_get_thread_ident());
	PyObject *th = active && key && PyDict_Check(active) ? PyDict_GetItemWithError(active, key)
							     : NULL;
	Py_XINCREF(th);
	Py_XDECREF(key);
	Py_XDECREF(active);
	PyErr_Clear();
	if (!th && ++name_misses < MAX_MISSES)
		return;
	named_generation = tfprof__py_generation;
	name_misses = 0;
	PyObject *name = th ? PyObject_GetAttrString(th, "name") : NULL;
	PyObject *keep = NULL;
	const char *u = name && PyUnicode_Check(name) ? tfprof__py_utf8(name, &keep) : NULL;
	if (u)
		tfprof_set_thread_name(u);
	Py_XDECREF(keep);
	Py_XDECREF(name);
	Py_XDECREF(th);
	PyErr_Clear();
}

void tfprof__py_name_thread_if_needed(void)
{
	if (named_generation != tfprof__py_generation && tfprof_enabled()) {
		/* Naming runs Python code: an exception the hook is handling stays. */
		PyObject *et, *ev, *tb;
		PyErr_Fetch(&et, &ev, &tb);
		name_thread();
		PyErr_Restore(et, ev, tb);
	}
}

static PyObject *make_trace(PyObject *name, PyObject *const *kwvalues, PyObject *kwnames,
			    PyObject *kwdict)
{
	if (!PyUnicode_Check(name)) {
		PyErr_Format(PyExc_TypeError, "Trace name must be a str, not %.100s",
			     Py_TYPE(name)->tp_name);
		return NULL;
	}
	if (!tfprof_enabled() || !tfprof__py_record_host) {
		Py_INCREF(inert);
		return (PyObject *)inert;
	}
	TraceObject *t = PyObject_New(TraceObject, &tfprof__TraceType);
	if (!t)
		return NULL;
	t->scope = (tfprof_scope){ 0, 0 };
	t->thread = 0;
	t->state = TRACE_MADE;
	t->record = 1;
	t->name_keep = NULL;
	t->args = (struct tfprof__pyargs){ 0 };
	t->name = tfprof__py_utf8(name, &t->name_keep);
	int rc = !t->name ? -1
	       : kwdict   ? tfprof__pyargs_from_dict(&t->args, kwdict)
			  : tfprof__pyargs_from_vector(&t->args, kwvalues, kwnames,
						       kwnames ? (size_t)PyTuple_GET_SIZE(kwnames) : 0);
	if (rc) {
		Py_DECREF(t);
		return NULL;
	}
	return (PyObject *)t;
}

/* Trace(name, **kwargs) through vectorcall: the keyword values are read in place, no dict. */
static PyObject *trace_vectorcall(PyObject *type, PyObject *const *args, size_t nargsf,
				  PyObject *kwnames)
{
	(void)type;
	Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
	if (nargs == 1)
		return make_trace(args[0], args + 1, kwnames, NULL);
	if (nargs > 1) {
		PyErr_Format(PyExc_TypeError,
			     "Trace() takes the name as its only positional argument (%zd given); "
			     "metadata goes in keyword arguments", nargs);
		return NULL;
	}
	/* Trace(name="x", ...): the rare spelling goes through a dict. */
	PyObject *kw = PyDict_New();
	if (!kw)
		return NULL;
	Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
	for (Py_ssize_t i = 0; i < nkw; i++) {
		if (PyDict_SetItem(kw, PyTuple_GET_ITEM(kwnames, i), args[i])) {
			Py_DECREF(kw);
			return NULL;
		}
	}
	PyObject *name = PyDict_GetItemString(kw, "name");
	PyObject *r = NULL;
	if (!name) {
		PyErr_SetString(PyExc_TypeError, "Trace() missing its name: Trace(name, **kwargs)");
	} else {
		Py_INCREF(name);
		if (PyDict_DelItemString(kw, "name") == 0)
			r = make_trace(name, NULL, NULL, kw);
		Py_DECREF(name);
	}
	Py_DECREF(kw);
	return r;
}

static PyObject *trace_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
	(void)type;
	PyObject *name;
	if (!PyArg_ParseTuple(args, "O:Trace", &name))
		return NULL;
	return make_trace(name, NULL, NULL, kwargs ? kwargs : NULL);
}

static void trace_dealloc(TraceObject *t)
{
	tfprof__pyargs_clear(&t->args);
	Py_XDECREF(t->name_keep);
	PyObject_Free(t);
}

static PyObject *trace_enter(TraceObject *t, PyObject *unused)
{
	(void)unused;
	if (t->record) {
		if (t->state == TRACE_ENTERED) {
			PyErr_Format(PyExc_RuntimeError,
				     "Trace('%.200s') is already entered: exit it before entering it again",
				     t->name);
			return NULL;
		}
		tfprof__py_name_thread_if_needed();
		/* No session any more (entered after stop()): the handle is inert. */
		t->scope = tfprof_scope_begin(t->name, t->args.args, t->args.n);
		t->thread = PyThread_get_thread_ident();
		t->state = TRACE_ENTERED;
	}
	Py_INCREF(t);
	return (PyObject *)t;
}

static PyObject *trace_exit(TraceObject *t, PyObject *const *args, Py_ssize_t nargs)
{
	(void)args;
	(void)nargs;
	if (!t->record)
		Py_RETURN_NONE;
	if (t->state == TRACE_ENTERED && t->thread == PyThread_get_thread_ident()) {
		tfprof_scope_end(t->scope);
		t->state = TRACE_EXITED;
		/* None: an exception raised inside the with block propagates. */
		Py_RETURN_NONE;
	}
	int was = t->state;
	/* The library ignores an end on another thread or a second end and counts it in the
	 * profile's warnings, so the profile shows the misuse as well. */
	tfprof_scope_end(t->scope);
	t->state = TRACE_EXITED;
	int rc;
	if (was == TRACE_ENTERED)
		rc = PyErr_WarnFormat(PyExc_RuntimeWarning, 1,
				      "Trace('%.200s') was exited on another thread than the one that "
				      "entered it; the scope stays open until stop() (exit a Trace on "
				      "the thread that entered it)", t->name);
	else
		rc = PyErr_WarnFormat(PyExc_RuntimeWarning, 1,
				      "Trace('%.200s') was exited %s; this exit is ignored", t->name,
				      was == TRACE_EXITED ? "twice" : "without being entered");
	if (rc)
		return NULL;
	Py_RETURN_NONE;
}

static PyObject *trace_set_metadata(TraceObject *t, PyObject *const *args, Py_ssize_t nargs,
				    PyObject *kwnames)
{
	if (nargs) {
		PyErr_SetString(PyExc_TypeError, "set_metadata() takes keyword arguments only");
		return NULL;
	}
	/* Like TensorFlow: metadata for a Trace that records nothing is dropped without a cost. */
	if (!t->record || t->state != TRACE_ENTERED || t->scope.tag == 0 || !kwnames)
		Py_RETURN_NONE;
	struct tfprof__pyargs a = { 0 };
	if (tfprof__pyargs_from_vector(&a, args, kwnames, (size_t)PyTuple_GET_SIZE(kwnames)))
		return NULL;
	tfprof_scope_set_metadata(t->scope, a.args, a.n);
	tfprof__pyargs_clear(&a);
	Py_RETURN_NONE;
}

static PyObject *trace_get_name(TraceObject *t, void *closure)
{
	(void)closure;
	if (!t->record)
		Py_RETURN_NONE;
	return PyUnicode_DecodeUTF8(t->name, (Py_ssize_t)strlen(t->name), "replace");
}

static PyObject *trace_get_recording(TraceObject *t, void *closure)
{
	(void)closure;
	return PyBool_FromLong(t->record && t->state == TRACE_ENTERED && t->scope.tag != 0);
}

static PyMethodDef trace_methods[] = {
	{ "__enter__", (PyCFunction)trace_enter, METH_NOARGS, NULL },
	{ "__exit__", (PyCFunction)(void (*)(void))trace_exit, METH_FASTCALL, NULL },
	{ "set_metadata", (PyCFunction)(void (*)(void))trace_set_metadata,
	  METH_FASTCALL | METH_KEYWORDS,
	  "set_metadata(**kwargs)\n--\n\nAdds keyword metadata to the entered scope; a key given "
	  "again keeps the last value." },
	{ NULL, NULL, 0, NULL },
};

static PyGetSetDef trace_getset[] = {
	{ "name", (getter)trace_get_name, NULL,
	  "The scope's name, or None for a Trace made while nothing records.", NULL },
	{ "recording", (getter)trace_get_recording, NULL,
	  "True while this Trace is entered and recorded into a session.", NULL },
	{ NULL, NULL, NULL, NULL, NULL },
};

PyTypeObject tfprof__TraceType = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "tfprof.Trace",
	.tp_basicsize = sizeof(TraceObject),
	.tp_dealloc = (destructor)trace_dealloc,
	.tp_flags = Py_TPFLAGS_DEFAULT,
	.tp_doc = "Trace(name, **kwargs)\n--\n\n"
		  "A named host scope, tf.profiler.experimental.Trace: use it as a context manager "
		  "on one thread. A step_num keyword makes it a step marker.",
	.tp_methods = trace_methods,
	.tp_getset = trace_getset,
	.tp_new = trace_new,
	.tp_vectorcall = trace_vectorcall,
};

int tfprof__trace_init_module(PyObject *module)
{
	if (PyType_Ready(&tfprof__TraceType))
		return -1;
	threading_module = PyImport_ImportModule("threading");
	if (!threading_module)
		return -1;
	inert = PyObject_New(TraceObject, &tfprof__TraceType);
	if (!inert)
		return -1;
	inert->scope = (tfprof_scope){ 0, 0 };
	inert->thread = 0;
	inert->state = TRACE_MADE;
	inert->record = 0;
	inert->name = "";
	inert->name_keep = NULL;
	inert->args = (struct tfprof__pyargs){ 0 };
	Py_INCREF(&tfprof__TraceType);
	return PyModule_AddObject(module, "Trace", (PyObject *)&tfprof__TraceType);
}
