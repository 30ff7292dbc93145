/* virt.c: libvirt connection, error capture, and the block-job event loop.
 * One event loop thread runs virEventRunDefaultImpl for the whole process.
 */
#include "virt.h"
#include "util.h"

#include <errno.h>
#include <json-c/json.h>
#include <libvirt/libvirt-qemu.h>
#include <libvirt/virterror.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SM_MAX_EVENT_DISKS 64

struct sm_virt {
	virConnectPtr conn;
	char *uri;
	int callback_id;
	int qmp_callback_id;
	int threshold_callback_id;
	unsigned long threshold_seq;  /* block-threshold events of the watched domain */
	pthread_t loop;
	bool loop_running;
	volatile bool stop;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	char watch_uuid[VIR_UUID_STRING_BUFLEN];
	struct {
		char target[64];
		int type;    /* the job type waited for; -1: any */
		int status;
		char error[256];  /* QEMU's error of the job that failed, "" if none */
	} events[SM_MAX_EVENT_DISKS];
	size_t nevents;
	unsigned long seq;  /* events seen so far, of any disk */
};

static void quiet_error_handler(void *opaque, virErrorPtr err)
{
	(void)opaque;
	(void)err;
}

const char *sm_virt_last_error(void)
{
	virErrorPtr err = virGetLastError();

	/* virGetLastErrorMessage() says "no error" when there is none: that
	 * happens when a libvirt call came between the failure and here. */
	return err && err->message ? err->message
	       : "libvirt gave no reason (its error was lost)";
}

char *sm_virt_last_error_dup(void)
{
	return sm_xstrdup(sm_virt_last_error());
}

void sm_virt_error_saved(virErrorPtr saved, const char *fmt, ...)
{
	char what[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	sm_error("%s: %s", what, saved && saved->message ? saved->message
		 : "libvirt gave no reason (its error was lost)");
	virFreeError(saved);
}

static void *event_loop(void *opaque)
{
	struct sm_virt *v = opaque;

	while (!v->stop)
		if (virEventRunDefaultImpl() < 0)
			break;
	return NULL;
}

static void on_block_job(virConnectPtr conn, virDomainPtr dom, const char *disk, int type,
			 int status, void *opaque)
{
	struct sm_virt *v = opaque;
	size_t i;

	char uuid[VIR_UUID_STRING_BUFLEN];

	(void)conn;
	(void)type;
	if (virDomainGetUUIDString(dom, uuid) < 0)
		return;
	pthread_mutex_lock(&v->lock);
	if (strcmp(uuid, v->watch_uuid) != 0) {
		pthread_mutex_unlock(&v->lock);
		return;
	}
	for (i = 0; i < v->nevents; i++)
		if (strcmp(v->events[i].target, disk) == 0)
			break;
	if (i == v->nevents && v->nevents < SM_MAX_EVENT_DISKS) {
		snprintf(v->events[i].target, sizeof(v->events[i].target), "%s", disk);
		v->events[i].type = -1;
		v->events[i].error[0] = '\0';
		v->nevents++;
	}
	/* A late event of an earlier job (the mirror just pivoted) is not news
	 * about the job started since. */
	if (i < v->nevents && (v->events[i].type < 0 || v->events[i].type == type))
		v->events[i].status = status;
	v->seq++;
	pthread_cond_broadcast(&v->cond);
	pthread_mutex_unlock(&v->lock);
}

static void on_threshold(virConnectPtr conn, virDomainPtr dom, const char *dev,
			 const char *path, unsigned long long threshold, unsigned long long excess,
			 void *opaque)
{
	struct sm_virt *v = opaque;
	char uuid[VIR_UUID_STRING_BUFLEN];

	(void)conn;
	(void)dev;
	(void)path;
	(void)threshold;
	(void)excess;
	if (virDomainGetUUIDString(dom, uuid) < 0)
		return;
	pthread_mutex_lock(&v->lock);
	if (strcmp(uuid, v->watch_uuid) == 0) {
		v->threshold_seq++;
		pthread_cond_broadcast(&v->cond);
	}
	pthread_mutex_unlock(&v->lock);
}

/* The disk target in a job name of libvirt's, TYPE-TARGET-NODE
 * ("copy-vda-libvirt-3-format", "commit-vda-libvirt-1-format"), into buf. */
static bool job_target(const char *job, char *buf, size_t len)
{
	const char *t = job ? strchr(job, '-') : NULL;
	size_t n;

	if (!t)
		return false;
	t++;
	n = strcspn(t, "-");
	if (n == 0 || n >= len)
		return false;
	memcpy(buf, t, n);
	buf[n] = '\0';
	return true;
}

/* QEMU's BLOCK_JOB_COMPLETED carries the job's error text ("No space left
 * on device"), which libvirt 9's BLOCK_JOB_2 event drops and nothing keeps
 * once libvirt has dismissed the job. */
static void on_qmp_event(virConnectPtr conn, virDomainPtr dom, const char *event,
			 long long seconds, unsigned int micros, const char *details, void *opaque)
{
	struct sm_virt *v = opaque;
	char uuid[VIR_UUID_STRING_BUFLEN];
	char target[64];
	struct json_object *o, *dev, *err;

	(void)conn;
	(void)seconds;
	(void)micros;
	if (!details || strcmp(event, "BLOCK_JOB_COMPLETED") != 0 ||
	    virDomainGetUUIDString(dom, uuid) < 0)
		return;
	o = json_tokener_parse(details);
	if (!o)
		return;
	if (json_object_object_get_ex(o, "device", &dev) &&
	    json_object_object_get_ex(o, "error", &err) &&
	    job_target(json_object_get_string(dev), target, sizeof(target))) {
		size_t i;

		pthread_mutex_lock(&v->lock);
		for (i = 0; i < v->nevents; i++)
			if (strcmp(v->events[i].target, target) == 0)
				break;
		if (strcmp(uuid, v->watch_uuid) == 0 && i == v->nevents &&
		    v->nevents < SM_MAX_EVENT_DISKS) {
			snprintf(v->events[i].target, sizeof(v->events[i].target), "%s", target);
			v->events[i].type = -1;
			v->events[i].status = -1;
			v->events[i].error[0] = '\0';
			v->nevents++;
		}
		if (strcmp(uuid, v->watch_uuid) == 0 && i < v->nevents) {
			snprintf(v->events[i].error, sizeof(v->events[i].error), "%s",
				 json_object_get_string(err));
			v->seq++;
			pthread_cond_broadcast(&v->cond);
		}
		pthread_mutex_unlock(&v->lock);
	}
	json_object_put(o);
}

static void wake_loop(int timer, void *opaque)
{
	(void)opaque;
	virEventRemoveTimeout(timer);
}

int sm_virt_open(const char *uri, struct sm_virt **out)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	struct sm_virt *v;
	const char *env = getenv("LIBVIRT_DEFAULT_URI");

	*out = NULL;
	if (!uri)
		uri = env && *env ? env : "qemu:///system";
	virSetErrorFunc(NULL, quiet_error_handler);
	pthread_once(&once, (void (*)(void))virEventRegisterDefaultImpl);
	v = sm_xcalloc(1, sizeof(*v));
	pthread_mutex_init(&v->lock, NULL);
	pthread_cond_init(&v->cond, NULL);
	v->uri = sm_xstrdup(uri);
	v->callback_id = -1;
	v->qmp_callback_id = -1;
	v->threshold_callback_id = -1;
	v->conn = virConnectOpen(uri);
	if (!v->conn) {
		sm_error("cannot connect to '%s': %s; start libvirtd ('systemctl start "
			 "libvirtd') or pass -c URI", uri, sm_virt_last_error());
		sm_virt_free(v);
		return -1;
	}
	if (pthread_create(&v->loop, NULL, event_loop, v) != 0) {
		sm_error("cannot start the libvirt event thread");
		sm_virt_free(v);
		return -1;
	}
	v->loop_running = true;
	v->callback_id = virConnectDomainEventRegisterAny(
		v->conn, NULL, VIR_DOMAIN_EVENT_ID_BLOCK_JOB_2,
		VIR_DOMAIN_EVENT_CALLBACK(on_block_job), v, NULL);
	if (v->callback_id < 0) {
		sm_virt_error("cannot register for block job events on '%s'", uri);
		sm_virt_free(v);
		return -1;
	}
	/* Only for QEMU's error texts: a connection without it still works. */
	v->qmp_callback_id = virConnectDomainQemuMonitorEventRegister(
		v->conn, NULL, "BLOCK_JOB_COMPLETED", on_qmp_event, v, NULL, 0);
	if (v->qmp_callback_id < 0)
		virResetLastError();
	/* Growing overlays on devices polls too: a connection without it works. */
	v->threshold_callback_id = virConnectDomainEventRegisterAny(
		v->conn, NULL, VIR_DOMAIN_EVENT_ID_BLOCK_THRESHOLD,
		VIR_DOMAIN_EVENT_CALLBACK(on_threshold), v, NULL);
	if (v->threshold_callback_id < 0)
		virResetLastError();
	*out = v;
	return 0;
}

void sm_virt_free(struct sm_virt *v)
{
	if (!v)
		return;
	if (v->conn && v->callback_id >= 0)
		virConnectDomainEventDeregisterAny(v->conn, v->callback_id);
	if (v->conn && v->qmp_callback_id >= 0)
		virConnectDomainQemuMonitorEventDeregister(v->conn, v->qmp_callback_id);
	if (v->conn && v->threshold_callback_id >= 0)
		virConnectDomainEventDeregisterAny(v->conn, v->threshold_callback_id);
	if (v->conn)
		virConnectClose(v->conn);
	if (v->loop_running) {
		v->stop = true;
		virEventAddTimeout(0, wake_loop, NULL, NULL);
		pthread_join(v->loop, NULL);
	}
	pthread_mutex_destroy(&v->lock);
	pthread_cond_destroy(&v->cond);
	free(v->uri);
	free(v);
}

virConnectPtr sm_virt_conn(struct sm_virt *v)
{
	return v->conn;
}

const char *sm_virt_uri(struct sm_virt *v)
{
	return v->uri;
}

virDomainPtr sm_virt_domain(struct sm_virt *v, const char *name)
{
	virDomainPtr dom = virDomainLookupByName(v->conn, name);

	if (!dom)
		dom = virDomainLookupByUUIDString(v->conn, name);
	if (!dom)
		sm_error("no domain named '%s' on '%s'; see 'virsh -c %s list --all'", name,
			 v->uri, v->uri);
	return dom;
}

char *sm_virt_domain_xml(virDomainPtr dom, bool inactive)
{
	char *xml = virDomainGetXMLDesc(dom, inactive ? VIR_DOMAIN_XML_INACTIVE : 0);

	if (!xml)
		sm_virt_error("cannot read the XML of domain '%s'", virDomainGetName(dom));
	return xml;
}

void sm_virt_watch_domain(struct sm_virt *v, virDomainPtr dom)
{
	char uuid[VIR_UUID_STRING_BUFLEN] = "";

	virDomainGetUUIDString(dom, uuid);
	pthread_mutex_lock(&v->lock);
	memcpy(v->watch_uuid, uuid, sizeof(uuid));
	v->nevents = 0;
	pthread_mutex_unlock(&v->lock);
}

void sm_virt_job_event_reset(struct sm_virt *v, const char *target, int type)
{
	size_t i;

	pthread_mutex_lock(&v->lock);
	for (i = 0; i < v->nevents; i++)
		if (strcmp(v->events[i].target, target) == 0)
			break;
	if (i == v->nevents && v->nevents < SM_MAX_EVENT_DISKS) {
		snprintf(v->events[i].target, sizeof(v->events[i].target), "%s", target);
		v->nevents++;
	}
	if (i < v->nevents) {
		v->events[i].status = -1;
		v->events[i].type = type;
		v->events[i].error[0] = '\0';
	}
	pthread_mutex_unlock(&v->lock);
}

int sm_virt_job_event_status(struct sm_virt *v, const char *target)
{
	int status = -1;

	pthread_mutex_lock(&v->lock);
	for (size_t i = 0; i < v->nevents; i++)
		if (strcmp(v->events[i].target, target) == 0)
			status = v->events[i].status;
	pthread_mutex_unlock(&v->lock);
	return status;
}

bool sm_virt_job_error(struct sm_virt *v, const char *target, char *buf, size_t len)
{
	bool found = false;

	pthread_mutex_lock(&v->lock);
	for (size_t i = 0; i < v->nevents && !found; i++)
		if (strcmp(v->events[i].target, target) == 0 && v->events[i].error[0]) {
			snprintf(buf, len, "%s", v->events[i].error);
			found = true;
		}
	pthread_mutex_unlock(&v->lock);
	return found;
}

unsigned long sm_virt_job_event_seq(struct sm_virt *v)
{
	unsigned long seq;

	pthread_mutex_lock(&v->lock);
	seq = v->seq;
	pthread_mutex_unlock(&v->lock);
	return seq;
}

/* Wait up to timeout_ms until *seq (one of v's counters, under v->lock)
 * is no longer seen. */
static void wait_seq(struct sm_virt *v, const unsigned long *seq, unsigned long seen,
		     int timeout_ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += timeout_ms / 1000;
	ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&v->lock);
	while (*seq == seen)
		if (pthread_cond_timedwait(&v->cond, &v->lock, &ts) == ETIMEDOUT)
			break;
	pthread_mutex_unlock(&v->lock);
}

void sm_virt_job_event_wait(struct sm_virt *v, unsigned long seen, int timeout_ms)
{
	wait_seq(v, &v->seq, seen, timeout_ms);
}

unsigned long sm_virt_threshold_seq(struct sm_virt *v)
{
	unsigned long seq;

	pthread_mutex_lock(&v->lock);
	seq = v->threshold_seq;
	pthread_mutex_unlock(&v->lock);
	return seq;
}

void sm_virt_threshold_kick(struct sm_virt *v)
{
	pthread_mutex_lock(&v->lock);
	v->threshold_seq++;
	pthread_cond_broadcast(&v->cond);
	pthread_mutex_unlock(&v->lock);
}

void sm_virt_threshold_wait(struct sm_virt *v, unsigned long seen, int timeout_ms)
{
	wait_seq(v, &v->threshold_seq, seen, timeout_ms);
}

int sm_virt_metadata_reason(virDomainPtr dom, const char *name, char **why)
{
	virDomainSnapshotPtr *snaps = NULL;
	virDomainCheckpointPtr *cps = NULL;
	int nsnap, ncp = 0, ret = -1;

	*why = NULL;
	nsnap = virDomainListAllSnapshots(dom, &snaps, 0);
	if (nsnap < 0) {
		sm_virt_error("cannot list the snapshots of domain '%s'", name);
		return -1;
	}
	ncp = virDomainListAllCheckpoints(dom, &cps, 0);
	if (ncp < 0) {
		sm_virt_error("cannot list the checkpoints of domain '%s'", name);
		ncp = 0;
		goto cleanup;
	}
	/* libvirt lists them in no set order: name the first by name. */
	for (int i = 1; i < nsnap; i++)
		if (strcmp(virDomainSnapshotGetName(snaps[i]), virDomainSnapshotGetName(snaps[0])) < 0) {
			virDomainSnapshotPtr t = snaps[0];

			snaps[0] = snaps[i];
			snaps[i] = t;
		}
	for (int i = 1; i < ncp; i++)
		if (strcmp(virDomainCheckpointGetName(cps[i]), virDomainCheckpointGetName(cps[0])) < 0) {
			virDomainCheckpointPtr t = cps[0];

			cps[0] = cps[i];
			cps[i] = t;
		}
	ret = 1;
	if (nsnap > 0)
		*why = sm_xasprintf("domain '%s' has %d snapshot%s in libvirt's metadata (first: "
				    "'%s') that name%s its files where they are now; delete %s "
				    "('virsh snapshot-delete %s NAME --metadata' keeps the images) "
				    "or leave the domain where it is",
				    name, nsnap, nsnap == 1 ? "" : "s",
				    virDomainSnapshotGetName(snaps[0]), nsnap == 1 ? "s" : "",
				    nsnap == 1 ? "it" : "them", name);
	else if (ncp > 0)
		*why = sm_xasprintf("domain '%s' has %d checkpoint%s (first: '%s') whose bitmaps "
				    "snapmove does not carry over; delete %s ('virsh "
				    "checkpoint-delete %s NAME') and take a full backup after the "
				    "move, or leave the domain where it is",
				    name, ncp, ncp == 1 ? "" : "s",
				    virDomainCheckpointGetName(cps[0]), ncp == 1 ? "it" : "them",
				    name);
	else
		ret = 0;

cleanup:
	for (int i = 0; i < nsnap; i++)
		virDomainSnapshotFree(snaps[i]);
	for (int i = 0; i < ncp; i++)
		virDomainCheckpointFree(cps[i]);
	free(snaps);
	free(cps);
	return ret;
}
