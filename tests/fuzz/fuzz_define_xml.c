/* fuzz_define_xml.c: the persistent domain XML rewriter
 * (sm_define_rewrite_xml): parse, rewrite two disks' sources, serialize. */
#include "fuzz.h"
#include "snapshot/define.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct sm_define_disk disks[] = {
		{ .target = "vda", .path = "/dst/top.qcow2", .format = "qcow2",
		  .check_backing = true, .backing = "/dst/base.raw" },
		{ .target = "vdb", .path = "/dst/b.raw", .format = "raw" },
	};
	char *xml = fuzz_cstring(data, size);
	char *out = sm_define_rewrite_xml(xml, disks, 2);

	free(out);
	free(xml);
	return 0;
}
