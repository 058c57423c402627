/* SPDX-License-Identifier: Apache-2.0 */
/* Tests of the host tracer: several threads recording at once, nesting, threads that exit before
 * stop, thread names, the memory bound with exact drop counts (also with thousands of
 * short-lived threads, and what their bookkeeping costs), and how long a stop takes while 64
 * threads record without pause. */
#include <pthread.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "merge.h"
#include "tracer.h"
#include "tt.h"

#define NTHREADS 6
#define STEPS 2000

struct worker {
	int index;
	int64_t tid;
	pthread_barrier_t *go;
};

/* Each step: a step scope with nested forward/backward, the backward one named at run time. */
static void *worker_main(void *arg)
{
	struct worker *w = arg;
	w->tid = (int64_t)syscall(SYS_gettid);
	char name[32];
	snprintf(name, sizeof name, "worker-%d", w->index);
	tfprof_set_thread_name(name);
	pthread_barrier_wait(w->go);
	for (int i = 0; i < STEPS; i++) {
		TFPROF_SCOPE("step", TFPROF_I64("step_num", i), TFPROF_I64("worker", w->index));
		{
			TFPROF_SCOPE("forward", TFPROF_U64("i", (uint64_t)i));
		}
		char dyn[32];
		snprintf(dyn, sizeof dyn, "backward-%d", w->index);
		tfprof_scope b = tfprof_scope_begin(dyn, NULL, 0);
		tfprof_scope_end(b);
	}
	return NULL;
}

static void test_threads_record_concurrently(void **state)
{
	(void)state;
	assert_int_equal(tfprof_start(tt_logdir, NULL), 0);
	pthread_t t[NTHREADS];
	struct worker w[NTHREADS];
	pthread_barrier_t go;
	pthread_barrier_init(&go, NULL, NTHREADS);
	for (int i = 0; i < NTHREADS; i++) {
		w[i] = (struct worker){ .index = i, .go = &go };
		pthread_create(&t[i], NULL, worker_main, &w[i]);
	}
	/* Threads that exit before stop keep their events. */
	for (int i = 0; i < NTHREADS; i++)
		pthread_join(t[i], NULL);
	pthread_barrier_destroy(&go);
	XSpace *s = tt_stop_and_read();
	const XPlane *h = tt_host(s);
	assert_int_equal(tt_count_events(h, "step"), NTHREADS * STEPS);
	assert_int_equal(tt_count_events(h, "forward"), NTHREADS * STEPS);
	for (int i = 0; i < NTHREADS; i++) {
		const XLine *l = tt_line(h, w[i].tid);
		assert_non_null(l);
		char name[32];
		snprintf(name, sizeof name, "worker-%d", i);
		assert_string_equal(l->name, name);
		assert_int_equal(l->n_events, 3 * STEPS);
		snprintf(name, sizeof name, "backward-%d", i);
		for (int k = 0; k < STEPS; k++) {
			const XEvent *step = l->events[3 * k], *fwd = l->events[3 * k + 1],
				     *bwd = l->events[3 * k + 2];
			assert_string_equal(tt_event_name(h, step), "step");
			assert_string_equal(tt_event_name(h, fwd), "forward");
			assert_string_equal(tt_event_name(h, bwd), name);
			assert_int_equal(tt_event_stat(h, step, "step_num")->int64_value, k);
			assert_int_equal(tt_event_stat(h, step, "worker")->int64_value, i);
			assert_int_equal(tt_event_stat(h, fwd, "i")->uint64_value, (uint64_t)k);
			/* forward and backward nest inside their step, one after the other. */
			assert_true(tt_event_start_ps(l, fwd) >= tt_event_start_ps(l, step));
			assert_true(tt_event_end_ps(l, fwd) <= tt_event_start_ps(l, bwd));
			assert_true(tt_event_end_ps(l, bwd) <= tt_event_end_ps(l, step));
		}
	}
	assert_int_equal(tt_warning_count(s, "dropped"), -1);
	tt_xspace_free(s);
}

static void test_deep_nesting(void **state)
{
	(void)state;
	assert_int_equal(tfprof_start(tt_logdir, NULL), 0);
	tfprof_scope h[40];
	for (int i = 0; i < 40; i++)
		h[i] = tfprof_scope_begin("level", (struct tfprof_arg[]){ TFPROF_I64("depth", i) }, 1);
	for (int i = 39; i >= 0; i--)
		tfprof_scope_end(h[i]);
	XSpace *s = tt_stop_and_read(); /* tt_check_well_formed checks the nesting */
	const XLine *l = tt_my_line(s);
	assert_int_equal(l->n_events, 40);
	for (int i = 0; i < 40; i++) {
		assert_int_equal(tt_event_stat(tt_host(s), l->events[i], "depth")->int64_value, i);
		if (i)
			assert_true(tt_event_end_ps(l, l->events[i]) <= tt_event_end_ps(l, l->events[i - 1]));
	}
	tt_xspace_free(s);
}

static void test_too_deep_is_not_a_memory_drop(void **state)
{
	(void)state;
	assert_int_equal(tfprof_start(tt_logdir, NULL), 0);
	tfprof_scope h[300];
	for (int i = 0; i < 300; i++)
		h[i] = tfprof_scope_begin("deep", NULL, 0);
	for (int i = 299; i >= 0; i--)
		tfprof_scope_end(h[i]);
	XSpace *s = tt_stop_and_read();
	assert_int_equal(tt_count_events(tt_host(s), "deep"), 256);
	assert_int_equal(tt_warning_count(s, "nested deeper than 256"), 44);
	assert_int_equal(tt_warning_count(s, "buffers reached their limit"), -1);
	/* Ends of the scopes that were not recorded are no-ops, not ignored ends. */
	assert_int_equal(tt_warning_count(s, "ignored: ended on another thread"), -1);
	tt_xspace_free(s);
}

struct bound_worker {
	uint64_t emitted;
	pthread_barrier_t *go;
};

static void *bound_main(void *arg)
{
	struct bound_worker *w = arg;
	pthread_barrier_wait(w->go);
	for (int i = 0; i < 20000; i++) {
		TFPROF_SCOPE("bounded", TFPROF_I64("i", i));
		w->emitted++;
	}
	return NULL;
}

static void test_memory_bound_and_exact_drops(void **state)
{
	(void)state;
	const size_t bound = 256 * 1024;
	TFPROF_OPTIONS(o, .max_memory = bound);
	assert_int_equal(tfprof_start(tt_logdir, &o), 0);
	pthread_t t[4];
	struct bound_worker w[4];
	pthread_barrier_t go;
	pthread_barrier_init(&go, NULL, 4);
	for (int i = 0; i < 4; i++) {
		w[i] = (struct bound_worker){ .go = &go };
		pthread_create(&t[i], NULL, bound_main, &w[i]);
	}
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	pthread_barrier_destroy(&go);
	XSpace *s = tt_stop_and_read();
	/* The bound holds for everything the session reserved. */
	assert_true(tfprof__tracer_reserved_bytes() <= bound);
	uint64_t emitted = 0;
	for (int i = 0; i < 4; i++)
		emitted += w[i].emitted;
	long long recorded = (long long)tt_count_events(tt_host(s), "bounded");
	long long dropped = tt_warning_count(s, "dropped because the event buffers reached");
	assert_true(recorded > 0);
	assert_true(dropped > 0);
	assert_int_equal(recorded + dropped, emitted);
	/* The warning names the total too, and how to raise the limit. */
	const char *wmsg = tt_find_msg(s->warnings, s->n_warnings, "dropped because the event buffers reached");
	char total[64];
	snprintf(total, sizeof total, "of %llu", (unsigned long long)emitted);
	assert_non_null(strstr(wmsg, total));
	assert_non_null(strstr(wmsg, "TFPROF_MAX_MEMORY_MB"));
	tt_xspace_free(s);

	/* The next session starts with the whole budget again. */
	assert_int_equal(tfprof_start(tt_logdir, &o), 0);
	TFPROF_SCOPE("after_bound");
	s = tt_stop_and_read();
	assert_int_equal(tt_count_events(tt_host(s), "after_bound"), 1);
	assert_int_equal(tt_warning_count(s, "dropped"), -1);
	tt_xspace_free(s);
}

static void test_env_memory_bound(void **state)
{
	(void)state;
	setenv("TFPROF_MAX_MEMORY_MB", "1", 1);
	assert_int_equal(tfprof_start(tt_logdir, NULL), 0);
	for (int i = 0; i < 100000; i++) {
		TFPROF_SCOPE("env_bounded", TFPROF_I64("i", i));
	}
	XSpace *s = tt_stop_and_read();
	unsetenv("TFPROF_MAX_MEMORY_MB");
	assert_true(tfprof__tracer_reserved_bytes() <= (1u << 20));
	long long recorded = (long long)tt_count_events(tt_host(s), "env_bounded");
	assert_int_equal(recorded + tt_warning_count(s, "dropped because the event buffers reached"), 100000);
	tt_xspace_free(s);
}

static void *short_lived(void *arg)
{
	(void)arg;
	tfprof_set_thread_name("short-lived");
	TFPROF_SCOPE("from_exited_thread", TFPROF_STR("note", "kept"));
	return NULL;
}

static void test_exited_threads_keep_events(void **state)
{
	(void)state;
	assert_int_equal(tfprof_start(tt_logdir, NULL), 0);
	for (int i = 0; i < 8; i++) {
		pthread_t t;
		pthread_create(&t, NULL, short_lived, NULL);
		pthread_join(t, NULL);
	}
	XSpace *s = tt_stop_and_read();
	const XPlane *h = tt_host(s);
	assert_int_equal(tt_count_events(h, "from_exited_thread"), 8);
	size_t named = 0;
	for (size_t i = 0; i < h->n_lines; i++)
		named += strcmp(h->lines[i]->name, "short-lived") == 0;
	assert_int_equal(named, 8);
	tt_xspace_free(s);
}

/* ---- Many short-lived threads ---- */

struct wave {
	int scopes;
	pthread_barrier_t *go;
};

static void *one_shot(void *arg)
{
	struct wave *w = arg;
	for (int i = 0; i < w->scopes; i++) {
		TFPROF_SCOPE("short", TFPROF_I64("i", i));
	}
	return NULL;
}

/* Runs nthreads threads of scopes scopes each, 64 alive at a time. */
static void run_waves(int nthreads, int scopes)
{
	struct wave w = { .scopes = scopes };
	for (int done = 0; done < nthreads;) {
		pthread_t t[64];
		int n = nthreads - done < 64 ? nthreads - done : 64;
		for (int i = 0; i < n; i++)
			assert_int_equal(pthread_create(&t[i], NULL, one_shot, &w), 0);
		for (int i = 0; i < n; i++)
			pthread_join(t[i], NULL);
		done += n;
	}
}

/* Each thread's line, its id unique in the plane even where the kernel gave two threads the
 * same tid; returns the number of events named name. */
static long long count_unique_lines(const XSpace *s, const char *name, size_t *lines)
{
	const XPlane *h = tt_host(s);
	for (size_t i = 0; i < h->n_lines; i++)
		for (size_t k = i + 1; k < h->n_lines; k++)
			if (h->lines[i]->id == h->lines[k]->id)
				fail_msg("two lines with id %lld", (long long)h->lines[i]->id);
	*lines = h->n_lines;
	return (long long)tt_count_events(h, name);
}

static void test_short_lived_threads_fit_the_bound(void **state)
{
	(void)state;
	/* Far under the default 256 MiB bound: every scope is kept. */
	const int cases[][2] = { { 3000, 1 }, { 10000, 10 } };
	for (size_t c = 0; c < 2; c++) {
		assert_int_equal(tfprof_start(tt_logdir, NULL), 0);
		run_waves(cases[c][0], cases[c][1]);
		XSpace *s = tt_stop_and_read();
		size_t lines;
		long long recorded = count_unique_lines(s, "short", &lines);
		printf("{\"threads\":%d,\"scopes_each\":%d,\"recorded\":%lld,\"dropped\":%lld}\n", cases[c][0],
		       cases[c][1], recorded, tt_warning_count(s, "dropped because the event buffers reached"));
		assert_int_equal(recorded, (long long)cases[c][0] * cases[c][1]);
		assert_int_equal(tt_warning_count(s, "dropped"), -1);
		/* One line per thread instance (and one for this thread, which recorded nothing). */
		assert_true(lines >= (size_t)cases[c][0]);
		tt_xspace_free(s);
	}
}

/* Resets the process's peak RSS to its current RSS (Linux >= 4.0), so that VmHWM measures one
 * test and not the ones before it. */
static void reset_hwm(void)
{
	FILE *f = fopen("/proc/self/clear_refs", "w");
	assert_non_null(f);
	assert_true(fputs("5", f) >= 0);
	assert_int_equal(fclose(f), 0);
}

static void test_thread_bookkeeping_counts_in_the_bound(void **state)
{
	(void)state;
	/* 20,000 threads under an 8 MiB bound: what each thread leaves until the stop counts in
	 * the bound, so the process grows by about the bound, not by the threads' bookkeeping;
	 * and every scope is kept or counted as dropped. */
	const size_t bound = 8u << 20;
	const int nthreads = 20000, scopes = 4;
	reset_hwm();
	long before = tt_peak_rss_kb();
	TFPROF_OPTIONS(o, .max_memory = bound);
	assert_int_equal(tfprof_start(tt_logdir, &o), 0);
	run_waves(nthreads, scopes);
	long during = tt_peak_rss_kb();
	XSpace *s = tt_stop_and_read();
	size_t lines;
	long long recorded = count_unique_lines(s, "short", &lines);
	long long dropped = tt_warning_count(s, "dropped because the event buffers reached");
	if (dropped < 0)
		dropped = 0;
	printf("{\"threads\":%d,\"bound_mib\":8,\"recorded\":%lld,\"dropped\":%lld,\"hwm_growth_mib\":%.1f}\n",
	       nthreads, recorded, dropped, (double)(during - before) / 1024);
	assert_int_equal(recorded + dropped, (long long)nthreads * scopes);
	/* Thread stacks come and go (64 at a time, 8 MiB of address space each, little touched);
	 * 4x the bound leaves room for them and for malloc's slack. Under AddressSanitizer the
	 * runtime's own per-thread memory (allocator caches, quarantine) grew the process by
	 * 10-58 MiB from run to run against 0.2-0.5 MiB in the normal build: the bound would measure
	 * the sanitizer, not tfprof, so only the normal build's run checks it. */
#if !defined(__SANITIZE_ADDRESS__)
	assert_true(during - before < (long)(4 * bound / 1024));
#endif
	tt_xspace_free(s);
}

/* Threads whose tid the kernel reused (ids wrap at pid_max) get lines of their own: unique ids
 * that stay unique in xprof, which keeps 32 bits of a line id, and names that show the tid. */
static void test_reused_tids_get_lines_of_their_own(void **state)
{
	(void)state;
	struct tfprof__thread_harvest h[4] = { 0 };
	const int64_t tids[4] = { 77, 77, 78, 77 };
	const char *names[4] = { "live", "exited-1", "other", "exited-2" };
	for (int i = 0; i < 4; i++) {
		h[i].tid = tids[i];
		snprintf(h[i].name, sizeof h[i].name, "%s", names[i]);
	}
	struct tfprof__profile p;
	assert_int_equal(tfprof__profile_init(&p), 0);
	struct tfprof__timebase tb = { .begin = { 0, 0, 0 }, .end = { 1000, 1000, 1000 } };
	struct tfprof__host_counts counts;
	assert_int_equal(tfprof__merge_host(&p, &tb, 1000, h, 4, &counts, NULL), 0);
	const struct tfprof__plane *pl = &p.planes[p.nplanes - 1];
	assert_int_equal(pl->nlines, 4);
	const char *want[4] = { "live (tid 77)", "exited-1 (tid 77)", "other", "exited-2 (tid 77)" };
	for (size_t i = 0; i < 4; i++) {
		assert_string_equal(tfprof__strtab_get(&p.strs, pl->lines[i].name), want[i]);
		assert_true(pl->lines[i].id > 0 && pl->lines[i].id < ((int64_t)1 << 31));
		for (size_t k = 0; k < i; k++)
			assert_true((uint32_t)pl->lines[i].id != (uint32_t)pl->lines[k].id);
	}
	/* The first thread with the tid keeps it, as does a tid no one else had. */
	assert_int_equal(pl->lines[0].id, 77);
	assert_int_equal(pl->lines[2].id, 78);
	tfprof__profile_free(&p);
}

/* ---- Stop while 64 threads record without pause ---- */

static volatile int busy_run;

static void *busy(void *arg)
{
	(void)arg;
	while (busy_run) {
		TFPROF_SCOPE("busy", TFPROF_I64("x", 1));
	}
	return NULL;
}

static double now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static void test_stop_under_load(void **state)
{
	(void)state;
#if defined(__SANITIZE_ADDRESS__)
	/* A latency under AddressSanitizer says nothing about the quiesce; the normal build's run
	 * of this test measures it, and the sanitized one checks memory elsewhere. */
	skip();
#endif
	busy_run = 1;
	pthread_t t[64];
	for (int i = 0; i < 64; i++)
		assert_int_equal(pthread_create(&t[i], NULL, busy, NULL), 0);
	double worst = 0, worst_quiesce = 0;
	for (int r = 0; r < 5; r++) {
		/* 16 MiB: about 350,000 busy scopes of 48 bytes, what 32 MiB held when records were
		 * 88 bytes and the 20 s below was set. */
		TFPROF_OPTIONS(o, .max_memory = 16u << 20);
		assert_int_equal(tfprof_start(tt_logdir, &o), 0);
		usleep(5000);
		double t0 = now_ms();
		assert_int_equal(tfprof_stop(), 0);
		double ms = now_ms() - t0, q = (double)tfprof__tracer_last_quiesce_ns() / 1e6;
		printf("{\"stop_under_load\":true,\"threads\":64,\"run\":%d,\"quiesce_ms\":%.2f,\"stop_ms\":%.1f}\n",
		       r, q, ms);
		if (ms > worst)
			worst = ms;
		if (q > worst_quiesce)
			worst_quiesce = q;
	}
	busy_run = 0;
	for (int i = 0; i < 64; i++)
		pthread_join(t[i], NULL);
	/* The quiesce waits for every recorder that was preempted inside an operation to run once
	 * more, all of them at once: about one scheduler round of the busy threads (README: 40-900
	 * ms measured here with 64 threads on 2 vCPUs); 3 s allows for a loaded machine. The rest
	 * of the stop merges and writes what was recorded at the stopper's fair share of the CPUs
	 * (1/33 of a core here), so it scales with the events, not the threads: 20 s for 16 MiB. */
	assert_true(worst_quiesce < 3000);
	assert_true(worst < 20000);
}

static void test_default_thread_name_is_os_name(void **state)
{
	(void)state;
	pthread_setname_np(pthread_self(), "os-named");
	assert_int_equal(tfprof_start(tt_logdir, NULL), 0);
	TFPROF_SCOPE("x");
	XSpace *s = tt_stop_and_read();
	assert_string_equal(tt_my_line(s)->name, "os-named");
	tt_xspace_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_default_thread_name_is_os_name, tt_setup, tt_teardown),
		cmocka_unit_test_setup_teardown(test_threads_record_concurrently, tt_setup, tt_teardown),
		cmocka_unit_test_setup_teardown(test_deep_nesting, tt_setup, tt_teardown),
		cmocka_unit_test_setup_teardown(test_too_deep_is_not_a_memory_drop, tt_setup, tt_teardown),
		cmocka_unit_test_setup_teardown(test_memory_bound_and_exact_drops, tt_setup, tt_teardown),
		cmocka_unit_test_setup_teardown(test_env_memory_bound, tt_setup, tt_teardown),
		cmocka_unit_test_setup_teardown(test_exited_threads_keep_events, tt_setup, tt_teardown),
		cmocka_unit_test_setup_teardown(test_short_lived_threads_fit_the_bound, tt_setup, tt_teardown),
		cmocka_unit_test_setup_teardown(test_thread_bookkeeping_counts_in_the_bound, tt_setup, tt_teardown),
		cmocka_unit_test_setup_teardown(test_reused_tids_get_lines_of_their_own, tt_setup, tt_teardown),
		cmocka_unit_test_setup_teardown(test_stop_under_load, tt_setup, tt_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
