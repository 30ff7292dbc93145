/* journal.h: the SQLite journal of moves, the record that makes an interrupted
 * move understandable, resumable and undoable.
 *
 * Every step that changes the world is written before it starts and after it
 * succeeds, each in one transaction.  The schema lives in schema/NNN-*.sql and
 * is applied on open according to PRAGMA user_version.  WAL mode,
 * synchronous=FULL, a busy timeout.
 */
#ifndef SM_JOURNAL_H
#define SM_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "chain/plan.h"
#include "states.h"
#include "util.h"

struct sm_journal;

/* The names the journal stores, both ways (util.h SM_ENUM_DECL): append only.
 * The job's phases and states are in states.h. */

/* What a file of the table file is to its job. */
enum sm_file_role {
	SM_FILE_SRC_OVERLAY,   /* the snapshot's overlay, beside the source image */
	SM_FILE_DST_OVERLAY,   /* the mirror's target at the destination */
	SM_FILE_DST_IMAGE,     /* a copy of a source image at the destination */
	SM_FILE_KEPT_OVERLAY,  /* --keep-overlay: the overlay the domain stays on */
	SM_FILE_SRC_IMAGE,     /* a source image, deleted by cleanup or --delete-source */
	SM_FILE_ROLE_LAST
};
SM_ENUM_DECL(file_role, enum sm_file_role);

/* Where a file of the table file stands. */
enum sm_file_state {
	SM_FILE_PLANNED,   /* journaled, not made yet */
	SM_FILE_CREATING,  /* being made: it may exist, partly */
	SM_FILE_CREATED,
	SM_FILE_KEPT,      /* not removed (in use, or removing it failed) */
	SM_FILE_REMOVED,   /* a file the job made, removed by it */
	SM_FILE_DELETING,  /* a source image being deleted */
	SM_FILE_DELETED,   /* a source image deleted */
	SM_FILE_STATE_LAST
};
SM_ENUM_DECL(file_state, enum sm_file_state);

/* A rebalance's own state. */
enum sm_rebalance_state {
	SM_REBALANCE_STATE_RUNNING,
	SM_REBALANCE_STATE_DONE,
	SM_REBALANCE_STATE_FAILED,
	SM_REBALANCE_STATE_LAST
};
SM_ENUM_DECL(rebalance_state, enum sm_rebalance_state);

/* The states of a move of a rebalance. */
enum sm_rmove_state {
	SM_RMOVE_PLANNED,
	SM_RMOVE_RUNNING,
	SM_RMOVE_DONE,
	SM_RMOVE_FAILED,
	SM_RMOVE_STATE_LAST
};
SM_ENUM_DECL(rmove_state, enum sm_rmove_state);

struct sm_journal_chunk {
	unsigned long long index;
	unsigned long long offset;
	unsigned long long length;
	unsigned long long data_bytes;
	char checksum[17];  /* hex */
	bool verified;      /* false: durable, its check not done (see 009) */
};

struct sm_job_row {
	long long id;
	char *domain_name;
	char *domain_uuid;
	bool persistent;
	char *dest_dir;
	unsigned long long bandwidth_mib;
	bool keep_overlay;
	bool quiesce;
	bool verify;
	char *dest_format;  /* NULL: keep each image's format */
	char *sync_writes;  /* auto, on, off */
	bool delete_source; /* delete the unused source images when done */
	double converge_timeout;
	char *copy_method;  /* --copy-method by name; NULL: auto */
	unsigned parallel;  /* --parallel; 0: from the destination's devices */
	bool trim;          /* --trim: the guest trims its file systems when done */
	unsigned long long overlay_chunk;  /* overlays on provisioned devices, grown by
					    * this many bytes (schema 015); 0: files */
	bool dest_zeroed;   /* --dest-zeroed: its destination devices read as zeros */
	char *state;
	char *phase;
	char *error;
	double created_at;
	double updated_at;
	double finished_at;  /* 0 while unfinished */
};

struct sm_disk_row {
	char *target;
	char *state;
	char *src_overlay;
	char *dst_overlay;
	char *error;
	bool sync_writes;          /* its mirror runs in write-blocking mode */
	bool pivoting;             /* a pivot was asked for and not yet journaled */
	struct sm_plan_disk plan;  /* images and paths as journaled */
};

struct sm_step_row {
	char *phase;
	char *target;
	double started_at;
	double finished_at;
	char *error;
};

struct sm_file_row {
	char *path;
	char *role;
	char *state;
};

char *sm_journal_default_path(void);
/* Open (creating it and its directory when missing) and upgrade the schema.
 * The folder must be the caller's and writable by nobody else (the default
 * folder is made 0700); the files, never links, are made 0600. */
int sm_journal_open(const char *path, struct sm_journal **out);
/* The same for commands that only act on jobs already there (list, status,
 * resume, abort, verify, cleanup, forget): a missing file is an error naming
 * the path, and nothing is created.  *missing (when not NULL) is set then. */
int sm_journal_open_existing(const char *path, struct sm_journal **out, bool *missing);
/* The same, read-only (SQLITE_OPEN_READONLY), for the commands that only read
 * (list, status, verify).  A journal of an older schema is upgraded first. */
int sm_journal_open_readonly(const char *path, struct sm_journal **out, bool *missing);
/* A file beside the journal (its locks, logs): when it exists it must be the
 * caller's regular file, not a link; it is made 0600.  0 when it is missing. */
int sm_journal_check_file(const char *file);
void sm_journal_free(struct sm_journal *j);

/* Transactions: BEGIN IMMEDIATE takes the write lock at once. */
int sm_journal_begin(struct sm_journal *j);
int sm_journal_commit(struct sm_journal *j);
void sm_journal_rollback(struct sm_journal *j);

/* Evaluate expr (0 or -1) in one transaction, nested in the caller's if one
 * is open: committed when it returns 0, rolled back otherwise. */
#define SM_JOURNAL_TX(j, expr) \
	(sm_journal_begin(j) < 0 ? -1 \
	 : (expr) < 0 ? (sm_journal_rollback(j), -1) \
	 : sm_journal_commit(j))

/* Inserts; call inside a transaction. */
int sm_journal_job_insert(struct sm_journal *j, const struct sm_job_row *job, long long *id);
int sm_journal_disk_insert(struct sm_journal *j, long long job_id, const struct sm_plan_disk *plan);
int sm_journal_file_set(struct sm_journal *j, long long job_id, const char *path,
			const char *role, const char *state);

/* Updates; each call is its own transaction unless one is open. */
int sm_journal_phase_start(struct sm_journal *j, long long job_id, enum sm_phase phase);
int sm_journal_phase_finish(struct sm_journal *j, long long job_id, enum sm_phase phase,
			    const char *error);
int sm_journal_disk_set_state(struct sm_journal *j, long long job_id, const char *target,
			      enum sm_disk_state state, const char *error);
int sm_journal_image_set_state(struct sm_journal *j, long long job_id, const char *target,
			       size_t depth, enum sm_image_state state,
			       unsigned long long bytes_copied);
int sm_journal_job_finish(struct sm_journal *j, long long job_id, enum sm_job_state state,
			  const char *error);
/* A pivot of the disk is under way (set before asking libvirt, cleared once
 * the pivot is journaled). */
int sm_journal_disk_set_pivoting(struct sm_journal *j, long long job_id, const char *target,
				 bool on);
/* The disk's mirror was (re)started in write-blocking mode. */
int sm_journal_disk_set_sync_writes(struct sm_journal *j, long long job_id, const char *target,
				    bool on);
/* The overlays of a disk are the devices made for it (move
 * --overlay-provisioner): its row and its overlays' planned file rows name
 * them instead of the file names planned. */
int sm_journal_disk_set_overlays(struct sm_journal *j, long long job_id, const char *target,
				 const char *src_overlay, const char *dst_overlay);
/* The disk was resized during the move: its overlays take this size. */
int sm_journal_disk_set_size(struct sm_journal *j, long long job_id, const char *target,
			     unsigned long long virtual_size);
/* The copier's records: the path a copy used, and each durable chunk. */
int sm_journal_image_set_method(struct sm_journal *j, long long job_id, const char *target,
				size_t depth, const char *method, unsigned long long chunk_size);
/* The disk sequence number of an image's destination device, when the
 * copier first opened it (a resumed copy compares it). */
int sm_journal_image_set_diskseq(struct sm_journal *j, long long job_id, const char *target,
				 size_t depth, unsigned long long diskseq);
/* Record n chunks of an image (durable, or verified), in one transaction. */
int sm_journal_chunks_done(struct sm_journal *j, long long job_id, const char *target,
			   size_t depth, const struct sm_journal_chunk *c, size_t n);
int sm_journal_chunk_list(struct sm_journal *j, long long job_id, const char *target,
			  size_t depth, struct sm_journal_chunk **out, size_t *n);
/* Drop an image's chunks (a copy that starts over). */
int sm_journal_chunk_forget(struct sm_journal *j, long long job_id, const char *target,
			    size_t depth);

/* Where an image's copy stands: its state and how many chunks (a prefix) are
 * durable at the destination. */
int sm_journal_image_progress(struct sm_journal *j, long long job_id, const char *target,
			      size_t depth, enum sm_image_state *state,
			      unsigned long long *chunks_done);
/* The state of a file the job planned or created (NULL when it has no row). */
int sm_journal_file_state(struct sm_journal *j, long long job_id, const char *path,
			  char **state);
/* Unfinished jobs (neither done nor aborted) of a domain, by name. */
int sm_journal_unfinished_jobs_for_domain(struct sm_journal *j, const char *name,
					  long long **ids, size_t *n);
const char *sm_journal_path(const struct sm_journal *j);

/* Plain statements for the tables of modules with simple records (the
 * rebalance): types as in the binding helper ('i' long long, 's' string,
 * 'd' double).  Rows come back as text, NULL as "". */
struct sm_journal_rows {
	char **cells;  /* nrows * ncols */
	size_t nrows;
	size_t ncols;
};
int sm_journal_sql(struct sm_journal *j, const char *sql, const char *types, ...);
long long sm_journal_last_id(struct sm_journal *j);
int sm_journal_query(struct sm_journal *j, const char *sql, const char *types,
		     struct sm_journal_rows *rows, ...);
void sm_journal_rows_release(struct sm_journal_rows *rows);
/* Checked reading of the tables of other modules (the rebalance's), with
 * the checks the job rows get.  A cursor runs sql for the rows of owner id
 * (e.g. "rebalance", 3); _next steps to a row (1) or says there is none
 * left (0, also after a malformed value or a database error); the getters
 * check the value (a wrong type, NULL where none may be, out of range, an
 * unknown name) and note the first problem, prefixed by the text set with
 * _what (the row: "move 2: "), returning a harmless value; _bad notes a
 * problem found by the caller.  _close returns 0, -1 on a database error,
 * or -2 when a value was malformed, with the error "journal row of OWNER ID
 * is malformed (WHY); the journal may have been edited: ADVICE". */
struct sm_journal_cursor;
struct sm_journal_cursor *sm_journal_cursor_open(struct sm_journal *j, const char *owner,
						 long long id, const char *sql,
						 const char *types, ...);
int sm_journal_cursor_next(struct sm_journal_cursor *c);
void sm_journal_cursor_what(struct sm_journal_cursor *c, const char *what);
bool sm_journal_cursor_null(struct sm_journal_cursor *c, int col);
long long sm_journal_cursor_int(struct sm_journal_cursor *c, int col, long long min,
				long long max);
bool sm_journal_cursor_bool(struct sm_journal_cursor *c, int col);
char *sm_journal_cursor_text(struct sm_journal_cursor *c, int col, bool null_ok);
/* The value of a name checked with from_name (-1: unknown); 0 when bad. */
int sm_journal_cursor_enum(struct sm_journal_cursor *c, int col, const char *what,
			   int (*from_name)(const char *));
void sm_journal_cursor_bad(struct sm_journal_cursor *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
int sm_journal_cursor_close(struct sm_journal_cursor *c, const char *advice);
/* ---- Typed getters: the journal's names as enums ---- */
/* The state of job (and its error, NULL when none): 1, 0 when there is no
 * such job, -1 a database error, -2 its row is malformed (sm_error says). */
int sm_journal_job_state(struct sm_journal *j, long long job_id, enum sm_job_state *state,
			 char **error);
/* The newest job of a domain's disk (by name) with an id above floor; *job_id
 * 0 when none.  0, -1 on a database error. */
int sm_journal_latest_disk_job(struct sm_journal *j, const char *domain, const char *target,
			       long long floor, long long *job_id);
/* The row values of the checked rows (journal_job_get and the lists check
 * every name, so these never see an unknown one). */
enum sm_job_state sm_job_row_state(const struct sm_job_row *r);
enum sm_phase sm_job_row_phase(const struct sm_job_row *r);
enum sm_disk_state sm_disk_row_state(const struct sm_disk_row *r);
/* The job is done or aborted (nothing left to resume or undo). */
bool sm_job_row_finished(const struct sm_job_row *r);
/* A file row's role and state; -1 for a name this version does not write
 * (file rows are not refused for it). */
int sm_file_row_role(const struct sm_file_row *r);
int sm_file_row_state(const struct sm_file_row *r);
/* The state of a file the job journaled: 1 (*state set), 0 no row, -1 a
 * database error, -2 a name this version does not write (sm_error says). */
int sm_journal_file_get_state(struct sm_journal *j, long long job_id, const char *path,
			      enum sm_file_state *state);
/* Journal a file by role and state (sm_journal_file_set with the names). */
int sm_journal_file_put(struct sm_journal *j, long long job_id, const char *path,
			enum sm_file_role role, enum sm_file_state state);

/* ---- Rebalances (journal/rebalance.c): a plan of ordinary move jobs ---- */
/* A rebalance as the journal holds it, every value checked. */
struct sm_rebalance_move_row {
	long long seq;              /* 1.. */
	char *domain;
	char *disk;
	bool running;               /* the domain ran when planned */
	char *from;                 /* absolute folders */
	char *to_dir;
	unsigned long long bytes;
	enum sm_rmove_state state;
	long long job;              /* 0: none yet (NULL or 0 in the journal) */
};

struct sm_rebalance_row {
	unsigned max_parallel;      /* 1..SM_REBALANCE_MAX_PARALLEL */
	unsigned long long bandwidth_mib;
	bool stop_on_error;
	long long job_floor;        /* the highest job id before it began */
	struct sm_rebalance_move_row *moves;
	size_t nmoves;
};

#define SM_REBALANCE_MAX_PARALLEL 16

/* Journal a new rebalance (goal in words, r's options and moves; r's states,
 * jobs and job_floor are ignored: every move is planned, the floor is the
 * highest job id now) in one transaction; *id its number. */
int sm_journal_rebalance_insert(struct sm_journal *j, const char *goal,
				const struct sm_rebalance_row *r, long long *id);
/* A move's state, its job (0: none) and error, in one transaction. */
int sm_journal_rebalance_move_set(struct sm_journal *j, long long id, long long seq,
				  enum sm_rmove_state state, long long job_id, const char *error);
/* The rebalance ended (done or failed). */
int sm_journal_rebalance_finish(struct sm_journal *j, long long id,
				enum sm_rebalance_state state);
/* Read rebalance id and its moves: 0, -1 (no such rebalance, a database
 * error), -2 a row is malformed ("journal row of rebalance ID is malformed
 * (...)").  out is empty unless 0. */
int sm_journal_rebalance_load(struct sm_journal *j, long long id, struct sm_rebalance_row *out);
void sm_journal_rebalance_row_release(struct sm_rebalance_row *r);
/* The newest rebalance that is not done: 1 (*id set), 0 none, -1 error, -2
 * its row is malformed (a state this version does not write). */
int sm_journal_rebalance_unfinished(struct sm_journal *j, long long *id);

/* ---- Provisioned devices (journal/devices.c, schema 013) ---- */
/* Where a device a provisioner makes stands. */
enum sm_device_state {
	SM_DEVICE_CREATING,  /* create asked: it may exist */
	SM_DEVICE_CREATED,   /* made, checked: path and rdev journaled */
	SM_DEVICE_REMOVING,  /* remove asked: it may still exist */
	SM_DEVICE_REMOVED,
	SM_DEVICE_FAILED,    /* create did not give a device snapmove accepted */
	SM_DEVICE_STATE_LAST
};
SM_ENUM_DECL(device_state, enum sm_device_state);

/* What a provisioner is asked. */
enum sm_provision_op {
	SM_PROVISION_CREATE,
	SM_PROVISION_EXTEND,
	SM_PROVISION_REMOVE,
	SM_PROVISION_OP_LAST
};
SM_ENUM_DECL(provision_op, enum sm_provision_op);

/* A device row, every value checked when read back. */
struct sm_device_row {
	long long id;
	long long job;             /* the owning move; 0: made by 'snapmove provision' */
	char *provisioner;         /* absolute path of the program */
	char *settings;            /* "SNAPMOVE_NAME=VALUE" lines ("" none) */
	char *name;                /* create NAME (sm_journal_device_name_ok) */
	char *path;                /* NULL until created: absolute, under /dev */
	unsigned long long rdev;   /* st_rdev there (0 until created) */
	unsigned long long bytes;  /* asked for */
	unsigned long long size;   /* found (BLKGETSIZE64), 0 before */
	enum sm_device_state state;
	char *error;               /* NULL when none */
};

/* Journal a new device (state creating, d's id, path, rdev, size ignored);
 * *id its number. */
int sm_journal_device_insert(struct sm_journal *j, const struct sm_device_row *d, long long *id);
/* A create asked again in device id: creating, with these settings and bytes. */
int sm_journal_device_retry(struct sm_journal *j, long long id, const char *settings,
			    unsigned long long bytes);
/* Set a device's state, path (NULL keeps it), rdev, bytes and size (0 keeps
 * each) and error (NULL clears it). */
int sm_journal_device_update(struct sm_journal *j, long long id, enum sm_device_state state,
			     const char *path, unsigned long long rdev, unsigned long long bytes,
			     unsigned long long size, const char *error);
/* Read device id: 1, 0 no such device, -1 a database error, -2 its row is
 * malformed ("journal row of provisioned device ID is malformed (...)"). */
int sm_journal_device_get(struct sm_journal *j, long long id, struct sm_device_row *out);
/* The newest device of provisioner named name that is not removed (*id 0:
 * none), or the newest device at path in state created or removing
 * (provisioner NULL, name = path).  0, -1 on a database error. */
int sm_journal_device_find(struct sm_journal *j, const char *provisioner, const char *name,
			   long long *id);
/* Every device, newest first, each checked: 0, -1, -2 (one is malformed).
 * job > 0: only that job's, oldest first. */
int sm_journal_device_list(struct sm_journal *j, struct sm_device_row **out, size_t *n);
int sm_journal_device_list_job(struct sm_journal *j, long long job, struct sm_device_row **out,
			       size_t *n);
/* sm_journal_device_insert of a move's device (d->job) for the image planned
 * at old_dst, whose file row goes: that file is never made. */
int sm_journal_device_insert_for_image(struct sm_journal *j, const struct sm_device_row *d,
				       const char *old_dst, long long *id);
/* Job's disk target now goes onto the device at path (rdev): its image row
 * (depth 0) says so, and the file it had planned there is no file of the job
 * (old_dst's row goes).  Call inside a transaction or alone (one of its own). */
int sm_journal_device_assign(struct sm_journal *j, long long job, const char *target,
			     const char *old_dst, const char *path, unsigned long long rdev);
/* The number of job's image devices (not removed, not its overlay devices)
 * that no image of the job is on. */
int sm_journal_device_unassigned(struct sm_journal *j, long long job, unsigned long long *n);
/* Whether device id's device holds an image of its job (an image row's dst_rdev). */
int sm_journal_device_assigned(struct sm_journal *j, long long id, bool *assigned);
void sm_device_row_release(struct sm_device_row *r);
void sm_device_rows_free(struct sm_device_row *rows, size_t n);
/* A provisioner ran (arg: NAME or PATH; bytes 0 for remove; out and err the
 * start of its stdout and stderr). */
int sm_journal_provision_run(struct sm_journal *j, long long device_id, enum sm_provision_op op,
			     const char *provisioner, const char *arg, unsigned long long bytes,
			     int exit_status, bool timed_out, double started, double seconds,
			     const char *out, const char *err);
/* A device name as provisioners get it: 1 to 64 of [A-Za-z0-9._-], the
 * first a letter or digit. */
bool sm_journal_device_name_ok(const char *name);
/* A settings line: SNAPMOVE_[A-Z0-9_]+=VALUE, VALUE with no control
 * character, the name not one snapmove sets itself. */
bool sm_journal_device_setting_ok(const char *line);
/* Settings as journaled: "" or such lines, each ended by '\n' but the last. */
bool sm_journal_device_settings_ok(const char *settings);

/* A hook ran (err: the start of its stderr). */
int sm_journal_hook_run(struct sm_journal *j, long long job_id, const char *point,
			const char *hook, int exit_status, bool timed_out, double started,
			double seconds, const char *err);
/* Delete a job and everything recorded of it. */
int sm_journal_job_delete(struct sm_journal *j, long long job_id);
/* The id the next job will get (unless another process inserts first). */
int sm_journal_next_job_id(struct sm_journal *j, long long *id);
/* Queries.  Return 1 found, 0 not found, -1 error.  Rows are checked as they
 * are read: a value this version never writes (NULL, a wrong type, out of
 * range, an unknown name, a disk without images) is an error naming the job
 * ("journal row of job 7 is malformed (...)"); sm_journal_job_get returns -2
 * then. */
int sm_journal_unfinished_job_for_disk(struct sm_journal *j, const char *domain_uuid,
				       const char *target, long long *job_id);
int sm_journal_job_get(struct sm_journal *j, long long id, struct sm_job_row *out);
/* Read every row of a job (job, disks, images, steps, files): 0 all are
 * well-formed, -2 one is malformed, -1 no such job or another error. */
int sm_journal_job_check(struct sm_journal *j, long long job_id);
/* Jobs, unfinished first, newest first within each group. */
int sm_journal_job_list(struct sm_journal *j, struct sm_job_row **out, size_t *n);
int sm_journal_disk_list(struct sm_journal *j, long long job_id, struct sm_disk_row **out,
			 size_t *n);
int sm_journal_step_list(struct sm_journal *j, long long job_id, struct sm_step_row **out,
			 size_t *n);
int sm_journal_file_list(struct sm_journal *j, long long job_id, struct sm_file_row **out,
			 size_t *n);

void sm_job_row_release(struct sm_job_row *r);
void sm_job_rows_free(struct sm_job_row *rows, size_t n);
void sm_disk_rows_free(struct sm_disk_row *rows, size_t n);
void sm_step_rows_free(struct sm_step_row *rows, size_t n);
void sm_file_rows_free(struct sm_file_row *rows, size_t n);

#endif
