/* fuzz_journal_rows.c: the journal's row decoding (sm_journal_job_get, the
 * disk, image, step, file and chunk lists, image progress, job check, and
 * the rebalance's sm_journal_rebalance_load and sm_journal_rebalance_unfinished, and
 * the provisioned devices' sm_journal_device_get, _list and _find) on rows
 * whose every column is fuzzed: NULL, whole numbers of any size, reals
 * (infinities, NaN), text (empty, any bytes), blobs, or a name snapmove uses.
 *
 * Why not fuzz the SQLite file itself: SQLite fuzzes its own file format far
 * better (OSS-Fuzz), and almost every mutated file is refused at open, so the
 * decoding snapmove owns would rarely run.  Here a real journal (the schema
 * snapmove creates, NOT NULL declarations and foreign keys dropped, as a hand
 * editing it could) gets one job's rows from the input for each run; the
 * getters must then either fail with an error or hand back what their
 * callers rely on (no NULL where a value is required, known names, a disk
 * with images 0..n-1, chunk sizes in range).  Any other outcome aborts.
 *
 * Input: for each column a selector byte, then its value; no more input
 * means the column's valid default, so an empty input is a well-formed job.
 * The last byte k hands the k bytes before it to the rebalance's rows, then
 * to the provisioned devices' rows.
 */
#include "fuzz.h"
#include "balance/rebalance.h"
#include "copy/checksum.h"
#include "journal.h"
#include "util.h"

#include <math.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <unistd.h>

struct input {
	const uint8_t *p;
	size_t left;
};

static bool take(struct input *in, void *out, size_t n)
{
	if (in->left < n)
		return false;
	memcpy(out, in->p, n);
	in->p += n;
	in->left -= n;
	return true;
}

static unsigned take_byte(struct input *in, unsigned dflt)
{
	uint8_t b;

	return take(in, &b, 1) ? b : dflt;
}

struct col {
	const char *name;
	char type;         /* of the default: 'i', 'd', 't', or 'n' (NULL) */
	const char *dflt;  /* "#" for the row's index */
};

static const char *const names[] = {
	"running", "failed", "done", "aborted", "planned", "snapshot", "dest_chain",
	"mirror", "copy", "sync", "pivot", "collapse", "finalize", "snapshotted",
	"dest_created", "mirroring", "copied", "ready", "pivoted", "collapsed",
	"created", "copying", "auto", "on", "off", "qcow2", "raw", "vda", "vdb",
	"/src/a.qcow2", "/dst/a.qcow2", "dst_image", "src_overlay", "removed",
	"0123456789abcdef", "", "unknown", "DONE", "relative/dir", "direct", "readwrite",
};

static const struct col job_cols[] = {
	{ "id", 'i', "1" }, { "domain_name", 't', "vm" }, { "domain_uuid", 't', "uuid" },
	{ "persistent", 'i', "1" }, { "dest_dir", 't', "/dst" }, { "bandwidth_mib", 'i', "0" },
	{ "keep_overlay", 'i', "0" }, { "quiesce", 'i', "0" }, { "state", 't', "failed" },
	{ "phase", 't', "copy" }, { "error", 'n', NULL }, { "pid", 'i', "1" },
	{ "created_at", 'd', "1.7e9" }, { "updated_at", 'd', "1.7e9" },
	{ "finished_at", 'n', NULL }, { "verify", 'i', "1" }, { "dest_format", 'n', NULL },
	{ "sync_writes", 't', "auto" }, { "converge_timeout", 'd', "30" },
	{ "delete_source", 'i', "0" }, { "asked_copy_method", 't', "auto" }, { "parallel", 'i', "0" },
};
static const struct col disk_cols[] = {
	{ "job_id", 'i', "1" }, { "target", 't', "vd#" }, { "state", 't', "copied" },
	{ "src_overlay", 't', "/src/o#" }, { "dst_overlay", 't', "/dst/o#" },
	{ "virtual_size", 'i', "1048576" }, { "error", 'n', NULL }, { "sync_writes", 'i', "0" },
	{ "kept", 'n', NULL }, { "kept_format", 'n', NULL }, { "kept_user", 'n', NULL },
	{ "flat", 'i', "0" }, { "pivoting", 'i', "0" },
};
static const struct col image_cols[] = {
	{ "job_id", 'i', "1" }, { "target", 't', "vd@" }, { "depth", 'i', "#" },
	{ "src_path", 't', "/src/a#" }, { "dst_path", 't', "/dst/a#" }, { "format", 't', "qcow2" },
	{ "src_backing", 'n', NULL }, { "dst_backing", 'n', NULL },
	{ "dst_backing_format", 'n', NULL }, { "virtual_size", 'i', "1048576" },
	{ "allocated", 'i', "0" }, { "state", 't', "copied" }, { "bytes_copied", 'i', "0" },
	{ "dst_format", 'n', NULL },
};
static const struct col step_cols[] = {
	{ "job_id", 'i', "1" }, { "phase", 't', "copy" }, { "target", 'n', NULL },
	{ "started_at", 'd', "1.7e9" }, { "finished_at", 'n', NULL }, { "error", 'n', NULL },
};
static const struct col file_cols[] = {
	{ "job_id", 'i', "1" }, { "path", 't', "/dst/f#" }, { "role", 't', "dst_image" },
	{ "state", 't', "created" },
};
static const struct col chunk_cols[] = {
	{ "job_id", 'i', "1" }, { "target", 't', "vda" }, { "depth", 'i', "0" },
	{ "idx", 'i', "#" }, { "offset", 'i', "0" }, { "length", 'i', "65536" },
	{ "data_bytes", 'i', "0" }, { "checksum", 't', "0123456789abcdef" },
	{ "verified", 'i', "1" },
};

static const struct col rebalance_cols[] = {
	{ "id", 'i', "1" }, { "goal", 't', "drain /src" }, { "state", 't', "failed" },
	{ "max_parallel", 'i', "2" }, { "bandwidth_mib", 'i', "0" },
	{ "stop_on_error", 'i', "0" }, { "job_floor", 'i', "0" }, { "created_at", 'd', "1.7e9" },
	{ "finished_at", 'n', NULL },
};
static const struct col rebalance_move_cols[] = {
	{ "rebalance_id", 'i', "1" }, { "seq", 'i', "#" }, { "domain", 't', "vm" },
	{ "disk", 't', "vd#" }, { "running", 'i', "1" }, { "from_storage", 't', "/src/a.qcow2" },
	{ "to_dir", 't', "/dst/a.qcow2" }, { "bytes", 'i', "1048576" }, { "state", 't', "planned" },
	{ "job_id", 'n', NULL }, { "error", 'n', NULL },
};

static const struct col device_cols[] = {
	{ "id", 'i', "#" }, { "job_id", 'n', NULL },
	{ "provisioner", 't', "/usr/lib/snapmove/provisioners/loop" }, { "settings", 't', "" },
	{ "name", 't', "vd#" }, { "path", 't', "/dev/loop#" }, { "rdev", 'i', "1793" },
	{ "bytes", 'i', "67108864" }, { "size", 'i', "67108864" }, { "state", 't', "created" },
	{ "error", 'n', NULL }, { "created_at", 'd', "1.7e9" }, { "updated_at", 'd', "1.7e9" },
};

static sqlite3 *writer;
static struct sm_journal *journal;

static size_t cur_disk;  /* the disk whose images are being inserted */

/* The column's default; in it '#' stands for the row's index (a letter in
 * text: vda, vdb) and '@' for the current disk's letter. */
static void bind_default(sqlite3_stmt *st, int i, const struct col *c, size_t index)
{
	char buf[64];
	size_t n = 0;

	for (const char *p = c->dflt ? c->dflt : ""; *p && n + 24 < sizeof(buf); p++) {
		if (*p == '#' && c->type == 't')
			buf[n++] = (char)('a' + index % 26);
		else if (*p == '#')
			n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%zu", index);
		else if (*p == '@')
			buf[n++] = (char)('a' + cur_disk % 26);
		else
			buf[n++] = *p;
	}
	buf[n] = '\0';
	switch (c->type) {
	case 'i':
		sqlite3_bind_int64(st, i, strtoll(buf, NULL, 10));
		break;
	case 'd':
		sqlite3_bind_double(st, i, strtod(buf, NULL));
		break;
	case 't':
		sqlite3_bind_text(st, i, buf, -1, SQLITE_TRANSIENT);
		break;
	default:
		sqlite3_bind_null(st, i);
	}
}

static void bind_value(struct input *in, sqlite3_stmt *st, int i, const struct col *c,
		       size_t index)
{
	unsigned sel = take_byte(in, 7);
	int64_t i64;
	int8_t small;
	double d;
	uint8_t len, buf[32];

	switch (sel % 8) {
	case 0:
		sqlite3_bind_null(st, i);
		return;
	case 1:
		if (take(in, &i64, sizeof(i64))) {
			sqlite3_bind_int64(st, i, i64);
			return;
		}
		break;
	case 2:
		if (take(in, &small, 1)) {
			sqlite3_bind_int64(st, i, small);
			return;
		}
		break;
	case 3:
		if (take(in, &d, sizeof(d))) {
			sqlite3_bind_double(st, i, d);
			return;
		}
		break;
	case 4:
	case 6:
		len = (uint8_t)(take_byte(in, 0) % sizeof(buf));
		if (take(in, buf, len)) {
			if (sel % 8 == 4)
				sqlite3_bind_text(st, i, (const char *)buf, len, SQLITE_TRANSIENT);
			else
				sqlite3_bind_blob(st, i, buf, len, SQLITE_TRANSIENT);
			return;
		}
		break;
	case 5:
		sqlite3_bind_text(st, i, names[take_byte(in, 0) % SM_ARRAY_LEN(names)], -1,
				  SQLITE_STATIC);
		return;
	}
	bind_default(st, i, c, index);
}

static void insert(struct input *in, const char *table, const struct col *cols, size_t n,
		   size_t index)
{
	char sql[1024];
	size_t len = (size_t)snprintf(sql, sizeof(sql), "INSERT INTO %s (", table);
	sqlite3_stmt *st;

	for (size_t i = 0; i < n; i++)
		len += (size_t)snprintf(sql + len, sizeof(sql) - len, "%s%s", i ? ", " : "",
					cols[i].name);
	len += (size_t)snprintf(sql + len, sizeof(sql) - len, ") VALUES (");
	for (size_t i = 0; i < n; i++)
		len += (size_t)snprintf(sql + len, sizeof(sql) - len, "%s?", i ? ", " : "");
	snprintf(sql + len, sizeof(sql) - len, ")");
	if (sqlite3_prepare_v2(writer, sql, -1, &st, NULL) != SQLITE_OK)
		abort();
	for (size_t i = 0; i < n; i++)
		bind_value(in, st, (int)i + 1, &cols[i], index);
	(void)sqlite3_step(st);  /* a duplicate key fails: fine */
	sqlite3_finalize(st);
}

#define INSERT(in, table, cols, index) insert(in, table, cols, SM_ARRAY_LEN(cols), index)

static void must(bool ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_journal_rows: %s\n", what);
		abort();
	}
}

/* A failure must come with a message. */
static void failed(void)
{
	must(sm_error_message() && *sm_error_message(), "a getter failed without an error");
}

static void check_job(void)
{
	struct sm_job_row job, *jobs = NULL;
	size_t n = 0;
	int rc = sm_journal_job_get(journal, 1, &job);

	if (rc == 1) {
		must(job.domain_name && job.domain_uuid && job.dest_dir && job.state &&
		     job.phase && job.sync_writes, "a job with a NULL field");
		must(sm_job_state_from_name(job.state) >= 0, "an unknown job state");
		must(sm_phase_from_name(job.phase) >= 0, "an unknown phase");
		must(isfinite(job.created_at) && job.created_at >= 0, "a bad time");
		must(job.bandwidth_mib <= (1ULL << 30), "a huge bandwidth");
		sm_job_row_release(&job);
	} else if (rc < 0) {
		failed();
		must(!job.domain_name && !job.state, "a failed get left fields");
	}
	if (sm_journal_job_list(journal, &jobs, &n) == 0) {
		for (size_t i = 0; i < n; i++)
			must(jobs[i].state && jobs[i].phase && jobs[i].domain_name,
			     "a listed job with a NULL field");
		sm_job_rows_free(jobs, n);
	} else {
		failed();
		must(!jobs && n == 0, "a failed list left rows");
	}
}

static void check_disks(void)
{
	struct sm_disk_row *d = NULL;
	size_t n = 0;

	if (sm_journal_disk_list(journal, 1, &d, &n) < 0) {
		failed();
		must(!d && n == 0, "a failed disk list left rows");
		return;
	}
	for (size_t i = 0; i < n; i++) {
		const struct sm_plan_disk *p = &d[i].plan;

		must(d[i].target && d[i].state && d[i].src_overlay && d[i].dst_overlay &&
		     p->target && p->src_overlay && p->dst_overlay, "a disk with a NULL field");
		must(p->nimages >= 1 && p->images, "a disk without images");
		for (size_t k = 0; k < p->nimages; k++)
			must(p->images[k].src && p->images[k].dst && p->images[k].format &&
			     p->images[k].dst_format, "an image with a NULL field");
	}
	sm_disk_rows_free(d, n);
}

static void check_rest(void)
{
	struct sm_step_row *st = NULL;
	struct sm_file_row *f = NULL;
	struct sm_journal_chunk *c = NULL;
	enum sm_image_state state;
	unsigned long long done;
	char *fstate = NULL;
	size_t n = 0;

	if (sm_journal_step_list(journal, 1, &st, &n) == 0) {
		for (size_t i = 0; i < n; i++)
			must(st[i].phase != NULL, "a step without a phase");
		sm_step_rows_free(st, n);
	} else {
		failed();
	}
	if (sm_journal_file_list(journal, 1, &f, &n) == 0) {
		for (size_t i = 0; i < n; i++)
			must(f[i].path && f[i].role && f[i].state, "a file with a NULL field");
		sm_file_rows_free(f, n);
	} else {
		failed();
	}
	for (size_t depth = 0; depth < 2; depth++) {
		if (sm_journal_chunk_list(journal, 1, "vda", depth, &c, &n) == 0) {
			for (size_t i = 0; i < n; i++) {
				uint64_t sum;

				must(c[i].length >= 1 && c[i].data_bytes <= c[i].length,
				     "a chunk out of range");
				must(sm_checksum_parse(c[i].checksum, &sum) == 0,
				     "a chunk checksum that does not parse");
			}
			free(c);
		} else {
			failed();
		}
		if (sm_journal_image_progress(journal, 1, "vda", depth, &state, &done) == 0)
			must((int)state >= 0 && state < SM_IMAGE_STATE_LAST, "an unknown image state");
	}
	if (sm_journal_file_state(journal, 1, "/dst/fa", &fstate) == 0)
		free(fstate);
	(void)sm_journal_job_check(journal, 1);
}

/* A rebalance read back is what sm_rebalance relies on, or an error. */
static void check_rebalance(void)
{
	struct sm_rebalance_row r;
	long long id = 0;
	int rc = sm_journal_rebalance_load(journal, 1, &r);

	if (rc == 0) {
		must(r.max_parallel >= 1 && r.max_parallel <= SM_REBALANCE_MAX_PARALLEL,
		     "a rebalance's parallel moves out of range");
		must(r.bandwidth_mib <= (1ULL << 30) && r.job_floor >= 0,
		     "a rebalance's bandwidth or job floor out of range");
		for (size_t i = 0; i < r.nmoves; i++) {
			const struct sm_rebalance_move_row *m = &r.moves[i];

			must(m->domain && m->disk && m->from && m->to_dir && *m->domain && *m->disk,
			     "a move with a NULL or empty field");
			must(m->from[0] == '/' && m->to_dir[0] == '/', "a move's relative folder");
			must(m->seq >= 1 && m->job >= 0 && m->bytes <= (1ULL << 62),
			     "a move's number out of range");
			must((int)m->state >= 0 && m->state < SM_RMOVE_STATE_LAST,
			     "a move's unknown state");
		}
		sm_journal_rebalance_row_release(&r);
	} else {
		failed();
		must(!r.moves && r.nmoves == 0, "a failed load left moves");
		if (rc == -2)
			must(strstr(sm_error_message(), "journal row of rebalance 1 is malformed") != NULL,
			     "a malformed rebalance without its error");
	}
	rc = sm_journal_rebalance_unfinished(journal, &id);
	if (rc == 1)
		must(id >= 1, "an unfinished rebalance without an id");
	else if (rc < 0)
		failed();
}

/* A device read back is what provision.c relies on, or an error. */
static void check_device_row(const struct sm_device_row *d)
{
	must(d->provisioner && d->provisioner[0] == '/', "a device without an absolute provisioner");
	must(d->settings && sm_journal_device_settings_ok(d->settings), "a device's bad settings");
	must(d->name && sm_journal_device_name_ok(d->name), "a device's bad name");
	must((int)d->state >= 0 && d->state < SM_DEVICE_STATE_LAST, "a device's unknown state");
	must(d->bytes >= 1 && d->bytes <= (1ULL << 62) && d->size <= (1ULL << 62),
	     "a device's size out of range");
	must(!d->path || (strncmp(d->path, "/dev/", 5) == 0 && d->rdev >= 1),
	     "a device's path not under /dev, or without its number");
	must(d->path || (d->state != SM_DEVICE_CREATED && d->state != SM_DEVICE_REMOVING &&
			 d->state != SM_DEVICE_REMOVED), "a created device without a path");
}

static void check_devices(void)
{
	struct sm_device_row d, *rows = NULL;
	size_t n = 0;
	long long id;
	int rc = sm_journal_device_get(journal, 1, &d);

	if (rc == 1) {
		check_device_row(&d);
		sm_device_row_release(&d);
	} else if (rc < 0) {
		failed();
		must(!d.provisioner && !d.name && !d.path, "a failed device get left fields");
		if (rc == -2)
			must(strstr(sm_error_message(), "journal row of provisioned device 1 is "
				    "malformed") != NULL, "a malformed device without its error");
	}
	if (sm_journal_device_list(journal, &rows, &n) == 0) {
		for (size_t i = 0; i < n; i++)
			check_device_row(&rows[i]);
		sm_device_rows_free(rows, n);
	} else {
		failed();
		must(!rows && n == 0, "a failed device list left rows");
	}
	if (sm_journal_device_find(journal, "/usr/lib/snapmove/provisioners/loop", "vda", &id) == 0)
		must(id >= 0, "a negative device id");
	if (sm_journal_device_find(journal, NULL, "/dev/loopa", &id) == 0)
		must(id >= 0, "a negative device id");
}

int LLVMFuzzerInitialize(int *argc, char ***argv);

static char dir[] = "/dev/shm/fuzz-journal-XXXXXX";

static void remove_dir(void)
{
	static const char *const files[] = { "journal.db", "journal.db-wal", "journal.db-shm" };

	sqlite3_close(writer);
	sm_journal_free(journal);
	for (size_t i = 0; i < SM_ARRAY_LEN(files); i++) {
		SM_AUTOFREE char *f = sm_xasprintf("%s/%s", dir, files[i]);

		unlink(f);
	}
	rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char *path;

	(void)argc;
	(void)argv;
	if (!mkdtemp(dir))
		abort();
	path = sm_xasprintf("%s/journal.db", dir);
	if (sm_journal_open(path, &journal) < 0)
		abort();
	sm_journal_free(journal);
	/* A hand editing the journal can drop any declaration. */
	if (sqlite3_open(path, &writer) != SQLITE_OK ||
	    sqlite3_exec(writer, "PRAGMA writable_schema = ON; UPDATE sqlite_master SET sql = "
			 "replace(sql, 'NOT NULL', '') WHERE type = 'table'", NULL, NULL,
			 NULL) != SQLITE_OK)
		abort();
	sqlite3_close(writer);
	if (sm_journal_open(path, &journal) < 0 || sqlite3_open(path, &writer) != SQLITE_OK ||
	    sqlite3_exec(writer, "PRAGMA foreign_keys = OFF; PRAGMA synchronous = OFF", NULL,
			 NULL, NULL) != SQLITE_OK)
		abort();
	free(path);
	atexit(remove_dir);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* The last byte k gives the k bytes before it to the rebalance's rows,
	 * so that they are fuzzed however long the job's rows take. */
	size_t tail = size ? data[size - 1] % size : 0;
	struct input in = { data, size ? size - 1 - tail : 0 };
	struct input rin = { data + (size ? size - 1 - tail : 0), tail };
	size_t ndisks, nsteps, nfiles, nchunks, nmoves, ndevices;

	sqlite3_exec(writer, "BEGIN; DELETE FROM chunk; DELETE FROM image; DELETE FROM disk; "
		     "DELETE FROM step; DELETE FROM file; DELETE FROM job; "
		     "DELETE FROM rebalance_move; DELETE FROM rebalance; "
		     "DELETE FROM provision_run; DELETE FROM provisioned_device; "
		     "DELETE FROM sqlite_sequence", NULL, NULL, NULL);
	INSERT(&in, "job", job_cols, 0);
	ndisks = take_byte(&in, 1) % 3;
	for (size_t i = 0; i < ndisks; i++) {
		size_t nimages = take_byte(&in, 2) % 4;

		INSERT(&in, "disk", disk_cols, i);
		cur_disk = i;
		for (size_t k = 0; k < nimages; k++)
			INSERT(&in, "image", image_cols, k);
	}
	nsteps = take_byte(&in, 1) % 3;
	for (size_t i = 0; i < nsteps; i++)
		INSERT(&in, "step", step_cols, i);
	nfiles = take_byte(&in, 1) % 3;
	for (size_t i = 0; i < nfiles; i++)
		INSERT(&in, "file", file_cols, i);
	nchunks = take_byte(&in, 1) % 3;
	for (size_t i = 0; i < nchunks; i++)
		INSERT(&in, "chunk", chunk_cols, i);
	INSERT(&rin, "rebalance", rebalance_cols, 0);
	nmoves = take_byte(&rin, 1) % 3;
	for (size_t i = 0; i < nmoves; i++)
		INSERT(&rin, "rebalance_move", rebalance_move_cols, i + 1);
	ndevices = take_byte(&rin, 1) % 3;
	for (size_t i = 0; i < ndevices; i++)
		INSERT(&rin, "provisioned_device", device_cols, i + 1);
	/* An id of 2^63-1 fuzzed into an AUTOINCREMENT table makes the next
	 * insert without one fail with SQLITE_FULL, which rolls the whole
	 * transaction back: nothing to decode this time. */
	if (sqlite3_get_autocommit(writer))
		return 0;
	if (sqlite3_exec(writer, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		fprintf(stderr, "fuzz_journal_rows: cannot commit the rows: %s\n",
			sqlite3_errmsg(writer));
		abort();
	}

	check_job();
	check_disks();
	check_rest();
	check_rebalance();
	check_devices();
	return 0;
}
