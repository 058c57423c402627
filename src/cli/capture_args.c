/* SPDX-License-Identifier: Apache-2.0 */
/* Parsing and checking for tfprof-capture's command line and for the names in a server's answer
 * (see capture_args.h). */
#include "capture_args.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

bool capture_parse_duration(const char *s, uint64_t *ms)
{
	char *end;
	double v, scale;

	const char *p = s;
	bool digits = false, dot = false;

	/* strtod alone would take blanks, signs, "inf", "nan", hex and exponents: only plain
	 * decimals ("2", "1.5", ".5") get that far. */
	if (!s)
		return false;
	for (; isdigit((unsigned char)*p) || (*p == '.' && !dot); p++) {
		digits |= *p != '.';
		dot |= *p == '.';
	}
	if (!digits)
		return false;
	errno = 0;
	v = strtod(s, &end);
	if (errno || end != p || !isfinite(v) || v < 0)
		return false;
	if (strcmp(end, "") == 0 || strcmp(end, "s") == 0)
		scale = 1000.0;
	else if (strcmp(end, "ms") == 0)
		scale = 1.0;
	else if (strcmp(end, "m") == 0)
		scale = 60000.0;
	else
		return false;
	/* Rounded before the limit is checked, so that exactly 24h (86400s, 1440m) passes. */
	v = floor(v * scale + 0.5);
	if (v > (double)CAPTURE_MAX_DURATION_MS)
		return false;
	*ms = (uint64_t)v;
	return true;
}

bool capture_parse_level(const char *s, unsigned max, unsigned *out)
{
	char *end;
	unsigned long v;

	if (!s || !isdigit((unsigned char)s[0]))
		return false;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v > max)
		return false;
	*out = (unsigned)v;
	return true;
}

/* Whether the port text (up to the end of the string) is a decimal number from 1 to 65535. */
static bool port_ok(const char *p)
{
	unsigned long v = 0;

	if (!*p)
		return false;
	for (; *p; p++) {
		if (!isdigit((unsigned char)*p))
			return false;
		v = v * 10 + (unsigned long)(*p - '0');
		if (v > 65535)
			return false;
	}
	return v > 0;
}

int capture_check_address(const char *addr, const char **why)
{
	static const char prefix[] = "grpc://";
	const char *a = addr, *colon;
	int skip = 0;

	if (strncmp(a, prefix, sizeof(prefix) - 1) == 0) {
		skip = (int)sizeof(prefix) - 1;
		a += skip;
	}
	if (!*a) {
		*why = "it is empty";
		return -1;
	}
	for (const char *p = a; *p; p++) {
		if (isspace((unsigned char)*p) || iscntrl((unsigned char)*p) || *p == '/' || *p == ',' ||
		    *p == '@' || *p == '?' || *p == '#') {
			*why = "it has a character an address cannot have";
			return -1;
		}
	}
	if (a[0] == '[') {
		const char *close = strchr(a, ']');

		if (!close || close == a + 1 || close[1] != ':') {
			*why = "an IPv6 address must be written [address]:port";
			return -1;
		}
		colon = close + 1;
	} else {
		colon = strrchr(a, ':');
		if (!colon) {
			*why = "it has no port (write host:port)";
			return -1;
		}
		if (colon == a) {
			*why = "it has no host (write host:port, e.g. localhost:6009)";
			return -1;
		}
		if (memchr(a, ':', (size_t)(colon - a))) {
			*why = "an IPv6 address must be written [address]:port";
			return -1;
		}
		if (memchr(a, '[', (size_t)(colon - a)) || memchr(a, ']', (size_t)(colon - a))) {
			*why = "it has a character an address cannot have";
			return -1;
		}
	}
	if (!port_ok(colon + 1)) {
		*why = "its port is not a number from 1 to 65535";
		return -1;
	}
	return skip;
}

bool capture_host_is_local(const char *addr)
{
	static const char *const local[] = { "localhost", "[::1]", "[::]", "0.0.0.0", "ip6-localhost" };
	const char *colon = strrchr(addr, ':');
	size_t n = colon ? (size_t)(colon - addr) : strlen(addr);
	char me[256];

	for (size_t i = 0; i < sizeof(local) / sizeof(local[0]); i++)
		if (strlen(local[i]) == n && strncasecmp(addr, local[i], n) == 0)
			return true;
	if (n > 4 && strncmp(addr, "127.", 4) == 0)
		return true;
	if (gethostname(me, sizeof(me)) == 0) {
		me[sizeof(me) - 1] = '\0';
		if (strlen(me) == n && strncasecmp(addr, me, n) == 0)
			return true;
	}
	return false;
}

bool capture_file_name_ok(const char *name)
{
	if (!name || !name[0] || name[0] == '.' || strchr(name, '/') || strstr(name, ".."))
		return false;
	for (const char *p = name; *p; p++)
		if (iscntrl((unsigned char)*p))
			return false;
	return true;
}
