/* trust.h: may root run (or read) what is at a path?  The checks hooks and
 * provisioners share: every folder from / down to a program, and the program,
 * must be root's own and writable by root alone, checked on open files (each
 * folder opened in the one checked before it, nothing looked up twice).
 * It decides nothing else: what runs, and how, is the caller's (hooks.c,
 * provision.c) and run.c's.
 */
#ifndef SM_TRUST_H
#define SM_TRUST_H

/* What a checked path is: a program, the folder holding it, or a folder
 * above that one. */
enum sm_trust_kind {
	SM_TRUST_FILE,
	SM_TRUST_FOLDER,
	SM_TRUST_PARENT,
};

/* The words of the refusals, so that each is one whole message with its fix:
 * "<file> '%s' is not owned by root; <rule>: 'chown root %s'". */
struct sm_trust_words {
	const char *file;         /* "hook file" */
	const char *folder;       /* "hook folder" */
	const char *top;          /* "the hooks folder" (folder '/x' above <top> '/x/y') */
	const char *read_file;    /* "hook" (cannot read <read_file> '%s') */
	const char *read_folder;  /* "the hooks folder" */
	const char *rule;         /* why: "hooks run as root, so ..." */
	const char *move;         /* the fix for a bad folder above: "move the hooks folder ..." */
	const char *not_dir;      /* the fix for a folder that is not one */
};

/* Open name in folder at (O_PATH, never following a link) and check it as
 * kind; the fd, or -1 with an error.  path names it in messages; top names
 * the folder a SM_TRUST_PARENT is above. */
int sm_trust_open_checked(int at, const char *name, const char *path, enum sm_trust_kind kind,
			  const char *top, const struct sm_trust_words *w);
/* Open folder dir (O_PATH) after checking every folder from / down to it
 * (links resolved first, then walked without following any); -1 with an
 * error naming the folder and why. */
int sm_trust_open_folder(const char *dir, const struct sm_trust_words *w);

#endif
