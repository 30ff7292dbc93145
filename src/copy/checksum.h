/* checksum.h: the per-chunk checksum the copier records and verifies.
 *
 * XXH3-64 over every 4 KiB block of the chunk that is not all zeros, each
 * block fed with its file offset.  Holes and zero blocks count the same, so
 * the checksum of a sparse copy equals the source's whatever the file
 * systems' extent maps look like.
 */
#ifndef SM_CHECKSUM_H
#define SM_CHECKSUM_H

#include <stddef.h>
#include <stdint.h>

#define SM_CHECKSUM_BLOCK 4096u

struct sm_checksum {
	void *state;  /* XXH3_state_t */
};

void sm_checksum_init(struct sm_checksum *c);
/* Feed bytes read at file offset off.  Calls must cover whole 4 KiB blocks
 * (except at the end of the file) and go forward in offset order. */
void sm_checksum_update(struct sm_checksum *c, unsigned long long off, const void *data,
			size_t len);
uint64_t sm_checksum_final(struct sm_checksum *c);
void sm_checksum_release(struct sm_checksum *c);
/* 16 hex digits and a NUL. */
void sm_checksum_hex(uint64_t v, char buf[17]);
int sm_checksum_parse(const char *hex, uint64_t *out);

#endif
