/* test_define.c: rewriting a persistent definition's disk sources. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "chain/chain.h"
#include "snapshot/define.h"

static const char *const inactive_xml =
	"<domain type='kvm'><name>d</name><devices>"
	"<disk type='file' device='disk'><driver name='qemu' type='raw' cache='none'/>"
	"<source file='/src/a.img'/><backingStore type='file'><format type='raw'/>"
	"<source file='/src/old.img'/></backingStore><target dev='vda' bus='virtio'/></disk>"
	"<disk type='block' device='disk'><driver name='qemu' type='raw'/>"
	"<source dev='/dev/sdz'/><target dev='vdb' bus='virtio'/></disk>"
	"<disk type='file' device='cdrom'><source file='/iso/x.iso'/>"
	"<target dev='sda' bus='sata'/><readonly/></disk>"
	"</devices></domain>";

static void rewrites_only_named_disks(void **state)
{
	struct sm_define_disk d[] = { { .target = "vda", .path = "/dst/a&b.qcow2", .format = "qcow2" } };
	char *out = sm_define_rewrite_xml(inactive_xml, d, 1);
	struct sm_domain_disks disks;
	const struct sm_disk *vda, *vdb, *sda;

	(void)state;
	assert_non_null(out);
	assert_int_equal(sm_chain_parse(out, &disks), 0);
	vda = sm_domain_disks_find(&disks, "vda");
	vdb = sm_domain_disks_find(&disks, "vdb");
	sda = sm_domain_disks_find(&disks, "sda");
	assert_non_null(vda);
	assert_int_equal(vda->nchain, 1);  /* the stale <backingStore> is gone */
	assert_string_equal(vda->chain[0].path, "/dst/a&b.qcow2");
	assert_string_equal(vda->chain[0].format, "qcow2");
	assert_string_equal(vdb->chain[0].path, "/dev/sdz");
	assert_string_equal(vdb->chain[0].type, "block");
	assert_string_equal(sda->chain[0].path, "/iso/x.iso");
	/* Other driver attributes survive; the path is escaped in XML. */
	assert_non_null(strstr(out, "cache=\"none\""));
	assert_non_null(strstr(out, "a&amp;b.qcow2"));
	sm_domain_disks_release(&disks);
	free(out);
}

static void block_source_becomes_file(void **state)
{
	struct sm_define_disk d[] = { { .target = "vdb", .path = "/dst/b.img", .format = "raw" } };
	char *out = sm_define_rewrite_xml(inactive_xml, d, 1);
	struct sm_domain_disks disks;
	const struct sm_disk *vdb;

	(void)state;
	assert_int_equal(sm_chain_parse(out, &disks), 0);
	vdb = sm_domain_disks_find(&disks, "vdb");
	assert_string_equal(vdb->chain[0].type, "file");
	assert_string_equal(vdb->chain[0].path, "/dst/b.img");
	assert_null(strstr(out, "/dev/sdz"));
	sm_domain_disks_release(&disks);
	free(out);
}

/* A move undone back onto its device: <disk type='block'> <source dev>. */
static void device_path_becomes_block(void **state)
{
	struct sm_define_disk d[] = { { .target = "vda", .path = "/dev/loop0", .format = "raw" } };
	struct sm_domain_disks disks;
	struct stat sb;
	char *out;

	(void)state;
	if (stat("/dev/loop0", &sb) < 0 || !S_ISBLK(sb.st_mode))
		skip();
	out = sm_define_rewrite_xml(inactive_xml, d, 1);
	assert_int_equal(sm_chain_parse(out, &disks), 0);
	assert_string_equal(sm_domain_disks_find(&disks, "vda")->chain[0].type, "block");
	assert_string_equal(sm_domain_disks_find(&disks, "vda")->chain[0].path, "/dev/loop0");
	assert_null(strstr(out, "file=\"/dev/loop0\""));
	sm_domain_disks_release(&disks);
	free(out);
}

static void malformed_is_refused(void **state)
{
	struct sm_define_disk d[] = { { .target = "vda", .path = "/dst/a.qcow2", .format = "qcow2" } };

	(void)state;
	assert_null(sm_define_rewrite_xml("<domain><devices><disk>", d, 1));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(rewrites_only_named_disks),
		cmocka_unit_test(block_source_becomes_file),
		cmocka_unit_test(device_path_becomes_block),
		cmocka_unit_test(malformed_is_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
