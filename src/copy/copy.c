/* copy.c: extent-aware sparse copy with progress, cancel and fdatasync.
 * The journal records the result; this file only moves bytes.
 */

#include "copy/copy.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SM_COPY_BUF (8u << 20)

/* Next data extent at or after *pos: [*start, *end).  Returns 0 when found, 1 at
 * the end of the file, -1 on error. */
static int next_extent(int fd, off_t pos, off_t size, off_t *start, off_t *end)
{
	off_t s = lseek(fd, pos, SEEK_DATA);

	if (s < 0)
		return errno == ENXIO ? 1 : -1;
	if (s >= size)
		return 1;
	*end = lseek(fd, s, SEEK_HOLE);
	if (*end < 0)
		return -1;
	if (*end > size)
		*end = size;
	*start = s;
	return 0;
}

int sm_copy_data_bytes(const char *path, unsigned long long *out)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat sb;
	off_t pos = 0, start, end;
	int rc;

	*out = 0;
	if (fd < 0 || fstat(fd, &sb) < 0) {
		sm_error("cannot read '%s': %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	while ((rc = next_extent(fd, pos, sb.st_size, &start, &end)) == 0) {
		*out += (unsigned long long)(end - start);
		pos = end;
	}
	close(fd);
	if (rc < 0) {
		sm_error("cannot walk the extents of '%s': %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

static int write_all(int fd, const char *buf, size_t len, off_t off)
{
	while (len > 0) {
		ssize_t n = pwrite(fd, buf, len, off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		buf += n;
		len -= (size_t)n;
		off += n;
	}
	return 0;
}

static void write_error(const char *src, const char *dst)
{
	if (errno == ENOSPC || errno == EDQUOT)
		sm_error("the destination is full while copying '%s' to '%s'; free space "
			 "there and move again", src, dst);
	else
		sm_error("cannot write '%s': %s", dst, strerror(errno));
}

int sm_copy_file(const char *src, const char *dst, sm_copy_progress_fn progress, void *ctx,
		 struct sm_copy_stats *stats)
{
	int in = -1, out = -1, ret = -1, rc;
	char *buf = NULL;
	struct stat sb;
	off_t pos = 0, start, end;
	unsigned long long done = 0, total = 0;
	double t0 = sm_monotonic(), last = 0;

	memset(stats, 0, sizeof(*stats));
	if (sm_copy_data_bytes(src, &total) < 0)
		return -1;
	in = open(src, O_RDONLY | O_CLOEXEC);
	if (in < 0 || fstat(in, &sb) < 0) {
		sm_error("cannot read '%s': %s", src, strerror(errno));
		goto cleanup;
	}
	out = open(dst, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
	if (out < 0) {
		sm_error("cannot open '%s' for writing: %s", dst, strerror(errno));
		goto cleanup;
	}
	/* Drop whatever the empty image held, then size it: all holes. */
	if (ftruncate(out, 0) < 0 || ftruncate(out, sb.st_size) < 0) {
		write_error(src, dst);
		goto cleanup;
	}
	posix_fadvise(in, 0, 0, POSIX_FADV_SEQUENTIAL);
	buf = sm_xmalloc(SM_COPY_BUF);
	while ((rc = next_extent(in, pos, sb.st_size, &start, &end)) == 0) {
		for (off_t off = start; off < end;) {
			size_t want = (size_t)(end - off) < SM_COPY_BUF ? (size_t)(end - off)
									: SM_COPY_BUF;
			ssize_t n = pread(in, buf, want, off);
			double now;

			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				sm_error("cannot read '%s': %s", src,
					 n < 0 ? strerror(errno) : "file shrank while copying");
				goto cleanup;
			}
			if (write_all(out, buf, (size_t)n, off) < 0) {
				write_error(src, dst);
				goto cleanup;
			}
			off += n;
			done += (unsigned long long)n;
			now = sm_monotonic();
			if (progress && now - last >= 0.1) {
				last = now;
				if (!progress(ctx, done, total)) {
					sm_error("copy of '%s' interrupted", src);
					goto cleanup;
				}
			}
		}
		pos = end;
	}
	if (rc < 0) {
		sm_error("cannot walk the extents of '%s': %s", src, strerror(errno));
		goto cleanup;
	}
	if (fdatasync(out) < 0) {
		write_error(src, dst);
		goto cleanup;
	}
	if (progress)
		progress(ctx, done, total);
	stats->size = (unsigned long long)sb.st_size;
	stats->data_bytes = done;
	stats->seconds = sm_monotonic() - t0;
	ret = 0;

cleanup:
	free(buf);
	if (in >= 0)
		close(in);
	if (out >= 0)
		close(out);
	return ret;
}
