/* test_plan.c: where each image of a disk goes in the destination directory,
 * what its backing pointer says there, and which plans are refused.
 */
#include "unit.h"

#include "chain/chain.h"
#include "chain/plan.h"
#include "util.h"

#define MiB (1ULL << 20)
#define GiB (1ULL << 30)

/* A hand-built movable file disk over chain (active image first). */
static struct sm_disk make_disk(const char *target, struct sm_image *chain, size_t n)
{
	struct sm_disk d = {
		.target = (char *)target,
		.device = "disk",
		.alias = "virtio-disk0",
		.chain_known = true,
		.chain = chain,
		.nchain = n,
	};

	return d;
}

#define IMG(p, f) { .path = (p), .type = "file", .format = (f) }

static void assert_plan_image(const struct sm_plan_image *p, const char *src, const char *dst,
			      const char *format, const char *dst_backing,
			      const char *dst_backing_format)
{
	assert_string_equal(p->src, src);
	assert_string_equal(p->dst, dst);
	assert_string_equal(p->format, format);
	if (dst_backing)
		assert_string_equal(p->dst_backing, dst_backing);
	else
		assert_null(p->dst_backing);
	if (dst_backing_format)
		assert_string_equal(p->dst_backing_format, dst_backing_format);
	else
		assert_null(p->dst_backing_format);
}

/* Relative pointers in the source stay relative: the bare name, as every copy
 * lands in the same directory. */
static void test_relative_backing_chain(void **state)
{
	struct sm_image chain[] = {
		IMG("/src/vm/top.qcow2", "qcow2"),
		IMG("/src/vm/mid.qcow2", "qcow2"),
		IMG("/src/vm/../base/base.raw", "raw"),
	};
	struct sm_plan_image_facts facts[] = {
		{ .backing = "mid.qcow2", .virtual_size = 10 * GiB, .allocated = 5 * MiB },
		{ .backing = "../base/base.raw", .virtual_size = 10 * GiB, .allocated = 300 * MiB },
		{ .backing = NULL, .virtual_size = 8 * GiB, .allocated = 2 * GiB },
	};
	struct sm_disk disk = make_disk("vda", chain, 3);
	struct sm_plan_disk p;

	(void)state;
	assert_int_equal(sm_plan_disk(&disk, facts, "/dst", "/dst", 42, &p), 0);
	assert_string_equal(p.target, "vda");
	assert_int_equal(p.nimages, 3);
	assert_plan_image(&p.images[0], "/src/vm/top.qcow2", "/dst/top.qcow2", "qcow2",
			  "mid.qcow2", "qcow2");
	assert_plan_image(&p.images[1], "/src/vm/mid.qcow2", "/dst/mid.qcow2", "qcow2",
			  "base.raw", "raw");
	assert_plan_image(&p.images[2], "/src/vm/../base/base.raw", "/dst/base.raw", "raw",
			  NULL, NULL);
	/* The source pointers are kept as the headers say them. */
	assert_string_equal(p.images[0].src_backing, "mid.qcow2");
	assert_string_equal(p.images[1].src_backing, "../base/base.raw");
	assert_null(p.images[2].src_backing);
	for (size_t i = 0; i < 3; i++) {
		assert_int_equal(p.images[i].virtual_size, facts[i].virtual_size);
		assert_int_equal(p.images[i].allocated, facts[i].allocated);
	}
	/* Overlays are named after the active image, in its directory and in dest. */
	/* By default the source overlay is in the destination, under its own name. */
	assert_string_equal(p.src_overlay, "/dst/top.qcow2.snapmove-42.src.qcow2");
	assert_string_equal(p.dst_overlay, "/dst/top.qcow2.snapmove-42.qcow2");
	assert_int_equal(p.virtual_size, 10 * GiB);
	sm_plan_disk_release(&p);
	assert_null(p.images);
	assert_int_equal(p.nimages, 0);
	sm_plan_disk_release(&p);
	sm_plan_disk_release(NULL);
}

/* Absolute pointers become the absolute destination path of the image below. */
static void test_absolute_backing_chain(void **state)
{
	struct sm_image chain[] = {
		IMG("/var/lib/libvirt/images/top.qcow2", "qcow2"),
		IMG("/var/lib/libvirt/images/mid.qcow2", "qcow2"),
		IMG("/srv/base/base.img", "raw"),
	};
	struct sm_plan_image_facts facts[] = {
		{ .backing = "/var/lib/libvirt/images/mid.qcow2", .virtual_size = 64 * MiB },
		/* Mixed: the middle one points relatively. */
		{ .backing = "../../../../srv/base/base.img", .virtual_size = 64 * MiB },
		{ .backing = NULL, .virtual_size = 64 * MiB },
	};
	struct sm_disk disk = make_disk("vdb", chain, 3);
	struct sm_plan_disk p;

	(void)state;
	/* A trailing slash on dest does not double it in the paths. */
	assert_int_equal(sm_plan_disk(&disk, facts, "/mnt/fast/", NULL, 7, &p), 0);
	assert_int_equal(p.nimages, 3);
	assert_plan_image(&p.images[0], "/var/lib/libvirt/images/top.qcow2",
			  "/mnt/fast/top.qcow2", "qcow2", "/mnt/fast/mid.qcow2", "qcow2");
	assert_plan_image(&p.images[1], "/var/lib/libvirt/images/mid.qcow2",
			  "/mnt/fast/mid.qcow2", "qcow2", "base.img", "raw");
	assert_plan_image(&p.images[2], "/srv/base/base.img", "/mnt/fast/base.img", "raw",
			  NULL, NULL);
	assert_string_equal(p.src_overlay, "/var/lib/libvirt/images/top.qcow2.snapmove-7.qcow2");
	assert_string_equal(p.dst_overlay, "/mnt/fast/top.qcow2.snapmove-7.qcow2");
	sm_plan_disk_release(&p);
}

static void test_single_image(void **state)
{
	struct sm_image chain[] = { IMG("/images/guest.raw", "raw") };
	struct sm_plan_image_facts facts[] = {
		{ .virtual_size = 2 * GiB, .allocated = 123456789 },
	};
	struct sm_disk disk = make_disk("sdb", chain, 1);
	struct sm_plan_disk p;

	(void)state;
	assert_int_equal(sm_plan_disk(&disk, facts, "/dest", "/scratch", 1234567890123LL, &p), 0);
	assert_string_equal(p.target, "sdb");
	assert_int_equal(p.nimages, 1);
	assert_plan_image(&p.images[0], "/images/guest.raw", "/dest/guest.raw", "raw", NULL, NULL);
	assert_null(p.images[0].src_backing);
	assert_string_equal(p.src_overlay, "/scratch/guest.raw.snapmove-1234567890123.qcow2");
	assert_string_equal(p.dst_overlay, "/dest/guest.raw.snapmove-1234567890123.qcow2");
	assert_int_equal(p.virtual_size, 2 * GiB);
	assert_int_equal(sm_plan_disk_bytes(&p), 123456789ULL + MiB);
	/* Onto a device (--dest-dev): the folder keeps only the overlays. */
	p.images[0].dst_rdev = 0x700;
	assert_int_equal(sm_plan_disk_bytes(&p), MiB);
	sm_plan_disk_release(&p);
}

/* The planner works on what the chain parser produced from real XML. */
static void test_plan_from_fixture(void **state)
{
	char *xml = unit_fixture("relative-backing.xml");
	struct sm_domain_disks d;
	const struct sm_disk *vda;
	struct sm_plan_image_facts facts[] = {
		{ .backing = "../base/base.qcow2", .virtual_size = GiB, .allocated = 196608 },
		{ .backing = NULL, .virtual_size = GiB, .allocated = 200 * MiB },
	};
	struct sm_plan_disk p;

	(void)state;
	assert_int_equal(sm_chain_parse(xml, &d), 0);
	free(xml);
	vda = sm_domain_disks_find(&d, "vda");
	assert_non_null(vda);
	assert_int_equal(sm_plan_disk(vda, facts, "/new", NULL, 3, &p), 0);
	assert_int_equal(p.nimages, 2);
	assert_plan_image(&p.images[0], "/var/lib/libvirt/images/vm-relative/overlay.qcow2",
			  "/new/overlay.qcow2", "qcow2", "base.qcow2", "qcow2");
	assert_plan_image(&p.images[1], "/var/lib/libvirt/images/vm-relative/../base/base.qcow2",
			  "/new/base.qcow2", "qcow2", NULL, NULL);
	assert_string_equal(p.src_overlay,
			    "/var/lib/libvirt/images/vm-relative/overlay.qcow2.snapmove-3.qcow2");
	assert_string_equal(p.dst_overlay, "/new/overlay.qcow2.snapmove-3.qcow2");
	assert_int_equal(sm_plan_disk_bytes(&p), 196608ULL + 200 * MiB + MiB);
	sm_plan_disk_release(&p);
	sm_domain_disks_release(&d);
}

/* A refused plan returns -1 with a message and leaves nothing allocated in out. */
static void assert_plan_refused(const struct sm_disk *disk,
				const struct sm_plan_image_facts *facts, const char *dest,
				const char *what)
{
	struct sm_plan_disk p;

	sm_error_clear();
	assert_int_equal(sm_plan_disk(disk, facts, dest, dest, 5, &p), -1);
	assert_null(p.target);
	assert_null(p.images);
	assert_int_equal(p.nimages, 0);
	assert_null(p.src_overlay);
	assert_null(p.dst_overlay);
	assert_contains(sm_error_message(), what);
}

static void test_image_already_in_dest(void **state)
{
	struct sm_image chain[] = {
		IMG("/src/top.qcow2", "qcow2"),
		IMG("/dst/base.raw", "raw"),
	};
	struct sm_plan_image_facts facts[] = {
		{ .backing = "/dst/base.raw", .virtual_size = MiB },
		{ .virtual_size = MiB },
	};
	struct sm_disk disk = make_disk("vda", chain, 2);

	(void)state;
	/* The bottom image is in dest: found only after the first was planned. */
	assert_plan_refused(&disk, facts, "/dst", "already in the destination");
	assert_contains(sm_error_message(), "'/dst/base.raw'");
	assert_contains(sm_error_message(), "'vda'");

	/* The active image itself in dest. */
	disk.nchain = 1;
	assert_plan_refused(&disk, facts, "/src", "already in the destination");
	assert_contains(sm_error_message(), "'/src/top.qcow2'");
}

static void test_two_images_with_one_name(void **state)
{
	struct sm_image chain[] = {
		IMG("/a/disk.qcow2", "qcow2"),
		IMG("/a/other.qcow2", "qcow2"),
		IMG("/b/disk.qcow2", "qcow2"),
	};
	struct sm_plan_image_facts facts[] = {
		{ .backing = "other.qcow2" },
		{ .backing = "../b/disk.qcow2" },
		{ 0 },
	};
	struct sm_disk disk = make_disk("vdc", chain, 3);

	(void)state;
	assert_plan_refused(&disk, facts, "/dst", "two images named 'disk.qcow2'");
	assert_contains(sm_error_message(), "'/a/disk.qcow2'");
	assert_contains(sm_error_message(), "'/b/disk.qcow2'");
}

static void test_no_image(void **state)
{
	struct sm_disk disk = make_disk("sda", NULL, 0);

	(void)state;
	disk.device = "cdrom";
	assert_plan_refused(&disk, NULL, "/dst", "'sda' has no image");
}

static void test_overlay_path(void **state)
{
	char *p;

	(void)state;
	p = sm_plan_overlay_path("/var/lib/libvirt/images", "/var/lib/libvirt/images/vm.qcow2", 1);
	assert_string_equal(p, "/var/lib/libvirt/images/vm.qcow2.snapmove-1.qcow2");
	free(p);
	/* Only the basename of the image counts; dir may end in a slash. */
	p = sm_plan_overlay_path("/mnt/x/", "/elsewhere/disk.raw", 987654321);
	assert_string_equal(p, "/mnt/x/disk.raw.snapmove-987654321.qcow2");
	free(p);
	p = sm_plan_overlay_path("/", "plain.img", 0);
	assert_string_equal(p, "/plain.img.snapmove-0.qcow2");
	free(p);
}

/* The source overlay's folder: beside the image (NULL), the destination (its
 * own name, never the destination overlay's), or another folder. */
static void test_src_overlay_path(void **state)
{
	char *p;

	(void)state;
	p = sm_plan_src_overlay_path(NULL, "/dst", "/src/vm.qcow2", 4);
	assert_string_equal(p, "/src/vm.qcow2.snapmove-4.qcow2");
	free(p);
	p = sm_plan_src_overlay_path("/dst", "/dst", "/src/vm.qcow2", 4);
	assert_string_equal(p, "/dst/vm.qcow2.snapmove-4.src.qcow2");
	free(p);
	/* The same folder with a trailing slash is the destination still. */
	p = sm_plan_src_overlay_path("/dst/", "/dst", "/src/vm.qcow2", 4);
	assert_string_equal(p, "/dst/vm.qcow2.snapmove-4.src.qcow2");
	free(p);
	p = sm_plan_src_overlay_path("/scratch", "/dst", "/src/vm.qcow2", 4);
	assert_string_equal(p, "/scratch/vm.qcow2.snapmove-4.qcow2");
	free(p);
	p = sm_plan_src_overlay_path("/src", "/dst", "/src/vm.qcow2", 4);
	assert_string_equal(p, "/src/vm.qcow2.snapmove-4.qcow2");
	free(p);
}

static void test_disk_bytes(void **state)
{
	struct sm_plan_image images[] = {
		{ .allocated = 1000 },
		{ .allocated = 2 * GiB },
		{ .allocated = 3 },
	};
	struct sm_plan_disk p = { .target = "vda", .images = images, .nimages = 3 };

	(void)state;
	/* Every copy's allocation plus 1 MiB reserved for the destination overlay. */
	assert_int_equal(sm_plan_disk_bytes(&p), 1000ULL + 2 * GiB + 3 + MiB);
	p.nimages = 1;
	assert_int_equal(sm_plan_disk_bytes(&p), 1000ULL + MiB);
	p.nimages = 0;
	assert_int_equal(sm_plan_disk_bytes(&p), MiB);
}

/* Plan chain into dest for target, each image pointing at the next by its
 * absolute path. */
static void plan(struct sm_plan_disk *out, const char *target, const char *dest,
		 struct sm_image *chain, size_t n)
{
	struct sm_plan_image_facts facts[4] = { { 0 } };
	struct sm_disk disk = make_disk(target, chain, n);

	assert_true(n <= SM_ARRAY_LEN(facts));
	for (size_t i = 0; i + 1 < n; i++)
		facts[i].backing = chain[i + 1].path;
	if (sm_plan_disk(&disk, facts, dest, dest, 9, out) != 0) {
		print_error("planning '%s' failed: %s\n", target, sm_error_message());
		fail();
	}
}

static void release_plans(struct sm_plan_disk *plans, size_t n)
{
	for (size_t i = 0; i < n; i++)
		sm_plan_disk_release(&plans[i]);
}

/* An overlay may take no name of another overlay nor of a planned copy. */
static void test_overlay_names(void **state)
{
	struct sm_image a[] = { IMG("/src/a.qcow2", "qcow2"),
				IMG("/src/a.qcow2.snapmove-9.src.qcow2", "qcow2") };
	struct sm_image b[] = { IMG("/src/b.qcow2", "qcow2") };
	struct sm_plan_disk plans[2];

	(void)state;
	plan(&plans[0], "vda", "/dst", b, 1);
	assert_int_equal(sm_plan_check_overlays(plans, 1), 0);
	/* The old placement (beside the image) beside the new one: fine too. */
	free(plans[0].src_overlay);
	plans[0].src_overlay = sm_xstrdup("/src/b.qcow2.snapmove-9.qcow2");
	assert_int_equal(sm_plan_check_overlays(plans, 1), 0);
	/* Both overlays on one name. */
	free(plans[0].src_overlay);
	plans[0].src_overlay = sm_xstrdup(plans[0].dst_overlay);
	sm_error_clear();
	assert_int_equal(sm_plan_check_overlays(plans, 1), -1);
	assert_contains(sm_error_message(), "would both be");
	sm_plan_disk_release(&plans[0]);

	/* A backing image whose name is the overlay's. */
	plan(&plans[0], "vda", "/dst", a, 2);
	sm_error_clear();
	assert_int_equal(sm_plan_check_overlays(plans, 1), -1);
	assert_contains(sm_error_message(), "'a.qcow2.snapmove-9.src.qcow2'");
	sm_plan_disk_release(&plans[0]);

	/* Two disks, one overlay name. */
	plan(&plans[0], "vda", "/dst", b, 1);
	plan(&plans[1], "vdb", "/dst", b, 1);
	sm_error_clear();
	assert_int_equal(sm_plan_check_overlays(plans, 2), -1);
	assert_contains(sm_error_message(), "'vda' and 'vdb'");
	release_plans(plans, 2);
}

static void test_collision_shared_backing(void **state)
{
	struct sm_image a[] = { IMG("/src/a.qcow2", "qcow2"), IMG("/src/base.raw", "raw") };
	struct sm_image b[] = { IMG("/src/b.qcow2", "qcow2"), IMG("/src/base.raw", "raw") };
	struct sm_plan_disk plans[2];

	(void)state;
	plan(&plans[0], "vda", "/dst", a, 2);
	plan(&plans[1], "vdb", "/dst", b, 2);
	/* Each disk on its own is fine. */
	assert_int_equal(sm_plan_check_collisions(&plans[0], 1), 0);
	assert_int_equal(sm_plan_check_collisions(&plans[1], 1), 0);
	sm_error_clear();
	assert_int_equal(sm_plan_check_collisions(plans, 2), -1);
	assert_contains(sm_error_message(), "share the backing image '/src/base.raw'");
	assert_contains(sm_error_message(), "'vda'");
	assert_contains(sm_error_message(), "'vdb'");
	release_plans(plans, 2);
}

static void test_collision_same_name(void **state)
{
	struct sm_image a[] = { IMG("/vm1/disk.qcow2", "qcow2") };
	struct sm_image b[] = { IMG("/vm1/data.qcow2", "qcow2"), IMG("/vm1/base.raw", "raw") };
	struct sm_image c[] = { IMG("/vm2/disk.qcow2", "qcow2"), IMG("/vm2/base2.raw", "raw") };
	struct sm_plan_disk plans[3];

	(void)state;
	plan(&plans[0], "vda", "/dst", a, 1);
	plan(&plans[1], "vdb", "/dst", b, 2);
	plan(&plans[2], "vdc", "/dst", c, 2);
	assert_int_equal(sm_plan_check_collisions(plans, 2), 0);
	assert_int_equal(sm_plan_check_collisions(&plans[1], 2), 0);
	/* vda and vdc, not neighbours, both write /dst/disk.qcow2. */
	sm_error_clear();
	assert_int_equal(sm_plan_check_collisions(plans, 3), -1);
	assert_contains(sm_error_message(), "both have an image named 'disk.qcow2'");
	assert_contains(sm_error_message(), "'vda'");
	assert_contains(sm_error_message(), "'vdc'");
	assert_not_contains(sm_error_message(), "share the backing image");
	release_plans(plans, 3);
}

static void test_collision_backing_names(void **state)
{
	/* Different active images whose bottom images share a name. */
	struct sm_image a[] = { IMG("/x/a.qcow2", "qcow2"), IMG("/x/base.raw", "raw") };
	struct sm_image b[] = { IMG("/y/b.qcow2", "qcow2"), IMG("/y/base.raw", "raw") };
	struct sm_plan_disk plans[2];

	(void)state;
	plan(&plans[0], "vda", "/dst", a, 2);
	plan(&plans[1], "vdb", "/dst", b, 2);
	assert_int_equal(sm_plan_check_collisions(plans, 2), -1);
	assert_contains(sm_error_message(), "image named 'base.raw'");
	release_plans(plans, 2);
}

static void test_no_collision(void **state)
{
	struct sm_image a[] = { IMG("/x/a.qcow2", "qcow2"), IMG("/x/base-a.raw", "raw") };
	struct sm_image b[] = { IMG("/x/b.qcow2", "qcow2"), IMG("/x/base-b.raw", "raw") };
	/* Same names as a, but into another destination. */
	struct sm_image c[] = { IMG("/z/a.qcow2", "qcow2"), IMG("/z/base-a.raw", "raw") };
	struct sm_plan_disk plans[3];

	(void)state;
	plan(&plans[0], "vda", "/dst", a, 2);
	plan(&plans[1], "vdb", "/dst", b, 2);
	plan(&plans[2], "vdc", "/dst2", c, 2);
	assert_int_equal(sm_plan_check_collisions(plans, 3), 0);
	assert_int_equal(sm_plan_check_collisions(plans, 0), 0);
	release_plans(plans, 3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_relative_backing_chain),
		cmocka_unit_test(test_absolute_backing_chain),
		cmocka_unit_test(test_single_image),
		cmocka_unit_test(test_plan_from_fixture),
		cmocka_unit_test(test_image_already_in_dest),
		cmocka_unit_test(test_two_images_with_one_name),
		cmocka_unit_test(test_no_image),
		cmocka_unit_test(test_overlay_path),
		cmocka_unit_test(test_src_overlay_path),
		cmocka_unit_test(test_overlay_names),
		cmocka_unit_test(test_disk_bytes),
		cmocka_unit_test(test_collision_shared_backing),
		cmocka_unit_test(test_collision_same_name),
		cmocka_unit_test(test_collision_backing_names),
		cmocka_unit_test(test_no_collision),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
