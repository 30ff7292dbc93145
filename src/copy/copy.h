/* copy.h: the out-of-band copier: one image file onto another outside QEMU,
 * byte-exact and sparse, in chunks that are each made durable, checksummed,
 * verified and reported, so a copy can resume after a crash having lost at
 * most one chunk.  On the direct path a chunk's verification runs while the
 * next chunk is copied; the chunk is reported durable first (see
 * chunk_durable), so the resume after a crash re-reads it instead of copying
 * it again.
 *
 * Paths: a reflink clone (FICLONE) when both files share a file system that
 * supports it; otherwise an O_DIRECT read/write loop (no page cache: on this
 * kind of host the page cache, not the disk, is what a copy waits for),
 * through io_uring where the kernel allows it ("direct-uring": many reads
 * and writes in flight at once), else a reader thread keeping requests in
 * flight while the data read is checksummed and written ("direct"); a buffered read/write loop where O_DIRECT cannot be used
 * (FUSE, older tmpfs).  AUTO picks the first that works and the result says which ran.
 * copy_file_range and the buffered loop can be asked for by name.
 * Only data extents (SEEK_DATA/SEEK_HOLE) are read or written: holes stay
 * holes.  Formats are not this module's business: a qcow2 file is bytes here.
 *
 * Block devices (sm_copy_req.devices): a device has no holes to find, so a
 * device source is read whole and its all-zero blocks are not written (a
 * file destination keeps them as holes); a device destination is never
 * truncated, and where it is not known to read as zeros (zero_holes) the
 * source's holes and zero blocks are written as zeros (fallocate on the
 * device: the kernel's write-zeroes, else written zeros).
 */
#ifndef SM_COPY_H
#define SM_COPY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SM_COPY_CHUNK (64ULL << 20)
/* The most one O_DIRECT request of the direct path reads or writes. */
#ifndef SM_COPY_DIRECT_UNIT
#define SM_COPY_DIRECT_UNIT (16u << 20)
#endif
/* How many requests the direct path's reader thread reads ahead. */
#ifndef SM_COPY_DIRECT_DEPTH
#define SM_COPY_DIRECT_DEPTH 4
#endif
/* The direct path through io_uring: bytes per request, and requests in
 * flight (reads and writes together; as many again for the check). */
#ifndef SM_COPY_URING_UNIT
#define SM_COPY_URING_UNIT (4u << 20)
#endif
#ifndef SM_COPY_URING_DEPTH
#define SM_COPY_URING_DEPTH 8
#endif

enum sm_copy_method {
	SM_COPY_AUTO,
	SM_COPY_REFLINK,
	SM_COPY_FILE_RANGE,
	SM_COPY_READWRITE,
	SM_COPY_DIRECT,
	SM_COPY_DIRECT_URING,  /* the direct path through io_uring */
	SM_COPY_METHOD_LAST
};

const char *sm_copy_method_name(enum sm_copy_method m);
int sm_copy_method_from_name(const char *name);

struct sm_copy_chunk {
	unsigned long long index;
	unsigned long long offset;
	unsigned long long length;      /* bytes of file the chunk spans */
	unsigned long long data_bytes;  /* bytes in data extents */
	uint64_t checksum;              /* see checksum.h */
};

struct sm_copy_progress {
	unsigned long long done;   /* data bytes durable, resumed chunks included */
	unsigned long long total;  /* data bytes of the source */
	double rate;               /* bytes/s copied by this run */
	double eta;                /* seconds left at that rate, -1 unknown */
};

struct sm_copy_ops {
	/* At most ten times a second and once at the end; false cancels. */
	bool (*progress)(void *ctx, const struct sm_copy_progress *p);
	/* A chunk is durable and verified (or durable, without verify); journal
	 * it.  Called in index order.  -1 stops the copy. */
	int (*chunk_done)(void *ctx, const struct sm_copy_chunk *c);
	/* The direct path with verify: a chunk is durable, its check starts
	 * (it runs while the next chunk is copied); chunk_done follows when it
	 * matched.  Journal it as durable and unverified, so that a crash in
	 * between costs a check on resume, not a copy.  May be NULL. */
	int (*chunk_durable)(void *ctx, const struct sm_copy_chunk *c);
	/* Tests only: called after a chunk's data is written, before it is
	 * verified (attempt 0, then 1 for the one re-copy). */
	void (*after_write)(void *ctx, int dst_fd, const struct sm_copy_chunk *c, int attempt);
};

struct sm_copy_req {
	const char *src;
	const char *dst;               /* must exist; never followed if a symlink
					* (sm_copy_run_fds: names for messages) */
	unsigned long long chunk_size; /* 0: SM_COPY_CHUNK */
	unsigned long long bandwidth;  /* bytes/s; 0: unlimited */
	bool verify;                   /* re-read each durable chunk and compare
					* (from the storage on the direct path,
					* from the page cache on the others) */
	enum sm_copy_method method;
	const char *retry;  /* the next step after a full destination, as in
			     * "then resume the job ('snapmove resume 3')";
			     * NULL: "then run the command again" */
	unsigned long long resume_chunks;  /* chunks [0, n) are durable already */
	/* Of those, the ones journaled durable but not verified (chunk_durable
	 * without chunk_done): checked first (the destination re-read, the
	 * source not), re-copied if they differ, then reported done. */
	const struct sm_copy_chunk *unverified;
	size_t nunverified;
	bool devices;     /* src and dst may be block devices (else: regular files only) */
	bool zero_holes;  /* dst is a device that may hold old data: write zeros
			   * where the source has none; false for a device the
			   * caller says reads as zeros (--dest-zeroed) */
};

struct sm_copy_result {
	enum sm_copy_method method;      /* the path that ran */
	unsigned long long size;
	unsigned long long data_bytes;   /* of the whole source */
	unsigned long long copied_bytes; /* data bytes copied by this run */
	unsigned long long read_bytes;   /* source bytes this run read (copy and checksum) */
	unsigned long long chunks;
	unsigned long long chunks_skipped;  /* resumed over */
	unsigned long long recopied;        /* chunks copied again after a mismatch */
	unsigned long long reverified;      /* unverified chunks checked on resume */
	double seconds;
};

/* The bytes in data extents of path (of [offset, offset + length); length 0:
 * to the end), counted in whole 4 KiB blocks as the copier reads them. */
int sm_copy_data_bytes(const char *path, unsigned long long *out);
int sm_copy_data_bytes_range(const char *path, unsigned long long offset,
			     unsigned long long length, unsigned long long *out);
/* Copy req->src onto req->dst, both opened by name (dst not followed if a
 * symlink).  Both must be regular files (req->devices is not looked at). */
int sm_copy_run(const struct sm_copy_req *req, const struct sm_copy_ops *ops, void *ctx,
		struct sm_copy_result *res);
/* The same between two open files, which stay open: src_fd read, dst_fd
 * (O_RDWR) written; req->src and req->dst only name them in messages.  The
 * files are never opened again by name (the direct path reopens them through
 * /proc/self/fd), so a name another user swaps meanwhile changes nothing.
 * Both must be regular files, or with req->devices block devices too (a
 * device destination at least as big as the source). */
int sm_copy_run_fds(const struct sm_copy_req *req, int src_fd, int dst_fd,
		    const struct sm_copy_ops *ops, void *ctx, struct sm_copy_result *res);
/* Checksum the chunk of path (a file or a block device) at [offset, offset +
 * length) as the copier does.  For 'snapmove verify'. */
int sm_copy_checksum_range(const char *path, unsigned long long offset,
			   unsigned long long length, uint64_t *out);

#endif
