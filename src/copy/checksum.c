/* checksum.c: canonical chunk checksums with libxxhash (XXH3-64). */
#include "copy/checksum.h"
#include "util.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

void sm_checksum_init(struct sm_checksum *c)
{
	c->state = XXH3_createState();
	if (!c->state)
		abort();
	XXH3_64bits_reset(c->state);
}

static bool all_zero(const unsigned char *p, size_t len)
{
	static const unsigned char zeros[SM_CHECKSUM_BLOCK];

	return memcmp(p, zeros, len) == 0;
}

void sm_checksum_update(struct sm_checksum *c, unsigned long long off, const void *data,
			size_t len)
{
	const unsigned char *p = data;

	while (len > 0) {
		size_t n = len < SM_CHECKSUM_BLOCK ? len : SM_CHECKSUM_BLOCK;

		if (!all_zero(p, n)) {
			unsigned char le[8];

			for (int i = 0; i < 8; i++)
				le[i] = (unsigned char)(off >> (8 * i));
			XXH3_64bits_update(c->state, le, sizeof(le));
			XXH3_64bits_update(c->state, p, n);
		}
		p += n;
		off += n;
		len -= n;
	}
}

uint64_t sm_checksum_final(struct sm_checksum *c)
{
	return XXH3_64bits_digest(c->state);
}

void sm_checksum_release(struct sm_checksum *c)
{
	if (c->state)
		XXH3_freeState(c->state);
	c->state = NULL;
}

void sm_checksum_hex(uint64_t v, char buf[17])
{
	snprintf(buf, 17, "%016llx", (unsigned long long)v);
}

int sm_checksum_parse(const char *hex, uint64_t *out)
{
	uint64_t v = 0;

	if (!hex || strlen(hex) != 16)
		return -1;
	for (int i = 0; i < 16; i++) {
		if (!isxdigit((unsigned char)hex[i]))
			return -1;
		v = (v << 4) | (uint64_t)(isdigit((unsigned char)hex[i]) ? hex[i] - '0'
						: (tolower((unsigned char)hex[i]) - 'a' + 10));
	}
	*out = v;
	return 0;
}
