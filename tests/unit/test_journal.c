/* test_journal.c: the SQLite journal: schema creation and upgrade on open,
 * transactions, job/disk/image/step/file rows through a move's phases, the
 * queries the CLI and the resume logic use, and the names of phases and states.
 * Every test gets its own journal in a fresh temp directory.
 */
#include "unit.h"

#include "journal.h"
#include "lock.h"
#include "util.h"

#include <sqlite3.h>
#include <sys/wait.h>

#define UUID_A "6f1c2a5e-3b7d-4c0e-9a51-0d2f6b8e4c11"
#define UUID_B "0b9e5f3a-2c44-4d7e-8f10-3a6c9d1e2b77"

struct fixture {
	char *dir;
	char *path;  /* DIR/state/snapmove/journal.db: parents do not exist yet */
	struct sm_journal *j;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	f->dir = unit_mkdtemp();
	if (asprintf(&f->path, "%s/state/snapmove/journal.db", f->dir) < 0)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	sm_journal_free(f->j);
	unit_rmtree(f->dir);
	free(f->path);
	free(f);
	return 0;
}

static struct sm_journal *open_journal(struct fixture *f)
{
	if (sm_journal_open(f->path, &f->j) != 0) {
		print_error("cannot open the journal: %s\n", sm_error_message());
		fail();
	}
	assert_non_null(f->j);
	return f->j;
}

/* Run one query on the journal file behind snapmove's back; one text or
 * integer result, returned as a string the caller frees (NULL for SQL NULL). */
static char *query(const char *path, const char *sql)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	char *ret = NULL;

	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
		print_error("cannot prepare '%s': %s\n", sql, sqlite3_errmsg(db));
		sqlite3_close(db);
		fail();
	}
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
		ret = strdup((const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	sqlite3_close(db);
	return ret;
}

static void assert_query(const char *path, const char *sql, const char *want)
{
	char *got = query(path, sql);

	if (want)
		assert_string_equal(got, want);
	else
		assert_null(got);
	free(got);
}

static void exec_sql(const char *path, const char *sql)
{
	sqlite3 *db;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
}

static struct sm_job_row job_row(const char *name, const char *uuid)
{
	struct sm_job_row r = {
		.domain_name = (char *)name,
		.domain_uuid = (char *)uuid,
		.persistent = true,
		.dest_dir = "/mnt/fast",
		.bandwidth_mib = 250,
		.keep_overlay = false,
		.quiesce = true,
	};

	return r;
}

/* A two-image plan for target: TARGET.qcow2 over base-TARGET.raw. */
struct test_plan {
	struct sm_plan_disk disk;
	struct sm_plan_image images[2];
	char buf[8][128];
};

static void make_plan(struct test_plan *t, const char *target, long long job)
{
	memset(t, 0, sizeof(*t));
	snprintf(t->buf[0], sizeof(t->buf[0]), "/src/%s.qcow2", target);
	snprintf(t->buf[1], sizeof(t->buf[1]), "/mnt/fast/%s.qcow2", target);
	snprintf(t->buf[2], sizeof(t->buf[2]), "/src/base-%s.raw", target);
	snprintf(t->buf[3], sizeof(t->buf[3]), "/mnt/fast/base-%s.raw", target);
	snprintf(t->buf[4], sizeof(t->buf[4]), "base-%s.raw", target);
	snprintf(t->buf[5], sizeof(t->buf[5]), "/src/%s.qcow2.snapmove-%lld.qcow2", target, job);
	snprintf(t->buf[6], sizeof(t->buf[6]), "/mnt/fast/%s.qcow2.snapmove-%lld.qcow2", target,
		 job);
	t->images[0] = (struct sm_plan_image){
		.src = t->buf[0], .dst = t->buf[1], .format = "qcow2",
		.src_backing = t->buf[4], .dst_backing = t->buf[4], .dst_backing_format = "raw",
		.virtual_size = 1ULL << 30, .allocated = 4ULL << 20,
	};
	t->images[1] = (struct sm_plan_image){
		.src = t->buf[2], .dst = t->buf[3], .format = "raw",
		.virtual_size = 1ULL << 30, .allocated = 700ULL << 20,
	};
	t->disk = (struct sm_plan_disk){
		.target = (char *)target,
		.src_overlay = t->buf[5],
		.dst_overlay = t->buf[6],
		.virtual_size = 1ULL << 30,
		.images = t->images,
		.nimages = 2,
	};
}

/* Insert a job with the given disks in one transaction; returns its id. */
static long long insert_job(struct sm_journal *j, const char *uuid, const char *const *targets,
			    size_t ntargets)
{
	struct sm_job_row row = job_row("vm", uuid);
	long long id = 0;

	assert_int_equal(sm_journal_begin(j), 0);
	assert_int_equal(sm_journal_job_insert(j, &row, &id), 0);
	assert_true(id > 0);
	for (size_t i = 0; i < ntargets; i++) {
		struct test_plan p;

		make_plan(&p, targets[i], id);
		assert_int_equal(sm_journal_disk_insert(j, id, &p.disk), 0);
	}
	assert_int_equal(sm_journal_commit(j), 0);
	return id;
}

static void test_open_creates_schema(void **state)
{
	struct fixture *f = *state;
	struct stat sb;
	char *dir, *version;

	open_journal(f);
	assert_int_equal(stat(f->path, &sb), 0);
	assert_true(S_ISREG(sb.st_mode));
	/* Missing parents were created, private to the user. */
	dir = sm_path_dirname(f->path);
	assert_int_equal(stat(dir, &sb), 0);
	assert_true(S_ISDIR(sb.st_mode));
	assert_int_equal(sb.st_mode & 0777, 0700);
	free(dir);

	version = query(f->path, "PRAGMA user_version");
	assert_non_null(version);
	assert_true(atoi(version) >= 1);
	assert_query(f->path, "PRAGMA journal_mode", "wal");
	assert_query(f->path, "SELECT group_concat(name, ',') FROM (SELECT name FROM "
		     "sqlite_master WHERE type = 'table' AND name IN ('job', 'disk', 'image', "
		     "'step', 'file') ORDER BY name)", "disk,file,image,job,step");

	/* Opening again applies nothing twice and keeps the rows. */
	insert_job(f->j, UUID_A, (const char *const[]){ "vda" }, 1);
	sm_journal_free(f->j);
	f->j = NULL;
	open_journal(f);
	assert_query(f->path, "PRAGMA user_version", version);
	assert_query(f->path, "SELECT count(*) FROM job", "1");
	assert_query(f->path, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND "
		     "name = 'job'", "1");
	sm_journal_free(f->j);
	f->j = NULL;
	open_journal(f);
	assert_query(f->path, "PRAGMA user_version", version);
	assert_query(f->path, "SELECT count(*) FROM image", "2");
	free(version);
}

/* Many processes open one journal that does not exist yet, all at the same
 * moment (two 'snapmove move' commands started together on a fresh host):
 * every one must get it, none 'database is locked'.  Released by one write to
 * a pipe each child blocks on, and repeated with a fresh path each round. */
static void test_open_concurrent_creation(void **state)
{
	struct fixture *f = *state;
	enum { ROUNDS = 20, PROCS = 6 };

	for (int round = 0; round < ROUNDS; round++) {
		char *path;
		pid_t pids[PROCS];
		int go[2];

		assert_int_not_equal(asprintf(&path, "%s/r%d/journal.db", f->dir, round), -1);
		assert_int_equal(pipe(go), 0);
		for (int i = 0; i < PROCS; i++) {
			pids[i] = fork();
			assert_true(pids[i] >= 0);
			if (pids[i] == 0) {
				struct sm_journal *j;
				char c;

				close(go[1]);
				if (read(go[0], &c, 1) != 0)
					_exit(3);
				if (sm_journal_open(path, &j) != 0) {
					fprintf(stderr, "round %d, process %d: %s\n", round, i,
						sm_error_message());
					_exit(1);
				}
				sm_journal_free(j);
				_exit(0);
			}
		}
		close(go[0]);
		close(go[1]);  /* every child's read returns 0 at once */
		for (int i = 0; i < PROCS; i++) {
			int status;

			assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
			assert_true(WIFEXITED(status));
			assert_int_equal(WEXITSTATUS(status), 0);
		}
		assert_query(path, "PRAGMA journal_mode", "wal");
		free(path);
	}
}

static void test_open_newer_schema_refused(void **state)
{
	struct fixture *f = *state;

	open_journal(f);
	sm_journal_free(f->j);
	f->j = NULL;
	exec_sql(f->path, "PRAGMA user_version = 9999");
	sm_error_clear();
	assert_int_equal(sm_journal_open(f->path, &f->j), -1);
	assert_null(f->j);
	assert_contains(sm_error_message(), "journal");
	assert_contains(sm_error_message(), "9999");
	assert_contains(sm_error_message(), "newer snapmove");
}

static void test_open_not_a_database(void **state)
{
	struct fixture *f = *state;
	char *path;
	FILE *fp;

	assert_true(asprintf(&path, "%s/garbage.db", f->dir) > 0);
	fp = fopen(path, "w");
	assert_non_null(fp);
	for (int i = 0; i < 64; i++)
		fputs("this is not an SQLite database, just text\n", fp);
	fclose(fp);
	sm_error_clear();
	assert_int_equal(sm_journal_open(path, &f->j), -1);
	assert_null(f->j);
	assert_contains(sm_error_message(), "journal");
	assert_contains(sm_error_message(), path);
	free(path);
}

static void test_open_parent_not_creatable(void **state)
{
	struct fixture *f = *state;
	char *file, *path;
	int fd;

	assert_true(asprintf(&file, "%s/regular", f->dir) > 0);
	fd = open(file, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	close(fd);

	/* The directory to create would be under a regular file. */
	assert_true(asprintf(&path, "%s/sub/journal.db", file) > 0);
	sm_error_clear();
	assert_int_equal(sm_journal_open(path, &f->j), -1);
	assert_null(f->j);
	assert_contains(sm_error_message(), "journal");
	assert_contains(sm_error_message(), path);
	assert_contains(sm_error_message(), "Not a directory");
	free(path);

	/* The journal's directory is itself a regular file. */
	assert_true(asprintf(&path, "%s/journal.db", file) > 0);
	sm_error_clear();
	assert_int_equal(sm_journal_open(path, &f->j), -1);
	assert_null(f->j);
	assert_contains(sm_error_message(), "journal");
	assert_contains(sm_error_message(), path);
	free(path);
	free(file);
}

static void test_job_insert_and_get(void **state)
{
	struct fixture *f = *state;
	struct sm_job_row row = job_row("vm-one", UUID_A), got;
	struct sm_disk_row *disks;
	struct sm_file_row *files;
	struct test_plan p;
	double before = sm_now();
	long long id;
	size_t n;

	open_journal(f);
	assert_int_equal(sm_journal_begin(f->j), 0);
	assert_int_equal(sm_journal_job_insert(f->j, &row, &id), 0);
	make_plan(&p, "vda", id);
	assert_int_equal(sm_journal_disk_insert(f->j, id, &p.disk), 0);
	assert_int_equal(sm_journal_commit(f->j), 0);

	assert_int_equal(sm_journal_job_get(f->j, id, &got), 1);
	assert_int_equal(got.id, id);
	assert_string_equal(got.domain_name, "vm-one");
	assert_string_equal(got.domain_uuid, UUID_A);
	assert_true(got.persistent);
	assert_string_equal(got.dest_dir, "/mnt/fast");
	assert_int_equal(got.bandwidth_mib, 250);
	assert_false(got.keep_overlay);
	assert_true(got.quiesce);
	assert_string_equal(got.state, "running");
	assert_string_equal(got.phase, "planned");
	assert_null(got.error);
	assert_true(got.created_at >= before - 1 && got.created_at <= sm_now() + 1);
	assert_true(got.updated_at >= got.created_at);
	assert_true(got.finished_at == 0);
	sm_job_row_release(&got);
	assert_null(got.domain_name);
	assert_int_equal(sm_journal_job_get(f->j, id + 100, &got), 0);
	sm_job_row_release(&got);

	/* The disk and its plan come back as journaled. */
	assert_int_equal(sm_journal_disk_list(f->j, id, &disks, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(disks[0].target, "vda");
	assert_string_equal(disks[0].state, "planned");
	assert_string_equal(disks[0].src_overlay, p.disk.src_overlay);
	assert_string_equal(disks[0].dst_overlay, p.disk.dst_overlay);
	assert_null(disks[0].error);
	assert_string_equal(disks[0].plan.target, "vda");
	assert_string_equal(disks[0].plan.src_overlay, p.disk.src_overlay);
	assert_string_equal(disks[0].plan.dst_overlay, p.disk.dst_overlay);
	assert_int_equal(disks[0].plan.virtual_size, 1ULL << 30);
	assert_int_equal(disks[0].plan.nimages, 2);
	for (size_t i = 0; i < 2; i++) {
		const struct sm_plan_image *want = &p.images[i], *img = &disks[0].plan.images[i];

		assert_string_equal(img->src, want->src);
		assert_string_equal(img->dst, want->dst);
		assert_string_equal(img->format, want->format);
		assert_int_equal(img->virtual_size, want->virtual_size);
		assert_int_equal(img->allocated, want->allocated);
	}
	assert_string_equal(disks[0].plan.images[0].src_backing, "base-vda.raw");
	assert_string_equal(disks[0].plan.images[0].dst_backing, "base-vda.raw");
	assert_string_equal(disks[0].plan.images[0].dst_backing_format, "raw");
	assert_null(disks[0].plan.images[1].src_backing);
	assert_null(disks[0].plan.images[1].dst_backing);
	assert_null(disks[0].plan.images[1].dst_backing_format);
	sm_disk_rows_free(disks, n);
	assert_int_equal(sm_journal_disk_list(f->j, id + 100, &disks, &n), 0);
	assert_int_equal(n, 0);
	sm_disk_rows_free(disks, n);

	/* Every file the job will create is recorded before it exists. */
	assert_int_equal(sm_journal_file_list(f->j, id, &files, &n), 0);
	assert_int_equal(n, 4);
	assert_string_equal(files[0].path, "/mnt/fast/vda.qcow2");
	assert_string_equal(files[0].role, "dst_image");
	assert_string_equal(files[1].path, "/mnt/fast/base-vda.raw");
	assert_string_equal(files[1].role, "dst_image");
	assert_string_equal(files[2].path, p.disk.src_overlay);
	assert_string_equal(files[2].role, "src_overlay");
	assert_string_equal(files[3].path, p.disk.dst_overlay);
	assert_string_equal(files[3].role, "dst_overlay");
	for (size_t i = 0; i < n; i++)
		assert_string_equal(files[i].state, "planned");
	sm_file_rows_free(files, n);

	/* States and phases are stored by name. */
	assert_query(f->path, "SELECT state || '/' || phase FROM job", "running/planned");
	assert_query(f->path, "SELECT group_concat(state) FROM image", "planned,planned");
}

/* Walk a job through its phases as a move does, and fail it in the copy. */
static void test_phases_steps_and_finish(void **state)
{
	struct fixture *f = *state;
	struct sm_step_row *steps;
	struct sm_file_row *files;
	struct sm_disk_row *disks;
	struct sm_job_row job;
	char *overlay;
	long long id;
	size_t n;
	double updated;

	open_journal(f);
	id = insert_job(f->j, UUID_A, (const char *const[]){ "vdb", "vda" }, 2);
	assert_int_equal(sm_journal_job_get(f->j, id, &job), 1);
	updated = job.updated_at;
	sm_job_row_release(&job);

	assert_int_equal(sm_journal_phase_start(f->j, id, SM_PHASE_SNAPSHOT), 0);
	assert_int_equal(sm_journal_job_get(f->j, id, &job), 1);
	assert_string_equal(job.phase, "snapshot");
	assert_true(job.updated_at >= updated);
	sm_job_row_release(&job);
	overlay = sm_xasprintf("/src/vda.qcow2.snapmove-%lld.qcow2", id);
	assert_int_equal(sm_journal_file_set(f->j, id, overlay, "src_overlay", "created"), 0);
	assert_int_equal(sm_journal_disk_set_state(f->j, id, "vda", SM_DISK_SNAPSHOTTED, NULL), 0);
	assert_int_equal(sm_journal_disk_set_state(f->j, id, "vdb", SM_DISK_SNAPSHOTTED, NULL), 0);
	assert_int_equal(sm_journal_phase_finish(f->j, id, SM_PHASE_SNAPSHOT, NULL), 0);

	assert_int_equal(sm_journal_phase_start(f->j, id, SM_PHASE_DEST_CHAIN), 0);
	assert_int_equal(sm_journal_image_set_state(f->j, id, "vda", 1, SM_IMAGE_CREATED, 0), 0);
	assert_int_equal(sm_journal_image_set_state(f->j, id, "vda", 0, SM_IMAGE_CREATED, 0), 0);
	assert_int_equal(sm_journal_file_set(f->j, id, "/mnt/fast/base-vda.raw", "dst_image",
					     "created"), 0);
	assert_int_equal(sm_journal_file_set(f->j, id, "/mnt/fast/vda.qcow2.part", "dst_image",
					     "creating"), 0);
	assert_int_equal(sm_journal_disk_set_state(f->j, id, "vda", SM_DISK_DEST_CREATED, NULL), 0);
	assert_int_equal(sm_journal_phase_finish(f->j, id, SM_PHASE_DEST_CHAIN, NULL), 0);

	assert_int_equal(sm_journal_phase_start(f->j, id, SM_PHASE_COPY), 0);
	assert_int_equal(sm_journal_image_set_state(f->j, id, "vda", 1, SM_IMAGE_COPYING,
						    123456789), 0);
	assert_int_equal(sm_journal_disk_set_state(f->j, id, "vdb", SM_DISK_SNAPSHOTTED,
						   "no space left"), 0);
	assert_int_equal(sm_journal_phase_finish(f->j, id, SM_PHASE_COPY,
						 "copy of '/src/base-vda.raw' interrupted"), 0);
	assert_int_equal(sm_journal_job_finish(f->j, id, SM_JOB_FAILED, "the copy failed"), 0);

	assert_int_equal(sm_journal_job_get(f->j, id, &job), 1);
	assert_string_equal(job.state, "failed");
	assert_string_equal(job.phase, "copy");
	assert_string_equal(job.error, "the copy failed");
	assert_true(job.finished_at > 0);
	assert_true(job.finished_at >= job.created_at);
	assert_true(job.updated_at >= job.created_at);
	sm_job_row_release(&job);

	assert_int_equal(sm_journal_step_list(f->j, id, &steps, &n), 0);
	assert_int_equal(n, 3);
	assert_string_equal(steps[0].phase, "snapshot");
	assert_string_equal(steps[1].phase, "dest_chain");
	assert_string_equal(steps[2].phase, "copy");
	for (size_t i = 0; i < n; i++) {
		assert_null(steps[i].target);
		assert_true(steps[i].started_at > 0);
		assert_true(steps[i].finished_at >= steps[i].started_at);
		if (i > 0)
			assert_true(steps[i].started_at >= steps[i - 1].finished_at);
	}
	assert_null(steps[0].error);
	assert_null(steps[1].error);
	assert_string_equal(steps[2].error, "copy of '/src/base-vda.raw' interrupted");
	sm_step_rows_free(steps, n);

	/* Disks come back ordered by target, each with its own state and error. */
	assert_int_equal(sm_journal_disk_list(f->j, id, &disks, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(disks[0].target, "vda");
	assert_string_equal(disks[0].state, "dest_created");
	assert_null(disks[0].error);
	assert_string_equal(disks[1].target, "vdb");
	assert_string_equal(disks[1].state, "snapshotted");
	assert_string_equal(disks[1].error, "no space left");
	assert_int_equal(disks[1].plan.nimages, 2);
	assert_string_equal(disks[1].plan.images[1].src, "/src/base-vdb.raw");
	sm_disk_rows_free(disks, n);

	assert_query(f->path, "SELECT state || ':' || bytes_copied FROM image WHERE target = "
		     "'vda' AND depth = 0", "created:0");
	assert_query(f->path, "SELECT state || ':' || bytes_copied FROM image WHERE target = "
		     "'vda' AND depth = 1", "copying:123456789");
	assert_query(f->path, "SELECT state FROM image WHERE target = 'vdb' AND depth = 1",
		     "planned");

	/* file_set updates a known path in place and adds a new one at the end. */
	assert_int_equal(sm_journal_file_list(f->j, id, &files, &n), 0);
	assert_int_equal(n, 9);
	for (size_t i = 0; i < 8; i++) {
		if (sm_str_eq(files[i].path, "/mnt/fast/base-vda.raw")) {
			assert_string_equal(files[i].role, "dst_image");
			assert_string_equal(files[i].state, "created");
		} else if (sm_str_eq(files[i].path, overlay)) {
			assert_string_equal(files[i].role, "src_overlay");
			assert_string_equal(files[i].state, "created");
		} else {
			assert_string_equal(files[i].state, "planned");
		}
	}
	assert_string_equal(files[8].path, "/mnt/fast/vda.qcow2.part");
	assert_string_equal(files[8].role, "dst_image");
	assert_string_equal(files[8].state, "creating");
	sm_file_rows_free(files, n);
	assert_query(f->path, "SELECT count(*) FROM file WHERE state = 'created'", "2");
	free(overlay);

	/* Steps of other jobs stay apart. */
	assert_int_equal(sm_journal_step_list(f->j, id + 1, &steps, &n), 0);
	assert_int_equal(n, 0);
	sm_step_rows_free(steps, n);
}

/* A phase run twice (a resume) finishes its latest step, not the first. */
static void test_phase_restarted(void **state)
{
	struct fixture *f = *state;
	struct sm_step_row *steps;
	long long id;
	size_t n;

	open_journal(f);
	id = insert_job(f->j, UUID_A, (const char *const[]){ "vda" }, 1);
	assert_int_equal(sm_journal_phase_start(f->j, id, SM_PHASE_MIRROR), 0);
	assert_int_equal(sm_journal_phase_start(f->j, id, SM_PHASE_MIRROR), 0);
	assert_int_equal(sm_journal_phase_finish(f->j, id, SM_PHASE_MIRROR, "mirror failed"), 0);
	assert_int_equal(sm_journal_step_list(f->j, id, &steps, &n), 0);
	assert_int_equal(n, 2);
	assert_true(steps[0].finished_at == 0);
	assert_null(steps[0].error);
	assert_true(steps[1].finished_at >= steps[1].started_at);
	assert_string_equal(steps[1].error, "mirror failed");
	sm_step_rows_free(steps, n);
}

static void test_job_finish_done(void **state)
{
	struct fixture *f = *state;
	struct sm_job_row job;
	long long id;

	open_journal(f);
	id = insert_job(f->j, UUID_A, (const char *const[]){ "vda" }, 1);
	assert_int_equal(sm_journal_phase_start(f->j, id, SM_PHASE_DONE), 0);
	assert_int_equal(sm_journal_phase_finish(f->j, id, SM_PHASE_DONE, NULL), 0);
	assert_int_equal(sm_journal_job_finish(f->j, id, SM_JOB_DONE, NULL), 0);
	assert_int_equal(sm_journal_job_get(f->j, id, &job), 1);
	assert_string_equal(job.state, "done");
	assert_string_equal(job.phase, "done");
	assert_null(job.error);
	assert_true(job.finished_at > 0);
	sm_job_row_release(&job);
	assert_query(f->path, "SELECT state FROM job", "done");
}

static void test_job_list_unfinished_first(void **state)
{
	struct fixture *f = *state;
	const char *const vda[] = { "vda" };
	struct sm_job_row *jobs;
	long long a, b, c, d;
	size_t n;

	open_journal(f);
	assert_int_equal(sm_journal_job_list(f->j, &jobs, &n), 0);
	assert_int_equal(n, 0);
	sm_job_rows_free(jobs, n);

	a = insert_job(f->j, UUID_A, vda, 1);
	b = insert_job(f->j, UUID_A, vda, 1);
	c = insert_job(f->j, UUID_B, vda, 1);
	d = insert_job(f->j, UUID_B, vda, 1);
	assert_int_equal(sm_journal_job_finish(f->j, a, SM_JOB_DONE, NULL), 0);
	assert_int_equal(sm_journal_job_finish(f->j, b, SM_JOB_FAILED, "pivot failed"), 0);
	assert_int_equal(sm_journal_job_finish(f->j, d, SM_JOB_DONE, NULL), 0);

	assert_int_equal(sm_journal_job_list(f->j, &jobs, &n), 0);
	assert_int_equal(n, 4);
	/* Running and failed jobs first, newest first; then the done ones. */
	assert_int_equal(jobs[0].id, c);
	assert_string_equal(jobs[0].state, "running");
	assert_true(jobs[0].finished_at == 0);
	assert_int_equal(jobs[1].id, b);
	assert_string_equal(jobs[1].state, "failed");
	assert_string_equal(jobs[1].error, "pivot failed");
	assert_int_equal(jobs[2].id, d);
	assert_string_equal(jobs[2].state, "done");
	assert_int_equal(jobs[3].id, a);
	assert_string_equal(jobs[3].state, "done");
	sm_job_rows_free(jobs, n);
	sm_job_rows_free(NULL, 0);
}

static void test_unfinished_job_for_disk(void **state)
{
	struct fixture *f = *state;
	const char *const vda[] = { "vda" };
	const char *const vda_vdb[] = { "vda", "vdb" };
	long long done, run, other, found;

	open_journal(f);
	found = -7;
	assert_int_equal(sm_journal_unfinished_job_for_disk(f->j, UUID_A, "vda", &found), 0);
	assert_int_equal(found, -7);

	done = insert_job(f->j, UUID_A, vda, 1);
	assert_int_equal(sm_journal_job_finish(f->j, done, SM_JOB_DONE, NULL), 0);
	assert_int_equal(sm_journal_unfinished_job_for_disk(f->j, UUID_A, "vda", &found), 0);

	run = insert_job(f->j, UUID_A, vda_vdb, 2);
	assert_int_equal(sm_journal_unfinished_job_for_disk(f->j, UUID_A, "vda", &found), 1);
	assert_int_equal(found, run);
	found = 0;
	assert_int_equal(sm_journal_unfinished_job_for_disk(f->j, UUID_A, "vdb", &found), 1);
	assert_int_equal(found, run);
	/* Another disk of the domain, and the same disk name of another domain. */
	assert_int_equal(sm_journal_unfinished_job_for_disk(f->j, UUID_A, "vdc", &found), 0);
	assert_int_equal(sm_journal_unfinished_job_for_disk(f->j, UUID_B, "vda", &found), 0);

	/* A failed job still holds its disks until it is resolved. */
	assert_int_equal(sm_journal_job_finish(f->j, run, SM_JOB_FAILED, "pivot failed"), 0);
	found = 0;
	assert_int_equal(sm_journal_unfinished_job_for_disk(f->j, UUID_A, "vda", &found), 1);
	assert_int_equal(found, run);

	other = insert_job(f->j, UUID_B, vda, 1);
	assert_int_equal(sm_journal_unfinished_job_for_disk(f->j, UUID_B, "vda", &found), 1);
	assert_int_equal(found, other);

	assert_int_equal(sm_journal_job_finish(f->j, run, SM_JOB_DONE, NULL), 0);
	assert_int_equal(sm_journal_unfinished_job_for_disk(f->j, UUID_A, "vda", &found), 0);
	assert_int_equal(sm_journal_unfinished_job_for_disk(f->j, UUID_A, "vdb", &found), 0);
	assert_int_equal(sm_journal_unfinished_job_for_disk(f->j, UUID_B, "vda", &found), 1);
}

static void test_rollback_leaves_no_job(void **state)
{
	struct fixture *f = *state;
	struct sm_job_row row = job_row("vm", UUID_A), got;
	struct sm_job_row *jobs;
	struct sm_file_row *files;
	struct test_plan p;
	long long id, found, kept;
	size_t n;

	open_journal(f);
	assert_int_equal(sm_journal_begin(f->j), 0);
	assert_int_equal(sm_journal_job_insert(f->j, &row, &id), 0);
	make_plan(&p, "vda", id);
	assert_int_equal(sm_journal_disk_insert(f->j, id, &p.disk), 0);
	/* Updates inside an open transaction join it. */
	assert_int_equal(sm_journal_phase_start(f->j, id, SM_PHASE_SNAPSHOT), 0);
	sm_journal_rollback(f->j);

	assert_int_equal(sm_journal_job_get(f->j, id, &got), 0);
	sm_job_row_release(&got);
	assert_int_equal(sm_journal_job_list(f->j, &jobs, &n), 0);
	assert_int_equal(n, 0);
	sm_job_rows_free(jobs, n);
	assert_int_equal(sm_journal_file_list(f->j, id, &files, &n), 0);
	assert_int_equal(n, 0);
	sm_file_rows_free(files, n);
	assert_int_equal(sm_journal_unfinished_job_for_disk(f->j, UUID_A, "vda", &found), 0);
	assert_query(f->path, "SELECT count(*) FROM step", "0");
	assert_query(f->path, "SELECT count(*) FROM disk", "0");

	/* The journal is usable afterwards, and a nested begin/commit pair is
	 * part of the outer transaction. */
	assert_int_equal(sm_journal_begin(f->j), 0);
	kept = insert_job(f->j, UUID_A, (const char *const[]){ "vda" }, 1);
	sm_journal_rollback(f->j);
	assert_int_equal(sm_journal_job_get(f->j, kept, &got), 0);
	sm_job_row_release(&got);
	kept = insert_job(f->j, UUID_A, (const char *const[]){ "vda" }, 1);
	assert_int_equal(sm_journal_job_get(f->j, kept, &got), 1);
	sm_job_row_release(&got);
	assert_query(f->path, "SELECT count(*) FROM job", "1");
}

/* An inner level that rolls back fails the whole transaction: the outer
 * commit saves nothing of it and says so, and the journal stays usable. */
static void test_inner_rollback_fails_outer(void **state)
{
	struct fixture *f = *state;
	struct sm_job_row got;
	long long id;

	open_journal(f);
	assert_int_equal(sm_journal_begin(f->j), 0);
	id = insert_job(f->j, UUID_A, (const char *const[]){ "vda" }, 1);
	/* A failing update (no such job: foreign key) inside the transaction. */
	assert_int_equal(SM_JOURNAL_TX(f->j, sm_journal_phase_start(f->j, id + 100,
								   SM_PHASE_COPY)), -1);
	assert_int_equal(sm_journal_commit(f->j), -1);
	assert_contains(sm_error_message(), "nothing of it was saved");
	assert_int_equal(sm_journal_job_get(f->j, id, &got), 0);
	sm_job_row_release(&got);
	/* No transaction is left open: a rollback now is a no-op that keeps the
	 * last error, and a new transaction works. */
	sm_error_clear();
	sm_journal_rollback(f->j);
	assert_int_equal(sm_journal_commit(f->j), -1);
	assert_int_equal(sm_journal_begin(f->j), 0);
	id = insert_job(f->j, UUID_A, (const char *const[]){ "vda" }, 1);
	assert_int_equal(sm_journal_commit(f->j), 0);
	assert_int_equal(sm_journal_job_get(f->j, id, &got), 1);
	sm_job_row_release(&got);
}

/* Every phase and state name round-trips through the journal. */
static void test_names_stored_in_journal(void **state)
{
	struct fixture *f = *state;
	struct sm_disk_row *disks;
	struct sm_job_row job;
	long long id;
	size_t n;

	open_journal(f);
	id = insert_job(f->j, UUID_A, (const char *const[]){ "vda" }, 1);
	for (int p = 0; p < SM_PHASE_LAST; p++) {
		assert_int_equal(sm_journal_phase_start(f->j, id, (enum sm_phase)p), 0);
		assert_int_equal(sm_journal_job_get(f->j, id, &job), 1);
		assert_string_equal(job.phase, sm_phase_name((enum sm_phase)p));
		assert_int_equal(sm_phase_from_name(job.phase), p);
		sm_job_row_release(&job);
	}
	for (int s = 0; s < SM_DISK_STATE_LAST; s++) {
		assert_int_equal(sm_journal_disk_set_state(f->j, id, "vda", (enum sm_disk_state)s,
							   NULL), 0);
		assert_int_equal(sm_journal_disk_list(f->j, id, &disks, &n), 0);
		assert_int_equal(n, 1);
		assert_string_equal(disks[0].state, sm_disk_state_name((enum sm_disk_state)s));
		sm_disk_rows_free(disks, n);
	}
	for (int s = 0; s < SM_IMAGE_STATE_LAST; s++) {
		char *got;

		assert_int_equal(sm_journal_image_set_state(f->j, id, "vda", 0,
							    (enum sm_image_state)s, 42), 0);
		got = query(f->path, "SELECT state FROM image WHERE depth = 0");
		assert_string_equal(got, sm_image_state_name((enum sm_image_state)s));
		free(got);
	}
	for (int s = 0; s < SM_JOB_STATE_LAST; s++) {
		assert_int_equal(sm_journal_job_finish(f->j, id, (enum sm_job_state)s, NULL), 0);
		assert_int_equal(sm_journal_job_get(f->j, id, &job), 1);
		assert_string_equal(job.state, sm_job_state_name((enum sm_job_state)s));
		assert_int_equal(sm_job_state_from_name(job.state), s);
		assert_true((job.finished_at > 0) == (s != SM_JOB_RUNNING));
		sm_job_row_release(&job);
	}
}

/* Chunks journaled in batches, as a sparse image's hole chunks are: every row
 * of a batch is there, a later row for the same chunk replaces the earlier one
 * (durable, then verified), a batch for an image the job does not have is
 * refused, and a batch inside a transaction that rolls back leaves nothing. */
static void test_chunks_done_batch(void **state)
{
	struct fixture *f = *state;
	enum { N = 3000 };
	struct sm_journal_chunk *rows = calloc(N, sizeof(*rows)), *got = NULL;
	struct sm_journal_chunk bad[2];
	size_t n = 0;
	long long id;

	assert_non_null(rows);
	open_journal(f);
	id = insert_job(f->j, UUID_A, (const char *const[]){ "vda" }, 1);
	for (size_t i = 0; i < N; i++) {
		rows[i] = (struct sm_journal_chunk){ .index = i, .offset = i << 26,
						     .length = 1ULL << 26, .verified = true };
		snprintf(rows[i].checksum, sizeof(rows[i].checksum), "%016zx", i * 7919);
	}
	rows[N - 1].data_bytes = 4096;
	rows[N - 1].verified = false;
	assert_int_equal(sm_journal_chunks_done(f->j, id, "vda", 1, rows, 0), 0);
	assert_int_equal(sm_journal_chunks_done(f->j, id, "vda", 1, rows, N), 0);
	assert_query(f->path, "SELECT count(*) FROM chunk", "3000");
	assert_query(f->path, "SELECT count(*) FROM chunk WHERE verified = 0", "1");

	/* The last chunk's check matched: its row is replaced, not doubled. */
	rows[N - 1].verified = true;
	assert_int_equal(sm_journal_chunks_done(f->j, id, "vda", 1, &rows[N - 1], 1), 0);
	assert_int_equal(sm_journal_chunk_list(f->j, id, "vda", 1, &got, &n), 0);
	assert_int_equal(n, N);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(got[i].index, i);
		assert_int_equal(got[i].offset, (unsigned long long)i << 26);
		assert_string_equal(got[i].checksum, rows[i].checksum);
		assert_true(got[i].verified);
	}
	assert_int_equal(got[N - 1].data_bytes, 4096);

	bad[0] = rows[0];
	bad[1] = rows[1];
	bad[0].index = N + 5;
	bad[1].index = N + 6;
	assert_int_equal(sm_journal_chunks_done(f->j, id, "vdz", 1, bad, 2), -1);
	assert_contains(sm_error_message(), "FOREIGN KEY");
	assert_query(f->path, "SELECT count(*) FROM chunk", "3000");
	assert_int_equal(sm_journal_begin(f->j), 0);
	assert_int_equal(sm_journal_chunks_done(f->j, id, "vda", 1, bad, 2), 0);
	sm_journal_rollback(f->j);
	assert_query(f->path, "SELECT count(*) FROM chunk", "3000");
	free(got);
	free(rows);
}

static void test_phase_names(void **state)
{
	static const char *const want[] = {
		"planned", "snapshot", "dest_chain", "mirror", "copy", "sync", "pivot",
		"collapse", "finalize", "done",
	};

	(void)state;
	assert_int_equal(SM_ARRAY_LEN(want), SM_PHASE_LAST);
	for (int p = 0; p < SM_PHASE_LAST; p++) {
		assert_string_equal(sm_phase_name((enum sm_phase)p), want[p]);
		assert_int_equal(sm_phase_from_name(want[p]), p);
		assert_string_not_equal(sm_phase_describe((enum sm_phase)p), "unknown");
	}
	assert_int_equal(sm_phase_from_name("bogus"), -1);
	assert_int_equal(sm_phase_from_name(""), -1);
	assert_int_equal(sm_phase_from_name("unknown"), -1);
	assert_int_equal(sm_phase_from_name("COPY"), -1);
	assert_int_equal(sm_phase_from_name("copy "), -1);
	assert_int_equal(sm_phase_from_name(NULL), -1);
	assert_string_equal(sm_phase_name(SM_PHASE_LAST), "unknown");
}

static void test_job_state_names(void **state)
{
	static const char *const want[] = { "running", "failed", "done", "aborted" };

	(void)state;
	assert_int_equal(SM_ARRAY_LEN(want), SM_JOB_STATE_LAST);
	for (int s = 0; s < SM_JOB_STATE_LAST; s++) {
		assert_string_equal(sm_job_state_name((enum sm_job_state)s), want[s]);
		assert_int_equal(sm_job_state_from_name(want[s]), s);
	}
	assert_int_equal(sm_job_state_from_name("bogus"), -1);
	assert_int_equal(sm_job_state_from_name(""), -1);
	assert_int_equal(sm_job_state_from_name("unknown"), -1);
	assert_int_equal(sm_job_state_from_name("Done"), -1);
	assert_int_equal(sm_job_state_from_name(NULL), -1);
	/* A phase name is not a job state. */
	assert_int_equal(sm_job_state_from_name("planned"), -1);
	assert_string_equal(sm_job_state_name(SM_JOB_STATE_LAST), "unknown");
}

/* Disk and image states have distinct, known names (they are stored by name). */
static void test_disk_and_image_state_names(void **state)
{
	(void)state;
	for (int a = 0; a < SM_DISK_STATE_LAST; a++) {
		assert_string_not_equal(sm_disk_state_name((enum sm_disk_state)a), "unknown");
		for (int b = a + 1; b < SM_DISK_STATE_LAST; b++)
			assert_string_not_equal(sm_disk_state_name((enum sm_disk_state)a),
						sm_disk_state_name((enum sm_disk_state)b));
	}
	for (int a = 0; a < SM_IMAGE_STATE_LAST; a++) {
		assert_string_not_equal(sm_image_state_name((enum sm_image_state)a), "unknown");
		for (int b = a + 1; b < SM_IMAGE_STATE_LAST; b++)
			assert_string_not_equal(sm_image_state_name((enum sm_image_state)a),
						sm_image_state_name((enum sm_image_state)b));
	}
	assert_string_equal(sm_disk_state_name(SM_DISK_PLANNED), "planned");
	assert_string_equal(sm_disk_state_name(SM_DISK_DONE), "done");
	assert_string_equal(sm_image_state_name(SM_IMAGE_COPIED), "copied");
}

/* Every enum the journal stores by name: the names are exactly the strings
 * written today (these lists are what move, resume, abort, cleanup and the
 * rebalance put in the journal), and each table goes both ways. */
struct enum_case {
	const char *what;
	const char *const *want;  /* NULL-terminated */
	int last;
	const char *(*name)(int);
	int (*from_name)(const char *);
};

#define ENUM_NAME(fn, type) \
	static const char *fn##_int(int v) { return fn((type)v); }
ENUM_NAME(sm_phase_name, enum sm_phase)
ENUM_NAME(sm_job_state_name, enum sm_job_state)
ENUM_NAME(sm_disk_state_name, enum sm_disk_state)
ENUM_NAME(sm_image_state_name, enum sm_image_state)
ENUM_NAME(sm_file_role_name, enum sm_file_role)
ENUM_NAME(sm_file_state_name, enum sm_file_state)
ENUM_NAME(sm_rebalance_state_name, enum sm_rebalance_state)
ENUM_NAME(sm_rmove_state_name, enum sm_rmove_state)
ENUM_NAME(sm_device_state_name, enum sm_device_state)
ENUM_NAME(sm_provision_op_name, enum sm_provision_op)

static void test_enum_tables(void **state)
{
	static const char *const phases[] = { "planned", "snapshot", "dest_chain", "mirror",
		"copy", "sync", "pivot", "collapse", "finalize", "done", NULL };
	static const char *const job_states[] = { "running", "failed", "done", "aborted", NULL };
	static const char *const disk_states[] = { "planned", "snapshotted", "dest_created",
		"mirroring", "copied", "ready", "pivoted", "collapsed", "done", NULL };
	static const char *const image_states[] = { "planned", "created", "copying", "copied",
		NULL };
	static const char *const file_roles[] = { "src_overlay", "dst_overlay", "dst_image",
		"kept_overlay", "src_image", NULL };
	static const char *const file_states[] = { "planned", "creating", "created", "kept",
		"removed", "deleting", "deleted", NULL };
	static const char *const rebalance_states[] = { "running", "done", "failed", NULL };
	static const char *const rmove_states[] = { "planned", "running", "done", "failed", NULL };
	static const char *const device_states[] = { "creating", "created", "removing", "removed",
		"failed", NULL };
	static const char *const provision_ops[] = { "create", "extend", "remove", NULL };
	const struct enum_case cases[] = {
		{ "phase", phases, SM_PHASE_LAST, sm_phase_name_int, sm_phase_from_name },
		{ "job state", job_states, SM_JOB_STATE_LAST, sm_job_state_name_int,
		  sm_job_state_from_name },
		{ "disk state", disk_states, SM_DISK_STATE_LAST, sm_disk_state_name_int,
		  sm_disk_state_from_name },
		{ "image state", image_states, SM_IMAGE_STATE_LAST, sm_image_state_name_int,
		  sm_image_state_from_name },
		{ "file role", file_roles, SM_FILE_ROLE_LAST, sm_file_role_name_int,
		  sm_file_role_from_name },
		{ "file state", file_states, SM_FILE_STATE_LAST, sm_file_state_name_int,
		  sm_file_state_from_name },
		{ "rebalance state", rebalance_states, SM_REBALANCE_STATE_LAST,
		  sm_rebalance_state_name_int, sm_rebalance_state_from_name },
		{ "rebalance move state", rmove_states, SM_RMOVE_STATE_LAST,
		  sm_rmove_state_name_int, sm_rmove_state_from_name },
		{ "provisioned device state", device_states, SM_DEVICE_STATE_LAST,
		  sm_device_state_name_int, sm_device_state_from_name },
		{ "provisioner operation", provision_ops, SM_PROVISION_OP_LAST,
		  sm_provision_op_name_int, sm_provision_op_from_name },
	};

	(void)state;
	for (size_t c = 0; c < SM_ARRAY_LEN(cases); c++) {
		const struct enum_case *e = &cases[c];
		int n = 0;

		while (e->want[n])
			n++;
		if (n != e->last)
			print_error("%s: %d names, %d values\n", e->what, n, e->last);
		assert_int_equal(n, e->last);
		for (int v = 0; v < e->last; v++) {
			/* value -> name -> value, and name -> value -> name */
			assert_string_equal(e->name(v), e->want[v]);
			assert_int_equal(e->from_name(e->name(v)), v);
			assert_string_equal(e->name(e->from_name(e->want[v])), e->want[v]);
		}
		assert_int_equal(e->from_name("bogus"), -1);
		assert_int_equal(e->from_name(""), -1);
		assert_int_equal(e->from_name("unknown"), -1);
		assert_int_equal(e->from_name("DONE"), -1);
		assert_int_equal(e->from_name(" planned"), -1);
		assert_int_equal(e->from_name(NULL), -1);
		assert_string_equal(e->name(e->last), "unknown");
		assert_string_equal(e->name(-1), "unknown");
	}
}

/* The file rows through the typed functions: what disk_insert plans, each
 * state as sm_journal_file_put writes it (the very string in the table), read
 * back as an enum; a name this version does not write is refused by the
 * getter (the listing keeps it, as before, with -1). */
static void test_file_rows_typed(void **state)
{
	struct fixture *f = *state;
	struct sm_file_row *files;
	enum sm_file_state st;
	struct test_plan p;
	long long id;
	size_t n;

	open_journal(f);
	id = insert_job(f->j, UUID_A, (const char *const[]){ "vda" }, 1);
	make_plan(&p, "vda", id);
	assert_int_equal(sm_journal_file_list(f->j, id, &files, &n), 0);
	assert_int_equal(n, 4);
	assert_int_equal(sm_file_row_role(&files[0]), SM_FILE_DST_IMAGE);
	assert_int_equal(sm_file_row_role(&files[1]), SM_FILE_DST_IMAGE);
	assert_int_equal(sm_file_row_role(&files[2]), SM_FILE_SRC_OVERLAY);
	assert_int_equal(sm_file_row_role(&files[3]), SM_FILE_DST_OVERLAY);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(sm_file_row_state(&files[i]), SM_FILE_PLANNED);
	sm_file_rows_free(files, n);

	for (int s = 0; s < SM_FILE_STATE_LAST; s++) {
		SM_AUTOFREE char *sql = sm_xasprintf("SELECT role || ' ' || state FROM file WHERE "
						     "path = '%s'", p.disk.src_overlay);
		SM_AUTOFREE char *want = sm_xasprintf("src_overlay %s",
						      sm_file_state_name((enum sm_file_state)s));

		assert_int_equal(SM_JOURNAL_TX(f->j, sm_journal_file_put(f->j, id, p.disk.src_overlay,
									 SM_FILE_SRC_OVERLAY,
									 (enum sm_file_state)s)), 0);
		assert_query(f->path, sql, want);
		assert_int_equal(sm_journal_file_get_state(f->j, id, p.disk.src_overlay, &st), 1);
		assert_int_equal(st, s);
	}
	/* A new file by role and state: the role's name goes in. */
	assert_int_equal(SM_JOURNAL_TX(f->j, sm_journal_file_put(f->j, id, "/src/vda.qcow2",
								 SM_FILE_SRC_IMAGE,
								 SM_FILE_DELETING)), 0);
	assert_query(f->path, "SELECT role || ' ' || state FROM file WHERE path = '/src/vda.qcow2'",
		     "src_image deleting");
	assert_int_equal(sm_journal_file_get_state(f->j, id, "/nowhere", &st), 0);
	exec_sql(f->path, "UPDATE file SET state = 'odd', role = 'strange' WHERE path = "
		 "'/src/vda.qcow2'");
	assert_int_equal(sm_journal_file_get_state(f->j, id, "/src/vda.qcow2", &st), -2);
	assert_contains(sm_error_message(), "is malformed (file: unknown file state 'odd')");
	assert_int_equal(sm_journal_file_list(f->j, id, &files, &n), 0);
	assert_int_equal(n, 5);
	assert_int_equal(sm_file_row_role(&files[4]), -1);
	assert_int_equal(sm_file_row_state(&files[4]), -1);
	sm_file_rows_free(files, n);
}

/* Job rows as enums: state, phase, finished; a job's state by number. */
static void test_job_rows_typed(void **state)
{
	struct fixture *f = *state;
	struct sm_disk_row *disks;
	struct sm_job_row job;
	enum sm_job_state st;
	char *err = NULL;
	long long id, latest;
	size_t n;

	open_journal(f);
	id = insert_job(f->j, UUID_A, (const char *const[]){ "vda" }, 1);
	assert_int_equal(sm_journal_phase_start(f->j, id, SM_PHASE_MIRROR), 0);
	assert_int_equal(sm_journal_disk_set_state(f->j, id, "vda", SM_DISK_MIRRORING, NULL), 0);
	assert_int_equal(sm_journal_job_get(f->j, id, &job), 1);
	assert_int_equal(sm_job_row_state(&job), SM_JOB_RUNNING);
	assert_int_equal(sm_job_row_phase(&job), SM_PHASE_MIRROR);
	assert_false(sm_job_row_finished(&job));
	sm_job_row_release(&job);
	assert_int_equal(sm_journal_disk_list(f->j, id, &disks, &n), 0);
	assert_int_equal(sm_disk_row_state(&disks[0]), SM_DISK_MIRRORING);
	sm_disk_rows_free(disks, n);
	for (int s = 0; s < SM_JOB_STATE_LAST; s++) {
		assert_int_equal(sm_journal_job_finish(f->j, id, (enum sm_job_state)s,
						       s == SM_JOB_FAILED ? "broke" : NULL), 0);
		assert_int_equal(sm_journal_job_get(f->j, id, &job), 1);
		assert_int_equal(sm_job_row_state(&job), s);
		assert_true(sm_job_row_finished(&job) == (s == SM_JOB_DONE || s == SM_JOB_ABORTED));
		sm_job_row_release(&job);
		assert_int_equal(sm_journal_job_state(f->j, id, &st, &err), 1);
		assert_int_equal(st, s);
		if (s == SM_JOB_FAILED)
			assert_string_equal(err, "broke");
		else
			assert_null(err);
		free(err);
		err = NULL;
	}
	assert_int_equal(sm_journal_job_state(f->j, id + 1, &st, &err), 0);
	assert_null(err);
	/* The newest job of the domain's disk above a floor. */
	assert_int_equal(sm_journal_latest_disk_job(f->j, "vm", "vda", 0, &latest), 0);
	assert_int_equal(latest, id);
	assert_int_equal(sm_journal_latest_disk_job(f->j, "vm", "vda", id, &latest), 0);
	assert_int_equal(latest, 0);
	assert_int_equal(sm_journal_latest_disk_job(f->j, "vm", "vdb", 0, &latest), 0);
	assert_int_equal(latest, 0);
	exec_sql(f->path, "UPDATE job SET state = 'odd'");
	assert_int_equal(sm_journal_job_state(f->j, id, &st, &err), -2);
	assert_null(err);
	assert_contains(sm_error_message(), "unknown state 'odd'");
}

static void test_default_path(void **state)
{
	char *saved_state = sm_xstrdup_or_null(getenv("XDG_STATE_HOME"));
	char *saved_home = sm_xstrdup_or_null(getenv("HOME"));
	char *p;

	(void)state;
	setenv("XDG_STATE_HOME", "/xdg/state", 1);
	setenv("HOME", "/home/someone", 1);
	p = sm_journal_default_path();
	if (geteuid() == 0)
		assert_string_equal(p, "/var/lib/snapmove/journal.db");
	else
		assert_string_equal(p, "/xdg/state/snapmove/journal.db");
	free(p);
	unsetenv("XDG_STATE_HOME");
	p = sm_journal_default_path();
	if (geteuid() == 0)
		assert_string_equal(p, "/var/lib/snapmove/journal.db");
	else
		assert_string_equal(p, "/home/someone/.local/state/snapmove/journal.db");
	free(p);
	if (saved_state)
		setenv("XDG_STATE_HOME", saved_state, 1);
	if (saved_home)
		setenv("HOME", saved_home, 1);
	else
		unsetenv("HOME");
	free(saved_state);
	free(saved_home);
}

/* mode of path & 07777 */
static unsigned mode_of(const char *path)
{
	struct stat sb;

	assert_int_equal(lstat(path, &sb), 0);
	return sb.st_mode & 07777;
}

/* A journal in a folder of the caller's (not the default one): a 0644 file
 * and its -wal and -shm left by someone are made 0600; the folder, which may
 * be shared with images, is left as it is. */
static void test_open_tightens_files(void **state)
{
	struct fixture *f = *state;
	char *dir, *path, *side;

	assert_true(asprintf(&dir, "%s/shared", f->dir) > 0);
	assert_int_equal(mkdir(dir, 0755), 0);
	assert_int_equal(chmod(dir, 0755), 0);
	assert_true(asprintf(&path, "%s/journal.db", dir) > 0);
	assert_int_equal(sm_journal_open(path, &f->j), 0);
	assert_int_equal(mode_of(path), 0600);
	sm_journal_free(f->j);
	f->j = NULL;

	assert_int_equal(chmod(path, 0644), 0);
	assert_true(asprintf(&side, "%s-shm", path) > 0);
	close(open(side, O_WRONLY | O_CREAT, 0644));
	assert_int_equal(chmod(side, 0644), 0);
	assert_int_equal(sm_journal_open(path, &f->j), 0);
	assert_int_equal(mode_of(path), 0600);
	assert_int_equal(mode_of(side), 0600);
	assert_int_equal(mode_of(dir), 0755);
	free(side);
	assert_true(asprintf(&side, "%s-wal", path) > 0);
	assert_int_equal(mode_of(side), 0600);  /* made by SQLite with the db's mode */
	free(side);
	free(path);
	free(dir);
}

/* A planted link at the journal's or its -wal's name is refused, and what
 * it points at stays untouched; so is a journal of another uid and a folder
 * others can write. */
static void test_open_refuses_links_and_strangers(void **state)
{
	struct fixture *f = *state;
	char *dir, *path, *victim, *wal;

	assert_true(asprintf(&dir, "%s/j", f->dir) > 0);
	assert_int_equal(mkdir(dir, 0700), 0);
	assert_true(asprintf(&path, "%s/journal.db", dir) > 0);
	assert_true(asprintf(&wal, "%s-wal", path) > 0);
	assert_true(asprintf(&victim, "%s/victim", f->dir) > 0);
	close(open(victim, O_WRONLY | O_CREAT, 0644));

	assert_int_equal(symlink(victim, path), 0);
	sm_error_clear();
	assert_int_equal(sm_journal_open(path, &f->j), -1);
	assert_contains(sm_error_message(), "is a symbolic link");
	assert_int_equal(sm_journal_open_readonly(path, &f->j, NULL), -1);
	assert_contains(sm_error_message(), "is a symbolic link");
	assert_int_equal(unlink(path), 0);

	assert_int_equal(symlink(victim, wal), 0);
	assert_int_equal(sm_journal_open(path, &f->j), -1);
	assert_contains(sm_error_message(), wal);
	assert_contains(sm_error_message(), "is a symbolic link");
	assert_int_equal(unlink(wal), 0);
	assert_int_equal(mode_of(victim), 0644);
	{
		struct stat sb;

		assert_int_equal(stat(victim, &sb), 0);
		assert_int_equal(sb.st_size, 0);
	}

	assert_int_equal(sm_journal_open(path, &f->j), 0);
	sm_journal_free(f->j);
	f->j = NULL;
	assert_int_equal(chown(path, 65534, 65534), 0);
	assert_int_equal(sm_journal_open(path, &f->j), -1);
	assert_contains(sm_error_message(), "belongs to uid 65534");
	assert_int_equal(chown(path, 0, 0), 0);

	assert_int_equal(chmod(dir, 0777), 0);
	assert_int_equal(sm_journal_open(path, &f->j), -1);
	assert_contains(sm_error_message(), "writable by group or others");
	assert_int_equal(chmod(dir, 0700), 0);
	assert_int_equal(chown(dir, 65534, 65534), 0);
	assert_int_equal(sm_journal_open(path, &f->j), -1);
	assert_contains(sm_error_message(), "belongs to uid 65534, not to you");
	assert_int_equal(chown(dir, 0, 0), 0);
	assert_int_equal(sm_journal_open(path, &f->j), 0);
	free(victim);
	free(wal);
	free(path);
	free(dir);
}

/* A job's lock beside the journal: a planted link is refused, an old 0644
 * lock made 0600. */
static void test_lock_file_checked(void **state)
{
	struct fixture *f = *state;
	struct sm_job_lock lock;
	char *path, *victim;

	open_journal(f);
	assert_true(asprintf(&path, "%s.job-5.lock", f->path) > 0);
	assert_true(asprintf(&victim, "%s/victim", f->dir) > 0);
	close(open(victim, O_WRONLY | O_CREAT, 0644));
	assert_int_equal(symlink(victim, path), 0);
	sm_error_clear();
	assert_int_equal(sm_job_lock(f->j, 5, &lock), -1);
	assert_contains(sm_error_message(), "is a symbolic link");
	assert_int_equal(unlink(path), 0);
	close(open(path, O_WRONLY | O_CREAT, 0644));
	assert_int_equal(chmod(path, 0644), 0);
	assert_int_equal(sm_job_lock(f->j, 5, &lock), 0);
	assert_int_equal(mode_of(path), 0600);
	sm_job_unlock(&lock, 1);
	assert_int_equal(access(path, F_OK), -1);
	free(victim);
	free(path);
}

/* list, status and verify read the journal read-only: a write fails, reads
 * work, and a journal of an older schema is upgraded first. */
static void test_open_readonly(void **state)
{
	struct fixture *f = *state;
	struct sm_job_row row;
	long long id;
	bool missing = false;

	id = insert_job(open_journal(f), "uuid-ro", (const char *const[]){ "vda" }, 1);
	sm_journal_free(f->j);
	f->j = NULL;
	assert_int_equal(sm_journal_open_readonly(f->path, &f->j, &missing), 0);
	assert_false(missing);
	assert_int_equal(sm_journal_job_get(f->j, id, &row), 1);
	assert_string_equal(row.domain_name, "vm");
	sm_job_row_release(&row);
	sm_error_clear();
	assert_int_equal(sm_journal_phase_start(f->j, id, SM_PHASE_COPY), -1);
	assert_contains(sm_error_message(), "read-only");
	assert_query(f->path, "SELECT phase FROM job", "planned");
	sm_journal_free(f->j);
	f->j = NULL;

	/* A journal of schema 8: what 009 and later added is not there yet. */
	exec_sql(f->path, "PRAGMA user_version = 8; ALTER TABLE chunk DROP COLUMN verified; "
		 "DROP TABLE source_file; ALTER TABLE job DROP COLUMN asked_copy_method; "
		 "ALTER TABLE job DROP COLUMN parallel; ALTER TABLE job DROP COLUMN trim; "
		 "DROP TABLE provision_run; DROP TABLE provisioned_device; "
		 "ALTER TABLE image DROP COLUMN dst_rdev; ALTER TABLE job DROP COLUMN overlay_chunk; "
		 "ALTER TABLE job DROP COLUMN dest_zeroed; ALTER TABLE image DROP COLUMN dst_diskseq");
	assert_int_equal(sm_journal_open_readonly(f->path, &f->j, NULL), 0);
	assert_int_equal(sm_journal_job_get(f->j, id, &row), 1);
	sm_job_row_release(&row);
	assert_query(f->path, "SELECT count(*) FROM pragma_table_info('chunk') WHERE "
		     "name = 'verified'", "1");
	sm_journal_free(f->j);
	f->j = NULL;

	sm_error_clear();
	assert_int_equal(sm_journal_open_readonly("/nonexistent/j.db", &f->j, &missing), -1);
	assert_true(missing);
	assert_contains(sm_error_message(), "there is no journal");
}

/* Tamper with one value of job 1 and check the error of a getter. */
static void tamper(struct fixture *f, const char *sql)
{
	sm_journal_free(f->j);
	f->j = NULL;
	exec_sql(f->path, sql);
	open_journal(f);
	sm_error_clear();
}

static void test_malformed_rows(void **state)
{
	struct fixture *f = *state;
	struct sm_job_row row, *rows;
	struct sm_disk_row *disks;
	struct sm_step_row *steps;
	struct sm_journal_chunk *chunks;
	struct sm_journal_chunk c = { .index = 0, .offset = 0, .length = 4096,
				      .data_bytes = 4096, .checksum = "0123456789abcdef",
				      .verified = true };
	enum sm_image_state ist;
	unsigned long long done;
	size_t n;
	long long id;

	id = insert_job(open_journal(f), "uuid-m", (const char *const[]){ "vda" }, 1);
	assert_int_equal(id, 1);
	assert_int_equal(sm_journal_phase_start(f->j, id, SM_PHASE_COPY), 0);
	assert_int_equal(sm_journal_chunks_done(f->j, id, "vda", 1, &c, 1), 0);
	assert_int_equal(sm_journal_job_check(f->j, id), 0);

	tamper(f, "UPDATE job SET phase = 'xyz'");
	assert_int_equal(sm_journal_job_get(f->j, id, &row), -2);
	assert_null(row.domain_name);
	assert_contains(sm_error_message(), "journal row of job 1 is malformed (unknown phase "
			"'xyz'); the journal may have been edited: 'snapmove forget 1' or "
			"restore it");
	assert_int_equal(sm_journal_job_check(f->j, id), -2);
	rows = NULL;
	assert_int_equal(sm_journal_job_list(f->j, &rows, &n), -1);
	assert_null(rows);
	assert_int_equal(n, 0);
	assert_contains(sm_error_message(), "journal row of job 1 is malformed");

	tamper(f, "UPDATE job SET phase = 'copy', state = 'running\n\x1b[2J'");
	assert_int_equal(sm_journal_job_get(f->j, id, &row), -2);
	assert_contains(sm_error_message(), "(unknown state 'running??[2J')");

	tamper(f, "UPDATE job SET state = 'failed', bandwidth_mib = -1");
	assert_int_equal(sm_journal_job_get(f->j, id, &row), -2);
	assert_contains(sm_error_message(), "(bandwidth_mib is out of range (-1))");
	tamper(f, "UPDATE job SET bandwidth_mib = 0, updated_at = 'later'");
	assert_int_equal(sm_journal_job_get(f->j, id, &row), -2);
	assert_contains(sm_error_message(), "(updated_at is not a number)");
	tamper(f, "UPDATE job SET updated_at = 1, keep_overlay = 2");
	assert_int_equal(sm_journal_job_get(f->j, id, &row), -2);
	assert_contains(sm_error_message(), "(keep_overlay is out of range (2))");
	tamper(f, "UPDATE job SET keep_overlay = 0, sync_writes = 'sometimes'");
	assert_int_equal(sm_journal_job_get(f->j, id, &row), -2);
	assert_contains(sm_error_message(), "(unknown sync_writes 'sometimes')");
	tamper(f, "UPDATE job SET sync_writes = 'auto', dest_dir = ''");
	assert_int_equal(sm_journal_job_get(f->j, id, &row), -2);
	assert_contains(sm_error_message(), "(dest_dir is empty)");
	tamper(f, "UPDATE job SET dest_dir = '/mnt/fast', finished_at = 1e308 * 10");
	assert_int_equal(sm_journal_job_get(f->j, id, &row), -2);
	assert_contains(sm_error_message(), "(finished_at is out of range (inf))");
	tamper(f, "UPDATE job SET finished_at = NULL, asked_copy_method = 'teleport'");
	assert_int_equal(sm_journal_job_get(f->j, id, &row), -2);
	assert_contains(sm_error_message(), "(unknown copy method 'teleport')");
	tamper(f, "UPDATE job SET asked_copy_method = 'direct', parallel = 65");
	assert_int_equal(sm_journal_job_get(f->j, id, &row), -2);
	assert_contains(sm_error_message(), "(parallel is out of range (65))");
	tamper(f, "UPDATE job SET parallel = 3");
	assert_int_equal(sm_journal_job_get(f->j, id, &row), 1);
	assert_string_equal(row.copy_method, "direct");
	assert_int_equal(row.parallel, 3);
	sm_job_row_release(&row);

	tamper(f, "UPDATE disk SET state = 'lost'");
	disks = NULL;
	assert_int_equal(sm_journal_disk_list(f->j, id, &disks, &n), -1);
	assert_null(disks);
	assert_int_equal(n, 0);
	assert_contains(sm_error_message(), "(disk: unknown disk state 'lost')");
	assert_int_equal(sm_journal_job_check(f->j, id), -2);
	tamper(f, "UPDATE disk SET state = 'mirroring', pivoting = 'yes'");
	assert_int_equal(sm_journal_disk_list(f->j, id, &disks, &n), -1);
	assert_contains(sm_error_message(), "(disk: pivoting is not a whole number)");
	tamper(f, "UPDATE disk SET pivoting = 0; UPDATE image SET allocated = -5 WHERE depth = 1");
	assert_int_equal(sm_journal_disk_list(f->j, id, &disks, &n), -1);
	assert_contains(sm_error_message(), "(image: allocated is out of range (-5))");
	tamper(f, "UPDATE image SET allocated = 5, depth = 3 WHERE depth = 1");
	assert_int_equal(sm_journal_disk_list(f->j, id, &disks, &n), -1);
	assert_contains(sm_error_message(), "the depths of the images of disk 'vda' are not 0 to 1");
	tamper(f, "UPDATE image SET depth = 1 WHERE depth = 3");
	assert_int_equal(sm_journal_disk_list(f->j, id, &disks, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(disks[0].plan.nimages, 2);
	sm_disk_rows_free(disks, n);

	tamper(f, "UPDATE image SET state = 'half' WHERE depth = 1");
	assert_int_equal(sm_journal_image_progress(f->j, id, "vda", 1, &ist, &done), -1);
	assert_contains(sm_error_message(), "(image: unknown image state 'half')");
	tamper(f, "UPDATE image SET state = 'copying' WHERE depth = 1; "
	       "UPDATE chunk SET data_bytes = 8192");
	assert_int_equal(sm_journal_image_progress(f->j, id, "vda", 1, &ist, &done), 0);
	assert_int_equal(ist, SM_IMAGE_COPYING);
	chunks = NULL;
	assert_int_equal(sm_journal_chunk_list(f->j, id, "vda", 1, &chunks, &n), -1);
	assert_null(chunks);
	assert_contains(sm_error_message(), "(chunk: data_bytes is out of range (8192))");
	tamper(f, "UPDATE chunk SET data_bytes = 0, checksum = '0123456789ABCDEF'");
	assert_int_equal(sm_journal_chunk_list(f->j, id, "vda", 1, &chunks, &n), -1);
	assert_contains(sm_error_message(), "checksum '0123456789ABCDEF' is not 16 hex digits");
	tamper(f, "UPDATE chunk SET checksum = '0123456789abcdef'");
	assert_int_equal(sm_journal_chunk_list(f->j, id, "vda", 1, &chunks, &n), 0);
	assert_int_equal(n, 1);
	free(chunks);

	tamper(f, "UPDATE step SET started_at = x'01'");
	steps = NULL;
	assert_int_equal(sm_journal_step_list(f->j, id, &steps, &n), -1);
	assert_null(steps);
	assert_contains(sm_error_message(), "(step: started_at is not a number)");
	assert_int_equal(sm_journal_job_check(f->j, id), -2);
	tamper(f, "UPDATE step SET started_at = 1; DELETE FROM image");
	assert_int_equal(sm_journal_disk_list(f->j, id, &disks, &n), -1);
	assert_contains(sm_error_message(), "(disk 'vda' has no image rows)");
	assert_int_equal(sm_journal_job_check(f->j, id), -2);

	/* A database error is not a malformed row. */
	assert_int_equal(sm_journal_job_check(f->j, 99), -1);
	assert_contains(sm_error_message(), "no job 99");
}

/* --dest-zeroed comes back with the job, and a device's disk sequence
 * number with its image (schema 016), for a resumed copy. */
static void test_dest_zeroed_and_diskseq(void **state)
{
	struct fixture *f = *state;
	struct sm_job_row row = job_row("vm", "uuid-zeroed"), got;
	struct sm_disk_row *disks = NULL;
	struct test_plan p;
	long long id = 0, plain;
	size_t n = 0;

	open_journal(f);
	plain = insert_job(f->j, "uuid-plain", (const char *const[]){ "vda" }, 1);
	row.dest_zeroed = true;
	assert_int_equal(sm_journal_begin(f->j), 0);
	assert_int_equal(sm_journal_job_insert(f->j, &row, &id), 0);
	make_plan(&p, "vdb", id);
	assert_int_equal(sm_journal_disk_insert(f->j, id, &p.disk), 0);
	assert_int_equal(sm_journal_commit(f->j), 0);
	assert_int_equal(sm_journal_job_get(f->j, id, &got), 1);
	assert_true(got.dest_zeroed);
	sm_job_row_release(&got);
	assert_int_equal(sm_journal_job_get(f->j, plain, &got), 1);
	assert_false(got.dest_zeroed);
	sm_job_row_release(&got);

	assert_int_equal(sm_journal_disk_list(f->j, id, &disks, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(disks[0].plan.images[0].dst_diskseq, 0);
	sm_disk_rows_free(disks, n);
	assert_int_equal(sm_journal_image_set_diskseq(f->j, id, "vdb", 0, 2854), 0);
	assert_int_equal(sm_journal_disk_list(f->j, id, &disks, &n), 0);
	assert_int_equal(disks[0].plan.images[0].dst_diskseq, 2854);
	assert_int_equal(disks[0].plan.images[1].dst_diskseq, 0);
	sm_disk_rows_free(disks, n);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_open_creates_schema),
		T(test_open_concurrent_creation),
		T(test_open_newer_schema_refused),
		T(test_open_not_a_database),
		T(test_open_parent_not_creatable),
		T(test_job_insert_and_get),
		T(test_phases_steps_and_finish),
		T(test_phase_restarted),
		T(test_job_finish_done),
		T(test_job_list_unfinished_first),
		T(test_unfinished_job_for_disk),
		T(test_rollback_leaves_no_job),
		T(test_inner_rollback_fails_outer),
		T(test_names_stored_in_journal),
		T(test_chunks_done_batch),
		T(test_open_tightens_files),
		T(test_open_refuses_links_and_strangers),
		T(test_open_readonly),
		T(test_dest_zeroed_and_diskseq),
		T(test_lock_file_checked),
		T(test_malformed_rows),
		cmocka_unit_test(test_phase_names),
		cmocka_unit_test(test_job_state_names),
		cmocka_unit_test(test_disk_and_image_state_names),
		cmocka_unit_test(test_enum_tables),
		T(test_file_rows_typed),
		T(test_job_rows_typed),
		cmocka_unit_test(test_default_path),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
