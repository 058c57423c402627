/* SPDX-License-Identifier: Apache-2.0 */
/* Tests of the NVTX ranges tfprof emits for its scopes, read back through the NVTX capture
 * library (tests/nvtx_capture), which NVTX loads as its tool: the "tfprof" domain, one push per
 * scope with the right name, literal names registered once, runtime names sent as ASCII,
 * balanced and correctly nested pushes and pops per thread, and no NVTX calls at all when no
 * session runs or the session has disable_nvtx set. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "tfprof/tfprof.h"

#ifdef TFPROF_HAVE_NVTX

#include "nvtx_capture.h"

#ifndef NVTXCAP_LIBRARY_PATH
#error "NVTXCAP_LIBRARY_PATH must name the capture library (tests/nvtx_capture/CMakeLists.txt)"
#endif

static char logdir[] = "/tmp/tfprof_test_nvtx_XXXXXX";

/* ---- Reading the capture log ---- */

/* A copy of the log; its strings stay valid until the next nvtxcap_clear(). */
struct snap {
	struct nvtxcap_entry *e;
	size_t n;
};

static struct snap snap_take(void)
{
	struct snap s = { 0 };
	size_t n = nvtxcap_count();
	s.e = calloc(n ? n : 1, sizeof(*s.e));
	assert_non_null(s.e);
	while (s.n < n && nvtxcap_get(s.n, &s.e[s.n]))
		s.n++;
	return s;
}

static void snap_free(struct snap *s)
{
	free(s->e);
	s->e = NULL;
	s->n = 0;
}

static bool in_tfprof_domain(const struct nvtxcap_entry *e)
{
	return e->domain && strcmp(e->domain, "tfprof") == 0;
}

static bool is_range_event(const struct nvtxcap_entry *e)
{
	return e->kind == NVTXCAP_PUSH || e->kind == NVTXCAP_POP;
}

/* Times text was registered as a string in the tfprof domain. */
static size_t registrations(const struct snap *s, const char *text)
{
	size_t n = 0;
	for (size_t i = 0; i < s->n; i++)
		if (s->e[i].kind == NVTXCAP_REGISTER_STRING && in_tfprof_domain(&s->e[i]) &&
		    s->e[i].message && strcmp(s->e[i].message, text) == 0)
			n++;
	return n;
}

/* Pushes named text in the tfprof domain, with any message type. */
static size_t pushes_named(const struct snap *s, const char *text, int message_type)
{
	size_t n = 0;
	for (size_t i = 0; i < s->n; i++)
		if (s->e[i].kind == NVTXCAP_PUSH && in_tfprof_domain(&s->e[i]) &&
		    s->e[i].message && strcmp(s->e[i].message, text) == 0 &&
		    (message_type < 0 || s->e[i].message_type == message_type))
			n++;
	return n;
}

/* Writes the calling order of thread tid's tfprof ranges as "+name" for a push and "-" for a
 * pop, separated by spaces, so that a test states the whole expected nesting in one string. */
static char *trace_of(const struct snap *s, pid_t tid)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	assert_non_null(f);
	const char *sep = "";
	for (size_t i = 0; i < s->n; i++) {
		const struct nvtxcap_entry *e = &s->e[i];
		if (e->tid != tid || !in_tfprof_domain(e) || !is_range_event(e))
			continue;
		if (e->kind == NVTXCAP_PUSH)
			fprintf(f, "%s+%s", sep, e->message ? e->message : "(null)");
		else
			fprintf(f, "%s-", sep);
		sep = " ";
	}
	fclose(f);
	return buf;
}

static void assert_trace(const struct snap *s, pid_t tid, const char *expected)
{
	char *got = trace_of(s, tid);
	assert_string_equal(got, expected);
	free(got);
}

/* Checks every thread's tfprof ranges: no pop without a push, the depth NVTX reports matches
 * the nesting, and nothing is left open. Returns how many threads pushed ranges. */
static size_t assert_balanced(const struct snap *s)
{
	pid_t tids[64];
	int depth[64];
	size_t nt = 0;
	for (size_t i = 0; i < s->n; i++) {
		const struct nvtxcap_entry *e = &s->e[i];
		if (!in_tfprof_domain(e) || !is_range_event(e))
			continue;
		size_t t = 0;
		while (t < nt && tids[t] != e->tid)
			t++;
		if (t == nt) {
			assert_true(nt < 64);
			tids[nt] = e->tid;
			depth[nt++] = 0;
		}
		if (e->kind == NVTXCAP_PUSH) {
			assert_int_equal(e->depth, depth[t]);
			depth[t]++;
		} else {
			assert_true(depth[t] > 0); /* a pop with nothing open */
			depth[t]--;
			assert_int_equal(e->depth, depth[t]);
		}
	}
	for (size_t t = 0; t < nt; t++)
		assert_int_equal(depth[t], 0);
	return nt;
}

static pid_t my_tid(void)
{
	return (pid_t)syscall(SYS_gettid);
}

/* ---- Sessions ---- */

static void start_session(bool disable_nvtx)
{
	TFPROF_OPTIONS(opts, .host_name = "nvtx_test", .disable_nvtx = disable_nvtx,
		       .disable_gpu = true);
	int rc = tfprof_start(logdir, &opts);
	if (rc != 0)
		fail_msg("tfprof_start: %s", tfprof_strerror(rc));
}

static void stop_session(void)
{
	int rc = tfprof_stop();
	if (rc != 0)
		fail_msg("tfprof_stop: %s", tfprof_strerror(rc));
}

/* Checks that the profile just written records each of the names: event names are plain
 * strings in the XSpace protobuf, so finding their bytes shows that the scopes were kept. */
static void assert_profile_has(const char *const *names, size_t n)
{
	const char *path = tfprof_last_output();
	assert_non_null(path);
	FILE *f = fopen(path, "rb");
	if (!f)
		fail_msg("cannot open the profile '%s': %s", path, strerror(errno));
	char *data = NULL;
	size_t len = 0, cap = 0;
	for (;;) {
		if (len == cap) {
			cap = cap ? cap * 2 : 65536;
			data = realloc(data, cap);
			assert_non_null(data);
		}
		size_t got = fread(data + len, 1, cap - len, f);
		if (got == 0)
			break;
		len += got;
	}
	fclose(f);
	for (size_t i = 0; i < n; i++)
		if (!memmem(data, len, names[i], strlen(names[i])))
			fail_msg("the profile %s does not record scope '%s'", path, names[i]);
	free(data);
}

/* Makes sure NVTX is attached and the tfprof domain exists, then empties the log, so that a
 * test which expects no NVTX calls cannot be fooled by NVTX never having started. */
static void warm_up(void)
{
	start_session(false);
	stop_session();
	assert_true(nvtxcap_is_initialized());
	nvtxcap_clear();
}

/* ---- Tests ---- */

static void test_domain_created_once(void **state)
{
	(void)state;
	start_session(false);
	stop_session();
	if (!nvtxcap_is_initialized())
		fail_msg("NVTX did not load the capture library: is NVTX_INJECTION64_PATH set, and "
			 "was libtfprof built with TFPROF_HAVE_NVTX?");
	assert_int_equal(nvtxcap_domain_created_count("tfprof"), 1);

	/* A second session reuses the domain. */
	start_session(false);
	stop_session();
	assert_int_equal(nvtxcap_domain_created_count("tfprof"), 1);
}

static void test_literal_scopes_registered_once(void **state)
{
	(void)state;
	warm_up();
	start_session(false);
	for (int i = 0; i < 3; i++) {
		TFPROF_SCOPE("nvtx_step", TFPROF_I64("step_num", i));
		{
			TFPROF_SCOPE("nvtx_inner_a");
		}
		{
			TFPROF_SCOPE("nvtx_inner_b", TFPROF_STR("k", "v"));
		}
	}
	stop_session();

	struct snap s = snap_take();
	assert_trace(&s, my_tid(),
		     "+nvtx_step +nvtx_inner_a - +nvtx_inner_b - - "
		     "+nvtx_step +nvtx_inner_a - +nvtx_inner_b - - "
		     "+nvtx_step +nvtx_inner_a - +nvtx_inner_b - -");
	assert_int_equal(assert_balanced(&s), 1);

	static const char *const names[] = { "nvtx_step", "nvtx_inner_a", "nvtx_inner_b" };
	for (size_t k = 0; k < 3; k++) {
		assert_int_equal(registrations(&s, names[k]), 1);
		assert_int_equal(pushes_named(&s, names[k], NVTXCAP_MSG_REGISTERED), 3);
	}
	/* Each push names the handle its registration returned. */
	for (size_t i = 0; i < s.n; i++) {
		if (s.e[i].kind != NVTXCAP_PUSH)
			continue;
		bool found = false;
		for (size_t j = 0; j < i; j++)
			if (s.e[j].kind == NVTXCAP_REGISTER_STRING && s.e[j].handle == s.e[i].handle)
				found = true;
		assert_true(found);
	}
	snap_free(&s);
	assert_profile_has(names, 3);
}

static void test_runtime_names_are_ascii(void **state)
{
	(void)state;
	warm_up();
	start_session(false);
	for (int i = 0; i < 2; i++) {
		char name[32];
		snprintf(name, sizeof(name), "nvtx_dyn_%d", i);
		struct tfprof_arg arg = TFPROF_I64("i", i);
		tfprof_scope outer = tfprof_scope_begin(name, &arg, 1);
		/* The scope and the NVTX tool copy the name, so the buffer may change. */
		memset(name, 'x', sizeof(name) - 1);
		{
			TFPROF_SCOPE("nvtx_lit_in_dyn");
		}
		tfprof_scope_end(outer);
	}
	tfprof_scope_end(tfprof_scope_begin(NULL, NULL, 0));
	stop_session();

	struct snap s = snap_take();
	assert_trace(&s, my_tid(),
		     "+nvtx_dyn_0 +nvtx_lit_in_dyn - - +nvtx_dyn_1 +nvtx_lit_in_dyn - - "
		     "+(unnamed) -");
	assert_int_equal(assert_balanced(&s), 1);
	assert_int_equal(pushes_named(&s, "nvtx_dyn_0", NVTXCAP_MSG_ASCII), 1);
	assert_int_equal(pushes_named(&s, "nvtx_dyn_1", NVTXCAP_MSG_ASCII), 1);
	assert_int_equal(pushes_named(&s, "(unnamed)", NVTXCAP_MSG_ASCII), 1);
	assert_int_equal(registrations(&s, "nvtx_dyn_0"), 0);
	assert_int_equal(registrations(&s, "nvtx_dyn_1"), 0);
	assert_int_equal(registrations(&s, "nvtx_lit_in_dyn"), 1);
	assert_int_equal(pushes_named(&s, "nvtx_lit_in_dyn", NVTXCAP_MSG_REGISTERED), 2);
	snap_free(&s);
	static const char *const names[] = { "nvtx_dyn_0", "nvtx_dyn_1", "nvtx_lit_in_dyn" };
	assert_profile_has(names, 3);
}

#define THREAD_ITERS 50

struct worker {
	pthread_barrier_t *barrier;
	int index;
	pid_t tid;
};

static void *worker_main(void *p)
{
	struct worker *w = p;
	w->tid = my_tid();
	/* Both threads reach their first scope together, racing for the sites' first use. */
	pthread_barrier_wait(w->barrier);
	for (int i = 0; i < THREAD_ITERS; i++) {
		TFPROF_SCOPE("nvtx_thr_outer");
		char name[32];
		snprintf(name, sizeof(name), "nvtx_thr_dyn_%d", w->index);
		tfprof_scope dyn = tfprof_scope_begin(name, NULL, 0);
		{
			TFPROF_SCOPE("nvtx_thr_inner");
		}
		tfprof_scope_end(dyn);
	}
	return NULL;
}

static void test_two_threads(void **state)
{
	(void)state;
	warm_up();
	start_session(false);
	pthread_barrier_t barrier;
	pthread_barrier_init(&barrier, NULL, 2);
	struct worker w[2] = { { &barrier, 0, 0 }, { &barrier, 1, 0 } };
	pthread_t th[2];
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	pthread_barrier_destroy(&barrier);
	stop_session();

	struct snap s = snap_take();
	assert_int_equal(assert_balanced(&s), 2);
	for (int t = 0; t < 2; t++) {
		char one[128], expected[THREAD_ITERS * sizeof(one)];
		snprintf(one, sizeof(one), "+nvtx_thr_outer +nvtx_thr_dyn_%d +nvtx_thr_inner - - -",
			 t);
		expected[0] = '\0';
		for (int i = 0; i < THREAD_ITERS; i++) {
			if (i)
				strcat(expected, " ");
			strcat(expected, one);
		}
		assert_trace(&s, w[t].tid, expected);
	}
	/* Both threads used each literal site first at about the same time: it is registered
	 * once all the same. A thread that finds the registration under way pushes that range
	 * as ASCII instead of waiting, so the literals are REGISTERED or ASCII, never anything
	 * else, and mostly REGISTERED. */
	static const char *const lits[] = { "nvtx_thr_outer", "nvtx_thr_inner" };
	for (size_t k = 0; k < 2; k++) {
		assert_int_equal(registrations(&s, lits[k]), 1);
		size_t reg = pushes_named(&s, lits[k], NVTXCAP_MSG_REGISTERED);
		size_t ascii = pushes_named(&s, lits[k], NVTXCAP_MSG_ASCII);
		assert_int_equal(reg + ascii, 2 * THREAD_ITERS);
		assert_true(reg >= THREAD_ITERS);
	}
	assert_int_equal(pushes_named(&s, "nvtx_thr_dyn_0", NVTXCAP_MSG_ASCII), THREAD_ITERS);
	assert_int_equal(pushes_named(&s, "nvtx_thr_dyn_1", NVTXCAP_MSG_ASCII), THREAD_ITERS);
	snap_free(&s);
}

static void reused_site(void)
{
	TFPROF_SCOPE("nvtx_reused");
}

static void test_site_registered_once_across_sessions(void **state)
{
	(void)state;
	warm_up();
	start_session(false);
	reused_site();
	stop_session();
	start_session(false);
	for (int i = 0; i < 3; i++)
		reused_site();
	stop_session();

	struct snap s = snap_take();
	assert_int_equal(registrations(&s, "nvtx_reused"), 1);
	assert_int_equal(pushes_named(&s, "nvtx_reused", NVTXCAP_MSG_REGISTERED), 4);
	assert_trace(&s, my_tid(), "+nvtx_reused - +nvtx_reused - +nvtx_reused - +nvtx_reused -");
	snap_free(&s);
}

static void test_disable_nvtx(void **state)
{
	(void)state;
	warm_up();
	start_session(true);
	{
		TFPROF_SCOPE("nvtx_off_outer");
		tfprof_scope dyn = tfprof_scope_begin("nvtx_off_dyn", NULL, 0);
		{
			TFPROF_SCOPE("nvtx_off_inner");
		}
		tfprof_scope_end(dyn);
	}
	stop_session();
	assert_int_equal(nvtxcap_count(), 0);
	/* The scopes are recorded all the same. */
	static const char *const names[] = { "nvtx_off_outer", "nvtx_off_dyn", "nvtx_off_inner" };
	assert_profile_has(names, 3);

	/* The next session with NVTX on emits ranges again. */
	start_session(false);
	{
		TFPROF_SCOPE("nvtx_on_again");
	}
	stop_session();
	struct snap s = snap_take();
	assert_trace(&s, my_tid(), "+nvtx_on_again -");
	snap_free(&s);
}

static void test_no_session_no_nvtx(void **state)
{
	(void)state;
	warm_up();
	for (int i = 0; i < 3; i++) {
		TFPROF_SCOPE("nvtx_idle_outer");
		tfprof_scope dyn = tfprof_scope_begin("nvtx_idle_dyn", NULL, 0);
		{
			TFPROF_SCOPE("nvtx_idle_inner");
		}
		tfprof_scope_end(dyn);
	}
	assert_int_equal(nvtxcap_count(), 0);
}

struct ender {
	tfprof_scope s;
};

static void *end_elsewhere(void *p)
{
	tfprof_scope_end(((struct ender *)p)->s);
	return NULL;
}

/* Scopes ended out of order, twice, or on another thread must leave NVTX's per-thread stack
 * balanced: every push is popped once, on its own thread, innermost first. */
static void test_bad_ends_keep_nvtx_balanced(void **state)
{
	(void)state;
	warm_up();
	start_session(false);

	/* Ending an outer scope first closes the inner one too: two pops. */
	tfprof_scope outer = tfprof_scope_begin("nvtx_mis_outer", NULL, 0);
	tfprof_scope inner = tfprof_scope_begin("nvtx_mis_inner", NULL, 0);
	tfprof_scope_end(outer);
	tfprof_scope_end(inner); /* already closed: ignored */
	tfprof_scope_end(outer); /* a second end: ignored */

	/* An end on another thread is ignored; the owner's end pops on the owner's thread. */
	struct ender e = { tfprof_scope_begin("nvtx_cross", NULL, 0) };
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, end_elsewhere, &e), 0);
	pthread_join(th, NULL);
	tfprof_scope_end(e.s);
	stop_session();

	struct snap s = snap_take();
	assert_trace(&s, my_tid(), "+nvtx_mis_outer +nvtx_mis_inner - - +nvtx_cross -");
	assert_int_equal(assert_balanced(&s), 1);
	snap_free(&s);
}

/* A scope still open at tfprof_stop() was pushed to NVTX; its end after the stop still pops it,
 * or every later range on this thread would nest inside it in Nsight. */
static void test_scope_open_at_stop_is_popped(void **state)
{
	(void)state;
	warm_up();
	start_session(false);
	tfprof_scope open = tfprof_scope_begin("nvtx_open_at_stop", NULL, 0);
	stop_session();
	tfprof_scope_end(open);

	struct snap s = snap_take();
	assert_trace(&s, my_tid(), "+nvtx_open_at_stop -");
	assert_int_equal(assert_balanced(&s), 1);
	snap_free(&s);
}

/* ---- Fixtures ---- */

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int group_setup(void **state)
{
	(void)state;
	return mkdtemp(logdir) ? 0 : -1;
}

static int group_teardown(void **state)
{
	(void)state;
	nftw(logdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}

int main(void)
{
	/* First of all: NVTX reads this once per module, at that module's first NVTX call, and
	 * libtfprof's first NVTX call is in the first tfprof_start(). CTest sets it as well. */
	setenv("NVTX_INJECTION64_PATH", NVTXCAP_LIBRARY_PATH, 1);

	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_domain_created_once),
		cmocka_unit_test(test_literal_scopes_registered_once),
		cmocka_unit_test(test_runtime_names_are_ascii),
		cmocka_unit_test(test_two_threads),
		cmocka_unit_test(test_site_registered_once_across_sessions),
		cmocka_unit_test(test_disable_nvtx),
		cmocka_unit_test(test_no_session_no_nvtx),
		cmocka_unit_test(test_bad_ends_keep_nvtx_balanced),
		cmocka_unit_test(test_scope_open_at_stop_is_popped),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

#else /* !TFPROF_HAVE_NVTX */

static void test_nvtx_unavailable(void **state)
{
	(void)state;
	skip(); /* libtfprof was built without the NVTX3 headers */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_nvtx_unavailable),
	};
	cmocka_run_group_tests(tests, NULL, NULL);
	return 77; /* CTest's SKIP_RETURN_CODE: shown as skipped, not passed */
}

#endif /* TFPROF_HAVE_NVTX */
