/* cmd_copy.c: 'snapmove copy SRC DST': the out-of-band copier on its own, as
 * move runs it (sparse, chunked, verified), for offline copies and for the
 * benchmarks.  SRC must be a regular file; DST is created (it must not
 * exist) with SRC's owner and mode, and removed when the copy fails or is
 * interrupted (SIGINT, SIGTERM: exit 5).  No journal is kept.
 */
#include "cli/cli.h"
#include "events.h"
#include "copy/copy.h"
#include "job/job_run.h"
#include "progress.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct copy_cli {
	struct sm_progress pr;
	const char *label;
};

static bool on_progress(void *ctx, const struct sm_copy_progress *p)
{
	struct copy_cli *c = ctx;

	sm_progress_update(&c->pr, c->label, p->done, p->total);
	return !sm_interrupted;
}

/* Open SRC and make sure it is a regular file.  A symlink given on the
 * command line is followed, as cp does: the command line is trusted, and
 * what is checked is the open file, so a name swapped after the check
 * changes nothing.  O_NONBLOCK: opening a FIFO must not wait for a writer. */
static int open_source(const char *path, int *fd, struct stat *sb)
{
	*fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (*fd < 0) {
		sm_error("cannot read '%s': %s", path, strerror(errno));
		return -1;
	}
	if (fstat(*fd, sb) < 0) {
		sm_error("cannot read '%s': %s", path, strerror(errno));
		close(*fd);
		return -1;
	}
	if (!S_ISREG(sb->st_mode)) {
		sm_error("'%s' is %s, not a regular file; snapmove copy copies image files only",
			 path, S_ISDIR(sb->st_mode) ? "a directory"
			       : S_ISCHR(sb->st_mode) || S_ISBLK(sb->st_mode) ? "a device"
			       : S_ISFIFO(sb->st_mode) ? "a FIFO" : "a special file");
		close(*fd);
		return -1;
	}
	return 0;
}

/* Create DST exclusively (never through a symlink, never over a file),
 * 0600 first, then with SRC's owner (when root) and permission bits; the
 * setuid, setgid and sticky bits are not copied.  The copy writes through
 * the fd only.  *dir: DST's folder, to remove DST by. */
static int create_dest(const char *path, const struct stat *src, int *dir, int *fd,
		       struct stat *sb)
{
	SM_AUTOFREE char *parent = sm_path_dirname(path);

	*dir = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (*dir < 0) {
		sm_error("cannot create '%s': %s", path, strerror(errno));
		return -1;
	}
	*fd = openat(*dir, sm_path_basename(path),
		     O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (*fd < 0) {
		sm_error(errno == EEXIST ? "'%s' already exists; copy never overwrites, remove "
					   "it or choose another DST"
					 : "cannot create '%s': %s", path, strerror(errno));
		close(*dir);
		return -1;
	}
	if ((geteuid() == 0 && fchown(*fd, src->st_uid, src->st_gid) < 0) ||
	    fchmod(*fd, src->st_mode & 0777) < 0 || fstat(*fd, sb) < 0) {
		sm_error("cannot give '%s' the owner and mode of the source: %s", path,
			 strerror(errno));
		unlinkat(*dir, sm_path_basename(path), 0);  /* ours, just made */
		close(*fd);
		close(*dir);
		return -1;
	}
	return 0;
}

/* Remove the DST this command created: only if its name still leads to the
 * file it created (another user may have put something else there). */
static int remove_dest(int dir, const char *path, const struct stat *made)
{
	struct stat now;

	if (fstatat(dir, sm_path_basename(path), &now, AT_SYMLINK_NOFOLLOW) < 0 ||
	    now.st_dev != made->st_dev || now.st_ino != made->st_ino)
		return -1;
	return unlinkat(dir, sm_path_basename(path), 0);
}

static void copy_usage(FILE *f)
{
	fprintf(f, "usage: snapmove copy SRC DST [--bandwidth MIB] [--no-verify]\n"
		   "                     [--copy-method METHOD] [--chunk-size MIB]\n\n"
		   "Copy one image file as 'move' copies base images: data extents only (holes\n"
		   "stay holes), in chunks that are each fdatasync'ed and verified.  SRC must be\n"
		   "a regular file; DST must not exist, and gets SRC's owner and mode.  Prints\n"
		   "the path used (reflink, direct, copy_file_range, readwrite), bytes and time.\n"
		   "No journal: a failed or interrupted copy removes DST; start it again.\n");
}

int sm_cmd_copy(const struct sm_cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "bandwidth", required_argument, NULL, 'b' },
		{ "no-verify", no_argument, NULL, 'V' },
		{ "copy-method", required_argument, NULL, 'm' },
		{ "chunk-size", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct sm_copy_req req = { .verify = true, .method = SM_COPY_AUTO };
	struct sm_copy_ops ops = { .progress = on_progress };
	struct sm_copy_result res;
	struct copy_cli c = { .label = "copy" };
	unsigned long long v;
	struct stat sb, dsb;
	char b[32], r[32];
	int opt, method, in, out, dir, rc;

	(void)cli;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'b':
			if (sm_parse_ull(optarg, &v) < 0 || v > (1ULL << 30))
				return sm_cli_usage_error("copy", "--bandwidth takes a whole number "
							  "of MiB/s, not '%s'", optarg);
			req.bandwidth = v << 20;
			break;
		case 'V':
			req.verify = false;
			break;
		case 'm':
			method = sm_copy_method_from_name(optarg);
			if (method < 0)
				return sm_cli_usage_error("copy", "--copy-method takes auto, reflink, "
							  "direct, copy_file_range or readwrite, "
							  "not '%s'",
							  optarg);
			req.method = (enum sm_copy_method)method;
			break;
		case 'c':
			if (sm_parse_ull(optarg, &v) < 0 || v == 0 || v > (1ULL << 20))
				return sm_cli_usage_error("copy", "--chunk-size takes a whole number "
							  "of MiB, not '%s'", optarg);
			req.chunk_size = v << 20;
			break;
		case 'h':
			copy_usage(stdout);
			return SM_EXIT_OK;
		default:
			return sm_cli_usage_error("copy", "bad option");
		}
	}
	if (argc - optind != 2)
		return sm_cli_usage_error("copy", "copy needs SRC and DST");
	req.src = argv[optind];
	req.dst = argv[optind + 1];
	req.retry = "run 'snapmove copy' again (a failed copy removes DST)";
	if (open_source(req.src, &in, &sb) < 0) {
		sm_cli_print_error();
		return SM_EXIT_REFUSED;
	}
	if (create_dest(req.dst, &sb, &dir, &out, &dsb) < 0) {
		close(in);
		sm_cli_print_error();
		return SM_EXIT_REFUSED;
	}
	sm_cli_catch_signals();
	sm_progress_init(&c.pr, stderr, false);
	rc = sm_copy_run_fds(&req, in, out, &ops, &c, &res);
	sm_progress_end(&c.pr);
	if (rc < 0) {
		/* The copy's error stands; a DST that is no longer ours stays. */
		remove_dest(dir, req.dst, &dsb);
		close(in);
		close(out);
		close(dir);
		sm_cli_print_error();
		return sm_interrupted ? SM_EXIT_INTERRUPTED : SM_EXIT_FAILED;
	}
	close(in);
	close(out);
	close(dir);
	fprintf(sm_human(), "copied %s to %s: %s of data in %.2f s (%s/s) by %s%s\n", req.src, req.dst,
	       sm_format_bytes(res.data_bytes, b, sizeof(b)), res.seconds,
	       sm_format_bytes(res.seconds > 0 ? (unsigned long long)((double)res.data_bytes /
								    res.seconds) : 0, r, sizeof(r)),
	       sm_copy_method_name(res.method), req.verify ? ", verified" : "");
	return SM_EXIT_OK;
}
