/* chunk.c: one chunk's data copied by the current path (direct, by io_uring
 * or the reader thread, or
 * copy_file_range with read/write as its fallback, or read/write) with its
 * source checksum, and a finished chunk handed to the caller.  Used by the
 * chunk loop (run.c) and by the one re-copy (verify.c); it neither walks the
 * chunks nor checks them.
 */
#include "copy/copier.h"

/* Copy the current ranges; *sum gets the source checksum (inline for
 * read/write and direct, by a second read otherwise). */
int sm_copy_chunk_data(struct copier *c, uint64_t *sum)
{
	struct sm_checksum inline_sum;
	int ret = -1;

	sm_checksum_init(&inline_sum);
	if (sm_copy_is_direct(c->method)) {
		if ((c->method == SM_COPY_DIRECT_URING ? sm_copy_uring_copy(c, &inline_sum)
						       : sm_copy_direct(c, &inline_sum)) == 0) {
			*sum = sm_checksum_final(&inline_sum);
			ret = 0;
		}
		goto cleanup;
	}
	for (size_t i = 0; i < c->data.n; i++) {
		off_t s = c->data.v[i].start, e = c->data.v[i].end;

		if (c->method == SM_COPY_FILE_RANGE) {
			int rc = sm_copy_range(c, s, e);

			if (rc < 0)
				goto cleanup;
			if (rc == 0)
				continue;
			c->method = SM_COPY_READWRITE;
		}
		if (c->method == SM_COPY_READWRITE && sm_copy_readwrite(c, s, e, &inline_sum) < 0)
			goto cleanup;
	}
	if (c->method == SM_COPY_READWRITE) {
		*sum = sm_checksum_final(&inline_sum);
		ret = 0;
	} else {
		ret = sm_copy_checksum_buffered(c, c->in, sum);
	}

cleanup:
	sm_checksum_release(&inline_sum);
	return ret;
}

int sm_copy_chunk_done(struct copier *c, const struct sm_copy_chunk *chunk)
{
	c->res->chunks++;
	if (c->ops && c->ops->chunk_done && c->ops->chunk_done(c->ctx, chunk) < 0)
		return -1;
	return 0;
}
