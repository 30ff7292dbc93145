/* journal/devices.c: the rows of the block devices provisioners make and of
 * each provisioner run (tables provisioned_device, provision_run, schema
 * 013), written and read back checked.  Running a provisioner and checking
 * its device are provision.c's.
 */
#include "journal.h"
#include "util.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

SM_ENUM_IMPL(device_state, enum sm_device_state, SM_DEVICE_STATE_LAST,
	     "creating", "created", "removing", "removed", "failed")

SM_ENUM_IMPL(provision_op, enum sm_provision_op, SM_PROVISION_OP_LAST,
	     "create", "extend", "remove")

/* What to do about a malformed device row. */
#define MALFORMED_ADVICE "restore it; the device, if it exists, is left as it is"

/* Sizes: never negative, far from overflowing when added. */
#define ROW_BYTES_MAX (1LL << 62)

/* The start of a program's output, as hook_run keeps its stderr. */
#define RUN_TEXT_MAX 512

bool sm_journal_device_name_ok(const char *name)
{
	size_t n = name ? strlen(name) : 0;

	if (n == 0 || n > 64 || !((name[0] >= 'A' && name[0] <= 'Z') ||
				  (name[0] >= 'a' && name[0] <= 'z') ||
				  (name[0] >= '0' && name[0] <= '9')))
		return false;
	return strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") == n;
}

bool sm_journal_device_setting_ok(const char *line)
{
	static const char *const reserved[] = { "SNAPMOVE_JOB=", "SNAPMOVE_DEVICE=",
						"SNAPMOVE_DEVICE_NAME=", "SNAPMOVE_EVENTS_FILE=" };
	size_t n;

	if (!line || strncmp(line, "SNAPMOVE_", 9) != 0)
		return false;
	n = strspn(line + 9, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_");
	if (n == 0 || line[9 + n] != '=')
		return false;
	for (size_t i = 0; i < SM_ARRAY_LEN(reserved); i++)
		if (strncmp(line, reserved[i], strlen(reserved[i])) == 0)
			return false;
	for (const char *p = line + 9 + n + 1; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return false;
	return true;
}

int sm_journal_device_insert(struct sm_journal *j, const struct sm_device_row *d, long long *id)
{
	const char *state = sm_device_state_name(SM_DEVICE_CREATING);
	const char *settings = d->settings ? d->settings : "";
	double now = sm_now();
	int rc;

	/* An admin's device has no job: job_id stays NULL. */
	if (d->job > 0)
		rc = SM_JOURNAL_TX(j, sm_journal_sql(
			j, "INSERT INTO provisioned_device (job_id, provisioner, settings, name, "
			"bytes, state, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?)", "isssisdd",
			d->job, d->provisioner, settings, d->name, (long long)d->bytes, state, now,
			now));
	else
		rc = SM_JOURNAL_TX(j, sm_journal_sql(
			j, "INSERT INTO provisioned_device (provisioner, settings, name, bytes, "
			"state, created_at, updated_at) VALUES (?,?,?,?,?,?,?)", "sssisdd",
			d->provisioner, settings, d->name, (long long)d->bytes, state, now, now));
	if (rc < 0)
		return -1;
	*id = sm_journal_last_id(j);
	return 0;
}

int sm_journal_device_update(struct sm_journal *j, long long id, enum sm_device_state state,
			     const char *path, unsigned long long rdev, unsigned long long bytes,
			     unsigned long long size, const char *error)
{
	return SM_JOURNAL_TX(j, sm_journal_sql(
		j, "UPDATE provisioned_device SET state = ?, path = coalesce(?, path), "
		"rdev = CASE WHEN ? = 0 THEN rdev ELSE ? END, "
		"bytes = CASE WHEN ? = 0 THEN bytes ELSE ? END, "
		"size = CASE WHEN ? = 0 THEN size ELSE ? END, error = ?, updated_at = ? "
		"WHERE id = ?", "ssiiiiiisdi", sm_device_state_name(state), path,
		(long long)rdev, (long long)rdev, (long long)bytes, (long long)bytes,
		(long long)size, (long long)size, error, sm_now(), id));
}

int sm_journal_device_retry(struct sm_journal *j, long long id, const char *settings,
			    unsigned long long bytes)
{
	return SM_JOURNAL_TX(j, sm_journal_sql(
		j, "UPDATE provisioned_device SET state = ?, settings = ?, bytes = ?, error = NULL, "
		"updated_at = ? WHERE id = ?", "ssidi", sm_device_state_name(SM_DEVICE_CREATING),
		settings ? settings : "", (long long)bytes, sm_now(), id));
}

void sm_device_row_release(struct sm_device_row *r)
{
	if (!r)
		return;
	free(r->provisioner);
	free(r->settings);
	free(r->name);
	free(r->path);
	free(r->error);
	memset(r, 0, sizeof(*r));
}

void sm_device_rows_free(struct sm_device_row *rows, size_t n)
{
	for (size_t i = 0; rows && i < n; i++)
		sm_device_row_release(&rows[i]);
	free(rows);
}

bool sm_journal_device_settings_ok(const char *settings)
{
	SM_AUTOFREE char *copy = sm_xstrdup(settings);
	char *save = NULL;

	if (settings[0] == '\n' || strstr(settings, "\n\n"))
		return false;
	for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		if (!sm_journal_device_setting_ok(line))
			return false;
	return true;
}

int sm_journal_device_get(struct sm_journal *j, long long id, struct sm_device_row *out)
{
	struct sm_journal_cursor *c = sm_journal_cursor_open(
		j, "provisioned device", id, "SELECT job_id, provisioner, settings, name, path, rdev, "
		"bytes, size, state, error FROM provisioned_device WHERE id = ?", "i", id);
	bool found = false;
	int rc;

	memset(out, 0, sizeof(*out));
	if (!c)
		return -1;
	if (sm_journal_cursor_next(c) == 1) {
		found = true;
		out->id = id;
		out->job = sm_journal_cursor_null(c, 0) ? 0 : sm_journal_cursor_int(c, 0, 1, INT64_MAX);
		out->provisioner = sm_journal_cursor_text(c, 1, false);
		if (out->provisioner && out->provisioner[0] != '/')
			sm_journal_cursor_bad(c, "provisioner is not an absolute path");
		out->settings = sm_journal_cursor_text(c, 2, true);
		if (!out->settings && sm_journal_cursor_null(c, 2))
			sm_journal_cursor_bad(c, "settings is NULL");
		else if (out->settings && !sm_journal_device_settings_ok(out->settings))
			sm_journal_cursor_bad(c, "settings holds a line snapmove does not write");
		out->name = sm_journal_cursor_text(c, 3, false);
		if (out->name && !sm_journal_device_name_ok(out->name))
			sm_journal_cursor_bad(c, "name is not a device name");
		out->state = (enum sm_device_state)sm_journal_cursor_enum(c, 8, "state",
									  sm_device_state_from_name);
		out->bytes = (unsigned long long)sm_journal_cursor_int(c, 6, 1, ROW_BYTES_MAX);
		out->size = sm_journal_cursor_null(c, 7) ? 0
			    : (unsigned long long)sm_journal_cursor_int(c, 7, 0, ROW_BYTES_MAX);
		/* A path and its device number once created, both or neither. */
		if (sm_journal_cursor_null(c, 4) != sm_journal_cursor_null(c, 5)) {
			sm_journal_cursor_bad(c, "path and rdev are not both set");
		} else if (!sm_journal_cursor_null(c, 4)) {
			out->path = sm_journal_cursor_text(c, 4, false);
			if (out->path && strncmp(out->path, "/dev/", 5) != 0)
				sm_journal_cursor_bad(c, "path is not under /dev");
			out->rdev = (unsigned long long)sm_journal_cursor_int(c, 5, 1, INT64_MAX);
		} else if (out->state == SM_DEVICE_CREATED || out->state == SM_DEVICE_REMOVING ||
			   out->state == SM_DEVICE_REMOVED) {
			sm_journal_cursor_bad(c, "a device %s without a path",
					      sm_device_state_name(out->state));
		}
		out->error = sm_journal_cursor_text(c, 9, true);
	}
	rc = sm_journal_cursor_close(c, MALFORMED_ADVICE);
	if (rc < 0 || !found)
		sm_device_row_release(out);
	return rc < 0 ? rc : found ? 1 : 0;
}

/* The first column of the first row of sql as a positive id, 0 when none. */
static int first_id(struct sm_journal *j, const char *sql, const char *a, const char *b,
		    long long *id)
{
	struct sm_journal_rows rows;
	unsigned long long n = 0;

	*id = 0;
	if (b ? sm_journal_query(j, sql, "ss", &rows, a, b) < 0
	      : sm_journal_query(j, sql, "s", &rows, a) < 0)
		return -1;
	/* An INTEGER PRIMARY KEY: always a whole number. */
	if (rows.nrows >= 1 && sm_parse_ull(rows.cells[0], &n) == 0 && n <= INT64_MAX)
		*id = (long long)n;
	sm_journal_rows_release(&rows);
	return 0;
}

int sm_journal_device_find(struct sm_journal *j, const char *provisioner, const char *name,
			   long long *id)
{
	if (provisioner)
		return first_id(j, "SELECT id FROM provisioned_device WHERE provisioner = ? AND "
				"name = ? AND state IS NOT 'removed' ORDER BY id DESC LIMIT 1",
				provisioner, name, id);
	return first_id(j, "SELECT id FROM provisioned_device WHERE path = ? AND state IN "
			"('created', 'removing') ORDER BY id DESC LIMIT 1", name, NULL, id);
}

static int list_rows(struct sm_journal *j, long long job, struct sm_device_row **out, size_t *n)
{
	struct sm_journal_rows rows;
	int rc = 0;

	*out = NULL;
	*n = 0;
	if (job > 0 ? sm_journal_query(j, "SELECT id FROM provisioned_device WHERE job_id = ? "
				       "ORDER BY id", "i", &rows, job) < 0
		    : sm_journal_query(j, "SELECT id FROM provisioned_device ORDER BY id DESC", "",
				       &rows) < 0)
		return -1;
	for (size_t i = 0; i < rows.nrows && rc == 0; i++) {
		unsigned long long id = 0;

		if (sm_parse_ull(rows.cells[i], &id) < 0 || id > INT64_MAX)
			continue;
		*out = sm_xrealloc(*out, (*n + 1) * sizeof(**out));
		rc = sm_journal_device_get(j, (long long)id, &(*out)[*n]);
		if (rc == 1) {
			(*n)++;
			rc = 0;
		}
	}
	sm_journal_rows_release(&rows);
	if (rc < 0) {
		sm_device_rows_free(*out, *n);
		*out = NULL;
		*n = 0;
	}
	return rc;
}

int sm_journal_device_list(struct sm_journal *j, struct sm_device_row **out, size_t *n)
{
	return list_rows(j, 0, out, n);
}

int sm_journal_device_list_job(struct sm_journal *j, long long job, struct sm_device_row **out,
			       size_t *n)
{
	return list_rows(j, job, out, n);
}

static int drop_planned_file(struct sm_journal *j, long long job, const char *path)
{
	return sm_journal_sql(j, "DELETE FROM file WHERE job_id = ? AND path = ? AND role = "
			      "'dst_image'", "is", job, path);
}

static int assign(struct sm_journal *j, long long job, const char *target, const char *old_dst,
		  const char *path, unsigned long long rdev)
{
	if (sm_journal_sql(j, "UPDATE image SET dst_path = ?, dst_rdev = ? WHERE job_id = ? AND "
			   "target = ? AND depth = 0", "siis", path, (long long)rdev, job,
			   target) < 0)
		return -1;
	return drop_planned_file(j, job, old_dst);
}

int sm_journal_device_insert_for_image(struct sm_journal *j, const struct sm_device_row *d,
				       const char *old_dst, long long *id)
{
	if (sm_journal_begin(j) < 0)
		return -1;
	if (sm_journal_device_insert(j, d, id) < 0 || drop_planned_file(j, d->job, old_dst) < 0) {
		sm_journal_rollback(j);
		return -1;
	}
	return sm_journal_commit(j);
}

int sm_journal_device_assign(struct sm_journal *j, long long job, const char *target,
			     const char *old_dst, const char *path, unsigned long long rdev)
{
	return SM_JOURNAL_TX(j, assign(j, job, target, old_dst, path, rdev));
}

/* The count sql (with one integer parameter) returns. */
static int count(struct sm_journal *j, const char *sql, long long arg, unsigned long long *n)
{
	struct sm_journal_rows rows;

	*n = 0;
	if (sm_journal_query(j, sql, "i", &rows, arg) < 0)
		return -1;
	if (rows.nrows >= 1 && rows.cells[0])
		sm_ignore_value(sm_parse_ull(rows.cells[0], n));  /* count(*): a number */
	sm_journal_rows_release(&rows);
	return 0;
}

int sm_journal_device_unassigned(struct sm_journal *j, long long job, unsigned long long *n)
{
	/* Its overlay devices (ovdev.c names them snapmove-JOB-TARGET-src and
	 * -dst; libvirt's targets are vda, sdb, ...) are on no image row. */
	return count(j, "SELECT count(*) FROM provisioned_device d WHERE d.job_id = ?1 AND "
		     "d.name NOT GLOB 'snapmove-*-src' AND d.name NOT GLOB 'snapmove-*-dst' AND "
		     "d.state IN ('creating', 'created', 'removing') AND NOT EXISTS (SELECT 1 "
		     "FROM image i WHERE i.job_id = ?1 AND d.rdev IS NOT NULL AND "
		     "i.dst_rdev = d.rdev)", job, n);
}

int sm_journal_device_assigned(struct sm_journal *j, long long id, bool *assigned)
{
	unsigned long long n;

	if (count(j, "SELECT count(*) FROM provisioned_device d, image i WHERE d.id = ? AND "
		  "i.job_id = d.job_id AND d.rdev IS NOT NULL AND i.dst_rdev = d.rdev", id, &n) < 0)
		return -1;
	*assigned = n > 0;
	return 0;
}

int sm_journal_provision_run(struct sm_journal *j, long long device_id, enum sm_provision_op op,
			     const char *provisioner, const char *arg, unsigned long long bytes,
			     int exit_status, bool timed_out, double started, double seconds,
			     const char *out, const char *err)
{
	char o[RUN_TEXT_MAX + 1], e[RUN_TEXT_MAX + 1];

	snprintf(o, sizeof(o), "%s", out ? out : "");
	snprintf(e, sizeof(e), "%s", err ? err : "");
	return SM_JOURNAL_TX(j, sm_journal_sql(
		j, "INSERT INTO provision_run (device_id, op, provisioner, argument, bytes, "
		"exit_status, timed_out, started_at, seconds, stdout, stderr) VALUES "
		"(?,?,?,?,CASE WHEN ? = 0 THEN NULL ELSE ? END,?,?,?,?,?,?)", "isssiiiiddss",
		device_id, sm_provision_op_name(op), provisioner, arg, (long long)bytes,
		(long long)bytes, (long long)exit_status, (long long)timed_out,
		started, seconds, o, e));
}
