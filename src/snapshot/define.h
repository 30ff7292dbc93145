/* define.h: keep a persistent domain's definition pointing at the chain the
 * domain really runs on.  libvirt usually rewrites it on pivot; snapmove
 * verifies and rewrites it when it did not.
 */
#ifndef SM_DEFINE_H
#define SM_DEFINE_H

#include <libvirt/libvirt.h>
#include <stdbool.h>
#include <stddef.h>

struct sm_define_disk {
	const char *target;
	const char *path;    /* active image the definition must name */
	const char *format;
	bool check_backing;  /* a recorded <backingStore> must name backing */
	const char *backing; /* the image below path, NULL for none */
};

/* Rewrite <source file>, <driver type> and drop stale <backingStore> of each
 * disk in xml (<disk type='block'> <source dev> when the path is a block
 * device: a move undone back onto it); returns a new document, or NULL with
 * an error. */
char *sm_define_rewrite_xml(const char *xml, const struct sm_define_disk *disks, size_t n);
/* Make the persistent definition match; *rewritten tells whether it had to. */
int sm_define_sync(virConnectPtr conn, virDomainPtr dom, const struct sm_define_disk *disks,
		   size_t n, int *rewritten);

#endif
