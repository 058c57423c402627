/* SPDX-License-Identifier: Apache-2.0 */
/* Python keyword arguments as tfprof's typed arguments: the types a user wrote are kept (bool,
 * int, float, str), everything else is recorded as str(value), as the seed's API promises. */
#include "pytfprof.h"

#include <stdlib.h>

const char *tfprof__py_utf8(PyObject *s, PyObject **keep)
{
	Py_ssize_t len;
	const char *u = PyUnicode_AsUTF8AndSize(s, &len);
	if (u) {
		/* The UTF-8 is cached inside the str object: holding the str keeps it. */
		Py_INCREF(s);
		*keep = s;
		return u;
	}
	if (!PyErr_ExceptionMatches(PyExc_UnicodeEncodeError))
		return NULL;
	/* A lone surrogate cannot be UTF-8; a profiler must not refuse the name, so the escape
	 * (\udc80) is recorded and the user still sees what was there. */
	PyErr_Clear();
	PyObject *b = PyUnicode_AsEncodedString(s, "utf-8", "backslashreplace");
	if (!b)
		return NULL;
	*keep = b;
	return PyBytes_AS_STRING(b);
}

static int reserve(struct tfprof__pyargs *a, size_t n)
{
	a->n = a->nkeep = 0;
	if (n <= TFPROF_PY_INLINE_ARGS) {
		a->args = a->inline_args;
		a->keep = a->inline_keep;
		return 0;
	}
	a->args = PyMem_Malloc(n * sizeof *a->args);
	a->keep = PyMem_Malloc(2 * n * sizeof *a->keep);
	if (!a->args || !a->keep) {
		PyMem_Free(a->args);
		PyMem_Free(a->keep);
		a->args = NULL;
		a->keep = NULL;
		PyErr_NoMemory();
		return -1;
	}
	return 0;
}

/* Records str(v) as a string argument. */
static int set_str_of(struct tfprof__pyargs *a, struct tfprof_arg *arg, PyObject *v)
{
	PyObject *s = PyObject_Str(v);
	if (!s)
		return -1;
	arg->type = TFPROF_ARG_STR;
	arg->v.str = tfprof__py_utf8(s, &a->keep[a->nkeep]);
	Py_DECREF(s);
	if (!arg->v.str)
		return -1;
	a->nkeep++;
	return 0;
}

static int set_int(struct tfprof__pyargs *a, struct tfprof_arg *arg, PyObject *v)
{
	int overflow;
	long long x = PyLong_AsLongLongAndOverflow(v, &overflow);
	if (!overflow) {
		if (x == -1 && PyErr_Occurred())
			return -1;
		arg->type = TFPROF_ARG_I64;
		arg->v.i64 = x;
		return 0;
	}
	if (overflow > 0) {
		unsigned long long u = PyLong_AsUnsignedLongLong(v);
		if (!(u == (unsigned long long)-1 && PyErr_Occurred())) {
			arg->type = TFPROF_ARG_U64;
			arg->v.u64 = u;
			return 0;
		}
		PyErr_Clear();
	}
	/* Beyond 64 bits: the digits, exactly, as a string. */
	return set_str_of(a, arg, v);
}

static int set_value(struct tfprof__pyargs *a, struct tfprof_arg *arg, PyObject *v)
{
	/* bool first: True is also an int. */
	if (PyBool_Check(v)) {
		arg->type = TFPROF_ARG_BOOL;
		arg->v.b = v == Py_True;
		return 0;
	}
	if (PyLong_Check(v))
		return set_int(a, arg, v);
	if (PyFloat_Check(v)) {
		arg->type = TFPROF_ARG_F64;
		arg->v.f64 = PyFloat_AS_DOUBLE(v);
		return 0;
	}
	if (PyUnicode_Check(v)) {
		arg->type = TFPROF_ARG_STR;
		arg->v.str = tfprof__py_utf8(v, &a->keep[a->nkeep]);
		if (!arg->v.str)
			return -1;
		a->nkeep++;
		return 0;
	}
	/* Integer-like objects (NumPy's int64 step counters) stay integers, so that
	 * step_num=np.int64(3) is a step marker like step_num=3. */
	if (PyIndex_Check(v)) {
		PyObject *i = PyNumber_Index(v);
		if (i) {
			int rc = set_int(a, arg, i);
			Py_DECREF(i);
			return rc;
		}
		PyErr_Clear();
	}
	return set_str_of(a, arg, v);
}

static int set_one(struct tfprof__pyargs *a, PyObject *key, PyObject *value)
{
	struct tfprof_arg *arg = &a->args[a->n];
	arg->reserved = 0;
	arg->key = tfprof__py_utf8(key, &a->keep[a->nkeep]);
	if (!arg->key)
		return -1;
	a->nkeep++;
	if (set_value(a, arg, value))
		return -1;
	a->n++;
	return 0;
}

int tfprof__pyargs_from_vector(struct tfprof__pyargs *a, PyObject *const *values, PyObject *kwnames,
			       size_t n)
{
	if (reserve(a, n))
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (set_one(a, PyTuple_GET_ITEM(kwnames, (Py_ssize_t)i), values[i])) {
			tfprof__pyargs_clear(a);
			return -1;
		}
	}
	return 0;
}

int tfprof__pyargs_from_dict(struct tfprof__pyargs *a, PyObject *kwargs)
{
	size_t n = kwargs ? (size_t)PyDict_GET_SIZE(kwargs) : 0;
	if (reserve(a, n))
		return -1;
	Py_ssize_t pos = 0;
	PyObject *k, *v;
	while (n && PyDict_Next(kwargs, &pos, &k, &v)) {
		if (set_one(a, k, v)) {
			tfprof__pyargs_clear(a);
			return -1;
		}
	}
	return 0;
}

void tfprof__pyargs_clear(struct tfprof__pyargs *a)
{
	for (size_t i = 0; i < a->nkeep; i++)
		Py_DECREF(a->keep[i]);
	if (a->args != a->inline_args)
		PyMem_Free(a->args);
	if (a->keep != a->inline_keep)
		PyMem_Free(a->keep);
	a->args = NULL;
	a->keep = NULL;
	a->n = a->nkeep = 0;
}
