/* virt.h: the libvirt connection snapmove works through: opening it with an
 * event loop thread, turning libvirt errors into snapmove errors, and the
 * block-job events that mirror.c and commit.c wait on.
 *
 * It knows nothing of moves; src/snapshot/ holds the operations.
 */
#ifndef SM_VIRT_H
#define SM_VIRT_H

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <stdbool.h>
#include <stddef.h>

struct sm_virt;

/* Open uri (NULL: LIBVIRT_DEFAULT_URI, else qemu:///system) and start the
 * event loop thread. */
int sm_virt_open(const char *uri, struct sm_virt **out);
void sm_virt_free(struct sm_virt *v);
virConnectPtr sm_virt_conn(struct sm_virt *v);
const char *sm_virt_uri(struct sm_virt *v);

/* Record libvirt's last error as "what: libvirt's message".  Every public
 * libvirt call resets libvirt's last error, virDomainGetName() too: the error
 * is saved (as libvirt's virErrorPreserveLast does) before the arguments are
 * evaluated, so sm_virt_error("... '%s'", virDomainGetName(dom)) keeps it. */
#define sm_virt_error(...)                                                    \
	({                                                                    \
		virErrorPtr sm_virt_saved_ = virSaveLastError();              \
		sm_virt_error_saved(sm_virt_saved_, __VA_ARGS__);             \
	})
/* sm_virt_error with an error saved by virSaveLastError(), which it frees. */
void sm_virt_error_saved(virErrorPtr saved, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Libvirt's last error message, for a message that says what to do after
 * it: sm_error("cannot X: %s; do Y", ..., sm_virt_last_error()).  Take it
 * before any other libvirt call, in a variable when the message needs one
 * (sm_virt_last_error_dup): the order of arguments is unspecified. */
const char *sm_virt_last_error(void);
char *sm_virt_last_error_dup(void);

/* Look a domain up by name or UUID; a clear error when there is none. */
virDomainPtr sm_virt_domain(struct sm_virt *v, const char *name);

/* Whether domain NAME has libvirt snapshot or checkpoint metadata, which
 * names its files and bitmaps where they are now: libvirt reverts and deletes
 * external snapshots through those paths, and a checkpoint's bitmap must see
 * every write for the next incremental backup.  snapmove rewrites neither, so
 * such a domain is not moved.  1 and *why (the refusal, with its fix; free it)
 * when it has some, 0 when none, -1 (error set) when libvirt cannot tell. */
int sm_virt_metadata_reason(virDomainPtr dom, const char *name, char **why);
/* The live (or with inactive=true, persistent) domain XML; caller frees. */
char *sm_virt_domain_xml(virDomainPtr dom, bool inactive);

/* Block-job events of one domain, per disk target.  Choose the domain first;
 * events of other domains are ignored. */
void sm_virt_watch_domain(struct sm_virt *v, virDomainPtr dom);
/* Forget the last event for a disk before starting a job of type (a
 * virDomainBlockJobType) on it; events of other job types are ignored from
 * then on.  Then poll the last status seen (-1 while none). */
void sm_virt_job_event_reset(struct sm_virt *v, const char *target, int type);
int sm_virt_job_event_status(struct sm_virt *v, const char *target);
/* QEMU's error text of target's job that failed since the reset (from its
 * BLOCK_JOB_COMPLETED monitor event), into buf; false when there is none. */
bool sm_virt_job_error(struct sm_virt *v, const char *target, char *buf, size_t len);
/* How many events have arrived: taken before looking at the state, and given
 * to sm_virt_job_event_wait, so an event that comes between the look and the
 * wait ends the wait at once instead of being slept through. */
unsigned long sm_virt_job_event_seq(struct sm_virt *v);
/* Sleep until an event after the seen'th arrives or timeout_ms passes. */
void sm_virt_job_event_wait(struct sm_virt *v, unsigned long seen, int timeout_ms);

/* Block-threshold events (VIR_DOMAIN_EVENT_ID_BLOCK_THRESHOLD) of the
 * watched domain: how many have come (or been kicked), and a wait for the
 * next one of at most timeout_ms.  kick wakes the waiter as an event
 * would. */
unsigned long sm_virt_threshold_seq(struct sm_virt *v);
void sm_virt_threshold_wait(struct sm_virt *v, unsigned long seen, int timeout_ms);
void sm_virt_threshold_kick(struct sm_virt *v);

#endif
