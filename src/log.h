/* log.h: what a job does, for the host's log: syslog(3), facility daemon,
 * one line each with the job and its domain, as vdsm and libvirt log theirs.
 * The journal logs each job's creation, phase starts and failures, and end
 * (journal/jobs.c); events.c logs warnings.  Nothing here fails a move: with
 * no syslog daemon (no /dev/log) the lines are dropped, as syslog(3) does.
 */
#ifndef SM_LOG_H
#define SM_LOG_H

#include <stdarg.h>
#include <syslog.h>

/* One line, "job N (domain 'D'): ..." (domain NULL: the one last logged for
 * job N in this process, or none). */
void sm_log_job(int prio, long long job, const char *domain, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
void sm_log_jobv(int prio, long long job, const char *domain, const char *fmt, va_list ap)
	__attribute__((format(printf, 4, 0)));

#endif
