/* image.c: qemu-img info, create and unsafe rebase, formats always explicit,
 * and the check that a chain is what snapmove may act on (no symbolic links,
 * no external data files, headers that agree with the chain).
 * It does not copy data (copy/) or change a running domain (snapshot/).
 */
#include "chain/image.h"
#include "chain/chain.h"
#include "run.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <json-c/json.h>
#include <limits.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int sm_image_info_parse(const char *json, struct sm_image_info *out)
{
	struct json_object *root, *v;
	int ret = -1;

	memset(out, 0, sizeof(*out));
	root = json_tokener_parse(json);
	if (!root || !json_object_is_type(root, json_type_object)) {
		sm_error("cannot parse the JSON qemu-img info printed");
		goto cleanup;
	}
	if (!json_object_object_get_ex(root, "virtual-size", &v) ||
	    !json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 0) {
		sm_error("qemu-img info printed no valid virtual-size");
		goto cleanup;
	}
	out->virtual_size = (unsigned long long)json_object_get_int64(v);
	if (json_object_object_get_ex(root, "actual-size", &v) &&
	    json_object_is_type(v, json_type_int) && json_object_get_int64(v) >= 0)
		out->actual_size = (unsigned long long)json_object_get_int64(v);
	if (json_object_object_get_ex(root, "backing-filename", &v) &&
	    json_object_is_type(v, json_type_string))
		out->backing = sm_xstrdup(json_object_get_string(v));
	if (json_object_object_get_ex(root, "backing-filename-format", &v) &&
	    json_object_is_type(v, json_type_string))
		out->backing_format = sm_xstrdup(json_object_get_string(v));
	/* qcow2's external data file: "format-specific": {"data": {"data-file"}}. */
	if (json_object_object_get_ex(root, "format-specific", &v) &&
	    json_object_object_get_ex(v, "data", &v) &&
	    json_object_object_get_ex(v, "data-file", &v) &&
	    json_object_is_type(v, json_type_string))
		out->data_file = sm_xstrdup(json_object_get_string(v));
	if (json_object_object_get_ex(root, "encrypted", &v) &&
	    json_object_is_type(v, json_type_boolean))
		out->encrypted = json_object_get_boolean(v);
	ret = 0;

cleanup:
	json_object_put(root);
	return ret;
}

int sm_image_info(const char *path, const char *format, struct sm_image_info *out)
{
	const char *argv[] = { "qemu-img", "info", "-U", "--output=json", "-f", format,
			       path, NULL };
	struct sm_run_result res;
	int ret;

	memset(out, 0, sizeof(*out));
	if (sm_run(argv, &res) < 0) {
		sm_run_result_release(&res);
		return -1;
	}
	ret = sm_image_info_parse(res.out, out);
	sm_run_result_release(&res);
	return ret;
}

void sm_image_info_release(struct sm_image_info *info)
{
	if (!info)
		return;
	free(info->backing);
	free(info->backing_format);
	free(info->data_file);
	info->backing = info->backing_format = info->data_file = NULL;
}

char *sm_image_fd_path(int fd)
{
	return sm_xasprintf("/proc/%ld/fd/%d", (long)getpid(), fd);
}

/* Remove path, which this process created as fd: only while the name still
 * leads to that file. */
static void unlink_ours(const char *path, int fd)
{
	struct stat made, now;

	if (fstat(fd, &made) == 0 && lstat(path, &now) == 0 && made.st_dev == now.st_dev &&
	    made.st_ino == now.st_ino)
		unlink(path);
}

int sm_image_create_fd(const char *path, const char *format, unsigned long long size,
		       const char *backing, const char *backing_format, const struct stat *like)
{
	SM_AUTOFREE char *fdpath = NULL;
	char sizebuf[32];
	const char *argv[16];
	size_t n = 0;
	int fd;

	if (backing && !backing_format) {
		sm_error("cannot create '%s' over '%s' without its format", path, backing);
		return -1;
	}
	/* Claim the name exclusively, never through a link, readable by root
	 * alone until it has its owner and mode.  From here on the file is
	 * reached through fd only: another user who can write the folder can
	 * rename or replace the name, not what fd is. */
	fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		if (errno == EEXIST)
			sm_error("destination file '%s' already exists; remove it or choose "
				 "another --dest", path);
		else
			sm_error("cannot create '%s': %s", path, strerror(errno));
		return -1;
	}
	if (like && (fchown(fd, like->st_uid, like->st_gid) < 0 ||
		     fchmod(fd, like->st_mode & 0777) < 0)) {
		sm_error("cannot give '%s' the owner and mode of its source: %s", path,
			 strerror(errno));
		goto fail;
	}

	/* qemu-img gets the file through /proc/PID/fd/N, which leads to fd's
	 * file whatever happens to the name; -u: the backing file is not
	 * opened (a relative name would be looked up beside /proc/PID/fd), its
	 * name is written as given, relative to path's folder. */
	fdpath = sm_image_fd_path(fd);
	snprintf(sizebuf, sizeof(sizebuf), "%llu", size);
	argv[n++] = "qemu-img";
	argv[n++] = "create";
	argv[n++] = "-q";
	argv[n++] = "-f";
	argv[n++] = format;
	if (backing) {
		argv[n++] = "-F";
		argv[n++] = backing_format;
		argv[n++] = "-b";
		argv[n++] = backing;
		argv[n++] = "-u";
	}
	argv[n++] = fdpath;
	argv[n++] = sizebuf;
	argv[n] = NULL;
	if (sm_run(argv, NULL) < 0)
		goto fail;
	return fd;

fail:
	unlink_ours(path, fd);
	close(fd);
	return -1;
}

int sm_image_create(const char *path, const char *format, unsigned long long size,
		    const char *backing, const char *backing_format)
{
	int fd = sm_image_create_fd(path, format, size, backing, backing_format, NULL);

	if (fd < 0)
		return -1;
	close(fd);
	return 0;
}

int sm_image_rebase_unsafe(const char *path, const char *format, const char *backing,
			   const char *backing_format)
{
	const char *argv[] = { "qemu-img", "rebase", "-u", "-f", format, "-F", backing_format,
			       "-b", backing, path, NULL };

	return sm_run(argv, NULL);
}

/* Whether path can be opened with O_DIRECT (not on tmpfs, for one). */
static bool direct_io_works(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECT | O_CLOEXEC);

	if (fd < 0)
		return false;
	close(fd);
	return true;
}

/* Formats whose images can have a backing file ("backing" in their options). */
static bool format_has_backing(const char *format)
{
	return sm_str_eq(format, "qcow2") || sm_str_eq(format, "qed") ||
	       sm_str_eq(format, "vmdk") || sm_str_eq(format, "qcow");
}

/* QEMU opens a block device only with host_device ("file" is for regular
 * files).  The node says which (only root makes device nodes; a symbolic
 * link is not followed to one, so a name swapped for a link to a device
 * still fails as a file); the format stays pinned either way. */
static const char *protocol_driver(const struct sm_image *img)
{
	struct stat sb;

	if (sm_str_eq(img->type, "block") || (lstat(img->path, &sb) == 0 && S_ISBLK(sb.st_mode)))
		return "host_device";
	return "file";
}

static struct json_object *chain_node(const struct sm_image *chain, size_t n, size_t i)
{
	struct json_object *node = json_object_new_object();
	struct json_object *file = json_object_new_object();

	json_object_object_add(file, "driver", json_object_new_string(protocol_driver(&chain[i])));
	json_object_object_add(file, "filename", json_object_new_string(chain[i].path));
	json_object_object_add(node, "driver", json_object_new_string(chain[i].format));
	json_object_object_add(node, "file", file);
	if (format_has_backing(chain[i].format))
		json_object_object_add(node, "backing",
				       i + 1 < n ? chain_node(chain, n, i + 1) : NULL);
	return node;
}

char *sm_image_chain_spec(const struct sm_image *chain, size_t n)
{
	struct json_object *root;
	char *spec;

	if (n == 0) {
		sm_error("no image to open");
		return NULL;
	}
	for (size_t i = 0; i < n; i++) {
		if (!chain[i].path || !chain[i].format) {
			sm_error("image %zu of the chain has no path or format", i);
			return NULL;
		}
		if (i + 1 < n && !format_has_backing(chain[i].format)) {
			sm_error("image '%s' is %s, which has no backing file, but the chain "
				 "goes on below it ('%s')", chain[i].path, chain[i].format,
				 chain[i + 1].path);
			return NULL;
		}
	}
	root = chain_node(chain, n, 0);
	spec = sm_xasprintf("json:%s", json_object_to_json_string_ext(
				    root, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(root);
	return spec;
}

int sm_image_convert(const struct sm_image *chain, size_t n, const char *dst,
		     const char *dst_format, bool dst_zero)
{
	SM_AUTOFREE char *spec = sm_image_chain_spec(chain, n);
	const char *argv[16];
	size_t k = 0;

	if (!spec)
		return -1;
	argv[k++] = "qemu-img";
	argv[k++] = "convert";
	argv[k++] = "-n";
	argv[k++] = "-f";
	argv[k++] = chain[0].format;
	argv[k++] = "-O";
	argv[k++] = dst_format;
	if (direct_io_works(chain[0].path) && direct_io_works(dst)) {
		argv[k++] = "-t";
		argv[k++] = "none";
		argv[k++] = "-T";
		argv[k++] = "none";
	}
	/* The caller says dst reads as zeros: its zeros are not written. */
	if (dst_zero)
		argv[k++] = "--target-is-zero";
	argv[k++] = spec;
	argv[k++] = dst;
	argv[k] = NULL;
	return sm_run(argv, NULL);
}

int sm_image_measure(const struct sm_image *chain, size_t n, const char *dst_format,
		     unsigned long long *bytes)
{
	SM_AUTOFREE char *spec = sm_image_chain_spec(chain, n);
	const char *argv[] = { "qemu-img", "measure", "-U", "--output=json", "-O", dst_format,
			       spec, NULL };
	struct sm_run_result res;
	struct json_object *root = NULL, *v;
	int ret = -1;

	if (!spec)
		return -1;
	if (sm_run(argv, &res) < 0)
		goto cleanup;
	root = json_tokener_parse(res.out);
	if (!root || !json_object_object_get_ex(root, "fully-allocated", &v) ||
	    !json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 0) {
		sm_error("qemu-img measure printed no valid fully-allocated size for '%s'",
			 chain[0].path);
		goto cleanup;
	}
	*bytes = (unsigned long long)json_object_get_int64(v);
	ret = 0;

cleanup:
	json_object_put(root);
	sm_run_result_release(&res);
	return ret;
}

int sm_image_format_device(const char *path, const char *format, unsigned long long size)
{
	SM_AUTOFREE char *sz = sm_xasprintf("%llu", size);
	const char *argv[] = { "qemu-img", "create", "-q", "-f", format, path, sz, NULL };

	/* A raw image is the device itself: nothing to write. */
	if (sm_str_eq(format, "raw"))
		return 0;
	return sm_run(argv, NULL);
}

int sm_image_format_overlay_device(const char *path, unsigned long long size,
				   const char *backing, const char *backing_format)
{
	SM_AUTOFREE char *sz = sm_xasprintf("%llu", size);
	const char *argv[] = { "qemu-img", "create", "-q", "-f", "qcow2", "-b", backing, "-F",
			       backing_format, path, sz, NULL };

	return sm_run(argv, NULL);
}

int sm_image_compare_chains(const struct sm_image *a, size_t na, const struct sm_image *b,
			    size_t nb)
{
	SM_AUTOFREE char *spec = sm_image_chain_spec(a, na);
	SM_AUTOFREE char *bspec = sm_image_chain_spec(b, nb);
	const char *argv[] = { "qemu-img", "compare", "-U", "-f", a[0].format, "-F", b[0].format,
			       spec, bspec, NULL };
	struct sm_run_result res;
	int rc;

	if (!spec || !bspec)
		return -1;
	rc = sm_run(argv, &res);
	if (rc < 0 && res.status == 1)
		sm_error("verification failed: '%s' and '%s' differ (%s); check the "
			 "destination storage", a[0].path, b[0].path, res.out);
	sm_run_result_release(&res);
	return rc;
}

int sm_image_compare(const struct sm_image *chain, size_t n, const char *b,
		     const char *b_format)
{
	const struct sm_image alone = { .path = (char *)b, .format = (char *)b_format };

	return sm_image_compare_chains(chain, n, &alone, 1);
}

int sm_image_commit(const char *path, const char *backing, const char *backing_format)
{
	const struct sm_image chain[] = {
		{ .path = (char *)path, .format = (char *)"qcow2" },
		{ .path = (char *)backing, .format = (char *)backing_format },
	};
	SM_AUTOFREE char *spec = sm_image_chain_spec(chain, 2);
	const char *argv[] = { "qemu-img", "commit", "-q", "-f", "qcow2", spec, NULL };

	if (!spec)
		return -1;
	return sm_run(argv, NULL);
}

int sm_image_check(const char *path, const char *format)
{
	const struct sm_image alone = { .path = (char *)path, .format = (char *)format };
	SM_AUTOFREE char *spec = sm_image_chain_spec(&alone, 1);
	const char *argv[] = { "qemu-img", "check", "-U", "-q", "-f", format, spec, NULL };

	if (!spec)
		return -1;
	return sm_run(argv, NULL);
}

int sm_image_rebase_safe(const struct sm_image *chain, size_t n, size_t below)
{
	SM_AUTOFREE char *spec = sm_image_chain_spec(chain, n);
	SM_AUTOFREE char *bspec = below < n ? sm_image_chain_spec(chain + below, n - below) : NULL;
	const char *fmt = below < n ? chain[below].format : NULL;
	const char *with[] = { "qemu-img", "rebase", "-f", chain[0].format, "-F", fmt, "-b", bspec,
			       spec, NULL };
	const char *flat[] = { "qemu-img", "rebase", "-f", chain[0].format, "-b", "", spec, NULL };

	if (!spec || (below < n && !bspec))
		return -1;
	if (below >= n)
		return sm_run(flat, NULL);
	/* The new backing chain is read pinned too; qemu-img then wrote that
	 * json: name into the header, which gets the plain name (nothing is
	 * opened but chain[0]). */
	if (sm_run(with, NULL) < 0)
		return -1;
	return sm_image_rebase_unsafe(chain[0].path, chain[0].format, chain[below].path, fmt);
}

char *sm_image_backing_resolve(const char *image_path, const char *backing)
{
	const char *colon = strchr(backing, ':');
	const char *slash = strchr(backing, '/');
	SM_AUTOFREE char *dir = NULL;

	/* QEMU reads "proto:..." as a protocol when the colon comes before any
	 * slash; "json:{...}" is one too. */
	if (!backing[0] || (colon && (!slash || colon < slash)))
		return NULL;
	if (backing[0] == '/')
		return sm_xstrdup(backing);
	dir = sm_path_dirname(image_path);
	return sm_path_join(dir, backing);
}

/* Fill the chain of a shut-off domain's disk from the image headers, with
 * the formats they record (never probed). */
char *sm_image_follow_chain(struct sm_disk *d)
{
	for (size_t depth = 0; depth < 64; depth++) {
		struct sm_image *img = &d->chain[d->nchain - 1];
		struct sm_image_info info;
		char *next;

		if (!img->path || !img->format)
			return sm_xasprintf("its image has no path or format in the definition");
		if (sm_image_info(img->path, img->format, &info) < 0)
			return sm_xstrdup(sm_error_message());
		if (info.encrypted) {
			sm_image_info_release(&info);
			return sm_xasprintf("image '%s' is encrypted; snapmove cannot encrypt the "
					    "overlays it makes with the disk's secret, so it does "
					    "not move encrypted disks: leave it out of --disk",
					    img->path);
		}
		if (!info.backing) {
			sm_image_info_release(&info);
			d->chain_known = true;
			return NULL;
		}
		if (!info.backing_format) {
			char *why = sm_xasprintf("image '%s' does not record the format of its "
						 "backing file '%s'; set it with 'qemu-img rebase "
						 "-u -b %s -F FORMAT %s'", img->path, info.backing,
						 info.backing, img->path);

			sm_image_info_release(&info);
			return why;
		}
		next = sm_image_backing_resolve(img->path, info.backing);
		if (!next) {
			char *why = sm_xasprintf("image '%s' names its backing file '%s' through a "
						 "protocol, not as a file; snapmove moves only chains "
						 "of files", img->path, info.backing);

			sm_image_info_release(&info);
			return why;
		}
		d->chain = sm_xrealloc(d->chain, (d->nchain + 1) * sizeof(*d->chain));
		d->chain[d->nchain++] = (struct sm_image){
			.path = next, .type = sm_xstrdup("file"),
			.format = sm_xstrdup(info.backing_format),
		};
		sm_image_info_release(&info);
	}
	return sm_xstrdup("its backing chain is deeper than 64 images");
}

/* abs with "." and ".." and repeated slashes taken out, as written (no
 * symbolic link followed). */
static char *path_normalize(const char *abs)
{
	char *out = sm_xcalloc(1, strlen(abs) + 2);
	size_t len = 0;
	const char *p = abs;

	while (*p) {
		const char *end;
		size_t n;

		while (*p == '/')
			p++;
		end = strchrnul(p, '/');
		n = (size_t)(end - p);
		if (n == 0 || (n == 1 && p[0] == '.')) {
			/* nothing */
		} else if (n == 2 && p[0] == '.' && p[1] == '.') {
			while (len > 0 && out[len - 1] != '/')
				len--;
			if (len > 0)
				len--;
		} else {
			out[len++] = '/';
			memcpy(out + len, p, n);
			len += n;
		}
		p = end;
	}
	if (len == 0)
		out[len++] = '/';
	out[len] = '\0';
	return out;
}

/* Whether the user uid (with the groups of its passwd entry, or gid alone)
 * may read a file of this owner and mode, by its permission bits. */
static bool readable_by(uid_t uid, gid_t gid, const struct stat *sb)
{
	struct passwd *pw = getpwuid(uid);
	gid_t groups[256];
	int ngroups = SM_ARRAY_LEN(groups);

	if (sb->st_uid == uid)
		return sb->st_mode & S_IRUSR;
	if (sb->st_mode & S_IROTH)
		return true;
	if (!(sb->st_mode & S_IRGRP))
		return false;
	if (!pw || getgrouplist(pw->pw_name, pw->pw_gid, groups, &ngroups) < 0) {
		groups[0] = gid;
		ngroups = 1;
	}
	for (int i = 0; i < ngroups; i++)
		if (groups[i] == sb->st_gid)
			return true;
	return false;
}

/* The checks of a backing file found through the header of the image above
 * it (offline): its name is its real path, and the owner of that image may
 * read it. */
static char *check_header_name(const struct sm_disk *d, const struct sm_image *above,
			       const char *name, const struct sm_image *img,
			       const struct stat *above_sb, const struct stat *sb)
{
	SM_AUTOFREE char *dir = sm_path_dirname(above->path);
	char real_dir[PATH_MAX], real[PATH_MAX];
	SM_AUTOFREE char *joined = NULL;
	SM_AUTOFREE char *want = NULL;

	if (!realpath(dir, real_dir) || !realpath(img->path, real))
		return sm_xasprintf("disk '%s' backing file '%s' cannot be resolved: %s",
				    d->target, img->path, strerror(errno));
	joined = name[0] == '/' ? sm_xstrdup(name) : sm_path_join(real_dir, name);
	want = path_normalize(joined);
	if (!sm_str_eq(want, real))
		return sm_xasprintf("disk '%s' image '%s' names its backing file '%s' through a "
				    "symbolic link (the file is '%s'); snapmove follows only "
				    "names that are the files' real paths: point the header at "
				    "the file with 'qemu-img rebase -u -b %s -F %s %s'",
				    d->target, above->path, name, real, real, img->format,
				    above->path);
	if (above_sb->st_uid != 0 && !readable_by(above_sb->st_uid, above_sb->st_gid, sb))
		return sm_xasprintf("disk '%s' image '%s' belongs to uid %u, who may not read "
				    "its backing file '%s'; snapmove, as root, does not follow "
				    "it: check where the image came from and fix its backing "
				    "file with 'qemu-img rebase -u'", d->target, above->path,
				    (unsigned)above_sb->st_uid, img->path);
	return NULL;
}

static char *check_member(const struct sm_disk *d, size_t i, bool from_headers,
			  struct sm_image_info *info, struct stat *sbs)
{
	const struct sm_image *img = &d->chain[i];
	SM_AUTOFREE char *next = NULL;
	struct stat nsb;

	if (lstat(img->path, &sbs[i]) < 0)
		return sm_xasprintf("disk '%s' image '%s' cannot be read: %s", d->target,
				    img->path, strerror(errno));
	if (S_ISLNK(sbs[i].st_mode))
		return sm_xasprintf("disk '%s' image '%s' is a symbolic link; snapmove acts only "
				    "on the image files themselves: name the file it points to "
				    "instead", d->target, img->path);
	if (sm_str_eq(img->type, "block") ? !S_ISBLK(sbs[i].st_mode) : !S_ISREG(sbs[i].st_mode))
		return sm_xasprintf("disk '%s' image '%s' is not a %s; leave it out of --disk",
				    d->target, img->path, sm_str_eq(img->type, "block")
				    ? "block device, as its <disk type='block'> says"
				    : "regular file; snapmove moves only file images");
	if (from_headers && i > 0) {
		char *why = check_header_name(d, &d->chain[i - 1], info[-1].backing, img,
					      &sbs[i - 1], &sbs[i]);

		if (why)
			return why;
	}
	if (sm_image_info(img->path, img->format, info) < 0)
		return sm_xstrdup(sm_error_message());
	if (info->data_file)
		return sm_xasprintf("disk '%s' image '%s' keeps its data in the external data "
				    "file '%s', which snapmove does not move; with the domain "
				    "shut off, make it a self-contained image ('qemu-img convert "
				    "-f %s -O qcow2 %s NEW' and point the domain at NEW), or move "
				    "it with 'virsh blockcopy'", d->target, img->path,
				    info->data_file, img->format, img->path);
	if (i + 1 == d->nchain) {
		if (info->backing)
			return sm_xasprintf("disk '%s' image '%s' names a backing file '%s' that "
					    "libvirt does not report; check the chain with 'qemu-img "
					    "info --backing-chain' and 'virsh dumpxml'", d->target,
					    img->path, info->backing);
		return NULL;
	}
	if (!info->backing)
		return sm_xasprintf("image '%s' of disk '%s' has no backing file in its header "
				    "but libvirt reports '%s' below it; check the chain with "
				    "'qemu-img info --backing-chain'", img->path, d->target,
				    d->chain[i + 1].path);
	next = sm_image_backing_resolve(img->path, info->backing);
	if (!next)
		return sm_xasprintf("disk '%s' image '%s' names its backing file '%s' through a "
				    "protocol, not as a file; snapmove moves only chains of files",
				    d->target, img->path, info->backing);
	if (stat(next, &nsb) < 0 || stat(d->chain[i + 1].path, &sbs[i + 1]) < 0 ||
	    nsb.st_dev != sbs[i + 1].st_dev || nsb.st_ino != sbs[i + 1].st_ino)
		return sm_xasprintf("disk '%s' image '%s' names '%s' as its backing file but "
				    "libvirt reports '%s' below it; check the chain with 'qemu-img "
				    "info --backing-chain' and 'virsh dumpxml'", d->target,
				    img->path, info->backing, d->chain[i + 1].path);
	if (info->backing_format && !sm_str_eq(info->backing_format, d->chain[i + 1].format))
		return sm_xasprintf("disk '%s' image '%s' records its backing file '%s' as %s "
				    "but libvirt opened it as %s; check the chain with 'qemu-img "
				    "info --backing-chain' and 'virsh dumpxml'", d->target,
				    img->path, info->backing, info->backing_format,
				    d->chain[i + 1].format);
	return NULL;
}

char *sm_image_check_chain(const struct sm_disk *d, bool from_headers,
			   struct sm_image_info *infos)
{
	struct sm_image_info *own = infos ? infos : sm_xcalloc(d->nchain, sizeof(*own));
	struct stat *sbs = sm_xcalloc(d->nchain, sizeof(*sbs));
	char *why = NULL;

	for (size_t i = 0; i < d->nchain && !why; i++) {
		const struct sm_image *img = &d->chain[i];

		bool device = i == 0 && d->nchain == 1 && sm_str_eq(img->type, "block");

		if ((!device && !sm_str_eq(img->type, "file")) || !img->path || !img->format)
			why = sm_xasprintf("disk '%s' has an image that is not a file with a known "
					   "format; leave it out of --disk", d->target);
		else
			why = check_member(d, i, from_headers, &own[i], sbs);
	}
	if (!infos) {
		for (size_t i = 0; i < d->nchain; i++)
			sm_image_info_release(&own[i]);
		free(own);
	}
	free(sbs);
	return why;
}
