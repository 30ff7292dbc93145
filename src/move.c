/* move.c: the move state machine.  It validates, journals and sequences the
 * phases; the operations themselves live in chain/, snapshot/ and copy/.
 */
#include "move.h"
#include "chain/chain.h"
#include "chain/image.h"
#include "chain/plan.h"
#include "copy/checksum.h"
#include "copy/copy.h"
#include "run.h"
#include "snapshot/blockjob.h"
#include "snapshot/define.h"
#include "snapshot/snapshot.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

volatile int sm_move_interrupted;

/* Free space kept at the destination beyond the chain's allocated bytes. */
#define SM_SPACE_MARGIN (64ULL << 20)

struct move {
	struct sm_virt *v;
	struct sm_journal *j;
	const struct sm_move_opts *o;
	struct sm_progress *pr;
	virDomainPtr dom;
	char uuid[VIR_UUID_STRING_BUFLEN];
	bool persistent;
	char *dest;
	struct sm_domain_disks live;
	struct sm_plan_disk *plans;
	size_t nplans;
	long long job;
	/* What has been done to each disk, for the failure path. */
	bool *mirroring;
	bool *committing;
	const char *copy_label;
};

static void move_release(struct move *m)
{
	for (size_t i = 0; i < m->nplans; i++)
		sm_plan_disk_release(&m->plans[i]);
	free(m->plans);
	free(m->mirroring);
	free(m->committing);
	free(m->dest);
	sm_domain_disks_release(&m->live);
	if (m->dom)
		virDomainFree(m->dom);
}

/* ---- validation: nothing below changes anything ---- */

static int check_domain(struct move *m)
{
	SM_AUTOFREE char *xml = NULL;
	int active;

	m->dom = sm_virt_domain(m->v, m->o->domain);
	if (!m->dom)
		return -1;
	active = virDomainIsActive(m->dom);
	if (active < 0) {
		sm_virt_error("cannot tell whether domain '%s' runs", m->o->domain);
		return -1;
	}
	if (!active) {
		sm_error("domain '%s' is not running; snapmove moves the disks of running "
			 "domains (offline moves come in a later version): start it with "
			 "'virsh start %s' or copy its images while it is off",
			 m->o->domain, m->o->domain);
		return -1;
	}
	m->persistent = virDomainIsPersistent(m->dom) == 1;
	if (virDomainGetUUIDString(m->dom, m->uuid) < 0) {
		sm_virt_error("cannot read the UUID of domain '%s'", m->o->domain);
		return -1;
	}
	xml = sm_virt_domain_xml(m->dom, false);
	if (!xml || sm_chain_parse(xml, &m->live) < 0)
		return -1;
	return 0;
}

static char *disk_list(const struct sm_domain_disks *d)
{
	size_t len = 1;
	char *s;

	for (size_t i = 0; i < d->ndisks; i++)
		len += strlen(d->disks[i].target) + 2;
	s = sm_xcalloc(1, len);
	for (size_t i = 0; i < d->ndisks; i++) {
		if (i)
			strcat(s, ", ");
		strcat(s, d->disks[i].target);
	}
	return s;
}

/* Fill sel with the disks to move. */
static int select_disks(struct move *m, const struct sm_disk ***sel, size_t *nsel)
{
	const struct sm_disk **out = sm_xcalloc(m->live.ndisks + m->o->ndisks + 1, sizeof(*out));
	size_t n = 0;

	for (size_t i = 0; i < m->o->ndisks; i++) {
		const struct sm_disk *d = sm_domain_disks_find(&m->live, m->o->disks[i]);
		char *why;

		if (!d) {
			SM_AUTOFREE char *all = disk_list(&m->live);

			sm_error("domain '%s' has no disk '%s'; its disks are: %s", m->o->domain,
				 m->o->disks[i], all[0] ? all : "none");
			goto error;
		}
		why = sm_disk_unmovable_reason(d);
		if (why) {
			sm_error("%s", why);
			free(why);
			goto error;
		}
		for (size_t k = 0; k < n; k++) {
			if (out[k] == d) {
				sm_error("disk '%s' is named twice with --disk; name it once",
					 d->target);
				goto error;
			}
		}
		out[n++] = d;
	}
	if (m->o->ndisks == 0) {
		for (size_t i = 0; i < m->live.ndisks; i++)
			if (sm_disk_is_candidate(&m->live.disks[i]))
				out[n++] = &m->live.disks[i];
		if (n == 0) {
			sm_error("domain '%s' has no writable file-backed disk to move; see "
				 "'snapmove chain %s'", m->o->domain, m->o->domain);
			goto error;
		}
	}
	*sel = out;
	*nsel = n;
	return 0;

error:
	free(out);
	return -1;
}

static int check_dest(struct move *m)
{
	char resolved[PATH_MAX];
	struct stat sb;

	if (!realpath(m->o->dest, resolved)) {
		if (errno == ENOENT)
			sm_error("destination '%s' does not exist; create it first "
				 "(mkdir -p %s) or choose another --dest", m->o->dest, m->o->dest);
		else
			sm_error("cannot resolve destination '%s': %s; choose a --dest that is an "
				 "existing directory", m->o->dest, strerror(errno));
		return -1;
	}
	if (stat(resolved, &sb) < 0 || !S_ISDIR(sb.st_mode)) {
		sm_error("destination '%s' is not a directory; --dest takes the directory "
			 "the images move to", m->o->dest);
		return -1;
	}
	if (access(resolved, W_OK | X_OK) < 0) {
		if (errno == EROFS)
			sm_error("destination '%s' is on a read-only file system; remount it "
				 "read-write or choose another --dest", m->o->dest);
		else
			sm_error("destination '%s' is not writable (%s); fix its permissions or "
				 "choose another --dest", m->o->dest, strerror(errno));
		return -1;
	}
	if (geteuid() == 0 && !(sb.st_mode & S_IXOTH)) {
		sm_error("destination '%s' cannot be entered by other users (mode %04o) and "
			 "QEMU runs as its own user; 'chmod o+x %s' or choose another --dest",
			 m->o->dest, (unsigned)(sb.st_mode & 07777), m->o->dest);
		return -1;
	}
	m->dest = sm_xstrdup(resolved);
	return 0;
}

static int check_disk_free(struct move *m, const struct sm_disk *d)
{
	long long other;
	int rc;

	if (d->mirror_job) {
		sm_error("disk '%s' already has a block job running (%s); wait for it or run "
			 "'virsh blockjob %s %s --abort'", d->target, d->mirror_job,
			 m->o->domain, d->target);
		return -1;
	}
	rc = sm_blockjob_running(m->dom, d->target);
	if (rc < 0)
		return -1;
	if (rc > 0) {
		sm_error("disk '%s' already has a block job running; wait for it or run "
			 "'virsh blockjob %s %s --abort'", d->target, m->o->domain, d->target);
		return -1;
	}
	rc = sm_journal_unfinished_job_for_disk(m->j, m->uuid, d->target, &other);
	if (rc < 0)
		return -1;
	if (rc > 0) {
		sm_error("disk '%s' of domain '%s' has an unfinished snapmove job %lld; see "
			 "'snapmove status %lld'", d->target, m->o->domain, other, other);
		return -1;
	}
	return 0;
}

static unsigned long long allocated_bytes(const char *path)
{
	struct stat sb;

	return stat(path, &sb) == 0 ? (unsigned long long)sb.st_blocks * 512ULL : 0;
}

static int plan_disk(struct move *m, const struct sm_disk *d, long long job_id,
		     struct sm_plan_disk *out)
{
	struct sm_image_info *infos = sm_xcalloc(d->nchain, sizeof(*infos));
	struct sm_plan_image_facts *facts = sm_xcalloc(d->nchain, sizeof(*facts));
	int ret = -1;

	for (size_t i = 0; i < d->nchain; i++) {
		const struct sm_image *img = &d->chain[i];

		if (sm_image_info(img->path, img->format, &infos[i]) < 0)
			goto cleanup;
		facts[i].backing = infos[i].backing;
		facts[i].virtual_size = infos[i].virtual_size;
		facts[i].allocated = allocated_bytes(img->path);
		if (i + 1 < d->nchain && !infos[i].backing) {
			sm_error("image '%s' of disk '%s' has no backing file in its header but "
				 "libvirt reports '%s' below it; check the chain with 'qemu-img "
				 "info --backing-chain'", img->path, d->target, d->chain[i + 1].path);
			goto cleanup;
		}
	}
	ret = sm_plan_disk(d, facts, m->dest, job_id, out);

cleanup:
	for (size_t i = 0; i < d->nchain; i++)
		sm_image_info_release(&infos[i]);
	free(infos);
	free(facts);
	return ret;
}

static int check_dest_absent(const char *path)
{
	struct stat sb;

	if (lstat(path, &sb) == 0) {
		sm_error("destination file '%s' already exists; remove it or choose another "
			 "--dest", path);
		return -1;
	}
	return 0;
}

/* The source overlay's name is taken: a leftover of an interrupted job. */
static int check_overlay_absent(const char *path)
{
	struct stat sb;

	if (lstat(path, &sb) == 0) {
		sm_error("overlay file '%s' already exists next to the disk's image; it is "
			 "left from an earlier snapmove job (see 'snapmove list'): finish or "
			 "undo that job, or remove the file if no domain uses it", path);
		return -1;
	}
	return 0;
}

/* The planner compares directory names; libvirt may report a path such as
 * /imgs/vm/../base/b.qcow2, so compare the directories themselves too. */
static int check_not_in_dest(const char *dest, const char *target, const char *path)
{
	SM_AUTOFREE char *dir = sm_path_dirname(path);
	struct stat a, b;

	if (stat(dir, &a) == 0 && stat(dest, &b) == 0 && a.st_dev == b.st_dev &&
	    a.st_ino == b.st_ino) {
		sm_error("disk '%s' image '%s' is already in the destination '%s'; choose a "
			 "--dest that is not the source directory", target, path, dest);
		return -1;
	}
	return 0;
}

static int check_plan_files(const char *dest, const struct sm_plan_disk *p)
{
	for (size_t i = 0; i < p->nimages; i++)
		if (check_not_in_dest(dest, p->target, p->images[i].src) < 0 ||
		    check_dest_absent(p->images[i].dst) < 0)
			return -1;
	if (check_dest_absent(p->dst_overlay) < 0 || check_overlay_absent(p->src_overlay) < 0)
		return -1;
	return 0;
}

static int check_space(struct move *m, unsigned long long *need_out,
		       unsigned long long *avail_out)
{
	struct statvfs vfs;
	unsigned long long need = SM_SPACE_MARGIN, avail;
	char n[32], a[32];

	for (size_t i = 0; i < m->nplans; i++)
		need += sm_plan_disk_bytes(&m->plans[i]);
	if (statvfs(m->dest, &vfs) < 0) {
		sm_error("cannot read the free space of '%s': %s", m->dest, strerror(errno));
		return -1;
	}
	avail = (unsigned long long)vfs.f_bavail * vfs.f_frsize;
	*need_out = need;
	*avail_out = avail;
	if (avail < need) {
		sm_error("not enough free space in '%s': the move needs %s (the chains' "
			 "allocated bytes plus a 64 MiB margin) and %s is free; free space "
			 "there or choose another --dest", m->dest,
			 sm_format_bytes(need, n, sizeof(n)), sm_format_bytes(avail, a, sizeof(a)));
		return -1;
	}
	return 0;
}

static int validate(struct move *m, unsigned long long *need, unsigned long long *avail)
{
	const struct sm_disk **sel = NULL;
	size_t nsel = 0;
	long long next_id;
	int ret = -1;

	if (check_domain(m) < 0 || select_disks(m, &sel, &nsel) < 0)
		return -1;
	if (check_dest(m) < 0)
		goto cleanup;
	/* Overlay names carry the job id: plan with the id the journal will give
	 * next; open_job() renames them should another snapmove take it first. */
	if (sm_journal_next_job_id(m->j, &next_id) < 0)
		goto cleanup;
	m->plans = sm_xcalloc(nsel, sizeof(*m->plans));
	for (size_t i = 0; i < nsel; i++) {
		if (check_disk_free(m, sel[i]) < 0 ||
		    plan_disk(m, sel[i], next_id, &m->plans[i]) < 0)
			goto cleanup;
		m->nplans++;
		if (m->o->dest_format && sm_plan_set_dest_format(&m->plans[i], m->o->dest_format) < 0)
			goto cleanup;
		if (check_plan_files(m->dest, &m->plans[i]) < 0)
			goto cleanup;
	}
	if (sm_plan_check_collisions(m->plans, m->nplans) < 0 || check_space(m, need, avail) < 0)
		goto cleanup;
	ret = 0;

cleanup:
	free(sel);
	return ret;
}

/* ---- the job ---- */

/* Open the job: insert it, name the overlays after it, journal the plan, all
 * in one transaction, re-checking what another snapmove could have changed. */
static int open_job(struct move *m)
{
	struct sm_job_row row = {
		.domain_name = (char *)m->o->domain,
		.domain_uuid = m->uuid,
		.persistent = m->persistent,
		.dest_dir = m->dest,
		.bandwidth_mib = m->o->bandwidth_mib,
		.keep_overlay = m->o->keep_overlay,
		.quiesce = m->o->quiesce,
		.verify = m->o->verify,
		.dest_format = (char *)m->o->dest_format,
	};

	if (sm_journal_begin(m->j) < 0)
		return -1;
	for (size_t i = 0; i < m->nplans; i++) {
		long long other;
		int rc = sm_journal_unfinished_job_for_disk(m->j, m->uuid, m->plans[i].target,
							    &other);

		if (rc != 0) {
			if (rc > 0)
				sm_error("disk '%s' of domain '%s' has an unfinished snapmove job "
					 "%lld; see 'snapmove status %lld'", m->plans[i].target,
					 m->o->domain, other, other);
			goto error;
		}
	}
	if (sm_journal_job_insert(m->j, &row, &m->job) < 0)
		goto error;
	for (size_t i = 0; i < m->nplans; i++) {
		struct sm_plan_disk *p = &m->plans[i];
		SM_AUTOFREE char *src_dir = sm_path_dirname(p->images[0].src);

		free(p->src_overlay);
		free(p->dst_overlay);
		p->src_overlay = sm_plan_overlay_path(src_dir, p->images[0].src, m->job);
		p->dst_overlay = sm_plan_overlay_path(m->dest, p->images[0].src, m->job);
		if (check_overlay_absent(p->src_overlay) < 0 || check_dest_absent(p->dst_overlay) < 0 ||
		    sm_journal_disk_insert(m->j, m->job, p) < 0)
			goto error;
	}
	if (sm_journal_commit(m->j) < 0)
		goto error;
	return 0;

error:
	sm_journal_rollback(m->j);
	m->job = 0;
	return -1;
}

static int journal_file(struct move *m, const char *path, const char *role, const char *state)
{
	return sm_journal_file_set(m->j, m->job, path, role, state) < 0 ? -1 : 0;
}

static int journal_snapshotted(struct move *m)
{
	for (size_t i = 0; i < m->nplans; i++)
		if (journal_file(m, m->plans[i].src_overlay, "src_overlay", "created") < 0 ||
		    sm_journal_disk_set_state(m->j, m->job, m->plans[i].target,
					      SM_DISK_SNAPSHOTTED, NULL) < 0)
			return -1;
	return 0;
}

static int phase_snapshot(struct move *m)
{
	SM_AUTOFREE char *xml = NULL;
	struct sm_domain_disks now;
	int ret = -1;

	if (sm_snapshot_create(m->dom, &m->live, m->plans, m->nplans, m->job, m->o->quiesce) < 0)
		return -1;
	if (SM_JOURNAL_TX(m->j, journal_snapshotted(m)) < 0)
		return -1;
	/* Verify, don't assume: each disk now runs on its overlay over the old image. */
	xml = sm_virt_domain_xml(m->dom, false);
	if (!xml || sm_chain_parse(xml, &now) < 0)
		return -1;
	for (size_t i = 0; i < m->nplans; i++) {
		const struct sm_disk *d = sm_domain_disks_find(&now, m->plans[i].target);

		if (!d || d->nchain < 2 || !sm_str_eq(d->chain[0].path, m->plans[i].src_overlay) ||
		    !sm_str_eq(d->chain[1].path, m->plans[i].images[0].src)) {
			sm_error("after the snapshot disk '%s' does not run on '%s' over '%s'",
				 m->plans[i].target, m->plans[i].src_overlay,
				 m->plans[i].images[0].src);
			goto cleanup;
		}
	}
	ret = 0;

cleanup:
	sm_domain_disks_release(&now);
	return ret;
}

static int phase_dest_chain(struct move *m)
{
	for (size_t i = 0; i < m->nplans; i++) {
		const struct sm_plan_disk *p = &m->plans[i];

		/* Bottom up: qemu-img create opens the backing file it is given. */
		for (size_t k = p->nimages; k-- > 0;) {
			const struct sm_plan_image *img = &p->images[k];

			if (journal_file(m, img->dst, "dst_image", "creating") < 0 ||
			    sm_image_create(img->dst, img->dst_format, img->virtual_size,
					    img->dst_backing, img->dst_backing_format) < 0)
				return -1;
			if (SM_JOURNAL_TX(m->j,
				journal_file(m, img->dst, "dst_image", "created") < 0 ||
				sm_journal_image_set_state(m->j, m->job, p->target, k,
							   SM_IMAGE_CREATED, 0) < 0 ? -1 : 0) < 0)
				return -1;
		}
		if (journal_file(m, p->dst_overlay, "dst_overlay", "creating") < 0 ||
		    sm_image_create(p->dst_overlay, "qcow2", p->virtual_size, p->images[0].dst,
				    p->images[0].dst_format) < 0)
			return -1;
		if (SM_JOURNAL_TX(m->j,
			journal_file(m, p->dst_overlay, "dst_overlay", "created") < 0 ||
			sm_journal_disk_set_state(m->j, m->job, p->target, SM_DISK_DEST_CREATED,
						  NULL) < 0 ? -1 : 0) < 0)
			return -1;
	}
	return 0;
}

static int phase_mirror(struct move *m)
{
	for (size_t i = 0; i < m->nplans; i++) {
		const struct sm_plan_disk *p = &m->plans[i];

		if (sm_blockjob_mirror_start(m->v, m->dom, p->target, p->dst_overlay,
					     m->o->bandwidth_mib, m->persistent) < 0)
			return -1;
		m->mirroring[i] = true;
		if (sm_journal_disk_set_state(m->j, m->job, p->target, SM_DISK_MIRRORING,
					      NULL) < 0)
			return -1;
	}
	return 0;
}

/* What the copier's callbacks need to know. */
struct copy_ctx {
	struct move *m;
	const char *target;
	size_t depth;
};

static bool copy_progress(void *opaque, const struct sm_copy_progress *p)
{
	struct copy_ctx *cc = opaque;

	sm_progress_update(cc->m->pr, cc->m->copy_label, p->done, p->total);
	return !sm_move_interrupted;
}

static int journal_chunk(struct move *m, const char *target, size_t depth,
			 const struct sm_copy_chunk *c)
{
	struct sm_journal_chunk jc = {
		.index = c->index,
		.offset = c->offset,
		.length = c->length,
		.data_bytes = c->data_bytes,
	};

	sm_checksum_hex(c->checksum, jc.checksum);
	return SM_JOURNAL_TX(m->j, sm_journal_chunk_done(m->j, m->job, target, depth, &jc));
}

static int copy_chunk_done(void *opaque, const struct sm_copy_chunk *c)
{
	struct copy_ctx *cc = opaque;

	return journal_chunk(cc->m, cc->target, cc->depth, c);
}

static int sync_file(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int rc = fd < 0 ? -1 : fdatasync(fd);

	if (rc < 0)
		sm_error("cannot flush '%s': %s", path, strerror(errno));
	if (fd >= 0)
		close(fd);
	return rc;
}

/* The copy's header still names the source backing file: point it at the
 * destination copy, as the empty image created for the mirror does, and
 * record the first chunk's new checksum (the header lives there). */
static int rebase_copy(struct move *m, const struct sm_plan_disk *p, size_t k,
		       unsigned long long chunk_size)
{
	const struct sm_plan_image *img = &p->images[k];
	struct sm_copy_chunk c = { .index = 0, .offset = 0, .length = chunk_size };
	struct stat sb;

	if (sm_image_rebase_unsafe(img->dst, img->dst_format, img->dst_backing,
				   img->dst_backing_format) < 0 ||
	    sync_file(img->dst) < 0)
		return -1;
	if (stat(img->dst, &sb) == 0 && (unsigned long long)sb.st_size < chunk_size)
		c.length = (unsigned long long)sb.st_size;
	if (sm_copy_data_bytes_range(img->dst, 0, c.length, &c.data_bytes) < 0 ||
	    sm_copy_checksum_range(img->dst, 0, c.length, &c.checksum) < 0)
		return -1;
	return journal_chunk(m, p->target, k, &c);
}

/* A --dest-format conversion: qemu-img convert into the image created for
 * the mirror, then (with verify) qemu-img compare of the contents. */
static int convert_image(struct move *m, const struct sm_plan_disk *p, size_t k)
{
	const struct sm_plan_image *img = &p->images[k];

	if (sm_journal_image_set_method(m->j, m->job, p->target, k, "convert", 0) < 0 ||
	    sm_image_convert(img->src, img->format, img->dst, img->dst_format) < 0 ||
	    sync_file(img->dst) < 0)
		return -1;
	if (m->o->verify && sm_image_compare(img->src, img->format, img->dst, img->dst_format) < 0)
		return -1;
	return 0;
}

static int copy_image(struct move *m, const struct sm_plan_disk *p, size_t k)
{
	const struct sm_plan_image *img = &p->images[k];
	SM_AUTOFREE char *label = sm_xasprintf("copy %s %s", p->target,
					       sm_path_basename(img->src));
	struct copy_ctx cc = { .m = m, .target = p->target, .depth = k };
	struct sm_copy_ops ops = { .progress = copy_progress, .chunk_done = copy_chunk_done };
	struct sm_copy_req req = {
		.src = img->src,
		.dst = img->dst,
		.chunk_size = SM_COPY_CHUNK,
		.bandwidth = m->o->bandwidth_mib << 20,
		.verify = m->o->verify,
		.method = m->o->copy_method,
	};
	struct sm_copy_result res;
	char b[32];
	double t0 = sm_monotonic();

	if (sm_journal_image_set_state(m->j, m->job, p->target, k, SM_IMAGE_COPYING, 0) < 0)
		return -1;
	m->copy_label = label;
	sm_progress_reset_rate(m->pr, 0);
	if (!sm_str_eq(img->format, img->dst_format)) {
		if (convert_image(m, p, k) < 0)
			return -1;
		res.data_bytes = img->allocated;
		res.method = SM_COPY_METHOD_LAST;
	} else {
		if (sm_copy_run(&req, &ops, &cc, &res) < 0 ||
		    sm_journal_image_set_method(m->j, m->job, p->target, k,
						sm_copy_method_name(res.method), req.chunk_size) < 0)
			return -1;
		if (img->dst_backing && rebase_copy(m, p, k, req.chunk_size) < 0)
			return -1;
	}
	if (sm_journal_image_set_state(m->j, m->job, p->target, k, SM_IMAGE_COPIED,
				       res.data_bytes) < 0)
		return -1;
	sm_progress_say(m->pr, "  copied %s: %s in %.1f s (%s%s)", img->dst,
			sm_format_bytes(res.data_bytes, b, sizeof(b)), sm_monotonic() - t0,
			res.method == SM_COPY_METHOD_LAST ? "qemu-img convert to "
							  : sm_copy_method_name(res.method),
			res.method == SM_COPY_METHOD_LAST ? img->dst_format
			: m->o->verify ? ", verified" : "");
	return 0;
}

static int phase_copy(struct move *m)
{
	for (size_t i = 0; i < m->nplans; i++) {
		for (size_t k = 0; k < m->plans[i].nimages; k++)
			if (copy_image(m, &m->plans[i], k) < 0)
				return -1;
		if (sm_journal_disk_set_state(m->j, m->job, m->plans[i].target, SM_DISK_COPIED,
					      NULL) < 0)
			return -1;
	}
	return 0;
}

static bool job_progress(void *ctx, const char *target, unsigned long long cur,
			 unsigned long long end)
{
	struct move *m = ctx;
	SM_AUTOFREE char *label = sm_xasprintf("%s %s", m->copy_label, target);

	sm_progress_update(m->pr, label, cur, end);
	return !sm_move_interrupted;
}

static int wait_ready(struct move *m, const char *label)
{
	const char **targets = sm_xcalloc(m->nplans, sizeof(*targets));
	int rc;

	for (size_t i = 0; i < m->nplans; i++)
		targets[i] = m->plans[i].target;
	m->copy_label = label;
	sm_progress_reset_rate(m->pr, 0);
	rc = sm_blockjob_wait_ready(m->v, m->dom, targets, m->nplans, job_progress, m);
	free(targets);
	return rc;
}

static int phase_sync(struct move *m)
{
	if (wait_ready(m, "mirror") < 0)
		return -1;
	for (size_t i = 0; i < m->nplans; i++)
		if (sm_journal_disk_set_state(m->j, m->job, m->plans[i].target, SM_DISK_READY,
					      NULL) < 0)
			return -1;
	return 0;
}

static int phase_pivot(struct move *m)
{
	for (size_t i = 0; i < m->nplans; i++) {
		const struct sm_plan_disk *p = &m->plans[i];

		if (sm_blockjob_pivot(m->dom, p->target, p->dst_overlay) < 0)
			return -1;
		m->mirroring[i] = false;
		if (sm_journal_disk_set_state(m->j, m->job, p->target, SM_DISK_PIVOTED, NULL) < 0)
			return -1;
	}
	return 0;
}

static int phase_collapse(struct move *m)
{
	for (size_t i = 0; i < m->nplans; i++) {
		if (sm_blockjob_commit_start(m->v, m->dom, m->plans[i].target,
					     m->plans[i].images[0].dst, m->o->bandwidth_mib) < 0)
			return -1;
		m->committing[i] = true;
	}
	if (wait_ready(m, "commit") < 0)
		return -1;
	for (size_t i = 0; i < m->nplans; i++) {
		const struct sm_plan_disk *p = &m->plans[i];

		if (sm_blockjob_pivot(m->dom, p->target, p->images[0].dst) < 0)
			return -1;
		m->committing[i] = false;
		if (sm_journal_disk_set_state(m->j, m->job, p->target, SM_DISK_COLLAPSED,
					      NULL) < 0)
			return -1;
		if (unlink(p->dst_overlay) < 0 && errno != ENOENT) {
			sm_error("cannot remove '%s': %s", p->dst_overlay, strerror(errno));
			return -1;
		}
		if (journal_file(m, p->dst_overlay, "dst_overlay", "removed") < 0)
			return -1;
	}
	return 0;
}

static const char *final_path(const struct move *m, const struct sm_plan_disk *p)
{
	return m->o->keep_overlay ? p->dst_overlay : p->images[0].dst;
}

static int phase_finalize(struct move *m)
{
	struct sm_define_disk *defs = sm_xcalloc(m->nplans, sizeof(*defs));
	int rewritten = 0, ret = -1;

	for (size_t i = 0; i < m->nplans; i++) {
		defs[i].target = m->plans[i].target;
		defs[i].path = final_path(m, &m->plans[i]);
		defs[i].format = m->o->keep_overlay ? "qcow2" : m->plans[i].images[0].dst_format;
	}
	if (m->persistent &&
	    sm_define_sync(sm_virt_conn(m->v), m->dom, defs, m->nplans, &rewritten) < 0)
		goto cleanup;
	if (rewritten)
		sm_progress_say(m->pr, "  rewrote the persistent definition: libvirt had "
				"not pointed it at the destination");
	for (size_t i = 0; i < m->nplans; i++) {
		const struct sm_plan_disk *p = &m->plans[i];

		if (unlink(p->src_overlay) < 0 && errno != ENOENT) {
			sm_error("cannot remove the source overlay '%s': %s", p->src_overlay,
				 strerror(errno));
			goto cleanup;
		}
		if (SM_JOURNAL_TX(m->j,
			journal_file(m, p->src_overlay, "src_overlay", "removed") < 0 ||
			sm_journal_disk_set_state(m->j, m->job, p->target, SM_DISK_DONE,
						  NULL) < 0 ? -1 : 0) < 0)
			goto cleanup;
	}
	ret = 0;

cleanup:
	free(defs);
	return ret;
}

typedef int (*phase_fn)(struct move *m);

/* Test hook: when SNAPMOVE_TEST_HOOK names a program, it runs before every
 * phase as 'PROGRAM PHASE JOB'; a non-zero exit fails the phase.  Integration
 * tests use it to write guest data at exact points of a move and to make a
 * move fail after validation.  Not for production use. */
static int run_test_hook(const struct move *m, enum sm_phase phase)
{
	const char *hook = getenv("SNAPMOVE_TEST_HOOK");
	char job[32];
	const char *argv[] = { hook, sm_phase_name(phase), job, NULL };

	if (!hook || !*hook)
		return 0;
	snprintf(job, sizeof(job), "%lld", m->job);
	return sm_run(argv, NULL);
}

static int run_phase(struct move *m, enum sm_phase phase, phase_fn fn)
{
	if (sm_move_interrupted) {
		sm_error("interrupted before %s", sm_phase_describe(phase));
		return -1;
	}
	if (sm_journal_phase_start(m->j, m->job, phase) < 0)
		return -1;
	sm_progress_say(m->pr, "%s", sm_phase_describe(phase));
	if (run_test_hook(m, phase) < 0 || fn(m) < 0) {
		char msg[2048];

		snprintf(msg, sizeof(msg), "%s", sm_error_message());
		sm_journal_phase_finish(m->j, m->job, phase, msg);
		sm_error("%s", msg);
		return -1;
	}
	sm_progress_end(m->pr);
	if (sm_journal_phase_finish(m->j, m->job, phase, NULL) < 0)
		return -1;
	return 0;
}

/* After a failure: stop block jobs that would otherwise run on unattended,
 * so the domain stays on a consistent chain, and record the failure. */
static void fail_job(struct move *m)
{
	char msg[2048];

	snprintf(msg, sizeof(msg), "%s", sm_error_message());
	sm_progress_end(m->pr);
	for (size_t i = 0; i < m->nplans; i++) {
		if (m->mirroring[i] || m->committing[i]) {
			if (sm_blockjob_cancel(m->dom, m->plans[i].target) == 0)
				m->mirroring[i] = m->committing[i] = false;
			else
				sm_progress_say(m->pr, "warning: %s", sm_error_message());
		}
	}
	sm_journal_job_finish(m->j, m->job, SM_JOB_FAILED, msg);
	sm_error("%s", msg);
}

static void print_chain(const char *label, const char *target, const char *const *paths,
			const char *const *formats, size_t n)
{
	printf("  %s %s:", target, label);
	for (size_t i = 0; i < n; i++)
		printf("%s %s (%s)", i ? " <-" : "", paths[i], formats[i]);
	printf("\n");
}

static void print_plan_chain(const struct move *m, const struct sm_plan_disk *p, bool after)
{
	const char **paths = sm_xcalloc(p->nimages + 1, sizeof(*paths));
	const char **formats = sm_xcalloc(p->nimages + 1, sizeof(*formats));
	size_t n = 0;

	if (after && m->o->keep_overlay) {
		paths[n] = p->dst_overlay;
		formats[n++] = "qcow2";
	}
	for (size_t k = 0; k < p->nimages; k++) {
		paths[n] = after ? p->images[k].dst : p->images[k].src;
		formats[n++] = after ? p->images[k].dst_format : p->images[k].format;
	}
	print_chain(after ? "after " : "before", p->target, paths, formats, n);
	free(paths);
	free(formats);
}

static void print_dry_run(const struct move *m, unsigned long long need,
			  unsigned long long avail)
{
	char b[32], n[32], a[32];
	unsigned long long bytes = 0;

	printf("dry run: nothing was changed\n");
	printf("domain %s (%s), %s\n", m->o->domain, m->uuid,
	       m->persistent ? "persistent" : "transient");
	for (size_t i = 0; i < m->nplans; i++) {
		print_plan_chain(m, &m->plans[i], false);
		print_plan_chain(m, &m->plans[i], true);
		for (size_t k = 0; k < m->plans[i].nimages; k++)
			bytes += m->plans[i].images[k].allocated;
	}
	printf("bytes to copy: %s\n", sm_format_bytes(bytes, b, sizeof(b)));
	printf("destination %s: needs %s, %s free\n", m->dest,
	       sm_format_bytes(need, n, sizeof(n)), sm_format_bytes(avail, a, sizeof(a)));
}

static void print_result(const struct move *m, double seconds)
{
	SM_AUTOFREE char *xml = sm_virt_domain_xml(m->dom, false);
	struct sm_domain_disks now;

	printf("moved domain %s in %.1f s (job %lld)\n", m->o->domain, seconds, m->job);
	if (!xml || sm_chain_parse(xml, &now) < 0)
		return;
	for (size_t i = 0; i < m->nplans; i++) {
		const struct sm_disk *d = sm_domain_disks_find(&now, m->plans[i].target);
		const char **paths, **formats;

		print_plan_chain(m, &m->plans[i], false);
		if (!d)
			continue;
		paths = sm_xcalloc(d->nchain + 1, sizeof(*paths));
		formats = sm_xcalloc(d->nchain + 1, sizeof(*formats));
		for (size_t k = 0; k < d->nchain; k++) {
			paths[k] = d->chain[k].path;
			formats[k] = d->chain[k].format;
		}
		print_chain("now   ", d->target, paths, formats, d->nchain);
		free(paths);
		free(formats);
	}
	sm_domain_disks_release(&now);
}

enum sm_move_result sm_move(struct sm_virt *v, struct sm_journal *j,
			    const struct sm_move_opts *o, struct sm_progress *pr,
			    long long *job_id)
{
	static const struct {
		enum sm_phase phase;
		phase_fn fn;
	} phases[] = {
		{ SM_PHASE_SNAPSHOT, phase_snapshot },
		{ SM_PHASE_DEST_CHAIN, phase_dest_chain },
		{ SM_PHASE_MIRROR, phase_mirror },
		{ SM_PHASE_COPY, phase_copy },
		{ SM_PHASE_SYNC, phase_sync },
		{ SM_PHASE_PIVOT, phase_pivot },
		{ SM_PHASE_COLLAPSE, phase_collapse },
		{ SM_PHASE_FINALIZE, phase_finalize },
	};
	struct move m = { .v = v, .j = j, .o = o, .pr = pr };
	unsigned long long need = 0, avail = 0;
	enum sm_move_result ret = SM_MOVE_REFUSED;
	double t0 = sm_monotonic();

	*job_id = 0;
	if (validate(&m, &need, &avail) < 0)
		goto cleanup;
	if (o->dry_run) {
		print_dry_run(&m, need, avail);
		ret = SM_MOVE_OK;
		goto cleanup;
	}
	sm_virt_watch_domain(v, m.dom);
	if (open_job(&m) < 0)
		goto cleanup;
	*job_id = m.job;
	m.mirroring = sm_xcalloc(m.nplans, sizeof(*m.mirroring));
	m.committing = sm_xcalloc(m.nplans, sizeof(*m.committing));
	sm_progress_say(pr, "job %lld: moving %zu disk%s of %s to %s", m.job, m.nplans,
			m.nplans == 1 ? "" : "s", o->domain, m.dest);
	ret = SM_MOVE_FAILED;
	for (size_t i = 0; i < SM_ARRAY_LEN(phases); i++) {
		if (phases[i].phase == SM_PHASE_COLLAPSE && o->keep_overlay)
			continue;
		if (run_phase(&m, phases[i].phase, phases[i].fn) < 0) {
			fail_job(&m);
			goto cleanup;
		}
	}
	if (sm_journal_phase_start(j, m.job, SM_PHASE_DONE) < 0 ||
	    sm_journal_phase_finish(j, m.job, SM_PHASE_DONE, NULL) < 0 ||
	    sm_journal_job_finish(j, m.job, SM_JOB_DONE, NULL) < 0)
		goto cleanup;
	print_result(&m, sm_monotonic() - t0);
	ret = SM_MOVE_OK;

cleanup:
	move_release(&m);
	return ret;
}
