/* util.h: errors, memory and string helpers shared by every snapmove module.
 *
 * Errors: a function that fails records one message with sm_error() at the point
 * of failure and returns -1 (or NULL); only the CLI layer prints it.  The record
 * is per thread.  Memory: the x-allocators abort on out-of-memory, as libvirt and
 * git do, so callers never carry an allocation-failure path.
 */
#ifndef SM_UTIL_H
#define SM_UTIL_H

#include <stdbool.h>
#include <stddef.h>

#define SM_ATTR_PRINTF(a, b) __attribute__((format(printf, a, b)))
#define SM_AUTOFREE __attribute__((cleanup(sm_freep)))
#define SM_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

void sm_error(const char *fmt, ...) SM_ATTR_PRINTF(1, 2);
const char *sm_error_message(void);
void sm_error_clear(void);
/* Keep the last error across a cleanup that may record its own, as libvirt's
 * virErrorPreserveLast/virErrorRestore: preserve returns a copy of the
 * message ("unknown error" when none); restore records it again and frees
 * it (*saved becomes NULL; a NULL *saved does nothing). */
char *sm_error_preserve(void);
void sm_error_restore(char **saved);
/* A result dropped on purpose; say why beside it (libvirt's ignore_value). */
#define sm_ignore_value(x) ((void)(x))

void *sm_xmalloc(size_t n);
void *sm_xcalloc(size_t nmemb, size_t size);
void *sm_xrealloc(void *p, size_t n);
char *sm_xstrdup(const char *s);
char *sm_xstrdup_or_null(const char *s);
char *sm_xasprintf(const char *fmt, ...) SM_ATTR_PRINTF(1, 2);
void sm_freep(void *pp);

/* Hand a pointer over: returns *pp and sets it to NULL (g_steal_pointer). */
#define sm_steal(pp) sm_steal_impl((void **)(pp))
static inline void *sm_steal_impl(void **pp)
{
	void *p = *pp;
	*pp = NULL;
	return p;
}

bool sm_str_eq(const char *a, const char *b);
char *sm_path_dirname(const char *path);
const char *sm_path_basename(const char *path);
char *sm_path_join(const char *dir, const char *name);
/* Parse a decimal unsigned number; the whole string must be consumed. */
int sm_parse_ull(const char *s, unsigned long long *out);
/* Seconds since the epoch with sub-second precision (CLOCK_REALTIME). */
double sm_now(void);
/* Seconds from a monotonic clock. */
double sm_monotonic(void);

/* Set by SIGINT/SIGTERM (cli.c): every wait and loop stops at its next
 * safe point.  Defined in job/ctx.c. */
extern volatile int sm_interrupted;
/* "1.5 GiB" style; returns buf. */
char *sm_format_bytes(unsigned long long n, char *buf, size_t len);

#endif
