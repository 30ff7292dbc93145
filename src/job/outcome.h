/* outcome.h: how a move, resume or abort ended, its name in the --json result
 * and the exit status the CLI gives for it (docs/events.md); and the result a
 * job command hands back (struct sm_job_result): what happened, as data, for
 * the reporting module (src/report.c) to print and emit.  The job engine
 * prints none of it.
 */
#ifndef SM_JOB_OUTCOME_H
#define SM_JOB_OUTCOME_H

#include <stdbool.h>
#include <stddef.h>

#include "states.h"

enum sm_move_result {
	SM_MOVE_OK,
	SM_MOVE_REFUSED,  /* validation failed: nothing was changed */
	SM_MOVE_FAILED,   /* failed after changes; the job says where it stopped */
	SM_MOVE_VETOED,   /* a before_* hook said no; the job stopped cleanly */
	SM_MOVE_INTERRUPTED,  /* SIGINT/SIGTERM; the job stopped at a safe point */
};

/* "done", "refused", ... and the exit status the CLI gives for a result. */
const char *sm_move_status_name(enum sm_move_result r);
int sm_move_exit_code(enum sm_move_result r);

/* Which command a result is of. */
enum sm_job_verb {
	SM_JOB_VERB_MOVE,
	SM_JOB_VERB_RESUME,
	SM_JOB_VERB_ABORT,
};

/* A backing chain, the active image first: (path, format) pairs. */
struct sm_result_image {
	char *path;
	char *format;  /* NULL where libvirt names none */
};

struct sm_result_chain {
	struct sm_result_image *images;
	size_t n;
};

/* Append a copy of (path, format) to ch. */
void sm_result_chain_add(struct sm_result_chain *ch, const char *path, const char *format);

/* Where the data of a disk of a domain that is gone is ('after' names it). */
enum sm_result_where {
	SM_WHERE_MOVED,        /* the destination chain */
	SM_WHERE_DST_OVERLAY,  /* the destination overlay, over the destination chain */
	SM_WHERE_PIVOTING,     /* likewise, unless a pivot under way never happened */
	SM_WHERE_SRC_OVERLAY,  /* the source overlay, over the original chain */
	SM_WHERE_ORIGINAL,     /* the original chain, unchanged */
};

/* One disk of a job's result. */
struct sm_result_disk {
	char *target;
	enum sm_disk_state state;
	char *error;                    /* why this disk stopped, or NULL */
	struct sm_result_chain before;  /* the journaled source chain */
	struct sm_result_chain now;     /* the chain libvirt shows now (has_now) */
	bool has_now;
	/* As planned: the chain the dry run would give; the chain a resume or
	 * abort ended on; for a domain that is gone, where the data is. */
	struct sm_result_chain after;
	bool streamed;                  /* abort --via stream: after[0] is the source
					 * overlay the original image went into */
	enum sm_result_where where;     /* a domain that is gone: what 'after' holds */
	unsigned long long bytes;       /* dry run: bytes to copy */
	char *kept;                     /* dry run: a shared image left in place */
	char *kept_user;                /* ... and who else uses it */
};

/* A file the job kept instead of deleting (journaled "kept"). */
struct sm_result_file {
	char *path;
	char *role;
};

struct sm_job_result;
/* Told the outcome of a job that is done, before --delete-source runs. */
typedef void (*sm_job_done_fn)(const struct sm_job_result *r);

struct sm_job_result {
	enum sm_job_verb verb;
	enum sm_move_result outcome;
	long long job;                  /* 0: no job to report (refused early, dry run) */
	char *domain;
	char *uuid;
	char *error;                    /* the error it ended with (not SM_MOVE_OK) */
	double started;                 /* move: when it started (sm_monotonic) */
	double seconds;                 /* move: how long it took */
	bool via_stream;                /* abort --via stream */
	bool now_read;                  /* the domain's chains were read after the job */
	struct sm_result_disk *disks;
	size_t ndisks;
	struct sm_result_file *kept;    /* files the job kept */
	size_t nkept;
	bool delete_source;             /* --delete-source was asked */
	bool source_deleted;            /* ... and did its work: freed bytes */
	unsigned long long freed;
	bool gone;                      /* the domain no longer exists */
	bool finished_offline;          /* move: the domain went down, finished offline */
	bool trim;                      /* --trim was asked */
	bool trimmed;                   /* ... and the guest trimmed its file systems */
	char *trim_error;               /* ... or why not */
	/* move --dry-run */
	bool dry_run;
	bool persistent;
	char *dest;
	char *overlay_dir;              /* where the source overlays go */
	char *overlay_provisioner;      /* or: the provisioner making devices for them */
	unsigned long long dest_needs;
	unsigned long long dest_free;
	/* Set by the caller (may be NULL): a job that is done is told here, at
	 * the moment its outcome is known, before the source is deleted (its
	 * lines come after the outcome's).  shown: it was told. */
	sm_job_done_fn on_done;
	bool shown;
};

/* Make r's disk list, one per target (an existing list stays). */
void sm_job_result_disks(struct sm_job_result *r, const char *const *targets, size_t n);
void sm_job_result_release(struct sm_job_result *r);

#endif
