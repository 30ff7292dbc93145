/* cmd_copy.c: 'snapmove copy SRC DST': the out-of-band copier on its own, as
 * move runs it (sparse, chunked, verified), for offline copies and for the
 * benchmarks.  DST is created; it must not exist.  No journal is kept.
 */
#include "cli.h"
#include "events.h"
#include "copy/copy.h"
#include "progress.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct copy_cli {
	struct sm_progress pr;
	const char *label;
};

static bool on_progress(void *ctx, const struct sm_copy_progress *p)
{
	struct copy_cli *c = ctx;

	sm_progress_update(&c->pr, c->label, p->done, p->total);
	return true;
}

static void copy_usage(FILE *f)
{
	fprintf(f, "usage: snapmove copy SRC DST [--bandwidth MIB] [--no-verify]\n"
		   "                     [--copy-method METHOD] [--chunk-size MIB]\n\n"
		   "Copy one image file as 'move' copies base images: data extents only (holes\n"
		   "stay holes), in chunks that are each fdatasync'ed and verified.  DST must not\n"
		   "exist.  Prints the path used (reflink, direct, copy_file_range, readwrite),\n"
		   "bytes and time.  No journal: an interrupted copy is started again.\n");
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
	char b[32], r[32];
	int opt, fd, method;

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
	if (access(req.src, R_OK) < 0) {
		sm_error("cannot read '%s': %s", req.src, strerror(errno));
		sm_cli_print_error();
		return SM_EXIT_REFUSED;
	}
	fd = open(req.dst, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0) {
		sm_error(errno == EEXIST ? "'%s' already exists; copy never overwrites, remove "
					   "it or choose another DST"
					 : "cannot create '%s': %s", req.dst, strerror(errno));
		sm_cli_print_error();
		return SM_EXIT_REFUSED;
	}
	close(fd);
	sm_progress_init(&c.pr, stderr, false);
	if (sm_copy_run(&req, &ops, &c, &res) < 0) {
		sm_progress_end(&c.pr);
		unlink(req.dst);
		sm_cli_print_error();
		return SM_EXIT_FAILED;
	}
	sm_progress_end(&c.pr);
	fprintf(sm_human(), "copied %s to %s: %s of data in %.2f s (%s/s) by %s%s\n", req.src, req.dst,
	       sm_format_bytes(res.data_bytes, b, sizeof(b)), res.seconds,
	       sm_format_bytes(res.seconds > 0 ? (unsigned long long)((double)res.data_bytes /
								    res.seconds) : 0, r, sizeof(r)),
	       sm_copy_method_name(res.method), req.verify ? ", verified" : "");
	return SM_EXIT_OK;
}
