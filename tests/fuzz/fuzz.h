/* fuzz.h: what the libFuzzer targets share: the input as a C string.
 * Test code only; built by 'make fuzz' with clang (tests/fuzz/README).
 */
#ifndef SM_FUZZ_H
#define SM_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The input with a NUL appended (the parsers take C strings, as snapmove
 * hands them what libvirt and qemu-img printed). */
static inline char *fuzz_cstring(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);

	if (!s)
		abort();
	memcpy(s, data, size);
	s[size] = '\0';
	return s;
}

#endif
