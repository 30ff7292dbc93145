/* snapshot.h: the atomic external disk-only snapshot that starts a move.
 *
 * Every selected disk goes onto the qcow2 overlay the job made for it (the
 * plan's source overlay, in the destination folder by default; taken with
 * VIR_DOMAIN_SNAPSHOT_CREATE_REUSE_EXT, its header already naming the active
 * image and its format); every other disk of the domain is listed with
 * snapshot='no' so libvirt leaves it alone.  No libvirt snapshot metadata is
 * kept: the journal is the record.
 */
#ifndef SM_SNAPSHOT_H
#define SM_SNAPSHOT_H

#include <libvirt/libvirt.h>
#include <stdbool.h>
#include <stddef.h>

#include "chain/chain.h"
#include "chain/plan.h"

/* The <domainsnapshot> document for plans over all the domain's disks. */
char *sm_snapshot_xml(const struct sm_domain_disks *all, const struct sm_plan_disk *plans,
		      size_t nplans, long long job_id);
int sm_snapshot_create(virDomainPtr dom, const struct sm_domain_disks *all,
		       const struct sm_plan_disk *plans, size_t nplans, long long job_id,
		       bool quiesce);

#endif
