/* log.c: a job's lines in the host's log (log.h). */
#include "log.h"
#include "util.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static bool opened;
/* The job and domain last logged: a warning names only its job. */
static long long last_job;
static char *last_domain;

void sm_log_job(int prio, long long job, const char *domain, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	sm_log_jobv(prio, job, domain, fmt, ap);
	va_end(ap);
}

void sm_log_jobv(int prio, long long job, const char *domain, const char *fmt, va_list ap)
{
	SM_AUTOFREE char *msg = NULL;

	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	if (!msg)
		return;  /* out of memory: the log is not worth failing for */
	pthread_mutex_lock(&lock);
	if (!opened) {
		openlog("snapmove", LOG_PID, LOG_DAEMON);
		opened = true;
	}
	if (domain && (job != last_job || !last_domain || !sm_str_eq(domain, last_domain))) {
		free(last_domain);
		last_domain = sm_xstrdup(domain);
		last_job = job;
	}
	if (!domain && job == last_job)
		domain = last_domain;
	if (domain)
		syslog(prio, "job %lld (domain '%s'): %s", job, domain, msg);
	else
		syslog(prio, "job %lld: %s", job, msg);
	pthread_mutex_unlock(&lock);
}
