/* copy.h: the out-of-band copier: one image file to another, byte-exact and
 * sparse, outside QEMU.
 *
 * It walks the data extents of the source (SEEK_DATA / SEEK_HOLE), writes only
 * those, leaves holes as holes, and fdatasyncs before it returns success.  It
 * does not know about formats: a qcow2 file is copied as bytes.
 */
#ifndef SM_COPY_H
#define SM_COPY_H

#include <stdbool.h>

/* Called at most every 100 ms and once at the end; return false to cancel. */
typedef bool (*sm_copy_progress_fn)(void *ctx, unsigned long long done,
				    unsigned long long total);

struct sm_copy_stats {
	unsigned long long size;         /* file size */
	unsigned long long data_bytes;   /* bytes in data extents (copied) */
	double seconds;
};

/* The bytes in data extents of path, what a copy reads and writes. */
int sm_copy_data_bytes(const char *path, unsigned long long *out);
/* Copy src over dst, which must exist and is not followed when a symlink. */
int sm_copy_file(const char *src, const char *dst, sm_copy_progress_fn progress, void *ctx,
		 struct sm_copy_stats *stats);

#endif
