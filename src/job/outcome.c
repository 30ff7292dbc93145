/* outcome.c: the names and exit statuses of enum sm_move_result, and the
 * result struct's list helpers and release. */
#include "job/outcome.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

const char *sm_move_status_name(enum sm_move_result r)
{
	switch (r) {
	case SM_MOVE_OK: return "done";
	case SM_MOVE_REFUSED: return "refused";
	case SM_MOVE_FAILED: return "failed";
	case SM_MOVE_VETOED: return "vetoed";
	case SM_MOVE_INTERRUPTED: return "interrupted";
	}
	return "failed";
}

int sm_move_exit_code(enum sm_move_result r)
{
	switch (r) {
	case SM_MOVE_OK: return 0;
	case SM_MOVE_FAILED: return 1;
	case SM_MOVE_REFUSED: return 3;
	case SM_MOVE_VETOED: return 4;
	case SM_MOVE_INTERRUPTED: return 5;
	}
	return 1;
}

void sm_result_chain_add(struct sm_result_chain *ch, const char *path, const char *format)
{
	ch->images = sm_xrealloc(ch->images, (ch->n + 1) * sizeof(*ch->images));
	ch->images[ch->n].path = sm_xstrdup_or_null(path);
	ch->images[ch->n].format = sm_xstrdup_or_null(format);
	ch->n++;
}

static void chain_release(struct sm_result_chain *ch)
{
	for (size_t k = 0; k < ch->n; k++) {
		free(ch->images[k].path);
		free(ch->images[k].format);
	}
	free(ch->images);
	memset(ch, 0, sizeof(*ch));
}

void sm_job_result_disks(struct sm_job_result *r, const char *const *targets, size_t n)
{
	if (r->disks)
		return;
	r->disks = sm_xcalloc(n + 1, sizeof(*r->disks));
	r->ndisks = n;
	for (size_t i = 0; i < n; i++)
		r->disks[i].target = sm_xstrdup(targets[i]);
}

void sm_job_result_release(struct sm_job_result *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->ndisks; i++) {
		struct sm_result_disk *d = &r->disks[i];

		free(d->target);
		free(d->error);
		chain_release(&d->before);
		chain_release(&d->now);
		chain_release(&d->after);
		free(d->kept);
		free(d->kept_user);
	}
	free(r->disks);
	for (size_t i = 0; i < r->nkept; i++) {
		free(r->kept[i].path);
		free(r->kept[i].role);
	}
	free(r->kept);
	free(r->domain);
	free(r->uuid);
	free(r->error);
	free(r->dest);
	free(r->overlay_dir);
	free(r->overlay_provisioner);
	free(r->trim_error);
	memset(r, 0, sizeof(*r));
}
