/* extents.c: where a file's data is (SEEK_DATA/SEEK_HOLE), widened to the
 * 4 KiB blocks the checksum reads; the copier reads and writes only these
 * ranges, so holes stay holes.  A block device has no SEEK_DATA (EINVAL):
 * all of it is one range, read whole.  It neither reads nor writes data.
 */
#include "copy/copier.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Data extents of fd in [from, to), widened to whole 4 KiB blocks (so the
 * checksum sees whole blocks) and clipped to the file.  Returns -1 on error. */
int sm_copy_collect_ranges(struct range_list *l, int fd, off_t from, off_t to)
{
	off_t pos = from;

	l->n = 0;
	while (pos < to) {
		off_t s = lseek(fd, pos, SEEK_DATA), e;
		struct stat sb;

		if (s < 0) {
			if (errno == ENXIO)
				break;
			/* A block device has no SEEK_DATA (EINVAL): all data. */
			if (errno != EINVAL || fstat(fd, &sb) < 0 || !S_ISBLK(sb.st_mode))
				return -1;
			s = pos;
			e = to;
		} else {
			if (s >= to)
				break;
			e = lseek(fd, s, SEEK_HOLE);
			if (e < 0)
				return -1;
			s -= s % SM_BLOCK;
			if (s < pos)
				s = pos;
			if (e % SM_BLOCK)
				e += SM_BLOCK - e % SM_BLOCK;
			if (e > to)
				e = to;
		}
		if (l->n == l->cap) {
			l->cap = l->cap ? l->cap * 2 : 16;
			l->v = sm_xrealloc(l->v, l->cap * sizeof(*l->v));
		}
		l->v[l->n++] = (struct range){ s, e };
		pos = e;
	}
	return 0;
}

unsigned long long sm_copy_ranges_bytes(const struct range_list *l)
{
	unsigned long long n = 0;

	for (size_t i = 0; i < l->n; i++)
		n += (unsigned long long)(l->v[i].end - l->v[i].start);
	return n;
}

int sm_copy_data_bytes_range(const char *path, unsigned long long offset,
			     unsigned long long length, unsigned long long *out)
{
	struct range_list l = { 0 };
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	off_t end, size;
	bool device;
	int rc;

	*out = 0;
	if (fd < 0) {
		sm_error("cannot read '%s': %s", path, strerror(errno));
		return -1;
	}
	if (sm_copy_size(fd, path, true, &size, &device) < 0) {
		close(fd);
		return -1;
	}
	end = length == 0 || (off_t)(offset + length) > size ? size : (off_t)(offset + length);
	rc = sm_copy_collect_ranges(&l, fd, (off_t)offset, end);
	if (rc == 0)
		*out = sm_copy_ranges_bytes(&l);
	else
		sm_error("cannot walk the extents of '%s': %s", path, strerror(errno));
	free(l.v);
	close(fd);
	return rc;
}

int sm_copy_data_bytes(const char *path, unsigned long long *out)
{
	return sm_copy_data_bytes_range(path, 0, 0, out);
}
