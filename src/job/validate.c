/* validate.c: the checks of 'snapmove move' and its plan: nothing here
 * changes anything (move.c opens the job and runs it).
 */
#include "job/validate.h"
#include "provision.h"
#include "chain/image.h"
#include "job/destdev.h"
#include "pool.h"
#include "provision.h"
#include "job/reconcile.h"
#include "snapshot/blockjob.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/statvfs.h>
#include <unistd.h>

/* Free space kept at the destination beyond the chain's allocated bytes. */
#define SM_SPACE_MARGIN (64ULL << 20)

void sm_move_release(struct move *m)
{
	for (size_t i = 0; i < m->nplans; i++)
		sm_plan_disk_release(&m->plans[i]);
	free(m->plans);
	free(m->dest);
	free(m->overlay_dir);
	free(m->overlay_prov);
	free(m->pool_dir);
	sm_domain_disks_release(&m->live);
	sm_usage_release(&m->usage);
	sm_srcfiles_free(m->srcs, m->nsrcs);
	sm_provdevs_free(m->provdevs, m->nplans);
	free(m->prov);
	free(m->prov_settings);
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
	if (!active && !m->o->offline) {
		sm_error("domain '%s' is not running; move it offline with --offline, or start "
			 "it ('virsh start %s') to move it live", m->o->domain, m->o->domain);
		return -1;
	}
	if (active && m->o->offline) {
		sm_error("domain '%s' is running; --offline is for shut-off domains: leave "
			 "--offline out to move it live", m->o->domain);
		return -1;
	}
	m->persistent = virDomainIsPersistent(m->dom) == 1;
	if (virDomainGetUUIDString(m->dom, m->uuid) < 0) {
		sm_virt_error("cannot read the UUID of domain '%s'", m->o->domain);
		return -1;
	}
	xml = sm_virt_domain_xml(m->dom, m->o->offline);
	if (!xml || sm_chain_parse(xml, &m->live) < 0)
		return -1;
	/* libvirt's own XML: the agent's channel, as libvirt writes it. */
	if (m->o->trim && !strstr(xml, "name='org.qemu.guest_agent.0'")) {
		sm_error("domain '%s' has no guest agent channel, so --trim cannot ask the guest "
			 "to trim; add <channel type='unix'><target type='virtio' "
			 "name='org.qemu.guest_agent.0'/></channel> and run qemu-guest-agent in "
			 "the guest, or leave --trim out", m->o->domain);
		return -1;
	}
	/* A definition names only the top image: the headers tell the rest (a
	 * device's too: one with a chain below is refused for that). */
	for (size_t i = 0; m->o->offline && i < m->live.ndisks; i++) {
		struct sm_disk *d = &m->live.disks[i];
		char *why;

		/* An encrypted one is refused for that (sm_disk_unmovable_reason). */
		if (!sm_str_eq(d->device, "disk") || d->nchain == 0 || d->readonly ||
		    (!sm_str_eq(d->chain[0].type, "file") && !sm_disk_on_device(d)) ||
		    d->encryption)
			continue;
		why = sm_image_follow_chain(d);
		if (!why)
			continue;
		d->chain_known = false;  /* not a candidate */
		for (size_t k = 0; k < m->o->ndisks; k++) {
			if (sm_str_eq(d->target, m->o->disks[k])) {
				sm_error("disk '%s': %s", d->target, why);
				free(why);
				return -1;
			}
		}
		free(why);
	}
	return 0;
}

/* Snapshot and checkpoint metadata: refused (sm_virt_metadata_reason). */
static int check_metadata(const struct move *m)
{
	char *why = NULL;
	int r = sm_virt_metadata_reason(m->dom, m->o->domain, &why);

	if (r > 0) {
		sm_error("%s", why);
		free(why);
	}
	return r == 0 ? 0 : -1;
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

static const char *dest_arg(const struct move *m)
{
	return m->pool_dir ? m->pool_dir : m->o->dest;
}

/* The provisioner of the destination devices: --dest-provisioner, or the
 * lvm one in a logical --dest-pool's volume group (then --dest holds the
 * overlays); checked as a hook is, before anything changes. */
static int check_provisioner(struct move *m)
{
	const char *settings = m->o->dest_settings ? m->o->dest_settings : "";
	SM_AUTOFREE char *vg = NULL;

	if (m->o->dest_pool) {
		SM_AUTOFREE char *dir = NULL;

		if (sm_pool_dest_dir(sm_virt_conn(m->v), m->o->dest_pool, &dir) == 0) {
			if (m->o->dest) {
				sm_error("storage pool '%s' is a folder: give --dest-pool or --dest, "
					 "not both (both only with a logical pool, whose volumes "
					 "take the disks while --dest takes the overlays)",
					 m->o->dest_pool);
				return -1;
			}
			if (*settings) {
				sm_error("--set is for a provisioner and storage pool '%s' is a "
					 "folder; leave --set out", m->o->dest_pool);
				return -1;
			}
			return 0;
		}
		/* Not a folder pool: a logical one, or refused as a folder pool
		 * would be (missing, inactive, of another type). */
		{
			char *err = sm_error_preserve();

			if (sm_pool_logical_vg(sm_virt_conn(m->v), m->o->dest_pool, &vg) < 0) {
				sm_error_restore(&err);
				return -1;
			}
			free(err);
		}
		if (!m->o->dest) {
			sm_error("storage pool '%s' is a logical pool: its volumes take the disks' "
				 "images, and the overlays need a folder; add --dest DIR",
				 m->o->dest_pool);
			return -1;
		}
		if (strstr(settings, "SNAPMOVE_LVM_VG=")) {
			sm_error("--dest-pool '%s' sets LVM_VG itself; leave --set LVM_VG out",
				 m->o->dest_pool);
			return -1;
		}
		m->prov_settings = sm_xasprintf("%s%sSNAPMOVE_LVM_VG=%s", settings,
						*settings ? "\n" : "", vg);
		if (!sm_journal_device_settings_ok(m->prov_settings)) {
			sm_error("storage pool '%s' names the volume group '%s', which is not one a "
				 "provisioner can be given", m->o->dest_pool, vg);
			return -1;
		}
		m->prov = sm_provision_resolve("lvm", NULL);
	} else if (m->o->dest_provisioner) {
		m->prov_settings = sm_xstrdup(settings);
		m->prov = sm_provision_resolve(m->o->dest_provisioner, NULL);
	} else {
		return 0;
	}
	if (!m->prov || sm_provision_check_program(m->prov) < 0)
		return -1;
	return 0;
}

static int check_dest(struct move *m)
{
	char resolved[PATH_MAX];
	struct stat sb;

	if (check_provisioner(m) < 0)
		return -1;
	if (m->o->dest_pool && !m->prov) {
		SM_AUTOFREE char *dir = NULL;

		if (sm_pool_dest_dir(sm_virt_conn(m->v), m->o->dest_pool, &dir) < 0)
			return -1;
		/* From here on the pool's directory is the destination. */
		free(m->pool_dir);
		m->pool_dir = sm_steal(&dir);
	}
	if (!realpath(dest_arg(m), resolved)) {
		if (errno == ENOENT)
			sm_error("destination '%s' does not exist; create it first "
				 "(mkdir -p %s) or choose another --dest", dest_arg(m), dest_arg(m));
		else
			sm_error("cannot resolve destination '%s': %s; choose a --dest that is an "
				 "existing directory", dest_arg(m), strerror(errno));
		return -1;
	}
	if (stat(resolved, &sb) < 0 || !S_ISDIR(sb.st_mode)) {
		sm_error("destination '%s' is not a directory; --dest takes the directory "
			 "the images move to", dest_arg(m));
		return -1;
	}
	if (access(resolved, W_OK | X_OK) < 0) {
		if (errno == EROFS)
			sm_error("destination '%s' is on a read-only file system; remount it "
				 "read-write or choose another --dest", dest_arg(m));
		else
			sm_error("destination '%s' is not writable (%s); fix its permissions or "
				 "choose another --dest", dest_arg(m), strerror(errno));
		return -1;
	}
	if (geteuid() == 0 && !(sb.st_mode & S_IXOTH)) {
		sm_error("destination '%s' cannot be entered by other users (mode %04o) and "
			 "QEMU runs as its own user; 'chmod o+x %s' or choose another --dest",
			 dest_arg(m), (unsigned)(sb.st_mode & 07777), dest_arg(m));
		return -1;
	}
	m->dest = sm_xstrdup(resolved);
	return 0;
}

/* --overlay-dir: the folder that takes the guest's writes during the move
 * (the source overlays).  By default the destination: then the move writes
 * nothing to the source storage but what the snapshot's metadata needs. */
static int check_overlay_dir(struct move *m)
{
	const char *dir = m->o->overlay_dir;
	char resolved[PATH_MAX];
	struct stat sb, db;

	if (!dir) {
		m->overlay_dir = sm_xstrdup(m->dest);
		return 0;
	}
	if (dir[0] != '/') {
		sm_error("overlay folder '%s' is not an absolute path; give --overlay-dir as "
			 "/path/to/folder", dir);
		return -1;
	}
	if (!realpath(dir, resolved) || stat(resolved, &sb) < 0) {
		sm_error("overlay folder '%s' cannot be used (%s); create it first (mkdir -p %s) "
			 "or choose another --overlay-dir", dir, strerror(errno), dir);
		return -1;
	}
	if (!S_ISDIR(sb.st_mode)) {
		sm_error("overlay folder '%s' is not a directory; --overlay-dir takes the folder "
			 "the temporary overlays go into", dir);
		return -1;
	}
	if (access(resolved, W_OK | X_OK) < 0) {
		sm_error("overlay folder '%s' is not writable (%s); fix its permissions or choose "
			 "another --overlay-dir", dir, strerror(errno));
		return -1;
	}
	if (geteuid() == 0 && !(sb.st_mode & S_IXOTH)) {
		sm_error("overlay folder '%s' cannot be entered by other users (mode %04o) and "
			 "QEMU runs as its own user; 'chmod o+x %s' or choose another "
			 "--overlay-dir", dir, (unsigned)(sb.st_mode & 07777), dir);
		return -1;
	}
	/* The destination reached by another name: one folder, one naming. */
	if (stat(m->dest, &db) == 0 && db.st_dev == sb.st_dev && db.st_ino == sb.st_ino)
		m->overlay_dir = sm_xstrdup(m->dest);
	else
		m->overlay_dir = sm_xstrdup(resolved);
	return 0;
}

/* --overlay-provisioner: a program that may run as root (checked again
 * before each run); the overlays on its devices then take no room in the
 * destination folder. */
static int check_overlay_prov(struct move *m)
{
	if (!m->o->overlay_provisioner)
		return 0;
	m->overlay_prov = sm_provision_resolve(m->o->overlay_provisioner, NULL);
	if (!m->overlay_prov || sm_provision_check_program(m->overlay_prov) < 0)
		return -1;
	if (m->o->overlay_settings && !sm_journal_device_settings_ok(m->o->overlay_settings)) {
		sm_error("provisioner settings must be SNAPMOVE_NAME=VALUE lines");
		return -1;
	}
	return 0;
}

/* The overlay is a file: never in the folder of a device it sits over
 * (/dev is a memory file system that is not storage). */
static int check_overlay_not_dev(const struct move *m, const struct sm_disk *const *sel,
				 size_t nsel)
{
	struct stat a, b;

	for (size_t i = 0; i < nsel; i++) {
		SM_AUTOFREE char *dir = NULL;

		if (!sm_disk_on_device(sel[i]))
			continue;
		dir = sm_path_dirname(sel[i]->chain[0].path);
		if (stat(dir, &a) == 0 && stat(m->overlay_dir, &b) == 0 && a.st_dev == b.st_dev) {
			sm_error("overlay folder '%s' is on the file system of the device '%s' of "
				 "disk '%s', which holds device nodes, not images; choose an "
				 "--overlay-dir on storage, or leave it out (the destination)",
				 m->overlay_dir, sel[i]->chain[0].path, sel[i]->target);
			return -1;
		}
	}
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
	rc = m->o->offline ? 0 : sm_blockjob_running(m->dom, d->target);
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
		sm_error("disk '%s' of domain '%s' has an unfinished snapmove job %lld; finish "
			 "it with 'snapmove resume %lld' or undo it with 'snapmove abort %lld'",
			 d->target, m->o->domain, other, other, other);
		return -1;
	}
	return 0;
}

/* A device has no allocation to count: its size is the most its image
 * can hold, and what the destination must have room for. */
static unsigned long long allocated_bytes(const char *path)
{
	unsigned long long size = 0;
	struct stat sb;
	int fd;

	if (stat(path, &sb) < 0)
		return 0;
	if (!S_ISBLK(sb.st_mode))
		return (unsigned long long)sb.st_blocks * 512ULL;
	fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd >= 0) {
		if (ioctl(fd, BLKGETSIZE64, &size) < 0)
			size = 0;
		close(fd);
	}
	return size;
}

/* Who uses which image: every domain's chains, and the backing references
 * among the files of the selected disks' source directories. */
static int scan_usage(struct move *m, const struct sm_disk *const *sel, size_t nsel)
{
	if (m->o->copy_shared)
		return 0;
	if (sm_usage_scan_domains(sm_virt_conn(m->v), &m->usage) < 0)
		return -1;
	for (size_t i = 0; i < nsel; i++) {
		for (size_t k = 0; k < sel[i]->nchain; k++) {
			SM_AUTOFREE char *dir = sm_path_dirname(sel[i]->chain[k].path);

			/* A device's folder (/dev) holds no image headers. */
			if (sm_disk_on_device(sel[i]))
				continue;
			if (sm_usage_scan_dir(dir, &m->usage) < 0)
				return -1;
		}
	}
	return 0;
}

static int plan_disk(struct move *m, const struct sm_disk *d, long long job_id,
		     struct sm_plan_disk *out)
{
	struct sm_image_info *infos = sm_xcalloc(d->nchain, sizeof(*infos));
	struct sm_plan_image_facts *facts = sm_xcalloc(d->nchain, sizeof(*facts));
	int ret = -1;

	/* The chain acted on is libvirt's (live) or the headers' with pinned
	 * formats (offline), and every header must agree with it. */
	char *why = sm_image_check_chain(d, m->o->offline, infos);

	if (why) {
		sm_error("%s", why);
		free(why);
		goto cleanup;
	}
	for (size_t i = 0; i < d->nchain; i++) {
		const struct sm_image *img = &d->chain[i];

		facts[i].backing = infos[i].backing;
		facts[i].virtual_size = infos[i].virtual_size;
		facts[i].allocated = allocated_bytes(img->path);
		if (!m->o->copy_shared)
			facts[i].shared = sm_usage_other_than_disk(&m->usage, img->path,
								   m->o->domain, d);
		if (infos[i].encrypted) {
			sm_error("disk '%s' image '%s' is encrypted; snapmove cannot encrypt the "
				 "overlays it makes with the disk's secret, so it does not move "
				 "encrypted disks: leave it out of --disk and move it with 'virsh "
				 "blockcopy' and an <encryption> element in the destination XML",
				 d->target, img->path);
			goto cleanup;
		}
	}
	ret = sm_plan_disk(d, facts, m->dest, m->overlay_dir, job_id, out);

cleanup:
	for (size_t i = 0; i < d->nchain; i++)
		sm_image_info_release(&infos[i]);
	free(infos);
	free(facts);
	return ret;
}

int sm_move_check_dest_absent(const char *path)
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
int sm_move_check_overlay_absent(const char *path)
{
	struct stat sb;

	if (lstat(path, &sb) == 0) {
		sm_error("overlay file '%s' already exists; it is left from an earlier snapmove "
			 "job (see 'snapmove list'): finish or undo that job, or remove the file "
			 "if no domain uses it", path);
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

/* provisioned: the image goes onto a device a provisioner makes (its dst
 * names no file). */
static int check_plan_files(const char *dest, const struct sm_plan_disk *p, bool provisioned)
{
	for (size_t i = 0; i < p->nimages; i++)
		if (check_not_in_dest(dest, p->target, p->images[i].src) < 0 ||
		    (!p->images[i].dst_rdev && !provisioned &&
		     sm_move_check_dest_absent(p->images[i].dst) < 0))
			return -1;
	if (sm_move_check_dest_absent(p->dst_overlay) < 0 || sm_move_check_overlay_absent(p->src_overlay) < 0)
		return -1;
	return 0;
}

static int check_space(struct move *m, unsigned long long *need_out,
		       unsigned long long *avail_out)
{
	struct statvfs vfs, ovfs;
	struct stat os, ds;
	unsigned long long need = SM_SPACE_MARGIN, avail;
	char n[32], a[32];

	for (size_t i = 0; i < m->nplans; i++)
		need += m->provdevs[i].bytes ? 1ULL << 20  /* the overlay's metadata */
					     : sm_plan_disk_bytes(&m->plans[i]);
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
	/* The overlays take the guest's writes until the pivot: on the
	 * destination's file system the margin holds them, elsewhere the
	 * overlay folder needs one of its own. */
	if (sm_str_eq(m->overlay_dir, m->dest) || stat(m->overlay_dir, &os) < 0 ||
	    stat(m->dest, &ds) < 0 || os.st_dev == ds.st_dev || statvfs(m->overlay_dir, &ovfs) < 0)
		return 0;
	avail = (unsigned long long)ovfs.f_bavail * ovfs.f_frsize;
	if (avail < SM_SPACE_MARGIN) {
		sm_error("not enough free space in the overlay folder '%s': the guest's writes "
			 "during the move go there, and %s is free (64 MiB at least); free space "
			 "there or choose another --overlay-dir", m->overlay_dir,
			 sm_format_bytes(avail, a, sizeof(a)));
		return -1;
	}
	return 0;
}

/* The DEVICE of --dest-dev TARGET=DEVICE for target, or NULL. */
static const char *dest_dev_of(const struct move *m, const char *target)
{
	size_t len = strlen(target);

	for (size_t i = 0; i < m->o->ndest_devs; i++)
		if (strncmp(m->o->dest_devs[i], target, len) == 0 && m->o->dest_devs[i][len] == '=')
			return m->o->dest_devs[i] + len + 1;
	return NULL;
}

/* Every --dest-dev names a disk the move takes. */
static int check_dest_dev_targets(const struct move *m)
{
	for (size_t i = 0; i < m->o->ndest_devs; i++) {
		const char *arg = m->o->dest_devs[i];
		size_t len = (size_t)(strchr(arg, '=') - arg);
		bool found = false;

		for (size_t k = 0; k < m->nplans && !found; k++)
			found = strlen(m->plans[k].target) == len &&
				strncmp(m->plans[k].target, arg, len) == 0;
		if (!found) {
			sm_error("--dest-dev '%s' names no disk this move takes; name one of its "
				 "--disk targets", arg);
			return -1;
		}
	}
	return 0;
}

/* --dest-dev TARGET=DEVICE: disk d's one image goes onto the device (the
 * overlays stay files in the destination). */
static int plan_dest_dev(struct move *m, const struct sm_disk *d, struct sm_plan_disk *p,
			 const struct sm_usage *domains)
{
	const char *arg = dest_dev_of(m, p->target);
	struct sm_plan_image *img = &p->images[0];
	unsigned long long rdev, need = img->virtual_size;
	char *path;

	if (!arg)
		return 0;
	if (p->nimages != 1 || img->dst_backing) {
		sm_error("disk '%s' has a backing chain and a device takes one image; add "
			 "--flatten (the whole chain goes into the device) or leave --dest-dev "
			 "out", p->target);
		return -1;
	}
	if (sm_destdev_resolve(arg, &path, &rdev) < 0)
		return -1;
	for (size_t k = 0; k + 1 < m->nplans; k++) {
		if (m->plans[k].images[0].dst_rdev == rdev) {
			sm_error("disks '%s' and '%s' both name the destination device '%s'; give "
				 "each its own", m->plans[k].target, p->target, path);
			free(path);
			return -1;
		}
	}
	if (sm_str_eq(img->dst_format, "qcow2") &&
	    sm_image_measure(d->chain, d->nchain, "qcow2", &need) < 0) {
		free(path);
		return -1;
	}
	if (sm_destdev_check(path, rdev, need, sm_str_eq(img->dst_format, "raw"), domains,
			     p->target) < 0) {
		free(path);
		return -1;
	}
	free(img->dst);
	img->dst = path;
	img->dst_rdev = rdev;
	return 0;
}

/* The files the job may delete later, with who they are now: the moved
 * images of d's chain as libvirt reported it (the whole chain when it is
 * flattened: its data is all at the destination). */
static int note_sources(struct move *m, const struct sm_disk *d, size_t nmoved)
{
	for (size_t k = 0; k < nmoved; k++) {
		struct sm_srcfile f;

		/* A device is never deleted: not a source file of the job. */
		if (!d->chain[k].path || (k == 0 && sm_disk_on_device(d)))
			continue;
		if (sm_srcfile_identify(d->chain[k].path, &f) < 0)
			return -1;
		f.target = sm_xstrdup(d->target);
		f.role = sm_xstrdup(SM_SRCFILE_IMAGE);
		f.format = sm_xstrdup_or_null(d->chain[k].format);
		m->srcs = sm_xrealloc(m->srcs, (m->nsrcs + 1) * sizeof(*m->srcs));
		m->srcs[m->nsrcs++] = f;
	}
	return 0;
}

/* --offline: libvirt's "shut off" is a claim; prove it (no QEMU runs the
 * domain, none holds an image the move copies, nor a --dest-dev device it
 * writes).  With --copy-shared, images below the active one may be open
 * read-only in other domains: only the active images are probed then. */
static int check_off(const struct move *m)
{
	size_t max = 0, n = 0;
	const char **targets, **paths;
	SM_AUTOFREE char *then = sm_xasprintf("snapmove move %s --offline", m->o->domain);
	int ret;

	for (size_t i = 0; i < m->nplans; i++)
		max += m->plans[i].nimages + 1;
	targets = sm_xcalloc(max + 1, sizeof(*targets));
	paths = sm_xcalloc(max + 1, sizeof(*paths));
	for (size_t i = 0; i < m->nplans; i++) {
		for (size_t k = 0; k < m->plans[i].nimages; k++) {
			if (k > 0 && m->o->copy_shared)
				break;
			targets[n] = m->plans[i].target;
			paths[n++] = m->plans[i].images[k].src;
		}
		if (m->plans[i].images[0].dst_rdev) {
			targets[n] = m->plans[i].target;
			paths[n++] = m->plans[i].images[0].dst;
		}
	}
	ret = sm_reconcile_prove_off(m->o->domain, targets, paths, n, then);
	free(targets);
	free(paths);
	return ret;
}

int sm_move_validate(struct move *m, unsigned long long *need, unsigned long long *avail)
{
	const struct sm_disk **sel = NULL;
	struct sm_usage domains = { 0 };
	size_t nsel = 0;
	long long next_id;
	int ret = -1;

	if (check_domain(m) < 0 || check_metadata(m) < 0 || select_disks(m, &sel, &nsel) < 0)
		return -1;
	if (check_dest(m) < 0 || check_overlay_dir(m) < 0 || check_overlay_prov(m) < 0 ||
	    (!m->overlay_prov && check_overlay_not_dev(m, sel, nsel) < 0))
		goto cleanup;
	/* Overlay names carry the job id: plan with the id the journal will give
	 * next; open_job() renames them should another snapmove take it first. */
	if (sm_journal_next_job_id(m->j, &next_id) < 0 || scan_usage(m, sel, nsel) < 0)
		goto cleanup;
	if (m->o->ndest_devs && sm_usage_scan_domains(sm_virt_conn(m->v), &domains) < 0)
		goto cleanup;
	m->plans = sm_xcalloc(nsel, sizeof(*m->plans));
	m->provdevs = sm_xcalloc(nsel, sizeof(*m->provdevs));
	for (size_t i = 0; i < nsel; i++) {
		if (check_disk_free(m, sel[i]) < 0 ||
		    plan_disk(m, sel[i], next_id, &m->plans[i]) < 0)
			goto cleanup;
		m->nplans++;
		if (note_sources(m, sel[i], m->o->flatten ? sel[i]->nchain
							   : m->plans[i].nimages) < 0)
			goto cleanup;
		/* A device is read by qemu-img convert (the flattened disk's
		 * path): it sees the device's size and skips what reads as zeros,
		 * where the copier knows files' extents only. */
		if (m->o->flatten || sm_disk_on_device(sel[i]))
			sm_plan_flatten(&m->plans[i]);
		if (m->o->dest_format && sm_plan_set_dest_format(&m->plans[i], m->o->dest_format) < 0)
			goto cleanup;
		if (plan_dest_dev(m, sel[i], &m->plans[i], &domains) < 0)
			goto cleanup;
		if (m->prov && sm_provdev_plan(sel[i], &m->plans[i], &m->provdevs[i]) < 0)
			goto cleanup;
		if (check_plan_files(m->dest, &m->plans[i], m->provdevs[i].bytes != 0) < 0)
			goto cleanup;
	}
	if (check_dest_dev_targets(m) < 0 || sm_plan_check_collisions(m->plans, m->nplans) < 0 ||
	    sm_plan_check_overlays(m->plans, m->nplans) < 0 || check_space(m, need, avail) < 0)
		goto cleanup;
	if (m->o->offline && check_off(m) < 0)
		goto cleanup;
	ret = 0;

cleanup:
	sm_usage_release(&domains);
	free(sel);
	return ret;
}
