/* blockjob_qmp.c: what a restarted libvirtd lost of snapmove's block jobs,
 * asked of QEMU itself through libvirt's QMP passthrough: a leftover mirror
 * job libvirt no longer knows (cancelled and dismissed), the block nodes it
 * left open on an image (closed), the file QEMU really writes for a disk, and
 * the parsers of QEMU's replies (pure, for the unit tests).  It starts no
 * job of its own; blockjob.c starts, watches, pivots and cancels the jobs
 * libvirt knows.
 */
#include "snapshot/blockjob.h"
#include "chain/imagelock.h"
#include "util.h"

#include <dirent.h>
#include <json-c/json.h>
#include <libvirt/libvirt-qemu.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* One QMP command through libvirt's monitor passthrough: its "return"
 * (the caller puts it), or NULL with an error saying what (QEMU's text). */
static struct json_object *qmp(virDomainPtr dom, const char *cmd, const char *what)
{
	char *reply = NULL;
	struct json_object *o, *r = NULL, *err, *desc;

	if (virDomainQemuMonitorCommand(dom, cmd, &reply, 0) < 0) {
		sm_virt_error("cannot %s", what);
		return NULL;
	}
	o = json_tokener_parse(reply);
	if (o && json_object_object_get_ex(o, "return", &r)) {
		r = json_object_get(r);
	} else {
		r = NULL;
		sm_error("cannot %s: QEMU says '%s'", what,
			 o && json_object_object_get_ex(o, "error", &err) &&
			 json_object_object_get_ex(err, "desc", &desc)
			 ? json_object_get_string(desc) : reply ? reply : "nothing");
	}
	json_object_put(o);
	free(reply);
	return r;
}

static const char *jstr(struct json_object *o, const char *key)
{
	struct json_object *v;

	return o && json_object_object_get_ex(o, key, &v) ? json_object_get_string(v) : NULL;
}

/* libvirt names a job TYPE-TARGET-NODE ("copy-vda-libvirt-3-format"). */
static bool job_of(const char *id, const char *target)
{
	const char *t = id ? strchr(id, '-') : NULL;
	size_t n = strlen(target);

	return t && strncmp(t + 1, target, n) == 0 && t[1 + n] == '-';
}

/* QEMU's status of job id now ("" when it has none of that id). */
static int job_status(virDomainPtr dom, const char *id, char *buf, size_t len)
{
	struct json_object *jobs = qmp(dom, "{\"execute\":\"query-block-jobs\"}",
				       "list QEMU's block jobs");

	if (!jobs)
		return -1;
	buf[0] = '\0';
	for (size_t k = 0; k < json_object_array_length(jobs); k++) {
		struct json_object *j = json_object_array_get_idx(jobs, k);

		if (sm_str_eq(jstr(j, "device"), id))
			snprintf(buf, len, "%s", jstr(j, "status") ? jstr(j, "status") : "?");
	}
	json_object_put(jobs);
	return 0;
}

/* Cancel (force: no completion, the domain stays where it is) and dismiss
 * QEMU's job id, which libvirt does not know. */
static int end_lost_job(virDomainPtr dom, const char *target, const char *id)
{
	SM_AUTOFREE char *cancel = sm_xasprintf("{\"execute\":\"block-job-cancel\",\"arguments\":"
						"{\"device\":\"%s\",\"force\":true}}", id);
	SM_AUTOFREE char *dismiss = sm_xasprintf("{\"execute\":\"job-dismiss\",\"arguments\":"
						 "{\"id\":\"%s\"}}", id);
	SM_AUTOFREE char *what = sm_xasprintf("cancel block job '%s' of disk '%s', which QEMU "
					      "runs and libvirt lost", id, target);
	struct json_object *r;
	char st[32] = "";

	if (job_status(dom, id, st, sizeof(st)) < 0)
		return -1;
	if (!sm_str_eq(st, "concluded") && st[0]) {
		if (!(r = qmp(dom, cancel, what)))
			return -1;
		json_object_put(r);
	}
	for (int t = 0; t < 100; t++) {  /* 10 s */
		struct timespec ts = { 0, 100 * 1000000L };

		if (job_status(dom, id, st, sizeof(st)) < 0)
			return -1;
		if (!st[0] || sm_str_eq(st, "concluded"))
			break;
		nanosleep(&ts, NULL);
	}
	if (!st[0])
		return 0;  /* auto-dismissed */
	if (!sm_str_eq(st, "concluded")) {
		sm_error("block job '%s' of disk '%s', which QEMU runs and libvirt lost, is still "
			 "'%s' 10 s after it was cancelled; see 'virsh qemu-monitor-command %s "
			 "\'{\"execute\":\"query-block-jobs\"}\'', then resume the job", id, target, st,
			 virDomainGetName(dom));
		return -1;
	}
	free(what);
	what = sm_xasprintf("dismiss block job '%s' of disk '%s', which libvirt lost", id, target);
	if (!(r = qmp(dom, dismiss, what)))
		return -1;
	json_object_put(r);
	return 0;
}

static void note_add(char **note, char *one)
{
	char *all = *note ? sm_xasprintf("%s; %s", *note, one) : sm_xstrdup(one);

	free(*note);
	free(one);
	*note = all;
}

/* Remove node name (a node of libvirt's naming on path that no disk uses). */
static int del_node(virDomainPtr dom, const char *name, const char *path)
{
	SM_AUTOFREE char *cmd = sm_xasprintf("{\"execute\":\"blockdev-del\",\"arguments\":"
					     "{\"node-name\":\"%s\"}}", name);
	SM_AUTOFREE char *what = sm_xasprintf("close '%s' in QEMU (node '%s', left open by a "
					      "block job libvirt lost)", path, name);
	struct json_object *r = qmp(dom, cmd, what);

	if (!r)
		return -1;
	json_object_put(r);
	return 0;
}

static bool has_node(struct json_object *nodes, const char *name)
{
	for (size_t k = 0; k < json_object_array_length(nodes); k++)
		if (sm_str_eq(jstr(json_object_array_get_idx(nodes, k), "node-name"), name))
			return true;
	return false;
}

static struct json_object *node_named(struct json_object *nodes, const char *name)
{
	for (size_t k = 0; k < json_object_array_length(nodes); k++) {
		struct json_object *n = json_object_array_get_idx(nodes, k);

		if (sm_str_eq(jstr(n, "node-name"), name))
			return n;
	}
	return NULL;
}

static bool jbool(struct json_object *o, const char *key)
{
	struct json_object *v;

	return o && json_object_object_get_ex(o, key, &v) && json_object_get_boolean(v);
}

/* The node name of QEMU's block graph node id ("" when not a named one). */
static const char *graph_name(struct json_object *gnodes, int64_t id)
{
	for (size_t k = 0; k < json_object_array_length(gnodes); k++) {
		struct json_object *g = json_object_array_get_idx(gnodes, k), *v;

		if (json_object_object_get_ex(g, "id", &v) && json_object_get_int64(v) == id)
			return jstr(g, "name") ? jstr(g, "name") : "";
	}
	return "";
}

/* The child called edge ("backing", "file") of node parent, or of which
 * node node is that child (parent NULL): from QEMU's block graph. */
static char *graph_edge(struct json_object *graph, const char *parent, const char *edge,
			const char *child)
{
	struct json_object *gnodes, *edges;

	if (!json_object_object_get_ex(graph, "nodes", &gnodes) ||
	    !json_object_object_get_ex(graph, "edges", &edges))
		return NULL;
	for (size_t k = 0; k < json_object_array_length(edges); k++) {
		struct json_object *e = json_object_array_get_idx(edges, k), *pv, *cv;
		const char *p, *c;

		if (!sm_str_eq(jstr(e, "name"), edge) || !json_object_object_get_ex(e, "parent", &pv) ||
		    !json_object_object_get_ex(e, "child", &cv))
			continue;
		p = graph_name(gnodes, json_object_get_int64(pv));
		c = graph_name(gnodes, json_object_get_int64(cv));
		if (parent && sm_str_eq(p, parent))
			return sm_xstrdup(c);
		if (!parent && sm_str_eq(c, child))
			return sm_xstrdup(p);
	}
	return NULL;
}

/* A pivot libvirtd died in after it put the destination chain under the
 * mirror's target (the 'blockdev-snapshot' it sends before 'job-complete')
 * leaves format node the backing of that target, so it cannot be closed:
 * take it off again (blockdev-reopen of the target with no backing, its
 * read-only, cache and detect-zeroes as QEMU reports them; discard
 * "unmap", which QEMU does not report: on this temporary overlay a
 * guest's discard then makes zero clusters, as the guest means), as it
 * was before the pivot began;
 * libvirt's next pivot puts the chain there anew.  Only a target of
 * libvirt's naming whose file is not one of the nodes being closed. */
static int detach_from_parent(virDomainPtr dom, struct json_object *nodes, const char *format,
			      const char *path, char **note)
{
	struct json_object *graph = qmp(dom, "{\"execute\":\"x-debug-query-block-graph\"}",
					 "read QEMU's block graph");
	SM_AUTOFREE char *parent = NULL;
	SM_AUTOFREE char *file = NULL;
	SM_AUTOFREE char *cmd = NULL;
	SM_AUTOFREE char *what = NULL;
	struct json_object *pn, *cache = NULL, *r;

	if (!graph)
		return -1;
	parent = graph_edge(graph, NULL, "backing", format);
	file = parent ? graph_edge(graph, parent, "file", NULL) : NULL;
	json_object_put(graph);
	if (!parent)
		return 0;
	pn = node_named(nodes, parent);
	if (!pn || !file || strncmp(parent, "libvirt-", 8) != 0 || !jstr(pn, "drv")) {
		sm_error("cannot close '%s' in QEMU (node '%s'): it is the backing of node '%s', "
			 "which is not a node of libvirt's naming that snapmove may reopen; see "
			 "'virsh qemu-monitor-command %s \'{\"execute\":\"query-named-block-nodes\"}\''",
			 path, format, parent, virDomainGetName(dom));
		return -1;
	}
	json_object_object_get_ex(pn, "cache", &cache);
	cmd = sm_xasprintf("{\"execute\":\"blockdev-reopen\",\"arguments\":{\"options\":[{"
			   "\"driver\":\"%s\",\"node-name\":\"%s\",\"file\":\"%s\","
			   "\"backing\":null,\"read-only\":%s,\"discard\":\"unmap\","
			   "\"detect-zeroes\":\"%s\",\"cache\":{\"direct\":%s,\"no-flush\":%s}}]}}",
			   jstr(pn, "drv"), parent, file, jbool(pn, "ro") ? "true" : "false",
			   jstr(pn, "detect_zeroes") ? jstr(pn, "detect_zeroes") : "off",
			   jbool(cache, "direct") ? "true" : "false",
			   jbool(cache, "no-flush") ? "true" : "false");
	what = sm_xasprintf("take '%s' (QEMU node '%s') off the backing of node '%s', where a "
			    "pivot libvirt lost put it", path, format, parent);
	if (!(r = qmp(dom, cmd, what)))
		return -1;
	json_object_put(r);
	note_add(note, sm_xasprintf("took '%s' off the backing of QEMU node '%s'", path, parent));
	return 0;
}

/* Nodes on path named libvirt-N-storage (and their libvirt-N-format). */
static int clear_nodes(virDomainPtr dom, const char *path, char **note)
{
	struct json_object *nodes = qmp(dom, "{\"execute\":\"query-named-block-nodes\","
					"\"arguments\":{\"flat\":true}}",
					"list QEMU's block nodes");
	int ret = 0;

	if (!nodes)
		return -1;
	for (size_t k = 0; k < json_object_array_length(nodes) && ret == 0; k++) {
		struct json_object *n = json_object_array_get_idx(nodes, k);
		const char *name = jstr(n, "node-name");
		size_t len = name ? strlen(name) : 0;
		SM_AUTOFREE char *format = NULL;

		if (!name || !sm_str_eq(jstr(n, "drv"), "file") ||
		    !sm_str_eq(jstr(n, "file"), path) || strncmp(name, "libvirt-", 8) != 0 ||
		    len < 16 || strcmp(name + len - 8, "-storage") != 0)
			continue;
		format = sm_xasprintf("%.*s-format", (int)(len - 8), name);
		if (has_node(nodes, format) && (detach_from_parent(dom, nodes, format, path, note) < 0 ||
						del_node(dom, format, path) < 0))
			ret = -1;
		else if (del_node(dom, name, path) < 0)
			ret = -1;
		else
			note_add(note, sm_xasprintf("closed '%s' (QEMU node '%s')", path, name));
	}
	json_object_put(nodes);
	return ret;
}

/* Whether the domain's QEMU has one of paths open (an fd on it, the file
 * deleted or not), by /proc: asking QEMU itself (QMP through libvirt) marks
 * the domain "tainted: custom-monitor" in its log, which a move that finds
 * nothing should not do.  true when its QEMU cannot be found. */
static bool qemu_holds(virDomainPtr dom, const char *const *paths, size_t npaths)
{
	int pid = sm_imagelock_domain_qemu(virDomainGetName(dom));
	SM_AUTOFREE char *dir = NULL;
	struct dirent *e;
	bool found = false;
	DIR *d;

	if (pid <= 0)
		return true;
	dir = sm_xasprintf("/proc/%d/fd", pid);
	d = opendir(dir);
	if (!d)
		return true;
	while (!found && (e = readdir(d))) {
		SM_AUTOFREE char *fd = sm_xasprintf("%s/%s", dir, e->d_name);
		char link[4096];
		ssize_t n = readlink(fd, link, sizeof(link) - 1);

		if (n <= 0)
			continue;
		link[n] = '\0';
		for (size_t k = 0; k < npaths && !found; k++) {
			size_t len = strlen(paths[k]);

			found = strncmp(link, paths[k], len) == 0 &&
				(link[len] == '\0' || strcmp(link + len, " (deleted)") == 0);
		}
	}
	closedir(d);
	return found;
}

int sm_blockjob_clear_lost(virDomainPtr dom, const char *target, const char *const *paths,
			   size_t npaths, char **note)
{
	struct json_object *jobs = NULL;
	int rc;

	*note = NULL;
	if (!qemu_holds(dom, paths, npaths))
		return 0;
	rc = sm_blockjob_running(dom, target);
	if (rc < 0)
		return -1;
	if (rc == 0)  /* else libvirt knows the job on target */
		jobs = qmp(dom, "{\"execute\":\"query-block-jobs\"}", "list QEMU's block jobs");
	if (rc == 0 && !jobs)
		return -1;
	for (size_t k = 0; jobs && k < json_object_array_length(jobs) && rc == 0; k++) {
		struct json_object *j = json_object_array_get_idx(jobs, k);
		const char *id = jstr(j, "device");

		if (!job_of(id, target))
			continue;
		rc = end_lost_job(dom, target, id);
		if (rc == 0)
			note_add(note, sm_xasprintf("cancelled QEMU's block job '%s' (%s)", id,
						    jstr(j, "status") ? jstr(j, "status") : "?"));
	}
	json_object_put(jobs);
	rc = rc < 0 ? -1 : 0;
	for (size_t k = 0; k < npaths && rc == 0; k++)
		rc = clear_nodes(dom, paths[k], note);
	if (rc < 0) {
		free(*note);
		*note = NULL;
		return -1;
	}
	return 0;
}

/* The file of a json: filename QEMU makes for a node with options
 * ({"driver": "qcow2", "file": {"driver": "file", "filename": PATH}, ...}). */
static char *json_filename_file(const char *fn)
{
	struct json_object *o = json_tokener_parse(fn + strlen("json:"));
	struct json_object *file, *name;
	char *out = NULL;

	if (o && json_object_object_get_ex(o, "file", &file) &&
	    json_object_is_type(file, json_type_object) &&
	    json_object_object_get_ex(file, "filename", &name) &&
	    json_object_is_type(name, json_type_string))
		out = sm_xstrdup(json_object_get_string(name));
	json_object_put(o);
	return out;
}

/* The file a node's "file" (or a device's) names: a path, or a json:
 * filename whose "file" child names it. */
static char *node_file(const char *fn)
{
	return strncmp(fn, "json:", 5) == 0 ? json_filename_file(fn) : sm_xstrdup(fn);
}

char *sm_blockjob_qemu_top_parse(const char *reply, const char *alias)
{
	struct json_object *o = reply ? json_tokener_parse(reply) : NULL;
	struct json_object *ret;
	SM_AUTOFREE char *qdev = alias ? sm_xasprintf("/machine/peripheral/%s/virtio-backend",
						      alias) : NULL;
	SM_AUTOFREE char *drive = alias ? sm_xasprintf("drive-%s", alias) : NULL;
	char *out = NULL;

	if (!o || !alias || !json_object_object_get_ex(o, "return", &ret) ||
	    !json_object_is_type(ret, json_type_array))
		goto cleanup;
	for (size_t k = 0; k < json_object_array_length(ret) && !out; k++) {
		struct json_object *b = json_object_array_get_idx(ret, k);
		struct json_object *v, *ins, *file;
		const char *fn;
		bool match = false;

		if (json_object_object_get_ex(b, "qdev", &v) && json_object_is_type(v, json_type_string))
			match = sm_str_eq(json_object_get_string(v), qdev) ||
				sm_str_eq(json_object_get_string(v), alias);
		if (!match && json_object_object_get_ex(b, "device", &v) &&
		    json_object_is_type(v, json_type_string))
			match = sm_str_eq(json_object_get_string(v), drive);
		if (!match || !json_object_object_get_ex(b, "inserted", &ins) ||
		    !json_object_object_get_ex(ins, "file", &file) ||
		    !json_object_is_type(file, json_type_string))
			continue;
		fn = json_object_get_string(file);
		out = node_file(fn);
	}

cleanup:
	json_object_put(o);
	return out;
}

char *sm_blockjob_qemu_top(virDomainPtr dom, const char *alias)
{
	char *reply = NULL;
	char *top;

	if (virDomainQemuMonitorCommand(dom, "{\"execute\":\"query-block\"}", &reply, 0) < 0) {
		sm_virt_error("cannot ask QEMU which file disk '%s' writes to", alias);
		return NULL;
	}
	top = sm_blockjob_qemu_top_parse(reply, alias);
	free(reply);
	if (!top)
		sm_error("QEMU's query-block does not name the file of device '%s'", alias);
	return top;
}

char *sm_blockjob_qemu_nodes_parse(const char *reply, const char *path)
{
	struct json_object *o = reply ? json_tokener_parse(reply) : NULL;
	struct json_object *ret;
	char *out = NULL;

	if (!o || !path || !json_object_object_get_ex(o, "return", &ret) ||
	    !json_object_is_type(ret, json_type_array))
		goto cleanup;
	for (size_t k = 0; k < json_object_array_length(ret); k++) {
		struct json_object *n = json_object_array_get_idx(ret, k);
		struct json_object *name, *file;
		SM_AUTOFREE char *f = NULL;

		if (!json_object_object_get_ex(n, "node-name", &name) ||
		    !json_object_is_type(name, json_type_string) ||
		    !json_object_object_get_ex(n, "file", &file) ||
		    !json_object_is_type(file, json_type_string))
			continue;
		f = node_file(json_object_get_string(file));
		if (!sm_str_eq(f, path))
			continue;
		if (out) {
			char *more = sm_xasprintf("%s, %s", out, json_object_get_string(name));

			free(out);
			out = more;
		} else {
			out = sm_xstrdup(json_object_get_string(name));
		}
	}

cleanup:
	json_object_put(o);
	return out;
}

int sm_blockjob_qemu_nodes(virDomainPtr dom, const char *path, char **nodes)
{
	char *reply = NULL;

	*nodes = NULL;
	if (virDomainQemuMonitorCommand(dom, "{\"execute\":\"query-named-block-nodes\"}",
					&reply, 0) < 0) {
		sm_virt_error("cannot ask QEMU which block nodes have '%s' open", path);
		return -1;
	}
	*nodes = sm_blockjob_qemu_nodes_parse(reply, path);
	free(reply);
	return *nodes ? 1 : 0;
}

int sm_blockjob_qemu_commit_ready(virDomainPtr dom, const char *target)
{
	struct json_object *jobs = qmp(dom, "{\"execute\":\"query-block-jobs\"}",
				       "list QEMU's block jobs");
	int ready = 0;

	if (!jobs)
		return -1;
	for (size_t k = 0; k < json_object_array_length(jobs); k++) {
		struct json_object *j = json_object_array_get_idx(jobs, k), *r;
		const char *id = jstr(j, "device");

		if (id && strncmp(id, "commit-", 7) == 0 && job_of(id, target) &&
		    json_object_object_get_ex(j, "ready", &r) && json_object_get_boolean(r))
			ready = 1;
	}
	json_object_put(jobs);
	return ready;
}
