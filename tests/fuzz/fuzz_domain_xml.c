/* fuzz_domain_xml.c: the live domain XML parser (sm_chain_parse) and what
 * is computed from its result: a disk's refusal reason, whether it is a
 * candidate, the lookup by target.  The XML comes from libvirt, but its
 * paths and formats come from image headers and whoever defined the domain.
 */
#include "fuzz.h"
#include "chain/chain.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *xml = fuzz_cstring(data, size);
	struct sm_domain_disks d;

	memset(&d, 0, sizeof(d));
	if (sm_chain_parse(xml, &d) == 0) {
		for (size_t i = 0; i < d.ndisks; i++) {
			char *why = sm_disk_unmovable_reason(&d.disks[i]);

			(void)sm_disk_is_candidate(&d.disks[i]);
			if (d.disks[i].target && sm_domain_disks_find(&d, d.disks[i].target) == NULL)
				abort();  /* a disk's own target must find a disk */
			free(why);
		}
		(void)sm_domain_disks_find(&d, "vda");
	}
	sm_domain_disks_release(&d);
	free(xml);
	return 0;
}
