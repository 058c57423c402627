/* SPDX-License-Identifier: Apache-2.0 */
/* Shared types of tfprof-report: the profiles it loaded (one XSpace per host), the device work it
 * found on the GPU planes, and the per-host analysis (steps, summary, kernel and copy tables)
 * that the formatters print. Everything is looked up by metadata NAME, never by id, because
 * TensorFlow, JAX and tfprof number their metadata differently.
 *
 * Ownership: every struct here owns what it points to and is freed by its *_free function. The
 * tool is single-threaded. Times are picoseconds since the profile's time base (the XSpace's own
 * unit), converted to ns or ms only when printed. */
#ifndef TFPROF_CLI_REPORT_H
#define TFPROF_CLI_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "xplane.pb-c.h"

typedef Tensorflow__Profiler__XSpace XSpace;
typedef Tensorflow__Profiler__XPlane XPlane;
typedef Tensorflow__Profiler__XLine XLine;
typedef Tensorflow__Profiler__XEvent XEvent;
typedef Tensorflow__Profiler__XStat XStat;

/* Exit codes: 2 for anything the user can fix (usage, bad or missing input), 1 for failures of
 * the tool itself (out of memory, cannot write the output). */
enum { RP_EXIT_OK = 0, RP_EXIT_FAIL = 1, RP_EXIT_BAD_INPUT = 2, RP_EXIT_SLOWER = 3 };

/* ---- report_util.c ---------------------------------------------------------------------- */

/* Allocation that cannot fail: on exhaustion the tool prints one line and exits 1, because a
 * report without its data is worth nothing and partial output would mislead. */
void *rp_xmalloc(size_t n);
void *rp_xcalloc(size_t n, size_t size);
void *rp_xrealloc(void *p, size_t n);
char *rp_xstrdup(const char *s);
/* Grows *v (of *cap elements of size sz) so that it holds at least need elements. */
void rp_grow(void **v, size_t *cap, size_t need, size_t sz);

/* Interned strings: equal strings get equal ids, ids are dense from 0. */
struct rp_strtab {
	char **s;
	size_t n, cap;
	uint32_t *slots; /* open addressing: id + 1, 0 = empty */
	size_t nslots;
};
uint32_t rp_intern(struct rp_strtab *t, const char *s);
void rp_strtab_free(struct rp_strtab *t);

/* Name lookups inside one plane (metadata maps are unsorted on the wire). */
struct rp_plane_index {
	const XPlane *plane;
	int64_t *ev_ids;          /* sorted event metadata ids */
	const char **ev_names;    /* the event metadata at the same position: name */
	const char **ev_display;  /* and display_name ("" when unset) */
	const Tensorflow__Profiler__XEventMetadata **ev_meta; /* and the metadata itself (may be NULL) */
	size_t nev;
	int64_t *st_ids;          /* sorted stat metadata ids */
	const char **st_names;
	size_t nst;
};
void rp_plane_index_init(struct rp_plane_index *ix, const XPlane *p);
void rp_plane_index_free(struct rp_plane_index *ix);
/* The event metadata's name / display name, or NULL when the id is not defined. */
const char *rp_event_name(const struct rp_plane_index *ix, int64_t id, const char **display);
const char *rp_stat_name(const struct rp_plane_index *ix, int64_t id);
/* The event metadata with this id (its stats apply to every event that uses it), or NULL. */
const Tensorflow__Profiler__XEventMetadata *rp_event_meta(const struct rp_plane_index *ix, int64_t id);
/* The id of the stat metadata with this name (case-insensitive), or INT64_MIN when absent. */
int64_t rp_stat_id(const struct rp_plane_index *ix, const char *name);

/* A stat's value as an integer: int64, uint64, a double that is whole, or a string (also through
 * ref_value) that parses as one. Returns false when the stat holds no integer. */
bool rp_stat_int(const struct rp_plane_index *ix, const XStat *s, int64_t *out);
/* A stat's string value (str_value, or the name that ref_value points at), or NULL. */
const char *rp_stat_str(const struct rp_plane_index *ix, const XStat *s);

/* Event start and end in ps: line.timestamp_ns * 1000 + offset_ps, end = start + duration,
 * clamped to +-RP_TIME_LIMIT (about 13 days from the profile's time base; only corrupt files
 * reach it) so that the difference of any two times fits in an int64. */
#define RP_TIME_LIMIT ((int64_t)1 << 60)
int64_t rp_event_start(const XLine *l, const XEvent *e);
int64_t rp_event_end(const XLine *l, const XEvent *e);
/* a + b, saturating: sums of many durations from a corrupt file must not overflow. */
int64_t rp_sat_add(int64_t a, int64_t b);

/* Length of the valid UTF-8 sequence at s (1 to 4), or 0 when the bytes there are not one
 * (overlong forms, surrogates and code points above U+10FFFF are not). s is NUL-terminated. */
size_t rp_utf8_len(const unsigned char *s);

/* ---- report_outfile.c: output files --------------------------------------------------------- */

/* An output file that appears whole or not at all: it is written to "<path>.tmp.XXXXXX" in the
 * same folder and renamed over path by rp_outfile_commit, so a failed run never leaves half a
 * file (a pipe or device such as /dev/stdout is written in place instead). The struct owns f and
 * tmp until commit or abort; path is borrowed and must outlive it. */
struct rp_outfile {
	FILE *f;          /* write here */
	char *tmp;        /* the temporary file's name, "" when path is written in place */
	const char *path;
};
/* option names the command-line option in messages ("--svg"); gzip compresses what is written to
 * f. Returns 0, or -1 with a one-line
 * message in err when path cannot be written (a directory, a missing or read-only folder): a
 * mistake the user can fix. */
int rp_outfile_open(struct rp_outfile *o, const char *path, const char *option, bool gzip, char *err,
		    size_t errlen);
/* Flushes and closes f and renames the file into place. Returns 0, or -1 with a one-line message
 * in err (a write failed: disk full, I/O error), having removed the temporary file. */
int rp_outfile_commit(struct rp_outfile *o, char *err, size_t errlen);
/* Closes f and removes the temporary file; for a writer that gives up before commit. */
void rp_outfile_abort(struct rp_outfile *o);

/* ---- report_wire.c: an XSpace whose events stay encoded until walked ---------------------- */

struct rp_line {
	XLine *hdr;          /* the line's own fields (id, names, timestamp_ns); hdr->n_events is 0 */
	const uint8_t *body; /* the line's encoded message inside the file's bytes */
	size_t len;
	size_t n_events;
	bool mapped;         /* body is in a mapped file: walks release the pages behind them */
};

struct rp_plane {
	XPlane *hdr;         /* id, name, metadata and stats; hdr->n_lines is 0 */
	struct rp_line *lines;
	size_t n_lines;
	uint64_t n_events;
};

/* Who owns an XSpace's bytes: malloc (freed with free) or a read-only mapping of the file
 * (munmap'd, so that only the pages a walk touches are ever in memory). */
enum rp_buf_kind { RP_BUF_MALLOC, RP_BUF_MAPPED };

struct rp_space {
	XSpace *hdr;         /* errors, warnings, hostnames; hdr->n_planes is 0 */
	struct rp_plane *planes;
	size_t n_planes;
	uint8_t *buf;        /* the file, which the lines point into */
	size_t len;
	enum rp_buf_kind kind;
};

/* Why rp_space_parse() or rp_space_check_head() refused the bytes: CORRUPT (not an XSpace's
 * framing), NO_PLANES (a well-formed XSpace without planes) or TRUNCATED (a top-level field that
 * runs past the end of the file: the file was cut short). at is the offset of the top-level field
 * where it went wrong (0 for the first, or when no one field is to blame); for TRUNCATED, need is
 * how many bytes that field lacks (0 when the file ends inside its tag or length, so that the
 * count is unknown). */
enum { RP_WIRE_CORRUPT = 1, RP_WIRE_NO_PLANES = 2, RP_WIRE_TRUNCATED = 3 };
struct rp_wire_fault {
	int why;
	uint64_t at;
	uint64_t need;
};

/* Checks the first top-level field of a file of n bytes from its first nh bytes (nh <= n; 16
 * are enough), so that a file that cannot be an XSpace is refused before it is mapped. Returns
 * 0, or -1 with *f set. */
int rp_space_check_head(const uint8_t *head, size_t nh, uint64_t n, struct rp_wire_fault *f);
/* Parses buf (taking ownership of it, also on failure; kind says how to release it) and checks
 * every event. Returns NULL with *f set when it is not a well-formed XSpace with planes. */
struct rp_space *rp_space_parse(uint8_t *buf, size_t n, enum rp_buf_kind kind, struct rp_wire_fault *f);
void rp_space_free(struct rp_space *s);

struct rp_str_span {
	const uint8_t *data;
	size_t len;
};

/* Walks one line's events. The event rp_events_next() returns (and its stats and strings) stays
 * valid until the next call; copy what must outlive it. One iterator serves many lines. */
struct rp_events {
	const uint8_t *p, *end;
	const uint8_t *mark; /* where the pages not yet released begin (mapped lines) */
	bool mapped;
	bool bad;            /* the line ended in malformed bytes (never after rp_space_parse) */
	XEvent ev;
	XStat *st;
	XStat **stp;
	struct rp_str_span *spans;
	size_t cap;
	char *str;
	size_t str_cap;
};
void rp_events_init(struct rp_events *it);
void rp_events_line(struct rp_events *it, const struct rp_line *l);
const XEvent *rp_events_next(struct rp_events *it);
void rp_events_free(struct rp_events *it);

/* ---- report_load.c: paths -> spaces ----------------------------------------------------- */

struct rp_input {
	char *host; /* file name without ".xplane.pb" (what xprof shows as the host) */
	char *path;
	struct rp_space *space;
};

struct rp_inputs {
	char *run_dir; /* the run directory the files came from, or NULL for a single file */
	char *note;    /* how the path was read ("latest of 3 runs in LOGDIR"), or NULL */
	struct rp_input *v;
	size_t n;
};

/* Reads PATH: a .xplane.pb file, a run directory (<logdir>/plugins/profile/<run>), a logdir or
 * its plugins/profile folder (then run names a run, or NULL for the newest one). On failure
 * returns -1 with a one-line message in err that says what to do. */
int rp_load(const char *path, const char *run, struct rp_inputs *out, char *err, size_t errlen);
/* Reads one profile from memory, as if it were the file NAME (the fuzz target's way in, so that
 * it checks the same parsing and validation as files get). */
int rp_load_buffer(const void *buf, size_t n, const char *name, struct rp_inputs *out, char *err,
		   size_t errlen);
void rp_inputs_free(struct rp_inputs *in);

/* ---- report_device.c: GPU planes -> device work ----------------------------------------- */

enum rp_dev_kind { RP_KERNEL, RP_MEMCPY, RP_MEMSET };

/* Copy directions for the copy summary (memsets get their own row). */
enum rp_copy_kind { RP_H2D, RP_D2H, RP_D2D, RP_P2P, RP_H2H, RP_COPY_OTHER, RP_MEMSET_ROW, RP_NCOPY };
extern const char *const rp_copy_kind_names[RP_NCOPY];

struct rp_dev_event {
	int64_t start, end;       /* ps */
	uint64_t correlation_id;  /* 0 when the event has none */
	uint64_t bytes;           /* copies and memsets */
	int64_t step_num;         /* the event's own step_num stat, when has_step */
	uint32_t name;            /* kernel name id in rp_device.names (demangled) */
	uint8_t kind;             /* enum rp_dev_kind */
	uint8_t copy_kind;        /* enum rp_copy_kind */
	bool has_step;
	int32_t step;             /* step index after attribution, -1 for none */
};

struct rp_device {
	struct rp_dev_event *ev;
	size_t n, cap;
	struct rp_strtab names;
	size_t nplanes;           /* /device:GPU:* planes */
	size_t skipped_lines;     /* derived lines (XLA Ops, Steps...) that are not device work */
};

void rp_device_collect(const struct rp_space *s, struct rp_device *out);
void rp_device_free(struct rp_device *d);

/* ---- report_steps.c: steps, attribution, summary ---------------------------------------- */

struct rp_step {
	int64_t step_num;
	int32_t occurrence;        /* earlier steps with this step_num (the epoch, when epochs restart it) */
	int64_t start, end;        /* host window: this occurrence's step scopes, on all threads (ps) */
	int64_t device_busy;       /* union of the step's kernels, copies and memsets (ps) */
	int64_t device_idle;       /* time in the window when no device work of any step ran */
	uint64_t kernels, memcpys, memsets;
	uint64_t h2d_bytes, d2h_bytes;
	int64_t h2d_time, d2h_time; /* summed durations (ps) */
	uint64_t launches;
	int64_t launch_time;        /* host CUDA API calls with correlation_id in the step (ps) */
	int64_t input_time;         /* host input scopes in the step (ps), see RP_INPUT_RULE */
};

enum rp_verdict { RP_NO_STEPS, RP_HOST_ONLY, RP_DEVICE_BOUND, RP_INPUT_BOUND, RP_LAUNCH_BOUND };
extern const char *const rp_verdict_names[];

/* The verdict's rule, printed next to it so readers can judge it. */
#define RP_DEVICE_BOUND_PCT 80.0
#define RP_INPUT_BOUND_PCT 20.0
#define RP_VERDICT_RULE                                                                        \
	"device-bound if device busy >= 80% of step time; else input-bound if input scopes take " \
	">= 20% of step time; else host/launch-bound"
#define RP_INPUT_RULE                                                                          \
	"input scopes: host events in a step whose name starts with input, load, data, iterator, " \
	"prefetch or infeed, or contains GetNext (any case)"

struct rp_summary {
	size_t nsteps;
	int64_t mean, median, p90, min, max; /* step wall time (ps) */
	int64_t wall, busy, idle, launch, input; /* totals over the steps (ps) */
	enum rp_verdict verdict;
};

struct rp_attribution {
	uint64_t by_stat, by_launch_scope, by_launch_time, none;
};

struct rp_steps {
	struct rp_step *v;         /* in time order (by start) */
	size_t n;
	bool repeats;              /* some step_num occurs more than once (some occurrence > 0) */
	struct rp_summary sum;
	struct rp_attribution attr;
	bool has_host_plane;
};

/* Finds the steps on /host:CPU and attributes each device event in dev to one (sets ev->step). */
void rp_steps_analyze(const struct rp_space *s, struct rp_device *dev, struct rp_steps *out);
void rp_steps_free(struct rp_steps *st);
/* The step whose host window holds time t (ps), or -1. */
int32_t rp_step_at(const struct rp_steps *st, int64_t t);
/* Percentile helpers, exposed for the cross-host comparison. */
int64_t rp_median(int64_t *v, size_t n); /* sorts v */

/* ---- report_kernels.c: kernel and copy summaries ---------------------------------------- */

struct rp_kernel_row {
	const char *name; /* owned by the rp_device's strtab */
	uint64_t count;
	int64_t total, min, max;
};

struct rp_copy_row {
	uint64_t count, bytes;
	int64_t total, min, max;
};

struct rp_kernels {
	struct rp_kernel_row *v; /* by total time, largest first */
	size_t n;
	int64_t total;           /* all kernels (ps) */
	struct rp_copy_row copies[RP_NCOPY];
};

void rp_kernels_summarize(const struct rp_device *dev, struct rp_kernels *out);
void rp_kernels_free(struct rp_kernels *k);

/* ---- report_memory.c: GPU memory per step, at the peak and at stop ------------------------ */

/* How the memory numbers are defined (printed with them; report_memory.c says why). */
#define RP_MEMORY_RULE                                                                              \
	"device memory = every allocator but host memory (names with host, cpu, pinned, pageable), " \
	"summed over the host's GPUs and memory kinds; step peak = most in use during the step's "    \
	"window; leak = least-squares slope of in use at step end over the steps"

/* A live allocation: its scope (tf_op), allocator and region type are ids in rp_memory.strs. */
struct rp_mem_row {
	uint32_t scope, allocator, region;
	uint64_t addr, bytes;
	int64_t time; /* when it was allocated (ps) */
};

struct rp_mem_step {
	int64_t peak;        /* most device memory in use during the step (bytes) */
	int64_t end_in_use;  /* device memory in use at the step's end */
	uint64_t allocated, freed; /* device memory bytes allocated and released in the step */
};

struct rp_memory {
	size_t nevents;            /* MemoryAllocation / MemoryDeallocation events; 0 = no memory data */
	uint64_t allocations, releases;
	uint64_t unmatched;        /* releases with no allocation in the profile */
	uint64_t corrupt;          /* stats with unusable values (negative sizes), ignored */
	int64_t peak, peak_time;   /* the run's most device memory in use, and when (ps) */
	struct rp_mem_row *at_peak; /* device allocations live at the peak, largest first */
	size_t n_at_peak;
	uint64_t peak_live_bytes;  /* their sum (below peak when memory predates the profile) */
	struct rp_mem_row *at_stop; /* every allocation live when the profile ends, largest first */
	size_t n_at_stop;
	uint64_t stop_bytes;
	struct rp_mem_step *steps; /* parallel to rp_steps.v */
	size_t nsteps;
	bool has_growth;           /* two or more steps */
	double growth_per_step;    /* bytes per step, see RP_MEMORY_RULE */
	struct rp_strtab strs;
};

void rp_memory_analyze(const struct rp_space *s, const struct rp_steps *st, struct rp_memory *m);
void rp_memory_free(struct rp_memory *m);
/* The string with id in m's table ("" for an unknown id). */
const char *rp_memory_str(const struct rp_memory *m, uint32_t id);

/* ---- report_compare.c: cross-host step comparison --------------------------------------- */

struct rp_host_report {
	const struct rp_input *in;
	struct rp_device dev;
	struct rp_steps steps;
	struct rp_kernels kernels;
	struct rp_memory mem;
};

struct rp_cross_step {
	int64_t step_num;
	int32_t occurrence; /* hosts are matched by step_num and occurrence */
	size_t nhosts;
	size_t slowest; /* index into the host reports */
	int64_t fastest_time, slowest_time;
	int64_t peak_min, peak_max; /* device memory peak of the step over the hosts (bytes) */
	size_t peak_host;           /* the host with peak_max */
};

struct rp_cross {
	struct rp_cross_step *v;
	size_t n;
	bool repeats;               /* some compared step has occurrence > 0 */
	uint64_t slowest_count_max; /* how often the most often slowest host was slowest */
	bool memory;                /* some host has memory events: the peak columns mean something */
	size_t most_often_slowest;  /* its index, valid when n > 0 */
};

void rp_compare_hosts(const struct rp_host_report *h, size_t n, struct rp_cross *out);
void rp_cross_free(struct rp_cross *c);

/* ---- report_compare.c: the whole analysis (the CLI and the fuzz target run the same) ------- */

/* Runs every analysis on every host: returns the host reports (in->n of them) and fills cross. */
struct rp_host_report *rp_analyze(const struct rp_inputs *in, struct rp_cross *cross);
void rp_analysis_free(struct rp_host_report *h, size_t n, struct rp_cross *cross);

/* ---- report_format.c: text, CSV, JSON ---------------------------------------------------- */

enum rp_format { RP_TEXT, RP_CSV, RP_JSON };
enum { RP_SEC_STEPS = 1, RP_SEC_SUMMARY = 2, RP_SEC_KERNELS = 4, RP_SEC_COPIES = 8, RP_SEC_HOSTS = 16,
       RP_SEC_ALL = 31 };

struct rp_format_opts {
	enum rp_format format;
	unsigned sections;
	size_t top;   /* kernels to list, 0 = all */
	int width;    /* text columns */
};

/* Writes the whole report to stdout. Returns 0, or -1 when stdout could not be written. */
int rp_format(const struct rp_format_opts *o, const struct rp_inputs *in,
	      const struct rp_host_report *h, size_t n, const struct rp_cross *cross);
/* Writes s as a JSON string literal; bytes that are not UTF-8 become U+FFFD. */
void rp_json_str(FILE *f, const char *s);
/* Writes s as a CSV field, quoted when it holds a comma, quote or line break. */
void rp_csv_str(FILE *f, const char *s);
/* s shortened to at most w columns into buf ("..." marks the cut); returns buf. */
const char *rp_fit(char *buf, size_t cap, const char *s, int w);

/* ---- report_diff.c: two runs of one job compared ------------------------------------------ */

/* Fewer steps than this in either run: the noise cannot be estimated (no interval, no gate). */
#define RP_DIFF_MIN_STEPS 5
#define RP_DIFF_METHOD                                                                           \
	"95% percentile bootstrap interval of the relative change of the median step time (steps " \
	"of all hosts pooled, resampled with replacement, fixed seed)"

enum rp_diff_status { RP_DIFF_SAME, RP_DIFF_SLOWER, RP_DIFF_FASTER, RP_DIFF_ADDED, RP_DIFF_REMOVED };
extern const char *const rp_diff_status_names[];

/* One run's side of the comparison; times in ps, the per-step ones are means over its steps. */
struct rp_diff_side {
	size_t nhosts, nsteps;
	int64_t mean, median, p90;
	int64_t busy, idle, launch;
	bool memory;                 /* some host has memory events */
	int64_t mem_peak_median;     /* median over the pooled steps of the step's device memory peak */
	bool has_growth;
	double mem_growth;           /* the largest growth per step (bytes) among the run's hosts */
};

/* A kernel (by demangled name) or host scope (by name) and its time per step in BASE and NEW. */
struct rp_diff_row {
	const char *name;      /* owned */
	bool scope;            /* a host scope, else a kernel */
	enum rp_diff_status status;
	int64_t per_step[2];   /* ps per step: BASE, NEW */
	int64_t change;        /* NEW - BASE */
};

struct rp_diff {
	struct rp_diff_side side[2]; /* BASE, NEW */
	double median_change_pct;
	bool ci_valid;               /* both runs have RP_DIFF_MIN_STEPS steps */
	double ci_low_pct, ci_high_pct;
	unsigned resamples;
	int direction;               /* +1 slower, -1 faster beyond the noise, 0 neither */
	bool common_steps;           /* the runs share a step_num */
	struct rp_diff_row *rows;    /* by |change|, largest first */
	size_t nrows, rows_cap;
};

/* Compares the analysed runs base[0..nbase) and new[0..nnew). Returns 0, or -1 with a one-line
 * message in err that says what to do (different host counts, a run without steps). */
int rp_diff_compute(const struct rp_host_report *base, size_t nbase, const struct rp_host_report *new,
		    size_t nnew, struct rp_diff *d, char *err, size_t errlen);
/* The exit code --fail-if-slower fail_pct asks for (fail_pct < 0: not asked): RP_EXIT_SLOWER when
 * the interval's low end is above fail_pct, RP_EXIT_BAD_INPUT with a message in err when the runs
 * have too few steps to judge, else RP_EXIT_OK. */
int rp_diff_gate(const struct rp_diff *d, double fail_pct, char *err, size_t errlen);
void rp_diff_free(struct rp_diff *d);
/* Writes the comparison to stdout in o's format (o->top rows; 0 = text's 10, CSV and JSON all);
 * base and new name the inputs. Returns -1 when stdout could not be written. */
int rp_diff_format(const struct rp_format_opts *o, const struct rp_inputs *base, const struct rp_inputs *new,
		   const struct rp_diff *d, double fail_pct);

/* ---- report_chrome.c: Chrome trace event format ------------------------------------------ */

struct rp_chrome_stats {
	uint64_t slices;  /* complete events written */
	uint64_t flows;   /* launch -> device flows written (one per correlated pair) */
};

/* Writes the profiles as a Chrome trace (JSON; gzip-compressed when path ends in ".gz") through
 * rp_outfile. progress: report progress on stderr. Returns RP_EXIT_OK, or RP_EXIT_BAD_INPUT (path
 * cannot be written: the user's to fix) or RP_EXIT_FAIL (a write failed) with a one-line message
 * in err. */
int rp_chrome_trace(const struct rp_inputs *in, const char *path, bool progress,
		    struct rp_chrome_stats *st, char *err, size_t errlen);
/* The same trace written to f (the fuzz target and tests use it). Returns -1 when f failed. */
int rp_chrome_write(const struct rp_inputs *in, FILE *f, bool progress, struct rp_chrome_stats *st);

/* ---- report_svg.c: host step time against device busy time, as an SVG chart ---------------- */

/* Writes the chart of the analysed hosts h[0..n) (from rp_analyze on in) to path through an
 * rp_outfile: per step a bar of host wall time beside a bar of device busy time, one panel per
 * host on a shared ms scale, steps bucketed when there are more than fit. Returns RP_EXIT_OK, or
 * RP_EXIT_BAD_INPUT (no host has a step; path cannot be written) or RP_EXIT_FAIL (a write
 * failed) with a one-line message in err that says what to do; then no file is left behind. */
int rp_svg(const struct rp_inputs *in, const struct rp_host_report *h, size_t n, const char *path,
	   char *err, size_t errlen);
/* The same chart written to f, also when no host has steps (empty panels). Returns -1 when f
 * failed. */
int rp_svg_write(const struct rp_inputs *in, const struct rp_host_report *h, size_t n, FILE *f);

#endif
