/* SPDX-License-Identifier: Apache-2.0 */
/* A million simulated kernels end to end under a small memory bound: memory stays bounded by the
 * option, not by the workload, and every kernel is either in the profile or counted as dropped,
 * on the host side (launch events) and on the device side (activity records) alike. Its own
 * binary, so that the process's peak memory is this test's. */
#include <inttypes.h>

#include "cupti_sim.h"
#include "tt.h"

#define KERNELS 1000000
#define BOUND ((size_t)32 << 20)

/* The count in the warning that contains needle, 0 if no warning does. */
static long long count_in(const XSpace *s, const char *needle)
{
	long long n = tt_warning_count(s, needle);
	return n < 0 ? 0 : n;
}

static void test_million_kernels_bounded(void **state)
{
	(void)state;
	char *dir = tt_scratch_dir("million");
	int dev = tfsim_device_add(NULL);
	uint32_t st[2] = { tfsim_stream_create(dev), tfsim_stream_create(dev) };
	long before = tt_peak_rss_kb();
	TFPROF_OPTIONS(o, .max_memory = BOUND);
	assert_int_equal(tfprof_start(dir, &o), 0);
	const struct tfsim_dim3 g = { 1, 1, 1 }, b = { 32, 1, 1 };
	for (int step = 0; step < KERNELS / 1000; step++) {
		TFPROF_SCOPE("Train", TFPROF_I64("step_num", step));
		for (int k = 0; k < 1000; k++)
			tfsim_launch_kernel(st[k & 1], "_Z6kernelv", g, b, 500);
	}
	XSpace *s = tt_stop_and_read();
	long grown_mb = (tt_peak_rss_kb() - before) / 1024;
	const XPlane *h = tt_host(s), *gp = tt_plane(s, "/device:GPU:0");
	assert_non_null(gp);
	long long host_kernels = (long long)tt_count_events(h, "kernel()");
	long long dev_kernels = (long long)tt_count_events(gp, "kernel()");
	/* The host side: steps and launches share one bound; what did not fit is counted. */
	long long host_dropped = tt_warning_count(s, "dropped because the event buffers reached");
	long long steps = (long long)tt_count_events(h, "Train");
	assert_true(host_dropped > 0);
	assert_int_equal(host_kernels + steps + host_dropped, KERNELS + KERNELS / 1000);
	/* The device side: decoded events beyond the bound, or records CUPTI could not buffer (a
	 * refused buffer request shows up there, as the records it cost). */
	long long dev_dropped = count_in(s, "dropped because decoded device events") +
				count_in(s, "dropped by CUPTI for lack");
	struct tfsim_stats ss;
	tfsim_stats(&ss);
	/* Besides the kernels, the simulator also produced device, context and overhead records;
	 * drop counts cover every record kind. So kept kernels and drops add up to at least the
	 * kernels launched and at most everything produced. */
	long long other = (long long)ss.records_produced - KERNELS;
	assert_true(other >= 0);
	assert_true(dev_kernels + dev_dropped >= KERNELS);
	assert_true(dev_kernels + dev_dropped <= KERNELS + other);
	assert_true(dev_kernels > 0);
	print_message("host: %lld launches kept, %lld dropped; device: %lld kernels kept, %lld dropped; "
		      "peak memory grew %ld MiB with a %zu MiB bound\n",
		      host_kernels, host_dropped, dev_kernels, dev_dropped, grown_mb, BOUND >> 20);
	/* Unbounded, a million kernels take well over 1 GiB through merge and write. Bounded, the
	 * growth follows the bound: the host and device buffers (one bound each), CUPTI's buffer
	 * pool (64 MiB), then the merged model and encoder of what was kept (about 10x). */
	tt_xspace_free(s);
#ifndef __SANITIZE_ADDRESS__
	/* AddressSanitizer's redzones and quarantine multiply the footprint: no bound to check. */
	assert_true(grown_mb < 16 * (long)(BOUND >> 20));
#endif
	tt_rm_rf(dir);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = { cmocka_unit_test(test_million_kernels_bounded) };
	return cmocka_run_group_tests(tests, NULL, NULL);
}
