/* test_checksum.c: the copier's canonical chunk checksum on buffers in
 * memory: zero blocks count as nothing, offsets count, how the bytes are cut
 * into calls does not, and the hex form round-trips.
 */
#include "unit.h"

#include "copy/checksum.h"
#include "util.h"

#define BLOCK SM_CHECKSUM_BLOCK
#define NBLOCKS 16

/* Data that is not zero in any block and differs from block to block. */
static unsigned char *make_data(size_t len, unsigned seed)
{
	unsigned char *p = malloc(len);

	assert_non_null(p);
	for (size_t i = 0; i < len; i++)
		p[i] = (unsigned char)((i * 131 + seed * 7 + (i >> 12)) | 1);
	return p;
}

/* The checksum of len bytes at file offset off fed in pieces of piece bytes. */
static uint64_t sum_pieces(unsigned long long off, const unsigned char *p, size_t len,
			   size_t piece)
{
	struct sm_checksum c;
	uint64_t v;

	sm_checksum_init(&c);
	for (size_t done = 0; done < len; done += piece)
		sm_checksum_update(&c, off + done, p + done, len - done < piece ? len - done : piece);
	v = sm_checksum_final(&c);
	sm_checksum_release(&c);
	return v;
}

static uint64_t sum_of(unsigned long long off, const unsigned char *p, size_t len)
{
	return sum_pieces(off, p, len, len ? len : 1);
}

static uint64_t empty_sum(void)
{
	return sum_of(0, NULL, 0);
}

static void test_zero_blocks_skipped(void **state)
{
	unsigned char *zeros = calloc(NBLOCKS, BLOCK);
	unsigned char *data = make_data(BLOCK, 1);
	unsigned char *mixed = calloc(NBLOCKS, BLOCK);
	uint64_t empty = empty_sum();

	(void)state;
	assert_non_null(zeros);
	assert_non_null(mixed);
	/* All zeros, anywhere, in any cut: the empty checksum. */
	assert_int_equal(sum_of(0, zeros, NBLOCKS * BLOCK), empty);
	assert_int_equal(sum_of(1ULL << 30, zeros, NBLOCKS * BLOCK), empty);
	assert_int_equal(sum_pieces(0, zeros, NBLOCKS * BLOCK, BLOCK), empty);
	/* A short zero tail (end of file) too. */
	assert_int_equal(sum_of(0, zeros, 100), empty);
	/* Data surrounded by zero blocks sums as the data alone. */
	memcpy(mixed + 5 * BLOCK, data, BLOCK);
	assert_int_equal(sum_of(0, mixed, NBLOCKS * BLOCK), sum_of(5 * BLOCK, data, BLOCK));
	assert_int_not_equal(sum_of(5 * BLOCK, data, BLOCK), empty);
	/* One non-zero byte in a zero block is data. */
	mixed[9 * BLOCK + 4095] = 1;
	assert_int_not_equal(sum_of(0, mixed, NBLOCKS * BLOCK), sum_of(5 * BLOCK, data, BLOCK));
	free(zeros);
	free(data);
	free(mixed);
}

static void test_offset_and_content_matter(void **state)
{
	unsigned char *data = make_data(2 * BLOCK, 2);
	uint64_t at0 = sum_of(0, data, BLOCK);

	(void)state;
	assert_int_not_equal(sum_of(BLOCK, data, BLOCK), at0);
	assert_int_not_equal(sum_of(1ULL << 40, data, BLOCK), at0);
	assert_int_equal(sum_of(0, data, BLOCK), at0);
	/* Two blocks swapped are different data at the same offsets. */
	{
		unsigned char *swapped = malloc(2 * BLOCK);

		assert_non_null(swapped);
		memcpy(swapped, data + BLOCK, BLOCK);
		memcpy(swapped + BLOCK, data, BLOCK);
		assert_int_not_equal(sum_of(0, swapped, 2 * BLOCK), sum_of(0, data, 2 * BLOCK));
		free(swapped);
	}
	/* One bit. */
	data[123] ^= 0x40;
	assert_int_not_equal(sum_of(0, data, BLOCK), at0);
	free(data);
}

static void test_pieces_do_not_matter(void **state)
{
	const size_t len = NBLOCKS * BLOCK;
	unsigned char *data = make_data(len, 3);
	uint64_t whole;

	(void)state;
	memset(data + 3 * BLOCK, 0, 2 * BLOCK);  /* with zero blocks inside */
	whole = sum_of(7 * BLOCK, data, len);
	assert_int_equal(sum_pieces(7 * BLOCK, data, len, BLOCK), whole);
	assert_int_equal(sum_pieces(7 * BLOCK, data, len, 2 * BLOCK), whole);
	assert_int_equal(sum_pieces(7 * BLOCK, data, len, 3 * BLOCK), whole);
	/* A file's last, short block alone or with the block before it. */
	assert_int_equal(sum_pieces(0, data, BLOCK + 100, BLOCK), sum_of(0, data, BLOCK + 100));
	free(data);
}

/* Nothing in the API asks for an aligned buffer: the same bytes at an odd
 * address sum the same. */
static void test_unaligned_buffer(void **state)
{
	const size_t len = 4 * BLOCK + 100;
	unsigned char *data = make_data(len, 4);
	unsigned char *raw = malloc(len + 1);

	(void)state;
	assert_non_null(raw);
	memcpy(raw + 1, data, len);
	assert_int_equal(sum_of(BLOCK, raw + 1, len), sum_of(BLOCK, data, len));
	memset(raw + 1, 0, len);
	assert_int_equal(sum_of(BLOCK, raw + 1, len), empty_sum());
	free(data);
	free(raw);
}

static void test_hex_round_trip(void **state)
{
	static const uint64_t values[] = {
		0, 1, 0x0123456789abcdefULL, 0xfedcba9876543210ULL, UINT64_MAX,
	};
	char buf[17];
	uint64_t got;

	(void)state;
	sm_checksum_hex(0x0123456789abcdefULL, buf);
	assert_string_equal(buf, "0123456789abcdef");
	sm_checksum_hex(0, buf);
	assert_string_equal(buf, "0000000000000000");
	sm_checksum_hex(UINT64_MAX, buf);
	assert_string_equal(buf, "ffffffffffffffff");
	for (size_t i = 0; i < SM_ARRAY_LEN(values); i++) {
		memset(buf, 'x', sizeof(buf));
		sm_checksum_hex(values[i], buf);
		assert_int_equal(strlen(buf), 16);
		got = ~values[i];
		assert_int_equal(sm_checksum_parse(buf, &got), 0);
		assert_int_equal(got, values[i]);
	}
	/* A real checksum too. */
	{
		unsigned char *data = make_data(BLOCK, 5);
		uint64_t v = sum_of(0, data, BLOCK);

		sm_checksum_hex(v, buf);
		assert_int_equal(sm_checksum_parse(buf, &got), 0);
		assert_int_equal(got, v);
		free(data);
	}
}

static void test_hex_rejects(void **state)
{
	static const char *const bad[] = {
		"",
		"0",
		"0123456789abcde",      /* 15 digits */
		"0123456789abcdef0",    /* 17 */
		"0123456789abcdeg",
		"0123456789abcde ",
		"0123456789abcd\nf",
		" 123456789abcdef",     /* strtoull would skip the blank */
		"+123456789abcdef",     /* ...take a sign */
		"-000000000000001",
		"0x23456789abcdef",     /* ...or a 0x prefix */
	};
	uint64_t got = 42;
	int accepted = 0;

	(void)state;
	assert_int_equal(sm_checksum_parse(NULL, &got), -1);
	for (size_t i = 0; i < SM_ARRAY_LEN(bad); i++) {
		if (sm_checksum_parse(bad[i], &got) != -1) {
			print_error("sm_checksum_parse(\"%s\") accepted it as %016llx\n", bad[i],
				    (unsigned long long)got);
			accepted++;
		}
	}
	assert_int_equal(accepted, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_zero_blocks_skipped),
		cmocka_unit_test(test_offset_and_content_matter),
		cmocka_unit_test(test_pieces_do_not_matter),
		cmocka_unit_test(test_unaligned_buffer),
		cmocka_unit_test(test_hex_round_trip),
		cmocka_unit_test(test_hex_rejects),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
