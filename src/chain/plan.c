/* plan.c: lay out a disk's chain in the destination directory.  It checks names
 * and computes backing pointers; it does not look at the file system.
 */
#include "chain/plan.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *sm_plan_overlay_path(const char *dir, const char *image_path, long long job_id)
{
	SM_AUTOFREE char *name = sm_xasprintf("%s.snapmove-%lld.qcow2",
					      sm_path_basename(image_path), job_id);

	return sm_path_join(dir, name);
}

/* Two folder names equal but for trailing slashes (the planner compares
 * names; validation resolved both). */
static bool same_dir(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);

	while (la > 1 && a[la - 1] == '/')
		la--;
	while (lb > 1 && b[lb - 1] == '/')
		lb--;
	return la == lb && strncmp(a, b, la) == 0;
}

char *sm_plan_src_overlay_path(const char *overlay_dir, const char *dest_dir,
			       const char *image_path, long long job_id)
{
	SM_AUTOFREE char *src_dir = NULL;
	SM_AUTOFREE char *name = NULL;

	if (!overlay_dir) {
		src_dir = sm_path_dirname(image_path);
		return sm_plan_overlay_path(src_dir, image_path, job_id);
	}
	if (!same_dir(overlay_dir, dest_dir))
		return sm_plan_overlay_path(overlay_dir, image_path, job_id);
	/* Beside the destination overlay A.snapmove-JOB.qcow2: another name. */
	name = sm_xasprintf("%s.snapmove-%lld.src.qcow2", sm_path_basename(image_path), job_id);
	return sm_path_join(overlay_dir, name);
}

/* Whether overlay path of disk a is a name another disk's overlay or any
 * planned copy takes: -1 with the error. */
static int overlay_name_free(const struct sm_plan_disk *plans, size_t n, size_t a,
			     const char *path)
{
	for (size_t b = 0; b < n; b++) {
		if (b != a && (sm_str_eq(path, plans[b].src_overlay) ||
			       sm_str_eq(path, plans[b].dst_overlay))) {
			sm_error("disks '%s' and '%s' would both have the overlay '%s'; move them "
				 "one at a time", plans[a].target, plans[b].target, path);
			return -1;
		}
		for (size_t i = 0; i < plans[b].nimages; i++) {
			if (!sm_str_eq(path, plans[b].images[i].dst))
				continue;
			sm_error("disk '%s' has an image named '%s', the name of an overlay of "
				 "disk '%s' in '%s'; rename the image or choose another --dest or "
				 "--overlay-dir", plans[b].target, sm_path_basename(path),
				 plans[a].target, path);
			return -1;
		}
	}
	return 0;
}

int sm_plan_check_overlays(const struct sm_plan_disk *plans, size_t n)
{
	for (size_t a = 0; a < n; a++) {
		if (sm_str_eq(plans[a].src_overlay, plans[a].dst_overlay)) {
			sm_error("disk '%s': its source and destination overlays would both be "
				 "'%s'; choose another --overlay-dir", plans[a].target,
				 plans[a].src_overlay);
			return -1;
		}
		if (overlay_name_free(plans, n, a, plans[a].src_overlay) < 0 ||
		    overlay_name_free(plans, n, a, plans[a].dst_overlay) < 0)
			return -1;
	}
	return 0;
}

int sm_plan_disk(const struct sm_disk *disk, const struct sm_plan_image_facts *facts,
		 const char *dest_dir, const char *overlay_dir, long long job_id,
		 struct sm_plan_disk *out)
{
	memset(out, 0, sizeof(*out));
	if (disk->nchain == 0) {
		sm_error("disk '%s' has no image to move", disk->target);
		return -1;
	}
	if (facts[0].shared) {
		sm_error("disk '%s' image '%s' is also used by %s; snapmove cannot move an "
			 "image another domain writes, leave it out of --disk", disk->target,
			 disk->chain[0].path, facts[0].shared);
		return -1;
	}
	out->target = sm_xstrdup(disk->target);
	/* Move the images above the first shared one; it and those below stay. */
	out->nimages = disk->nchain;
	for (size_t i = 1; i < disk->nchain; i++) {
		if (facts[i].shared) {
			out->nimages = i;
			out->kept = sm_xstrdup(disk->chain[i].path);
			out->kept_format = sm_xstrdup(disk->chain[i].format);
			out->kept_user = sm_xstrdup(facts[i].shared);
			break;
		}
	}
	out->images = sm_xcalloc(out->nimages, sizeof(*out->images));
	for (size_t i = 0; i < out->nimages; i++) {
		const struct sm_image *img = &disk->chain[i];
		struct sm_plan_image *p = &out->images[i];
		SM_AUTOFREE char *dir = sm_path_dirname(img->path);

		if (sm_str_eq(dir, dest_dir)) {
			sm_error("disk '%s' image '%s' is already in the destination '%s'; "
				 "choose a --dest that is not the source directory",
				 disk->target, img->path, dest_dir);
			goto error;
		}
		for (size_t j = 0; j < i; j++) {
			if (sm_str_eq(sm_path_basename(disk->chain[j].path),
				      sm_path_basename(img->path))) {
				sm_error("disk '%s' has two images named '%s' ('%s' and '%s'); "
					 "they cannot share one destination directory",
					 disk->target, sm_path_basename(img->path),
					 disk->chain[j].path, img->path);
				goto error;
			}
		}
		p->src = sm_xstrdup(img->path);
		p->dst = sm_path_join(dest_dir, sm_path_basename(img->path));
		p->format = sm_xstrdup(img->format);
		p->dst_format = sm_xstrdup(img->format);
		p->src_backing = sm_xstrdup_or_null(facts[i].backing);
		p->virtual_size = facts[i].virtual_size;
		p->allocated = facts[i].allocated;
	}
	for (size_t i = 0; i + 1 < out->nimages; i++) {
		struct sm_plan_image *p = &out->images[i];
		const struct sm_plan_image *below = &out->images[i + 1];

		if (p->src_backing && p->src_backing[0] != '/' && !strstr(p->src_backing, ":"))
			p->dst_backing = sm_xstrdup(sm_path_basename(below->dst));
		else
			p->dst_backing = sm_xstrdup(below->dst);
		p->dst_backing_format = sm_xstrdup(below->dst_format);
	}
	/* The last moved image points at the shared image where it stays. */
	if (out->kept) {
		struct sm_plan_image *last = &out->images[out->nimages - 1];

		last->dst_backing = sm_xstrdup(out->kept);
		last->dst_backing_format = sm_xstrdup(out->kept_format);
	}
	out->src_overlay = sm_plan_src_overlay_path(overlay_dir, dest_dir, disk->chain[0].path,
						    job_id);
	out->dst_overlay = sm_plan_overlay_path(dest_dir, disk->chain[0].path, job_id);
	out->virtual_size = facts[0].virtual_size;
	return 0;

error:
	sm_plan_disk_release(out);
	return -1;
}

void sm_plan_disk_release(struct sm_plan_disk *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->nimages; i++) {
		struct sm_plan_image *img = &p->images[i];

		free(img->src);
		free(img->dst);
		free(img->format);
		free(img->dst_format);
		free(img->src_backing);
		free(img->dst_backing);
		free(img->dst_backing_format);
	}
	free(p->images);
	free(p->kept);
	free(p->kept_format);
	free(p->kept_user);
	free(p->target);
	free(p->src_overlay);
	free(p->dst_overlay);
	memset(p, 0, sizeof(*p));
}

int sm_plan_set_dest_format(struct sm_plan_disk *p, const char *format)
{
	if (!sm_str_eq(format, "raw") && !sm_str_eq(format, "qcow2")) {
		sm_error("--dest-format takes raw or qcow2, not '%s'", format);
		return -1;
	}
	if (p->nimages > 1 && !p->flat) {
		for (size_t i = 0; i < p->nimages; i++) {
			if (!sm_str_eq(p->images[i].format, format)) {
				sm_error("disk '%s' has a chain of %zu images and --dest-format "
					 "converts only single-image disks; leave --dest-format out "
					 "to keep the chain as it is", p->target, p->nimages);
				return -1;
			}
		}
		return 0;
	}
	free(p->images[0].dst_format);
	p->images[0].dst_format = sm_xstrdup(format);
	return 0;
}

void sm_plan_flatten(struct sm_plan_disk *p)
{
	struct sm_plan_image *top = &p->images[0];

	for (size_t i = 1; i < p->nimages; i++) {
		struct sm_plan_image *img = &p->images[i];

		top->allocated += img->allocated;
		if (i == 1 && !p->kept) {
			p->kept = sm_xstrdup(img->src);
			p->kept_format = sm_xstrdup(img->format);
		}
		free(img->src);
		free(img->dst);
		free(img->format);
		free(img->dst_format);
		free(img->src_backing);
		free(img->dst_backing);
		free(img->dst_backing_format);
	}
	p->nimages = 1;
	free(top->dst_backing);
	free(top->dst_backing_format);
	top->dst_backing = top->dst_backing_format = NULL;
	free(p->kept_user);
	p->kept_user = NULL;
	p->flat = true;
}

unsigned long long sm_plan_disk_bytes(const struct sm_plan_disk *p)
{
	/* The destination overlay starts tiny; reserve for its qcow2 metadata. */
	unsigned long long total = 1ULL << 20;

	/* A copy onto a device takes no room in the destination folder. */
	for (size_t i = 0; i < p->nimages; i++)
		if (!p->images[i].dst_rdev)
			total += p->images[i].allocated;
	return total;
}

int sm_plan_check_collisions(const struct sm_plan_disk *plans, size_t n)
{
	for (size_t a = 0; a < n; a++) {
		for (size_t b = a + 1; b < n; b++) {
			for (size_t i = 0; i < plans[a].nimages; i++) {
				for (size_t j = 0; j < plans[b].nimages; j++) {
					if (!sm_str_eq(plans[a].images[i].dst, plans[b].images[j].dst))
						continue;
					if (sm_str_eq(plans[a].images[i].src, plans[b].images[j].src))
						sm_error("disks '%s' and '%s' share the backing image '%s'; "
							 "moving shared backing images comes in a later "
							 "version, move one of the disks at a time",
							 plans[a].target, plans[b].target,
							 plans[a].images[i].src);
					else
						sm_error("disks '%s' and '%s' both have an image named "
							 "'%s'; they cannot share one destination "
							 "directory, move them to different --dest",
							 plans[a].target, plans[b].target,
							 sm_path_basename(plans[a].images[i].dst));
					return -1;
				}
			}
		}
	}
	return 0;
}
