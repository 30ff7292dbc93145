/* trust.c: the checks of what root may run: a program and every folder from
 * / down to it root's own and writable by root alone, on open files.  Moved
 * here from hooks.c, unchanged, so that provisioners are held to the same
 * rules by the same code; the words of each refusal are the caller's.
 */
#include "trust.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Root runs it: a program, its folders and every folder above them must be
 * root's own and writable by root alone (a sticky /tmp is not: whoever can
 * write there can rename the folders below away); each refusal is one whole
 * message with its fix. */
static int check_stat(const struct stat *sb, const char *path, enum sm_trust_kind kind,
		      const char *top, const struct sm_trust_words *w)
{
	switch (kind) {
	case SM_TRUST_FILE:
		if (!S_ISREG(sb->st_mode)) {
			sm_error("%s '%s' is not a regular file; %s: put the program itself "
				 "there, not a link to it", w->file, path, w->rule);
			return -1;
		}
		if (sb->st_uid != 0) {
			sm_error("%s '%s' is not owned by root; %s: 'chown root %s'", w->file, path,
				 w->rule, path);
			return -1;
		}
		if (sb->st_mode & (S_IWGRP | S_IWOTH)) {
			sm_error("%s '%s' is writable by group or others; %s: 'chmod go-w %s'",
				 w->file, path, w->rule, path);
			return -1;
		}
		if (!(sb->st_mode & S_IXUSR)) {
			sm_error("%s '%s' is not executable; %s: 'chmod u+x %s'", w->file, path,
				 w->rule, path);
			return -1;
		}
		return 0;
	case SM_TRUST_FOLDER:
		if (!S_ISDIR(sb->st_mode)) {
			sm_error("%s '%s' is not a directory; %s: %s", w->folder, path, w->rule,
				 w->not_dir);
			return -1;
		}
		if (sb->st_uid != 0) {
			sm_error("%s '%s' is not owned by root; %s: 'chown root %s'", w->folder, path,
				 w->rule, path);
			return -1;
		}
		if (sb->st_mode & (S_IWGRP | S_IWOTH)) {
			sm_error("%s '%s' is writable by group or others; %s: 'chmod go-w %s'",
				 w->folder, path, w->rule, path);
			return -1;
		}
		return 0;
	case SM_TRUST_PARENT:
		if (!S_ISDIR(sb->st_mode)) {
			sm_error("'%s' above %s '%s' is not a directory; %s: %s", path, w->top, top,
				 w->rule, w->move);
			return -1;
		}
		if (sb->st_uid != 0) {
			sm_error("folder '%s' above %s '%s' is not owned by root; %s: %s", path,
				 w->top, top, w->rule, w->move);
			return -1;
		}
		if (sb->st_mode & (S_IWGRP | S_IWOTH)) {
			sm_error("folder '%s' above %s '%s' is writable by group or others; %s: %s",
				 path, w->top, top, w->rule, w->move);
			return -1;
		}
		return 0;
	}
	return -1;
}

int sm_trust_open_checked(int at, const char *name, const char *path, enum sm_trust_kind kind,
			  const char *top, const struct sm_trust_words *w)
{
	struct stat sb;
	int fd = openat(at, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0) {
		if (kind == SM_TRUST_FILE)
			sm_error("cannot read %s '%s': %s", w->read_file, path, strerror(errno));
		else
			sm_error("cannot read %s '%s': %s", w->read_folder, path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &sb) < 0) {
		sm_error("cannot read '%s': %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	if (check_stat(&sb, path, kind, top, w) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

int sm_trust_open_folder(const char *dir, const struct sm_trust_words *w)
{
	SM_AUTOFREE char *real = realpath(dir, NULL);
	char *p, *next;
	int fd;

	if (!real) {
		sm_error("cannot read %s '%s': %s", w->read_folder, dir, strerror(errno));
		return -1;
	}
	/* From / down, each folder opened in the one checked before it. */
	fd = sm_trust_open_checked(AT_FDCWD, "/", "/",
				   strcmp(real, "/") ? SM_TRUST_PARENT : SM_TRUST_FOLDER, dir, w);
	for (p = real + 1; fd >= 0 && *p; p = next) {
		int sub;

		next = strchr(p, '/');
		if (next)
			*next++ = '\0';
		else
			next = p + strlen(p);
		{
			SM_AUTOFREE char *upto = sm_xasprintf("%.*s", (int)(p - real + (ptrdiff_t)strlen(p)), real);

			sub = *next ? sm_trust_open_checked(fd, p, upto, SM_TRUST_PARENT, dir, w)
				    : sm_trust_open_checked(fd, p, dir, SM_TRUST_FOLDER, dir, w);
		}
		close(fd);
		fd = sub;
		if (*next)
			next[-1] = '/';
	}
	return fd;
}
