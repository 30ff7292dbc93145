/* copier.h: the copier's insides, shared by its files (not for callers:
 * copy.h is the interface).  One struct copier per copy; the files, each
 * calling only the ones before it, are extents.c (where the data is), io.c
 * (whole reads and writes, counting, punch, sync), buffered.c (the
 * page-cache read/write loops and copy_file_range), direct.c (the O_DIRECT
 * reader thread and writes), uring.c (the same through io_uring), chunk.c (one chunk's data by the current
 * path), verify.c (re-reading durable chunks, and the one re-copy), and
 * run.c (the chunk loop and the entry points).
 */
#ifndef SM_COPIER_H
#define SM_COPIER_H

#include "copy/checksum.h"
#include "copy/copy.h"
#include "copy/ratelimit.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* 256 KiB per read/write: measured 25-40% faster than 8 MiB on this VM
 * (bench/README.md), the data staying in the CPU caches between read,
 * checksum and write. */
#define SM_COPY_BUF (256u << 10)
#define SM_BLOCK ((off_t)SM_CHECKSUM_BLOCK)
/* The direct path: bytes per request and requests read ahead.  16 MiB x 4
 * copied 1 GiB verified about 10% faster than 8 MiB x 4 here (8 of 10 paired
 * rounds; 16 x 8, 32 x 4, 32 x 2, 16 x 2 and 4 x 8 were slower), at 128 MiB
 * per copy with its check (4 requests for the copy, 4 for the check). */
#define SM_DIRECT_UNIT SM_COPY_DIRECT_UNIT
#define SM_DIRECT_DEPTH SM_COPY_DIRECT_DEPTH
/* Through io_uring (copy.h): 4 MiB x 8.  Measured here (2026-12-02, 1 GiB,
 * a loaded machine): 4x8, 8x8, 16x4, 16x8, 2x16, 4x16 and 1x16 all within
 * the noise of each other, all faster than the reader thread; 4 x 8 keeps a
 * 64 MiB chunk's pipe full (16 requests per chunk) with half the memory of
 * 16 x 4 x 2. */
#define SM_URING_UNIT SM_COPY_URING_UNIT
#define SM_URING_DEPTH SM_COPY_URING_DEPTH

struct range {
	off_t start, end;
};

struct range_list {
	struct range *v;
	size_t n, cap;
};

struct verifier;
struct sm_uring;

struct copier {
	const struct sm_copy_req *req;
	const struct sm_copy_ops *ops;
	void *ctx;
	struct sm_copy_result *res;
	int in, out;
	int in_direct, out_direct;  /* the same files opened O_DIRECT; -1 when not */
	off_t size;
	unsigned long long chunk_size;
	unsigned long long done;      /* data bytes of durable chunks */
	unsigned long long in_chunk;  /* data bytes copied of the current chunk */
	unsigned long long chunk_data;  /* data bytes of the current chunk */
	char *buf;
	size_t unit;  /* bytes per read/write or copy_file_range call */
	char *dbufs[SM_DIRECT_DEPTH];
	size_t dunit;  /* bytes per O_DIRECT request */
	struct sm_ratelimit rl;
	double t0, last_progress;
	enum sm_copy_method method;
	struct range_list data;  /* the source's data in the current chunk */
	struct verifier *verifier;  /* the direct path's check of the last chunk */
	struct sm_uring *uring;     /* direct-uring's ring and buffers */
	bool out_device;  /* the destination is a block device (never truncated) */
	bool skip_zeros;  /* the source is a device (no holes to find) and the
			   * destination reads as zeros: all-zero blocks not written */
};

/* The direct path, by either engine. */
static inline bool sm_copy_is_direct(enum sm_copy_method m)
{
	return m == SM_COPY_DIRECT || m == SM_COPY_DIRECT_URING;
}

/* extents.c */
int sm_copy_collect_ranges(struct range_list *l, int fd, off_t from, off_t to);
unsigned long long sm_copy_ranges_bytes(const struct range_list *l);

/* io.c */
int sm_copy_size(int fd, const char *path, bool devices, off_t *size, bool *device);
bool sm_copy_all_zero(const struct copier *c, const char *buf, size_t len);
int sm_copy_zero_holes(struct copier *c, off_t off, off_t end);
void sm_copy_write_error(const struct copier *c);
int sm_copy_pwrite_all(int fd, const char *buf, size_t len, off_t off);
ssize_t sm_copy_pread_upto(int fd, char *buf, size_t len, off_t off, bool direct);
bool sm_copy_report(struct copier *c, bool force);
bool sm_copy_copied(struct copier *c, unsigned long long n);
int sm_copy_punch(struct copier *c, off_t off, off_t end);
int sm_copy_sync_out(struct copier *c);

/* buffered.c */
int sm_copy_checksum_buffered(struct copier *c, int fd, uint64_t *out);
int sm_copy_readwrite(struct copier *c, off_t off, off_t end, struct sm_checksum *sum);
int sm_copy_range(struct copier *c, off_t off, off_t end);

/* direct.c */
int sm_copy_checksum_direct(int fd, const char *path, const struct range_list *ranges,
			    char *const *bufs, size_t unit, unsigned long long *read,
			    uint64_t *out);
int sm_copy_direct(struct copier *c, struct sm_checksum *sum);
int sm_copy_open_direct(struct copier *c);
int sm_copy_preallocate(struct copier *c);

/* uring.c */
int sm_copy_uring_new(struct sm_uring **out, size_t unit);
void sm_copy_uring_free(struct sm_uring *u);
int sm_copy_uring_copy(struct copier *c, struct sm_checksum *sum);
int sm_copy_uring_checksum(struct sm_uring *u, int fd, const char *path,
			   const struct range_list *ranges, unsigned long long *read, uint64_t *out);

/* chunk.c */
int sm_copy_chunk_data(struct copier *c, uint64_t *sum);
int sm_copy_chunk_done(struct copier *c, const struct sm_copy_chunk *chunk);

/* verify.c */
struct verifier *sm_copy_verifier_new(struct copier *c);
int sm_copy_verifier_start(struct verifier *v, const struct sm_copy_chunk *chunk);
void sm_copy_verifier_free(struct verifier *v);
int sm_copy_verify_now(struct copier *c, const struct sm_copy_chunk *chunk);
int sm_copy_recopy_chunk(struct copier *c, struct sm_copy_chunk *chunk);
int sm_copy_finish_pending(struct copier *c);
int sm_copy_check_unverified(struct copier *c);

#endif
