/* test_chain.c: disks and backing chains parsed from libvirt's live domain XML
 * (the files in fixtures/, written like libvirt 9 'virsh dumpxml' output), and
 * which of those disks snapmove agrees to move.
 */
#include "unit.h"

#include "chain/chain.h"
#include "util.h"

/* Parse a fixture that must parse; the test fails otherwise. */
static void parse_fixture(const char *name, struct sm_domain_disks *d)
{
	char *xml = unit_fixture(name);
	int rc = sm_chain_parse(xml, d);

	free(xml);
	if (rc != 0) {
		print_error("parsing '%s' failed: %s\n", name, sm_error_message());
		fail();
	}
}

static const struct sm_disk *find(const struct sm_domain_disks *d, const char *target)
{
	const struct sm_disk *disk = sm_domain_disks_find(d, target);

	if (!disk) {
		print_error("no disk '%s' in the parsed XML\n", target);
		fail();
	}
	return disk;
}

static void assert_image(const struct sm_image *img, const char *type, const char *path,
			 const char *format)
{
	assert_string_equal(img->type, type);
	if (path)
		assert_string_equal(img->path, path);
	else
		assert_null(img->path);
	if (format)
		assert_string_equal(img->format, format);
	else
		assert_null(img->format);
}

/* The reason a disk cannot move: it must exist, name the disk and contain what. */
static void assert_unmovable(const struct sm_disk *disk, const char *what)
{
	char *why = sm_disk_unmovable_reason(disk);
	char quoted[64];

	snprintf(quoted, sizeof(quoted), "'%s'", disk->target);
	assert_non_null(why);
	assert_contains(why, quoted);
	assert_contains(why, what);
	free(why);
	assert_false(sm_disk_is_candidate(disk));
}

static void assert_movable(const struct sm_disk *disk)
{
	char *why = sm_disk_unmovable_reason(disk);

	if (why) {
		print_error("disk '%s' reported unmovable: %s\n", disk->target, why);
		free(why);
		fail();
	}
	assert_true(sm_disk_is_candidate(disk));
}

static void test_single_qcow2(void **state)
{
	struct sm_domain_disks d;
	const struct sm_disk *vda;

	(void)state;
	parse_fixture("single-qcow2.xml", &d);
	assert_int_equal(d.ndisks, 1);
	vda = find(&d, "vda");
	assert_ptr_equal(vda, &d.disks[0]);
	assert_string_equal(vda->target, "vda");
	assert_string_equal(vda->device, "disk");
	assert_string_equal(vda->alias, "virtio-disk0");
	assert_false(vda->readonly);
	assert_false(vda->shareable);
	assert_true(vda->chain_known);
	assert_int_equal(vda->nchain, 1);
	assert_image(&vda->chain[0], "file", "/var/lib/libvirt/images/vm-single.qcow2", "qcow2");
	assert_null(vda->mirror_job);
	assert_null(vda->mirror_path);
	assert_false(vda->mirror_ready);
	assert_movable(vda);
	assert_null(sm_domain_disks_find(&d, "vdb"));
	assert_null(sm_domain_disks_find(&d, "virtio-disk0"));
	sm_domain_disks_release(&d);
	assert_null(d.disks);
	assert_int_equal(d.ndisks, 0);
	/* Releasing twice and releasing NULL are harmless. */
	sm_domain_disks_release(&d);
	sm_domain_disks_release(NULL);
}

static void test_qcow2_qcow2_raw_chain(void **state)
{
	struct sm_domain_disks d;
	const struct sm_disk *vda, *vdb;

	(void)state;
	parse_fixture("chain-3.xml", &d);
	assert_int_equal(d.ndisks, 2);

	vda = find(&d, "vda");
	assert_string_equal(vda->device, "disk");
	assert_string_equal(vda->alias, "virtio-disk0");
	assert_true(vda->chain_known);
	assert_int_equal(vda->nchain, 3);
	assert_image(&vda->chain[0], "file", "/srv/vm/chain/top.qcow2", "qcow2");
	assert_image(&vda->chain[1], "file", "/srv/vm/chain/mid.qcow2", "qcow2");
	assert_image(&vda->chain[2], "file", "/srv/base/base.raw", "raw");
	assert_movable(vda);
	assert_true(vda->discard_unmap);  /* <driver ... discard='unmap'/> */

	/* The second disk keeps its own one-image chain. */
	vdb = find(&d, "vdb");
	assert_ptr_equal(vdb, &d.disks[1]);
	assert_string_equal(vdb->alias, "ua-data");
	assert_true(vdb->chain_known);
	assert_int_equal(vdb->nchain, 1);
	assert_image(&vdb->chain[0], "file", "/srv/vm/chain/data.raw", "raw");
	assert_movable(vdb);
	assert_false(vdb->discard_unmap);  /* no discard attribute: QEMU drops discards */
	sm_domain_disks_release(&d);
}

static void test_relative_backing_path_as_given(void **state)
{
	struct sm_domain_disks d;
	const struct sm_disk *vda;

	(void)state;
	parse_fixture("relative-backing.xml", &d);
	assert_int_equal(d.ndisks, 1);
	vda = find(&d, "vda");
	assert_int_equal(vda->nchain, 2);
	assert_true(vda->chain_known);
	assert_image(&vda->chain[0], "file",
		     "/var/lib/libvirt/images/vm-relative/overlay.qcow2", "qcow2");
	/* Kept exactly as libvirt resolved it, not canonicalized. */
	assert_image(&vda->chain[1], "file",
		     "/var/lib/libvirt/images/vm-relative/../base/base.qcow2", "qcow2");
	assert_movable(vda);
	sm_domain_disks_release(&d);
}

static void test_block_disk_movable(void **state)
{
	struct sm_domain_disks d;
	const struct sm_disk *vdb;

	(void)state;
	parse_fixture("unmovable.xml", &d);
	vdb = find(&d, "vdb");
	assert_string_equal(vdb->device, "disk");
	assert_string_equal(vdb->alias, "virtio-disk1");
	assert_int_equal(vdb->nchain, 1);
	assert_image(&vdb->chain[0], "block", "/dev/vg0/vm-mixed-data", "raw");
	assert_true(vdb->chain_known);
	/* Movable to a file when --disk names it, never picked by default. */
	assert_true(sm_disk_on_device(vdb));
	assert_null(sm_disk_unmovable_reason(vdb));
	assert_false(sm_disk_is_candidate(vdb));
	sm_domain_disks_release(&d);
}

/* A device with a backing chain below it is refused, naming the fix. */
static void test_block_disk_with_chain_unmovable(void **state)
{
	struct sm_domain_disks d;
	struct sm_disk *vdb;

	(void)state;
	parse_fixture("unmovable.xml", &d);
	vdb = (struct sm_disk *)find(&d, "vdb");
	vdb->chain = realloc(vdb->chain, 2 * sizeof(*vdb->chain));
	vdb->chain[1] = (struct sm_image){ .type = strdup("file"), .path = strdup("/b.qcow2"),
					   .format = strdup("qcow2") };
	vdb->nchain = 2;
	assert_unmovable(vdb, "block device with a backing chain");
	assert_unmovable(vdb, "blockcommit");
	sm_domain_disks_release(&d);
}

static void test_network_disk_unmovable(void **state)
{
	struct sm_domain_disks d;
	const struct sm_disk *vdc;

	(void)state;
	parse_fixture("unmovable.xml", &d);
	vdc = find(&d, "vdc");
	assert_string_equal(vdc->alias, "virtio-disk2");
	assert_int_equal(vdc->nchain, 1);
	/* A network source has no file path. */
	assert_image(&vdc->chain[0], "network", NULL, "raw");
	assert_false(vdc->chain_known);
	/* The source type is the reason, not the unreported chain. */
	assert_unmovable(vdc, "network");
	sm_domain_disks_release(&d);
}

static void test_cdrom_without_source_unmovable(void **state)
{
	struct sm_domain_disks d;
	const struct sm_disk *sda;

	(void)state;
	parse_fixture("unmovable.xml", &d);
	sda = find(&d, "sda");
	assert_string_equal(sda->device, "cdrom");
	assert_string_equal(sda->alias, "sata0-0-0");
	assert_true(sda->readonly);
	assert_int_equal(sda->nchain, 0);
	assert_null(sda->chain);
	assert_unmovable(sda, "cdrom");
	sm_domain_disks_release(&d);
}

static void test_readonly_and_shareable_unmovable(void **state)
{
	struct sm_domain_disks d;
	const struct sm_disk *vdd, *vde;

	(void)state;
	parse_fixture("unmovable.xml", &d);
	vdd = find(&d, "vdd");
	assert_true(vdd->readonly);
	assert_false(vdd->shareable);
	assert_int_equal(vdd->nchain, 1);
	assert_image(&vdd->chain[0], "file", "/var/lib/libvirt/images/vm-mixed-ro.raw", "raw");
	assert_unmovable(vdd, "read-only");

	vde = find(&d, "vde");
	assert_false(vde->readonly);
	assert_true(vde->shareable);
	assert_image(&vde->chain[0], "file", "/var/lib/libvirt/images/cluster-shared.raw", "raw");
	assert_unmovable(vde, "shareable");
	sm_domain_disks_release(&d);
}

static void test_block_backing_image_unmovable(void **state)
{
	struct sm_domain_disks d;
	const struct sm_disk *vdf;

	(void)state;
	parse_fixture("unmovable.xml", &d);
	vdf = find(&d, "vdf");
	assert_int_equal(vdf->nchain, 2);
	assert_true(vdf->chain_known);
	assert_image(&vdf->chain[0], "file", "/var/lib/libvirt/images/vm-mixed-top.qcow2", "qcow2");
	assert_image(&vdf->chain[1], "block", "/dev/vg0/vm-mixed-base", "raw");
	assert_unmovable(vdf, "backing image is a block source");
	sm_domain_disks_release(&d);
}

/* In a domain with every kind of disk only the plain file disk is a candidate. */
static void test_only_file_disk_is_candidate(void **state)
{
	struct sm_domain_disks d;
	size_t candidates = 0;

	(void)state;
	parse_fixture("unmovable.xml", &d);
	assert_int_equal(d.ndisks, 7);
	for (size_t i = 0; i < d.ndisks; i++) {
		if (sm_disk_is_candidate(&d.disks[i])) {
			assert_string_equal(d.disks[i].target, "vda");
			candidates++;
		}
	}
	assert_int_equal(candidates, 1);
	assert_image(&find(&d, "vda")->chain[0], "file",
		     "/var/lib/libvirt/images/vm-mixed.qcow2", "qcow2");
	sm_domain_disks_release(&d);
}

/* A mirror onto a block device (an overlay on a provisioned device): its
 * path from <source dev>; the disk's own top a device too. */
static void test_mirror_block(void **state)
{
	struct sm_domain_disks d;
	const struct sm_disk *vda;

	(void)state;
	parse_fixture("mirror-block.xml", &d);
	vda = find(&d, "vda");
	assert_string_equal(vda->mirror_job, "copy");
	assert_true(vda->mirror_ready);
	assert_string_equal(vda->mirror_path, "/dev/loop12");
	assert_int_equal(vda->nchain, 2);
	assert_string_equal(vda->chain[0].path, "/dev/loop11");
	assert_string_equal(vda->chain[1].path, "/src/vm.qcow2");
	sm_domain_disks_release(&d);
}

static void test_mirror(void **state)
{
	struct sm_domain_disks d;
	const struct sm_disk *vda, *vdb, *vdc;

	(void)state;
	parse_fixture("mirror.xml", &d);
	assert_int_equal(d.ndisks, 3);

	vda = find(&d, "vda");
	assert_string_equal(vda->mirror_job, "copy");
	assert_true(vda->mirror_ready);
	assert_string_equal(vda->mirror_path, "/dst/vm-mirror.qcow2");
	/* The mirror's own <backingStore/> is not part of the disk's chain. */
	assert_int_equal(vda->nchain, 1);
	assert_true(vda->chain_known);
	assert_image(&vda->chain[0], "file", "/src/vm-mirror.qcow2", "qcow2");

	/* No ready attribute, no legacy file attribute: path from <source>. */
	vdb = find(&d, "vdb");
	assert_string_equal(vdb->mirror_job, "active-commit");
	assert_false(vdb->mirror_ready);
	assert_string_equal(vdb->mirror_path, "/src/data-base.qcow2");
	assert_int_equal(vdb->nchain, 2);
	assert_true(vdb->chain_known);
	assert_image(&vdb->chain[0], "file", "/src/data-top.qcow2", "qcow2");
	assert_image(&vdb->chain[1], "file", "/src/data-base.qcow2", "qcow2");

	vdc = find(&d, "vdc");
	assert_null(vdc->mirror_job);
	assert_null(vdc->mirror_path);
	assert_false(vdc->mirror_ready);
	sm_domain_disks_release(&d);
}

static void test_inactive_chain_unknown(void **state)
{
	struct sm_domain_disks d;
	const struct sm_disk *vda;

	(void)state;
	parse_fixture("inactive.xml", &d);
	assert_int_equal(d.ndisks, 1);
	vda = find(&d, "vda");
	assert_null(vda->alias);
	assert_int_equal(vda->nchain, 1);
	assert_image(&vda->chain[0], "file", "/var/lib/libvirt/images/vm-inactive.qcow2", "qcow2");
	assert_false(vda->chain_known);
	assert_unmovable(vda, "backing chain");
	assert_unmovable(vda, "<backingStore>");
	sm_domain_disks_release(&d);
}

static void test_no_format_unmovable(void **state)
{
	struct sm_domain_disks d;
	const struct sm_disk *vda, *vdb;

	(void)state;
	parse_fixture("no-format.xml", &d);
	vda = find(&d, "vda");
	assert_true(vda->chain_known);
	assert_image(&vda->chain[0], "file", "/var/lib/libvirt/images/vm-noformat.img", NULL);
	assert_unmovable(vda, "no format");
	assert_unmovable(vda, "/var/lib/libvirt/images/vm-noformat.img");

	/* A backing image without <format> is refused just the same. */
	vdb = find(&d, "vdb");
	assert_int_equal(vdb->nchain, 2);
	assert_image(&vdb->chain[0], "file", "/var/lib/libvirt/images/vm-noformat-top.qcow2",
		     "qcow2");
	assert_image(&vdb->chain[1], "file", "/var/lib/libvirt/images/vm-noformat-base.img", NULL);
	assert_unmovable(vdb, "no format");
	assert_unmovable(vdb, "/var/lib/libvirt/images/vm-noformat-base.img");
	sm_domain_disks_release(&d);
}

/* An <encryption> element anywhere in the chain (in the active image's
 * <source>, a backing image's <source>, or the <disk> itself, the older form)
 * makes the disk unmovable, naming the image and the encryption format. */
static void test_encrypted_unmovable(void **state)
{
	struct sm_domain_disks d;
	const struct sm_disk *vda, *vdb, *vdc, *vdd;

	(void)state;
	parse_fixture("encrypted.xml", &d);
	assert_int_equal(d.ndisks, 4);
	vda = find(&d, "vda");
	assert_true(vda->chain_known);
	assert_string_equal(vda->encryption, "luks");
	assert_string_equal(vda->encrypted_path, "/var/lib/libvirt/images/vm-enc.qcow2");
	assert_unmovable(vda, "disk 'vda' image '/var/lib/libvirt/images/vm-enc.qcow2' is "
			 "encrypted (luks)");
	assert_unmovable(vda, "leave it out of --disk");
	assert_false(sm_disk_is_candidate(vda));

	vdb = find(&d, "vdb");
	assert_int_equal(vdb->nchain, 2);
	assert_string_equal(vdb->encrypted_path, "/var/lib/libvirt/images/vm-enc-base.qcow2");
	assert_unmovable(vdb, "vm-enc-base.qcow2' is encrypted (luks)");

	vdc = find(&d, "vdc");
	assert_unmovable(vdc, "vm-enc-old.qcow2' is encrypted (qcow)");

	vdd = find(&d, "vdd");
	assert_null(vdd->encryption);
	assert_movable(vdd);
	sm_domain_disks_release(&d);
}

/* A failed parse returns -1, leaves out empty and records a message. */
static void assert_parse_fails(const char *xml, const char *what)
{
	struct sm_domain_disks d = { .disks = (void *)&d, .ndisks = 42 };

	sm_error_clear();
	assert_int_equal(sm_chain_parse(xml, &d), -1);
	assert_null(d.disks);
	assert_int_equal(d.ndisks, 0);
	assert_string_not_equal(sm_error_message(), "unknown error");
	assert_true(strlen(sm_error_message()) > 0);
	assert_contains(sm_error_message(), what);
}

static void test_malformed_xml(void **state)
{
	char *xml = unit_fixture("malformed.xml");

	(void)state;
	assert_parse_fails(xml, "cannot parse the domain XML");
	free(xml);
}

static void test_truncated_xml(void **state)
{
	char *xml = unit_fixture("truncated.xml");

	(void)state;
	assert_parse_fails(xml, "cannot parse the domain XML");
	free(xml);
	assert_parse_fails("", "cannot parse the domain XML");
}

static void test_root_not_domain(void **state)
{
	char *xml = unit_fixture("not-domain.xml");

	(void)state;
	/* A snapshot document holds a <domain>, but is not one. */
	assert_parse_fails(xml, "<domain>");
	free(xml);
	assert_parse_fails("<network><name>default</name></network>", "<domain>");
}

static void test_disk_without_target(void **state)
{
	(void)state;
	assert_parse_fails("<domain type='kvm'><devices>"
			   "<disk type='file' device='disk'><driver name='qemu' type='raw'/>"
			   "<source file='/a/one.raw'/><backingStore/><target dev='vda'/></disk>"
			   "<disk type='file' device='disk'><driver name='qemu' type='raw'/>"
			   "<source file='/a/two.raw'/><backingStore/></disk>"
			   "</devices></domain>", "target");
}

static void test_defaults_and_empty_domain(void **state)
{
	struct sm_domain_disks d;

	(void)state;
	/* No devices at all: no disks, not an error. */
	assert_int_equal(sm_chain_parse("<domain type='kvm'><name>x</name></domain>", &d), 0);
	assert_int_equal(d.ndisks, 0);
	sm_domain_disks_release(&d);

	/* Without type and device attributes a disk is a file disk. */
	assert_int_equal(sm_chain_parse("<domain><devices><disk>"
					"<driver name='qemu' type='raw'/>"
					"<source file='/a/x.raw'/><backingStore/>"
					"<target dev='hda'/></disk>"
					"<interface type='network'/></devices></domain>", &d), 0);
	assert_int_equal(d.ndisks, 1);
	assert_string_equal(d.disks[0].device, "disk");
	assert_image(&d.disks[0].chain[0], "file", "/a/x.raw", "raw");
	assert_movable(&d.disks[0]);
	sm_domain_disks_release(&d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_single_qcow2),
		cmocka_unit_test(test_qcow2_qcow2_raw_chain),
		cmocka_unit_test(test_relative_backing_path_as_given),
		cmocka_unit_test(test_block_disk_movable),
		cmocka_unit_test(test_block_disk_with_chain_unmovable),
		cmocka_unit_test(test_network_disk_unmovable),
		cmocka_unit_test(test_cdrom_without_source_unmovable),
		cmocka_unit_test(test_readonly_and_shareable_unmovable),
		cmocka_unit_test(test_block_backing_image_unmovable),
		cmocka_unit_test(test_only_file_disk_is_candidate),
		cmocka_unit_test(test_mirror),
		cmocka_unit_test(test_mirror_block),
		cmocka_unit_test(test_inactive_chain_unknown),
		cmocka_unit_test(test_no_format_unmovable),
		cmocka_unit_test(test_encrypted_unmovable),
		cmocka_unit_test(test_malformed_xml),
		cmocka_unit_test(test_truncated_xml),
		cmocka_unit_test(test_root_not_domain),
		cmocka_unit_test(test_disk_without_target),
		cmocka_unit_test(test_defaults_and_empty_domain),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
