/* util.c: the error record, allocators and small string and path helpers.
 * Nothing here knows about libvirt, QEMU or the journal.
 */
#include "util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static __thread char error_buf[2048];

/* Formatted aside first: an argument may be sm_error_message() itself (the
 * cause wrapped in a new message), and vsnprintf may not read the buffer it
 * writes. */
void sm_error(const char *fmt, ...)
{
	char msg[sizeof(error_buf)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	memcpy(error_buf, msg, sizeof(error_buf));
}

const char *sm_error_message(void)
{
	return error_buf[0] ? error_buf : "unknown error";
}

void sm_error_clear(void)
{
	error_buf[0] = '\0';
}

char *sm_error_preserve(void)
{
	return sm_xstrdup(sm_error_message());
}

void sm_error_restore(char **saved)
{
	if (!*saved)
		return;
	sm_error("%s", *saved);
	free(*saved);
	*saved = NULL;
}

static void oom(void)
{
	fputs("snapmove: out of memory\n", stderr);
	abort();
}

void *sm_xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p)
		oom();
	return p;
}

void *sm_xcalloc(size_t nmemb, size_t size)
{
	void *p = calloc(nmemb ? nmemb : 1, size ? size : 1);

	if (!p)
		oom();
	return p;
}

void *sm_xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);

	if (!q)
		oom();
	return q;
}

char *sm_xstrdup(const char *s)
{
	char *p = strdup(s);

	if (!p)
		oom();
	return p;
}

char *sm_xstrdup_or_null(const char *s)
{
	return s ? sm_xstrdup(s) : NULL;
}

char *sm_xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *p;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&p, fmt, ap);
	va_end(ap);
	if (n < 0)
		oom();
	return p;
}

void sm_freep(void *pp)
{
	free(*(void **)pp);
}

bool sm_str_eq(const char *a, const char *b)
{
	if (!a || !b)
		return a == b;
	return strcmp(a, b) == 0;
}

char *sm_path_dirname(const char *path)
{
	const char *slash = strrchr(path, '/');

	if (!slash)
		return sm_xstrdup(".");
	if (slash == path)
		return sm_xstrdup("/");
	return strndup(path, (size_t)(slash - path));
}

const char *sm_path_basename(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash ? slash + 1 : path;
}

char *sm_path_join(const char *dir, const char *name)
{
	size_t n = strlen(dir);

	if (n > 0 && dir[n - 1] == '/')
		return sm_xasprintf("%s%s", dir, name);
	return sm_xasprintf("%s/%s", dir, name);
}

int sm_parse_ull(const char *s, unsigned long long *out)
{
	char *end;

	if (!s || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	*out = strtoull(s, &end, 10);
	if (errno || *end)
		return -1;
	return 0;
}

double sm_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double sm_monotonic(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

char *sm_format_bytes(unsigned long long n, char *buf, size_t len)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double v = (double)n;
	size_t u = 0;

	while (v >= 1024.0 && u + 1 < SM_ARRAY_LEN(units)) {
		v /= 1024.0;
		u++;
	}
	if (u == 0)
		snprintf(buf, len, "%llu B", n);
	else
		snprintf(buf, len, "%.1f %s", v, units[u]);
	return buf;
}

const char *sm_enum_name(const char *const *names, int n, int v)
{
	return v >= 0 && v < n ? names[v] : "unknown";
}

int sm_enum_from_name(const char *const *names, int n, const char *name)
{
	if (!name)
		return -1;
	for (int i = 0; i < n; i++)
		if (strcmp(names[i], name) == 0)
			return i;
	return -1;
}

int sm_parse_size(const char *s, unsigned long long *out)
{
	static const char *const units[] = { "K", "M", "G", "T" };
	char *end;
	unsigned long long v;

	if (!s || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -1;
	if (*end) {
		size_t u;

		for (u = 0; u < SM_ARRAY_LEN(units); u++)
			if (end[0] == units[u][0] && (!end[1] || strcmp(end + 1, "iB") == 0))
				break;
		if (u == SM_ARRAY_LEN(units))
			return -1;
		for (size_t i = 0; i <= u; i++) {
			if (v > (1ULL << 62) / 1024)
				return -1;
			v *= 1024;
		}
	}
	if (v == 0 || v > (1ULL << 62))
		return -1;
	*out = v;
	return 0;
}
