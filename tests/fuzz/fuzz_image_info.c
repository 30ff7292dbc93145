/* fuzz_image_info.c: the parser of what 'qemu-img info --output=json' prints
 * (sm_image_info_parse), which reports an image header somebody else wrote.
 */
#include "fuzz.h"
#include "chain/image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *json = fuzz_cstring(data, size);
	struct sm_image_info info;

	if (sm_image_info_parse(json, &info) == 0) {
		/* What callers rely on: a backing format only with a backing name. */
		if (info.backing)
			(void)strlen(info.backing);
		if (info.backing_format)
			(void)strlen(info.backing_format);
	}
	sm_image_info_release(&info);
	free(json);
	return 0;
}
