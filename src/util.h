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
/* A size: bytes, or a number with K, M, G, T (or KiB, MiB...: powers of
 * 1024), from 1 byte to 2^62.  -1 when s is not one. */
int sm_parse_size(const char *s, unsigned long long *out);
/* Seconds since the epoch with sub-second precision (CLOCK_REALTIME). */
double sm_now(void);
/* Seconds from a monotonic clock. */
double sm_monotonic(void);

/* Set by SIGINT/SIGTERM (cli.c): every wait and loop stops at its next
 * safe point.  Defined in job/ctx.c. */
extern volatile int sm_interrupted;
/* "1.5 GiB" style; returns buf. */
char *sm_format_bytes(unsigned long long n, char *buf, size_t len);

/* Enums both ways from one table (libvirt's VIR_ENUM_DECL/VIR_ENUM_IMPL).
 * SM_ENUM_DECL(job_state, enum sm_job_state) declares
 *   const char *sm_job_state_name(enum sm_job_state v);  "unknown" out of range
 *   int sm_job_state_from_name(const char *name);         -1 for an unknown name
 * and SM_ENUM_IMPL(job_state, enum sm_job_state, SM_JOB_STATE_LAST, "running",
 * ...) defines them from the names in value order; a count that differs from
 * LAST does not compile.  The names are what the journal stores: append only. */
#define SM_ENUM_DECL(name, type) \
	const char *sm_##name##_name(type v); \
	int sm_##name##_from_name(const char *s)

#define SM_ENUM_IMPL(name, type, last, ...) \
	SM_ENUM_DECL(name, type); \
	static const char *const sm_##name##_names[] = { __VA_ARGS__ }; \
	_Static_assert(SM_ARRAY_LEN(sm_##name##_names) == (size_t)(last), \
		       "sm_" #name "_names: one name per value"); \
	const char *sm_##name##_name(type v) \
	{ \
		return sm_enum_name(sm_##name##_names, (int)(last), (int)v); \
	} \
	int sm_##name##_from_name(const char *s) \
	{ \
		return sm_enum_from_name(sm_##name##_names, (int)(last), s); \
	}

/* The helpers of SM_ENUM_IMPL: names[v], "unknown" when v is out of range;
 * the index of name (NULL: -1), -1 when none. */
const char *sm_enum_name(const char *const *names, int n, int v);
int sm_enum_from_name(const char *const *names, int n, const char *name);

#endif
