/* image.c: qemu-img info, create and unsafe rebase, formats always explicit.
 * It does not copy data (copy/) or change a running domain (snapshot/).
 */
#include "chain/image.h"
#include "chain/chain.h"
#include "run.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
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
	info->backing = info->backing_format = NULL;
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

int sm_image_convert(const char *src, const char *src_format, const char *dst,
		     const char *dst_format)
{
	const char *argv[16];
	size_t n = 0;

	argv[n++] = "qemu-img";
	argv[n++] = "convert";
	argv[n++] = "-n";
	argv[n++] = "-f";
	argv[n++] = src_format;
	argv[n++] = "-O";
	argv[n++] = dst_format;
	if (direct_io_works(src) && direct_io_works(dst)) {
		argv[n++] = "-t";
		argv[n++] = "none";
		argv[n++] = "-T";
		argv[n++] = "none";
	}
	argv[n++] = src;
	argv[n++] = dst;
	argv[n] = NULL;
	return sm_run(argv, NULL);
}

int sm_image_compare(const char *a, const char *a_format, const char *b,
		     const char *b_format)
{
	const char *argv[] = { "qemu-img", "compare", "-U", "-f", a_format, "-F", b_format,
			       a, b, NULL };
	struct sm_run_result res;
	int rc = sm_run(argv, &res);

	if (rc < 0 && res.status == 1)
		sm_error("verification failed: '%s' and '%s' differ (%s); check the "
			 "destination storage", a, b, res.out);
	sm_run_result_release(&res);
	return rc;
}

int sm_image_commit(const char *path)
{
	const char *argv[] = { "qemu-img", "commit", "-q", "-f", "qcow2", path, NULL };

	return sm_run(argv, NULL);
}

int sm_image_rebase_safe(const char *path, const char *format, const char *backing,
			 const char *backing_format)
{
	const char *with[] = { "qemu-img", "rebase", "-f", format, "-F", backing_format, "-b",
			       backing, path, NULL };
	const char *flat[] = { "qemu-img", "rebase", "-f", format, "-b", "", path, NULL };

	return sm_run(backing ? with : flat, NULL);
}

/* Fill the chain of a shut-off domain's disk from the image headers, with
 * the formats they record (never probed). */
char *sm_image_follow_chain(struct sm_disk *d)
{
	for (size_t depth = 0; depth < 64; depth++) {
		struct sm_image *img = &d->chain[d->nchain - 1];
		struct sm_image_info info;
		SM_AUTOFREE char *dir = NULL;
		char *next;

		if (!img->path || !img->format)
			return sm_xasprintf("its image has no path or format in the definition");
		if (sm_image_info(img->path, img->format, &info) < 0)
			return sm_xstrdup(sm_error_message());
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
		dir = sm_path_dirname(img->path);
		next = info.backing[0] == '/' ? sm_xstrdup(info.backing)
					      : sm_path_join(dir, info.backing);
		d->chain = sm_xrealloc(d->chain, (d->nchain + 1) * sizeof(*d->chain));
		d->chain[d->nchain++] = (struct sm_image){
			.path = next, .type = sm_xstrdup("file"),
			.format = sm_xstrdup(info.backing_format),
		};
		sm_image_info_release(&info);
	}
	return sm_xstrdup("its backing chain is deeper than 64 images");
}

