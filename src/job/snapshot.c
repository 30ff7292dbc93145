/* snapshot.c: the phases snapshot (the atomic external snapshot onto the
 * source overlays) and dest_chain (the destination images and overlay).
 */
#include "job/internal.h"
#include "job/destdev.h"
#include "chain/image.h"
#include "events.h"
#include "snapshot/blockjob.h"
#include "snapshot/snapshot.h"
#include "srcfile.h"
#include "util.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

/* ---- snapshot ---- */

static int journal_snapshotted(struct sm_jobctx *c)
{
	for (size_t i = 0; i < c->nplans; i++)
		if (sm_journal_file_put(c->j, c->job, c->plans[i].src_overlay, SM_FILE_SRC_OVERLAY,
					SM_FILE_CREATED) < 0 ||
		    sm_srcfile_snapshotted(c->j, c->job, c->plans[i].target,
					   c->disks[i].src_dev ? NULL : c->plans[i].src_overlay) < 0 ||
		    sm_journal_disk_set_state(c->j, c->job, c->plans[i].target,
					      SM_DISK_SNAPSHOTTED, NULL) < 0)
			return -1;
	return 0;
}

/* A source overlay file of ours left by an earlier attempt (made before a
 * snapshot that failed or was not taken, or an abort that committed back,
 * then a resume) must go before it is made again. */
static int clear_stale_overlay(struct sm_jobctx *c, size_t i)
{
	enum sm_file_state state;
	struct stat sb;
	int rc;

	if (lstat(c->plans[i].src_overlay, &sb) < 0)
		return 0;
	rc = sm_job_file_state(c, c->plans[i].src_overlay, &state);
	if (rc < 0)
		return -1;
	/* "creating": claimed with O_EXCL, then a crash before the journal said so. */
	if (rc == 0 || (state != SM_FILE_CREATED && state != SM_FILE_CREATING)) {
		sm_error("overlay file '%s' exists and job %lld did not create it; remove it "
			 "if no domain uses it, then resume", c->plans[i].src_overlay, c->job);
		return -1;
	}
	return sm_job_clear_file(c, c->plans[i].src_overlay, SM_FILE_SRC_OVERLAY);
}

/* Make disk i's source overlay, empty over the active image, before the
 * snapshot takes it (VIR_DOMAIN_SNAPSHOT_CREATE_REUSE_EXT): claimed as every
 * file snapmove makes (O_CREAT|O_EXCL|O_NOFOLLOW, written through the fd,
 * identity journaled), because its folder is by default the destination,
 * which another user may be able to write.  Its header is what libvirt
 * would write: the active image's path and format as libvirt names them.
 * The active image's owner and mode, as the copies. */
static int create_src_overlay(struct sm_jobctx *c, size_t i)
{
	const struct sm_plan_disk *p = &c->plans[i];
	struct stat like;
	int fd;

	if (c->disks[i].src_dev)
		return sm_job_follow_size(c, i) < 0 ? -1
		       : sm_job_ovdev_format(c, p->src_overlay, SM_FILE_SRC_OVERLAY,
					     p->images[0].src, p->images[0].format,
					     p->virtual_size);
	if (clear_stale_overlay(c, i) < 0 || sm_job_follow_size(c, i) < 0)
		return -1;
	if (stat(p->images[0].src, &like) < 0) {
		sm_error("cannot read '%s': %s", p->images[0].src, strerror(errno));
		return -1;
	}
	if (sm_job_file(c, p->src_overlay, SM_FILE_SRC_OVERLAY, SM_FILE_CREATING) < 0)
		return -1;
	fd = sm_image_create_fd(p->src_overlay, "qcow2", p->virtual_size, p->images[0].src,
				p->images[0].format, &like);
	if (fd < 0)
		return -1;
	sm_job_hold_file(c, p->src_overlay, fd);
	return sm_job_file_made(c, p->src_overlay, SM_FILE_SRC_OVERLAY, fd);
}

/* libvirt and QEMU opened each overlay by its name: it must still be the
 * file made above, not one another user put in its place meanwhile. */
static int check_overlays_ours(struct sm_jobctx *c)
{
	for (size_t i = 0; i < c->nplans; i++) {
		int fd;

		if (c->disks[i].src_dev) {
			if (sm_job_ovdev_check(c, c->plans[i].src_overlay) < 0)
				return -1;
			continue;
		}
		fd = sm_job_dest_fd(c, c->plans[i].src_overlay, c->plans[i].images[0].src);

		if (fd < 0 || sm_job_still_named(c, c->plans[i].src_overlay, fd) < 0)
			return -1;
	}
	return 0;
}

int sm_job_phase_snapshot(struct sm_jobctx *c)
{
	SM_AUTOFREE char *xml = NULL;
	struct sm_domain_disks now = { 0 };
	size_t todo = 0;
	int ret = -1;

	for (size_t i = 0; i < c->nplans; i++)
		todo += c->disks[i].state == SM_DISK_PLANNED;
	if (todo == 0)
		return 0;
	if (todo != c->nplans) {
		sm_error("some disks of job %lld are on their overlay and some are not; the "
			 "snapshot was atomic, so something else changed them: check "
			 "'snapmove chain %s'", c->job, c->domain_name);
		return -1;
	}
	for (size_t i = 0; i < c->nplans; i++)
		if (create_src_overlay(c, i) < 0)
			return -1;
	sm_crash_point("snapshot:made");
	if (sm_snapshot_create(c->dom, &c->live, c->plans, c->nplans, c->job, c->quiesce) < 0)
		return -1;
	c->acted = true;
	sm_crash_point("snapshot:unjournaled");
	if (SM_JOURNAL_TX(c->j, journal_snapshotted(c)) < 0 || check_overlays_ours(c) < 0)
		return -1;
	/* Verify, don't assume: each disk now runs on its overlay over the old image. */
	xml = sm_virt_domain_xml(c->dom, false);
	if (!xml || sm_chain_parse(xml, &now) < 0)
		return -1;
	for (size_t i = 0; i < c->nplans; i++) {
		const struct sm_disk *d = sm_domain_disks_find(&now, c->plans[i].target);

		c->disks[i].state = SM_DISK_SNAPSHOTTED;
		if (!d || d->nchain < 2 || !sm_str_eq(d->chain[0].path, c->plans[i].src_overlay) ||
		    !sm_str_eq(d->chain[1].path, c->plans[i].images[0].src)) {
			sm_error("after the snapshot disk '%s' does not run on '%s' over '%s'",
				 c->plans[i].target, c->plans[i].src_overlay,
				 c->plans[i].images[0].src);
			goto cleanup;
		}
	}
	ret = 0;

cleanup:
	sm_domain_disks_release(&now);
	return ret;
}

/* ---- destination chain ---- */

/* A destination image exists and is ours (the journal says we made it). */
static int ours_exists(struct sm_jobctx *c, const char *path, bool *exists)
{
	enum sm_file_state state;
	struct stat sb;
	int rc;

	*exists = lstat(path, &sb) == 0;
	if (!*exists)
		return 0;
	rc = sm_job_file_state(c, path, &state);
	if (rc < 0)
		return -1;
	/* "creating": claimed with O_EXCL, then a crash before the journal said so. */
	if (rc == 0 || (state != SM_FILE_CREATED && state != SM_FILE_CREATING)) {
		sm_error("destination file '%s' exists and job %lld did not create it; remove "
			 "it or abort the job", path, c->job);
		return -1;
	}
	return 0;
}

/* A copy onto a device (--dest-dev): the device checked again (the one
 * journaled, held by no one), an empty qcow2 written on it; never created. */
static int create_on_device(struct sm_jobctx *c, size_t i, size_t k)
{
	const struct sm_plan_image *img = &c->plans[i].images[k];
	int fd = sm_destdev_open(img->dst, img->dst_rdev);

	if (fd < 0)
		return -1;
	if (sm_image_format_device(img->dst, img->dst_format, img->virtual_size) < 0) {
		close(fd);
		return -1;
	}
	close(fd);
	return sm_journal_image_set_state(c->j, c->job, c->plans[i].target, k, SM_IMAGE_CREATED,
					  0);
}

static int create_image(struct sm_jobctx *c, size_t i, size_t k)
{
	const struct sm_plan_image *img = &c->plans[i].images[k];
	struct stat like;
	bool exists;
	int fd;

	if (img->dst_rdev)
		return create_on_device(c, i, k);
	if (ours_exists(c, img->dst, &exists) < 0)
		return -1;
	if (exists)
		return 0;
	if (stat(img->src, &like) < 0) {
		sm_error("cannot read '%s': %s", img->src, strerror(errno));
		return -1;
	}
	if (sm_job_file(c, img->dst, SM_FILE_DST_IMAGE, SM_FILE_CREATING) < 0)
		return -1;
	fd = sm_image_create_fd(img->dst, img->dst_format, img->virtual_size, img->dst_backing,
				img->dst_backing_format, &like);
	if (fd < 0)
		return -1;
	sm_job_hold_file(c, img->dst, fd);
	return SM_JOURNAL_TX(c->j,
		sm_job_file_made(c, img->dst, SM_FILE_DST_IMAGE, fd) < 0 ||
		sm_journal_image_set_state(c->j, c->job, c->plans[i].target, k, SM_IMAGE_CREATED,
					   0) < 0 ? -1 : 0);
}

/* The size of disk i now (virsh blockresize may have changed it since the
 * plan: QEMU refuses it while a block job runs, not between jobs).  The
 * overlays follow it: a mirror onto a target of another size fails at
 * once.  The change is said and journaled. */
int sm_job_follow_size(struct sm_jobctx *c, size_t i)
{
	struct sm_plan_disk *p = &c->plans[i];
	virDomainBlockInfo info;
	char was[32], now[32];
	SM_AUTOFREE char *why = NULL;

	if (!c->dom || !c->running)
		return 0;
	if (virDomainGetBlockInfo(c->dom, p->target, &info, 0) < 0) {
		sm_virt_error("cannot read the size of disk '%s'", p->target);
		return -1;
	}
	if (info.capacity == p->virtual_size)
		return 0;
	why = sm_xasprintf("disk '%s' was resized from %s to %s during the move (virsh "
			   "blockresize); its destination overlay follows the new size", p->target,
			   sm_format_bytes(p->virtual_size, was, sizeof(was)),
			   sm_format_bytes(info.capacity, now, sizeof(now)));
	sm_progress_say(c->pr, "  %s", why);
	sm_event_warning(c->job, p->target, why);
	p->virtual_size = info.capacity;
	return sm_journal_disk_set_size(c->j, c->job, p->target, info.capacity);
}

/* An earlier attempt made disk i's destination overlay (a journal row): no
 * block node QEMU still has may hold it before it is made again.  A node a
 * failed or lost mirror left (libvirt did not blockdev-del it) would keep
 * the old file, deleted, with QEMU's write lock, and the new mirror or
 * commit would fail on that lock.  Asked of QEMU only on that path. */
static int check_no_node(struct sm_jobctx *c, size_t i)
{
	const struct sm_plan_disk *p = &c->plans[i];
	enum sm_file_state state;
	SM_AUTOFREE char *nodes = NULL;
	int rc;

	if (!c->dom || !c->running || sm_job_file_state(c, p->dst_overlay, &state) <= 0)
		return 0;
	rc = sm_blockjob_qemu_nodes(c->dom, p->dst_overlay, &nodes);
	if (rc <= 0)
		return rc;
	sm_error("QEMU still has the destination overlay '%s' of disk '%s' open as block node "
		 "'%s' (left by an earlier mirror that libvirt did not remove), so job %lld "
		 "cannot make it again: remove each node with 'virsh qemu-monitor-command %s "
		 "'{\"execute\":\"blockdev-del\",\"arguments\":{\"node-name\":\"NODE\"}}'' "
		 "(the format node first), then run 'snapmove resume %lld'", p->dst_overlay,
		 p->target, nodes, c->job, c->domain_name, c->job);
	return -1;
}

/* (Re)create the destination overlay: a new, empty mirror target. */
int sm_job_create_dst_overlay(struct sm_jobctx *c, size_t i)
{
	const struct sm_plan_disk *p = &c->plans[i];
	struct stat like;
	bool exists;
	int fd, ret;

	if (c->disks[i].dst_dev) {
		/* A device: written anew; after a pivot that may have happened
		 * it may hold the guest's writes, and there is no aside. */
		if (c->disks[i].pivoting) {
			sm_error("a pivot of disk '%s' was under way when snapmove stopped and the "
				 "domain now runs on its source overlay; the destination overlay "
				 "device '%s' may hold writes made after that pivot, so job %lld "
				 "does not write over it: copy what you need from it, then run "
				 "'snapmove abort %lld'", p->target, p->dst_overlay, c->job, c->job);
			return -1;
		}
		return check_no_node(c, i) < 0 ? -1
		       : sm_job_ovdev_format(c, p->dst_overlay, SM_FILE_DST_OVERLAY,
					     p->images[0].dst, p->images[0].dst_format,
					     p->virtual_size);
	}
	if (ours_exists(c, p->dst_overlay, &exists) < 0 || check_no_node(c, i) < 0)
		return -1;
	if (exists && c->disks[i].pivoting) {
		/* A pivot was under way when snapmove stopped: if it happened, this
		 * overlay got the guest's writes since.  Keep it. */
		SM_AUTOFREE char *kept = sm_xasprintf("%s.kept", p->dst_overlay);
		SM_AUTOFREE char *why = NULL;

		if (rename(p->dst_overlay, kept) < 0) {
			sm_error("cannot keep '%s' aside: %s", p->dst_overlay, strerror(errno));
			return -1;
		}
		if (sm_job_file(c, kept, SM_FILE_KEPT_OVERLAY, SM_FILE_CREATED) < 0)
			return -1;
		why = sm_xasprintf("a pivot of disk '%s' was under way when snapmove stopped and "
				   "the domain now runs on its source overlay; the destination "
				   "overlay, which may hold writes made after that pivot, is kept "
				   "as '%s'", p->target, kept);
		sm_progress_say(c->pr, "warning: %s", why);
		sm_event_warning(c->job, p->target, why);
		c->disks[i].pivoting = false;
		if (sm_journal_disk_set_pivoting(c->j, c->job, p->target, false) < 0)
			return -1;
	} else if (exists && sm_job_clear_file(c, p->dst_overlay, SM_FILE_DST_OVERLAY) < 0) {
		return -1;
	}
	/* Owner and mode of the source overlay; QEMU alone writes it. */
	if (stat(p->src_overlay, &like) < 0) {
		sm_error("cannot read '%s': %s", p->src_overlay, strerror(errno));
		return -1;
	}
	if (sm_job_file(c, p->dst_overlay, SM_FILE_DST_OVERLAY, SM_FILE_CREATING) < 0)
		return -1;
	fd = sm_image_create_fd(p->dst_overlay, "qcow2", p->virtual_size, p->images[0].dst,
				p->images[0].dst_format, &like);
	if (fd < 0)
		return -1;
	ret = sm_job_file_made(c, p->dst_overlay, SM_FILE_DST_OVERLAY, fd);
	close(fd);
	return ret;
}

int sm_job_dest_chain_disk(struct sm_jobctx *c, size_t i)
{
	/* Bottom up: qemu-img create opens the backing file it is given. */
	for (size_t k = c->plans[i].nimages; k-- > 0;)
		if (create_image(c, i, k) < 0)
			return -1;
	return 0;
}

int sm_job_phase_dest_chain(struct sm_jobctx *c)
{
	for (size_t i = 0; i < c->nplans; i++) {
		if (!sm_job_todo(c, i, SM_DISK_SNAPSHOTTED, SM_DISK_DEST_CREATED))
			continue;
		if (sm_job_dest_chain_disk(c, i) < 0 ||
		    sm_job_disk_state(c, i, SM_DISK_DEST_CREATED) < 0)
			sm_job_disk_fail(c, i);
	}
	return 0;
}
