/* cmd_verify.c: 'snapmove verify JOB': re-read a finished job's copies from
 * the storage and compare every chunk with the checksum the copier journaled.
 *
 * Only images nothing has written since the copy can match: the backing
 * images of each moved disk, and with --keep-overlay the old active image
 * too.  The active image of a collapsed disk received the final commit and
 * the guest's writes; it is checked for consistency (qemu-img check) instead.
 */
#include "chain/image.h"
#include "cli/cli.h"
#include "events.h"
#include "copy/checksum.h"
#include "copy/copy.h"
#include "journal.h"
#include "run.h"
#include "util.h"

#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Drop the file's cached pages so the next read comes from the storage. */
static void drop_cache(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd >= 0) {
		posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
		close(fd);
	}
}

/* 0 all chunks match, 1 some differ, -1 error. */
static int verify_image(struct sm_journal *j, long long job, const char *target, size_t depth,
			const char *path, unsigned long long *bytes)
{
	struct sm_journal_chunk *chunks = NULL;
	size_t n = 0, bad = 0;

	if (sm_journal_chunk_list(j, job, target, depth, &chunks, &n) < 0)
		return -1;
	if (n == 0) {
		fprintf(sm_human(), "  %s: no chunk checksums journaled (converted with qemu-img, or not "
		       "copied); skipped\n", path);
		free(chunks);
		return 0;
	}
	drop_cache(path);
	for (size_t i = 0; i < n; i++) {
		uint64_t want, got;

		if (sm_checksum_parse(chunks[i].checksum, &want) < 0 ||
		    sm_copy_checksum_range(path, chunks[i].offset, chunks[i].length, &got) < 0) {
			free(chunks);
			return -1;
		}
		*bytes += chunks[i].data_bytes;
		if (got != want) {
			fprintf(sm_human(), "  %s: chunk %llu (offset %llu, %llu bytes) DIFFERS from the copy\n",
			       path, chunks[i].index, chunks[i].offset, chunks[i].length);
			bad++;
		}
	}
	if (!bad)
		fprintf(sm_human(), "  %s: %zu chunk%s match\n", path, n, n == 1 ? "" : "s");
	free(chunks);
	return bad ? 1 : 0;
}

static int check_active(const char *path, const char *format)
{
	if (!sm_str_eq(format, "qcow2")) {
		fprintf(sm_human(), "  %s: written since the move (%s has no metadata to check)\n", path,
		       format);
		return 0;
	}
	if (sm_image_check(path, format) < 0) {
		fprintf(sm_human(), "  %s: qemu-img check found problems: %s\n", path, sm_error_message());
		return 1;
	}
	fprintf(sm_human(), "  %s: written since the move; qemu-img check finds it consistent\n", path);
	return 0;
}

int sm_cmd_verify(const struct sm_cli *cli, int argc, char **argv)
{
	SM_AUTOFREE char *db = cli->db_path ? sm_xstrdup(cli->db_path)
					    : sm_journal_default_path();
	struct sm_journal *j = NULL;
	struct sm_disk_row *disks = NULL;
	struct sm_job_row job = { 0 };
	size_t nd = 0;
	unsigned long long bytes = 0;
	long long id;
	int bad = 0, ret = SM_EXIT_FAILED;
	char b[32];

	if (sm_cli_simple_args("verify", argc, argv, 1, 1,
			       "usage: snapmove verify JOB\n\nRe-read a finished job's copies from "
			       "the storage and compare each chunk\nwith the checksum journaled "
			       "when it was copied.  Exit 0 when all match,\n1 when any differs.\n",
			       &ret) < 0)
		return ret;
	ret = SM_EXIT_FAILED;
	if (sm_journal_open_readonly(db, &j, NULL) < 0 ||
	    sm_cli_resolve_job(j, argv[optind], &id) < 0) {
		sm_cli_print_error();
		ret = SM_EXIT_REFUSED;
		goto cleanup;
	}
	if (sm_journal_job_get(j, id, &job) < 0) {
		sm_cli_print_error();
		goto cleanup;
	}
	if (!job.state) {
		sm_error("no job %lld in the journal; see 'snapmove list'", id);
		sm_cli_print_error();
		ret = SM_EXIT_REFUSED;
		goto cleanup;
	}
	if (sm_job_row_state(&job) != SM_JOB_DONE) {
		if (sm_job_row_state(&job) == SM_JOB_ABORTED)
			sm_error("job %lld is aborted, not done; verify checks the copies of "
				 "finished jobs, and an aborted job's copies are gone", id);
		else
			sm_error("job %lld is %s, not done; verify checks the copies of finished "
				 "jobs: finish it first with 'snapmove resume %lld'", id, job.state,
				 id);
		sm_cli_print_error();
		ret = SM_EXIT_REFUSED;
		goto cleanup;
	}
	if (sm_journal_disk_list(j, id, &disks, &nd) < 0) {
		sm_cli_print_error();
		goto cleanup;
	}
	fprintf(sm_human(), "job %lld: verifying the copies of %s\n", id, job.domain_name);
	for (size_t i = 0; i < nd; i++) {
		const struct sm_plan_disk *p = &disks[i].plan;

		fprintf(sm_human(), "%s:\n", p->target);
		for (size_t k = 0; k < p->nimages; k++) {
			int rc = k > 0 || job.keep_overlay
					 ? verify_image(j, id, p->target, k, p->images[k].dst, &bytes)
					 : check_active(p->images[k].dst, p->images[k].dst_format);

			if (rc < 0) {
				sm_cli_print_error();
				goto cleanup;
			}
			bad += rc;
		}
	}
	fprintf(sm_human(), "%s: %s re-read from the storage\n", bad ? "MISMATCH" : "ok",
	       sm_format_bytes(bytes, b, sizeof(b)));
	ret = bad ? SM_EXIT_FAILED : SM_EXIT_OK;

cleanup:
	sm_disk_rows_free(disks, nd);
	sm_job_row_release(&job);
	sm_journal_free(j);
	return ret;
}
