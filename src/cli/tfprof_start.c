/* SPDX-License-Identifier: Apache-2.0 */
/* tfprof-start: profiles a program that was never changed for tfprof. It sets the environment
 * that makes libtfprof activate itself in the program (LD_PRELOAD, TFPROF_START and the
 * settings, NVTX and CUDA injection; see src/activate.h) and execs the program, or prints that
 * environment as shell commands for `eval`. It does not link libtfprof: it only has to find it. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "files.h"
#include "format.h"
#include "job_rank.h"
#include "preload_list.h"

#define PROG "tfprof-start"
#define USAGE_LINE                                                                              \
	"usage: tfprof-start [options] -- program [args...]\n"                                   \
	"       eval \"$(tfprof-start --shell [options])\"\n"                                     \
	"       eval \"$(tfprof-start --deactivate)\""
#define EXIT_USAGE 2

/* Every variable --shell may set, which --deactivate unsets. */
static const char *const activation_vars[] = { "TFPROF_START", "TFPROF_LOGDIR", "TFPROF_RUN",
					       "TFPROF_DELAY", "TFPROF_DURATION", "TFPROF_STEPS",
					       "TFPROF_GPU", "TFPROF_MAX_MEMORY_MB", "TFPROF_FORMAT",
					       "TFPROF_REPORT_BIN", "TFPROF_START_PID", "TFPROF_SERVER",
					       "TFPROF_SERVER_ROOT" };

static void help(void)
{
	fputs(USAGE_LINE "\n"
	      "\n"
	      "Runs a program with tfprof profiling it, without changing or rebuilding it, and writes\n"
	      "<logdir>/plugins/profile/<run>/<host>.<pid>.xplane.pb when it exits (TensorBoard's\n"
	      "profile plugin, xprof, opens it). Recorded: the program's own NVTX ranges (push/pop and\n"
	      "start/end, any domain) as scopes on their threads; tfprof scopes if the program uses\n"
	      "tfprof; CUDA API calls and GPU kernels, copies and memsets once CUDA initializes.\n"
	      "\n"
	      "Options (each also read from the environment variable in brackets)\n"
	      "  --logdir DIR      where profiles go [TFPROF_LOGDIR] (default ./tfprof-logdir)\n"
	      "  --run NAME        run directory name under <logdir>/plugins/profile [TFPROF_RUN]\n"
	      "                    (default: the local time, %Y_%m_%d_%H_%M_%S, chosen once and shared\n"
	      "                    by every process the program starts)\n"
	      "  --delay SECONDS   start recording this long after the program starts [TFPROF_DELAY]\n"
	      "  --duration SECONDS  record this long, then write the profile [TFPROF_DURATION]\n"
	      "                    (default: until the program exits)\n"
	      "  --steps A:B       record training steps A to B (inclusive) only [TFPROF_STEPS]: recording\n"
	      "                    starts when step A begins and the profile is written when step B\n"
	      "                    ends (\"A\" alone: that one step). Steps are tfprof scopes with an\n"
	      "                    integer step_num argument, or NVTX ranges whose name contains \"step\"\n"
	      "                    (any case) and ends in the number (\"step 12\", \"Step#12\",\n"
	      "                    \"train_step_12\"), or has an integer payload (\"train_step\", payload\n"
	      "                    12). The first thread that begins a step is the one followed. The\n"
	      "                    program ending before step A writes nothing and says so; ending\n"
	      "                    before step B writes what was recorded. Excludes --delay/--duration.\n"
	      "  --no-gpu          host only: no CUDA or GPU tracing [TFPROF_GPU=0]\n"
	      "  --max-memory MB   bound on event memory per process (default 256) [TFPROF_MAX_MEMORY_MB]\n"
	      "  --format xplane[,chrome]  what each process writes [TFPROF_FORMAT] (default xplane):\n"
	      "                    xplane: the XSpace, <...>.xplane.pb, always written (it is what the\n"
	      "                    conversion reads); chrome: also a Chrome trace (Perfetto UI,\n"
	      "                    chrome://tracing), <...>.trace.json.gz beside it, converted by\n"
	      "                    tfprof-report once the profile is written (\"--format chrome\" is the\n"
	      "                    same as xplane,chrome). The exit (or the death by a signal) waits\n"
	      "                    for it; with --duration or --steps the program runs on meanwhile.\n"
	      "                    The converter, never profiled itself, is the tfprof-report beside\n"
	      "                    this tool, else the build tree's, else PATH's [TFPROF_REPORT_BIN];\n"
	      "                    when it fails, one line says why and the .xplane.pb is kept:\n"
	      "                    tfprof-report --chrome-trace OUT.json.gz FILE converts it by hand\n"
	      "  --server [ADDR:]PORT  answer on-demand captures [TFPROF_SERVER]: the program serves\n"
	      "                    TensorFlow's ProfilerService on ADDR:PORT (default address 127.0.0.1;\n"
	      "                    other interfaces only when named, e.g. 0.0.0.0:6009), so xprof's\n"
	      "                    Capture Profile button or tfprof-capture profiles it while it runs,\n"
	      "                    into the logdir the capture names. Alone, nothing is recorded until\n"
	      "                    a capture arrives and nothing is written at exit; with --delay,\n"
	      "                    --duration or --steps that session is recorded too (one session at a\n"
	      "                    time: a capture meanwhile is answered ALREADY_EXISTS). Only the\n"
	      "                    program itself serves, not the programs it starts. Needs gRPC\n"
	      "                    (Debian: libgrpc29) and libtfprof_server.so beside libtfprof\n"
	      "  --server-root DIR captures may write only under DIR [TFPROF_SERVER_ROOT] (default: any\n"
	      "                    absolute directory the client names, as TensorFlow's server allows)\n"
	      "  --library PATH    the libtfprof.so to load [TFPROF_LIBRARY] (default: the one installed\n"
	      "                    beside this tool, else the one it was built with)\n"
	      "  --shell           print `export` commands that activate tfprof in the current shell\n"
	      "                    instead of running a program: eval \"$(tfprof-start --shell ...)\";\n"
	      "                    every program started from that shell is then profiled\n"
	      "  --deactivate      print the commands that undo --shell (unsets TFPROF_START,\n"
	      "                    TFPROF_LOGDIR, TFPROF_RUN, TFPROF_DELAY, TFPROF_DURATION, TFPROF_STEPS,\n"
	      "                    TFPROF_GPU, TFPROF_MAX_MEMORY_MB, TFPROF_FORMAT, TFPROF_REPORT_BIN,\n"
	      "                    tfprof's injection paths, and removes libtfprof from LD_PRELOAD)\n"
	      "  -h, --help        this help\n"
	      "\n"
	      "The profile is written when the program returns from main, calls exit(), or is stopped\n"
	      "by SIGINT or SIGTERM (the program then still dies of the signal; a second signal kills\n"
	      "it at once, without a profile). A crash (SIGSEGV, abort) or _exit() writes nothing, and\n"
	      "never a partial file. The path is printed on stderr, and the Chrome trace's with\n"
	      "--format chrome. An unwritable logdir is reported now and the profile (and its trace)\n"
	      "goes to $TMPDIR/tfprof-<uid>/ instead; the program runs either way.\n"
	      "\n"
	      "Several processes: each writes its own file into the same run, named <host>.<pid>, or\n"
	      "<host>.rank<r> when a rank is set (OMPI_COMM_WORLD_RANK, PMI_RANK, PMIX_RANK,\n"
	      "SLURM_PROCID, RANK, LOCAL_RANK: the first found), so xprof shows them as hosts. A child\n"
	      "that fork()s without exec records nothing; one that execs is profiled as a process of\n"
	      "its own, and writes a file only if it recorded something (helpers such as sh,\n"
	      "ldconfig or nvidia-smi leave none; the program itself always writes one). Under mpirun\n"
	      "or srun, give every rank the same --run. A program that execs in place (a wrapper\n"
	      "script's exec) writes each replaced image's profile first, as <host>.<pid>.exec<N>.\n"
	      "\n"
	      "Set by this tool: TFPROF_START=1, TFPROF_START_PID (its pid, which the program keeps),\n"
	      "the settings above (and TFPROF_REPORT_BIN with\n"
	      "--format chrome), LD_PRELOAD (libtfprof first), NVTX_INJECTION64_PATH and\n"
	      "CUDA_INJECTION64_PATH (libtfprof; left alone when another tool such as Nsight already\n"
	      "set them, and then the program's NVTX ranges, or the wait for CUDA before loading\n"
	      "CUPTI, go without). TFPROF_LOG=1 prints the library's warnings.\n"
	      "\n"
	      "Exit status: the program's own; 2 for bad usage (one line on stderr says what to do);\n"
	      "126 or 127 when the program cannot be run.\n",
	      stdout);
}

static void usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, PROG ": ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "; see " PROG " --help\n");
	exit(EXIT_USAGE);
}

static bool parse_seconds(const char *s, double *out)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (!*s || errno || *end || !isfinite(v) || v < 0 || v > 1e9)
		return false;
	*out = v;
	return true;
}

/* --server: "PORT", "HOST:PORT" or "[V6]:PORT" (the library parses it again, the same way). */
static bool valid_server_addr(const char *s)
{
	const char *port = strrchr(s, ':');
	if (s[0] == '[') {
		const char *close = strchr(s, ']');
		if (!close || close[1] != ':' || close == s + 1)
			return false;
		port = close + 1;
	} else if (port == s) {
		return false;
	}
	port = port ? port + 1 : s;
	char *end;
	errno = 0;
	long v = strtol(port, &end, 10);
	return *port && !*end && !errno && v >= 0 && v <= 65535;
}

/* --steps: "A:B" with whole numbers A <= B, or "A" (the library parses it again, the same way). */
static bool parse_steps(const char *s)
{
	char *end;
	errno = 0;
	if (*s < '0' || *s > '9')
		return false;
	long long a = strtoll(s, &end, 10), b = a;
	if (!errno && *end == ':') {
		const char *p = end + 1;
		if (*p < '0' || *p > '9')
			return false;
		b = strtoll(p, &end, 10);
	}
	return !errno && !*end && a <= b;
}

static bool parse_mb(const char *s)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	return *s >= '0' && *s <= '9' && !errno && !*end && v > 0 && v <= (SIZE_MAX >> 20);
}

static bool valid_run_name(const char *r)
{
	return *r && !strchr(r, '/') && strcmp(r, ".") != 0 && strcmp(r, "..") != 0;
}

/* mkdir -p (files.c's, as the library's), then whether this user may write there; returns 0 or
 * an errno. */
static int writable_dir(const char *dir)
{
	int rc = -tfprof__mkdirs(dir);
	if (!rc && access(dir, W_OK | X_OK))
		rc = errno;
	return rc;
}

/* getenv with the signature tfprof__job_rank takes. */
static const char *env_get(const char *name)
{
	return getenv(name);
}

static char *xstrdup(const char *s)
{
	char *d = strdup(s);
	if (!d) {
		fprintf(stderr, PROG ": out of memory\n");
		exit(1);
	}
	return d;
}

static char *absolute(const char *path)
{
	if (path[0] == '/')
		return xstrdup(path);
	char cwd[PATH_MAX];
	char *out;
	if (!getcwd(cwd, sizeof cwd) || asprintf(&out, "%s/%s", cwd, path) < 0) {
		fprintf(stderr, PROG ": cannot find the current directory (%s); pass an absolute --logdir\n",
			strerror(errno));
		exit(1);
	}
	return out;
}

/* The libtfprof.so to load: --library/TFPROF_LIBRARY, else the installed one beside this tool
 * (TFPROF_REL_LIBRARY, relative to the directory this executable is in), else the build tree's.
 * The path is made absolute but symlinks are kept: libtfprof.so.0 keeps naming the current
 * library after an upgrade, in a shell activated with --shell. */
static char *find_library(const char *given)
{
	if (given && *given) {
		if (access(given, R_OK)) {
			fprintf(stderr, PROG ": cannot use the library %s (%s); pass the path of libtfprof.so\n",
				given, strerror(errno));
			exit(EXIT_USAGE);
		}
		return absolute(given);
	}
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	if (n > 0) {
		exe[n] = 0;
		char *slash = strrchr(exe, '/');
		if (slash) {
			*slash = 0;
			/* <bindir>/../lib/libtfprof.so.0 -> /prefix/lib/libtfprof.so.0 */
			char *cand, dir[PATH_MAX];
			const char *base = strrchr(TFPROF_REL_LIBRARY, '/');
			if (asprintf(&cand, "%s/%s", exe, TFPROF_REL_LIBRARY) >= 0) {
				cand[strlen(cand) - strlen(base)] = 0;
				bool ok = realpath(cand, dir) != NULL;
				free(cand);
				if (ok && asprintf(&cand, "%s%s", dir, base) >= 0) {
					if (access(cand, R_OK) == 0)
						return cand;
					free(cand);
				}
			}
		}
	}
	if (access(TFPROF_BUILD_LIBRARY, R_OK) == 0)
		return xstrdup(TFPROF_BUILD_LIBRARY);
	fprintf(stderr, PROG ": cannot find libtfprof.so (looked beside this tool and at %s); pass --library PATH\n",
		TFPROF_BUILD_LIBRARY);
	exit(1);
}

/* The tfprof-report that converts profiles for --format chrome: TFPROF_REPORT_BIN (made absolute
 * when it is a path; a bare name is looked up on PATH by the library), else the one beside this
 * tool (installed, both are in bindir; in the build tree, both are in src/cli), else the build
 * tree's, else the first on PATH. NULL when there is none: the library then says so when it
 * would convert, and keeps the .xplane.pb. */
static char *find_report(const char *given)
{
	if (given && *given)
		return strchr(given, '/') ? absolute(given) : xstrdup(given);
	char exe[PATH_MAX], *cand;
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	if (n > 0) {
		exe[n] = 0;
		char *slash = strrchr(exe, '/');
		if (slash) {
			*slash = 0;
			if (asprintf(&cand, "%s/tfprof-report", exe) >= 0) {
				if (access(cand, X_OK) == 0)
					return cand;
				free(cand);
			}
		}
	}
	if (access(TFPROF_BUILD_REPORT, X_OK) == 0)
		return xstrdup(TFPROF_BUILD_REPORT);
	const char *path = getenv("PATH");
	char *copy = xstrdup(path && *path ? path : "/usr/bin:/bin"), *save = NULL, *found = NULL;
	for (char *d = strtok_r(copy, ":", &save); d && !found; d = strtok_r(NULL, ":", &save)) {
		if (*d != '/')
			continue; /* relative PATH entries would change meaning when the program chdirs */
		if (asprintf(&cand, "%s/tfprof-report", d) < 0)
			break;
		if (access(cand, X_OK) == 0)
			found = cand;
		else
			free(cand);
	}
	free(copy);
	return found;
}

static bool same_file(const char *a, const char *b)
{
	struct stat sa, sb;
	return a && b && stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
	       sa.st_ino == sb.st_ino;
}

/* An LD_PRELOAD entry that is lib (tfprof__preload_without's test). */
static bool is_lib(const char *entry, const void *lib)
{
	return same_file(entry, lib) || strcmp(entry, lib) == 0;
}

/* Prints a value quoted for POSIX shells. */
static void shell_quote(const char *v)
{
	putchar('\'');
	for (; *v; v++) {
		if (*v == '\'')
			fputs("'\\''", stdout);
		else
			putchar(*v);
	}
	putchar('\'');
}

struct setting {
	const char *name;
	char *value; /* NULL: leave as is */
};

enum { OPT_LOGDIR = 256, OPT_RUN, OPT_DELAY, OPT_DURATION, OPT_NO_GPU, OPT_MAX_MEMORY, OPT_LIBRARY,
       OPT_SHELL, OPT_DEACTIVATE, OPT_STEPS, OPT_FORMAT, OPT_SERVER, OPT_SERVER_ROOT };

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "logdir", required_argument, NULL, OPT_LOGDIR },
		{ "run", required_argument, NULL, OPT_RUN },
		{ "delay", required_argument, NULL, OPT_DELAY },
		{ "duration", required_argument, NULL, OPT_DURATION },
		{ "no-gpu", no_argument, NULL, OPT_NO_GPU },
		{ "max-memory", required_argument, NULL, OPT_MAX_MEMORY },
		{ "library", required_argument, NULL, OPT_LIBRARY },
		{ "shell", no_argument, NULL, OPT_SHELL },
		{ "deactivate", no_argument, NULL, OPT_DEACTIVATE },
		{ "steps", required_argument, NULL, OPT_STEPS },
		{ "format", required_argument, NULL, OPT_FORMAT },
		{ "server", required_argument, NULL, OPT_SERVER },
		{ "server-root", required_argument, NULL, OPT_SERVER_ROOT },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	/* Defaults come from the environment, so that each option is also a variable. */
	const char *logdir = getenv("TFPROF_LOGDIR");
	const char *run = getenv("TFPROF_RUN");
	const char *delay = getenv("TFPROF_DELAY");
	const char *duration = getenv("TFPROF_DURATION");
	const char *steps = getenv("TFPROF_STEPS");
	const char *max_mb = getenv("TFPROF_MAX_MEMORY_MB");
	const char *library = getenv("TFPROF_LIBRARY");
	const char *format = getenv("TFPROF_FORMAT");
	const char *gpu = getenv("TFPROF_GPU");
	const char *server = getenv("TFPROF_SERVER");
	const char *server_root = getenv("TFPROF_SERVER_ROOT");
	bool no_gpu = gpu && (strcmp(gpu, "0") == 0 || strcmp(gpu, "off") == 0 || strcmp(gpu, "false") == 0);
	bool shell = false, deactivate = false;
	bool run_given = run && *run;

	opterr = 0;
	int c;
	/* '+': options end at the first operand, which is the program; its own options are its. */
	while ((c = getopt_long(argc, argv, "+:h", opts, NULL)) != -1) {
		switch (c) {
		case OPT_LOGDIR: logdir = optarg; break;
		case OPT_RUN: run = optarg; run_given = true; break;
		case OPT_DELAY: delay = optarg; break;
		case OPT_DURATION: duration = optarg; break;
		case OPT_NO_GPU: no_gpu = true; break;
		case OPT_MAX_MEMORY: max_mb = optarg; break;
		case OPT_LIBRARY: library = optarg; break;
		case OPT_SHELL: shell = true; break;
		case OPT_DEACTIVATE: deactivate = true; break;
		case OPT_STEPS: steps = optarg; break;
		case OPT_SERVER: server = optarg; break;
		case OPT_SERVER_ROOT: server_root = optarg; break;
		case OPT_FORMAT:
			if (!*optarg)
				usage_error("--format needs xplane, chrome or xplane,chrome%s", "");
			format = optarg;
			break;
		case 'h': help(); return 0;
		case ':':
			usage_error("%s needs a value", argv[optind - 1]);
			break;
		default:
			if (optopt)
				fprintf(stderr, PROG ": unknown option -%c; see " PROG " --help\n", optopt);
			else
				fprintf(stderr, PROG ": unknown option %s; see " PROG " --help\n", argv[optind - 1]);
			return EXIT_USAGE;
		}
	}
	double d_delay = 0, d_duration = 0;
	if (delay && *delay && !parse_seconds(delay, &d_delay))
		usage_error("--delay (TFPROF_DELAY) needs a number of seconds >= 0, not '%s'", delay);
	if (duration && *duration && !parse_seconds(duration, &d_duration))
		usage_error("--duration (TFPROF_DURATION) needs a number of seconds >= 0, not '%s'", duration);
	if (steps && *steps && !parse_steps(steps))
		usage_error("--steps (TFPROF_STEPS) needs A:B, whole numbers with A <= B (or one step A), not '%s'",
			    steps);
	if (steps && *steps && (d_delay > 0 || d_duration > 0))
		usage_error("--steps chooses what is recorded; leave out --delay and --duration (TFPROF_DELAY, "
			    "TFPROF_DURATION)%s", "");
	if (max_mb && *max_mb && !parse_mb(max_mb))
		usage_error("--max-memory (TFPROF_MAX_MEMORY_MB) needs a positive whole number of MiB, not '%s'", max_mb);
	bool chrome = false;
	if (format && *format && !tfprof__parse_format(format, &chrome))
		usage_error("--format (TFPROF_FORMAT) needs xplane, chrome or xplane,chrome (a Chrome trace "
			    "beside the XSpace), not '%s'", format);
	if (run_given && !valid_run_name(run))
		usage_error("--run (TFPROF_RUN) needs a directory name without '/', not '%s'", run);
	if (logdir && !*logdir)
		usage_error("--logdir (TFPROF_LOGDIR) needs a directory%s", "");
	if (server && *server && !valid_server_addr(server))
		usage_error("--server (TFPROF_SERVER) needs PORT, HOST:PORT or [IPV6]:PORT with a port of 0 to "
			    "65535, not '%s'", server);
	char *abs_root = NULL;
	if (server_root && *server_root) {
		struct stat st;
		abs_root = absolute(server_root);
		if (stat(abs_root, &st) || !S_ISDIR(st.st_mode))
			usage_error("--server-root (TFPROF_SERVER_ROOT) needs an existing directory, not '%s'",
				    server_root);
	}
	if (shell && deactivate)
		usage_error("--shell and --deactivate exclude each other%s", "");
	bool have_program = optind < argc;
	if ((shell || deactivate) && have_program)
		usage_error("--shell and --deactivate print commands for the current shell and run no program (got '%s')",
			    argv[optind]);
	if (!shell && !deactivate && !have_program)
		usage_error("no program given: tfprof-start [options] -- program [args...]%s", "");

	char *lib = find_library(library);

	if (deactivate) {
		for (size_t i = 0; i < sizeof activation_vars / sizeof activation_vars[0]; i++)
			printf("unset %s;\n", activation_vars[i]);
		const char *inj[] = { "NVTX_INJECTION64_PATH", "CUDA_INJECTION64_PATH" };
		for (size_t i = 0; i < 2; i++)
			if (same_file(getenv(inj[i]), lib))
				printf("unset %s;\n", inj[i]);
		char *rest = tfprof__preload_without(getenv("LD_PRELOAD"), is_lib, lib);
		if (!rest) {
			fprintf(stderr, PROG ": out of memory\n");
			return 1;
		}
		if (*rest) {
			fputs("export LD_PRELOAD=", stdout);
			shell_quote(rest);
			puts(";");
		} else {
			puts("unset LD_PRELOAD;");
		}
		free(rest);
		return 0;
	}

	char *abs_logdir = absolute(logdir && *logdir ? logdir : "tfprof-logdir");
	/* Checked now, so that the user hears of it before a long run; the program runs anyway and
	 * the library saves the profile in the fallback directory. */
	int werr = writable_dir(abs_logdir);
	if (werr) {
		const char *tmp = getenv("TMPDIR");
		fprintf(stderr, PROG ": warning: cannot write to logdir %s (%s); the profile will go to "
				"%s/tfprof-%ld/ instead: pass a writable --logdir\n",
			abs_logdir, strerror(werr), tmp && *tmp ? tmp : "/tmp", (long)getuid());
	}

	/* One run name for the whole job: the program and everything it starts inherit it. With
	 * --shell it is left out unless given, so that each command gets a run of its own. */
	if (!run_given && !shell) {
		run = tfprof__default_run_name();
		if (!run) {
			fprintf(stderr, PROG ": out of memory\n");
			return 1;
		}
		run_given = true;
	}

	char *preload = NULL;
	{
		char *rest = tfprof__preload_without(getenv("LD_PRELOAD"), is_lib, lib);
		if (!rest || asprintf(&preload, "%s%s%s", lib, rest && *rest ? ":" : "", rest ? rest : "") < 0) {
			fprintf(stderr, PROG ": out of memory\n");
			return 1;
		}
		free(rest);
	}

	struct setting set[20];
	size_t n = 0;
	set[n++] = (struct setting){ "TFPROF_START", xstrdup("1") };
	set[n++] = (struct setting){ "TFPROF_LOGDIR", abs_logdir };
	if (run_given)
		set[n++] = (struct setting){ "TFPROF_RUN", xstrdup(run) };
	if (d_delay > 0)
		set[n++] = (struct setting){ "TFPROF_DELAY", xstrdup(delay) };
	if (d_duration > 0)
		set[n++] = (struct setting){ "TFPROF_DURATION", xstrdup(duration) };
	if (steps && *steps)
		set[n++] = (struct setting){ "TFPROF_STEPS", xstrdup(steps) };
	if (no_gpu)
		set[n++] = (struct setting){ "TFPROF_GPU", xstrdup("0") };
	if (max_mb && *max_mb)
		set[n++] = (struct setting){ "TFPROF_MAX_MEMORY_MB", xstrdup(max_mb) };
	if (format && *format)
		set[n++] = (struct setting){ "TFPROF_FORMAT", xstrdup(chrome ? "xplane,chrome" : "xplane") };
	if (server && *server)
		set[n++] = (struct setting){ "TFPROF_SERVER", xstrdup(server) };
	if (abs_root)
		set[n++] = (struct setting){ "TFPROF_SERVER_ROOT", abs_root };
	char *report = chrome ? find_report(getenv("TFPROF_REPORT_BIN")) : NULL;
	if (report)
		set[n++] = (struct setting){ "TFPROF_REPORT_BIN", report };
	set[n++] = (struct setting){ "LD_PRELOAD", preload };
	const char *inj[] = { "NVTX_INJECTION64_PATH", "CUDA_INJECTION64_PATH" };
	const char *what[] = { "the program's own NVTX ranges go to it, not into the profile",
			       "GPU tracing starts with the session instead of when CUDA initializes" };
	for (size_t i = 0; i < 2; i++) {
		const char *cur = getenv(inj[i]);
		if (cur && *cur && !same_file(cur, lib)) {
			fprintf(stderr, PROG ": warning: %s is already set to %s (another tool); %s\n", inj[i],
				cur, what[i]);
			continue;
		}
		set[n++] = (struct setting){ inj[i], xstrdup(lib) };
	}

	if (shell) {
		for (size_t i = 0; i < n; i++) {
			printf("export %s=", set[i].name);
			shell_quote(set[i].value);
			puts(";");
		}
		return 0;
	}
	/* The program keeps this pid through exec: its profile is written even when empty, while
	 * the processes it starts write one only when they recorded something (activate.c). */
	char pid[32];
	snprintf(pid, sizeof pid, "%ld", (long)getpid());
	set[n++] = (struct setting){ "TFPROF_START_PID", xstrdup(pid) };
	/* In a job, the program is its rank's first process: its file is <host>.rank<r>, and
	 * processes it starts with the same rank add their pid. Said here rather than left to the
	 * program's copy of the library, whose own setenv a shell running a job script would not
	 * pass on (bash builds its children's environment from its own variables). An owner
	 * already set belongs to an ancestor of the same rank and stays. */
	if (tfprof__job_rank(env_get) >= 0 && !getenv("TFPROF_RANK_PID"))
		set[n++] = (struct setting){ "TFPROF_RANK_PID", xstrdup(pid) };
	for (size_t i = 0; i < n; i++)
		if (setenv(set[i].name, set[i].value, 1)) {
			fprintf(stderr, PROG ": cannot set %s (%s)\n", set[i].name, strerror(errno));
			return 1;
		}
	/* Without --delay/--duration these must not leak in from an earlier --shell either. */
	if (d_delay <= 0)
		unsetenv("TFPROF_DELAY");
	if (d_duration <= 0)
		unsetenv("TFPROF_DURATION");
	if (!steps || !*steps)
		unsetenv("TFPROF_STEPS");
	if (!server || !*server)
		unsetenv("TFPROF_SERVER");
	execvp(argv[optind], argv + optind);
	int e = errno;
	fprintf(stderr, PROG ": cannot run %s: %s\n", argv[optind], strerror(e));
	return e == ENOENT ? 127 : 126;
}
