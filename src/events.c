/* events.c: JSON event lines on stdout and/or in the events file,
 * thread-safe, throttled progress. */
#include "events.h"
#include "log.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static bool enabled;
static int file_fd = -1;
static bool result_sent;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

struct throttle {
	char key[96];
	double last;
};
static struct throttle throttles[32];

void sm_events_enable(bool on)
{
	enabled = on;
}

bool sm_events_enabled(void)
{
	return enabled;
}

/* The events file: never through a link (a planted one would lead root's
 * appends anywhere), and only a file of the caller's own that others cannot
 * write; a new one is 0600. */
int sm_events_open_file(void)
{
	const char *path = getenv("SNAPMOVE_EVENTS_FILE");
	struct stat sb;
	int fd;

	if (!path || !*path || file_fd >= 0)
		return 0;
	fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0 && errno == ELOOP) {
		sm_error("the events file '%s' (SNAPMOVE_EVENTS_FILE) is a symbolic link; snapmove "
			 "does not follow one there: name the file itself", path);
		return -1;
	}
	if (fd < 0) {
		sm_error("cannot open the events file '%s' (SNAPMOVE_EVENTS_FILE): %s; fix the "
			 "path or unset the variable", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &sb) < 0 || (!S_ISREG(sb.st_mode) && !S_ISFIFO(sb.st_mode))) {
		sm_error("the events file '%s' (SNAPMOVE_EVENTS_FILE) is not a regular file or a "
			 "pipe; name a file of your own", path);
		close(fd);
		return -1;
	}
	if (sb.st_uid != geteuid()) {
		sm_error("the events file '%s' (SNAPMOVE_EVENTS_FILE) is not owned by you; name a "
			 "file of your own, or one that does not exist yet", path);
		close(fd);
		return -1;
	}
	if (sb.st_mode & S_IWOTH) {
		sm_error("the events file '%s' (SNAPMOVE_EVENTS_FILE) is writable by others; "
			 "'chmod o-w %s', or name another file", path, path);
		close(fd);
		return -1;
	}
	file_fd = fd;
	return 0;
}

static bool wanted(void)
{
	return enabled || file_fd >= 0;
}

bool sm_events_wanted(void)
{
	return wanted();
}

bool sm_event_result_sent(void)
{
	return result_sent;
}

static bool quiet;
static FILE *devnull;

void sm_human_quiet(bool on)
{
	quiet = on;
	if (quiet && !devnull)
		devnull = fopen("/dev/null", "we");
}

bool sm_human_is_quiet(void)
{
	return quiet;
}

FILE *sm_human(void)
{
	if (quiet && devnull)
		return devnull;
	return enabled ? stderr : stdout;
}

void sm_json_print(struct json_object *doc)
{
	fputs(json_object_to_json_string_ext(doc, JSON_C_TO_STRING_PRETTY |
						  JSON_C_TO_STRING_NOSLASHESCAPE), stdout);
	fputc('\n', stdout);
	fflush(stdout);
	json_object_put(doc);
}

void sm_event_emit(const char *type, struct json_object *obj)
{
	if (!wanted()) {
		json_object_put(obj);
		return;
	}
	json_object_object_add(obj, "event", json_object_new_string(type));
	json_object_object_add(obj, "time", json_object_new_double(sm_now()));
	pthread_mutex_lock(&lock);
	if (strcmp(type, "result") == 0)
		result_sent = true;
	{
		/* One write per line, so lines of processes sharing stdout (a
		 * rebalance's moves) do not interleave. */
		SM_AUTOFREE char *line = sm_xasprintf(
			"%s\n", json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PLAIN |
								 JSON_C_TO_STRING_NOSLASHESCAPE));

		if (enabled) {
			fflush(stdout);
			if (write(STDOUT_FILENO, line, strlen(line)) < 0)
				(void)0;  /* stdout gone: nothing to tell */
		}
		/* O_APPEND and one write: the lines of several processes
		 * sharing the file (a rebalance's moves) stay whole. */
		if (file_fd >= 0 && write(file_fd, line, strlen(line)) < 0)
			(void)0;  /* a full disk must not stop the move */
	}
	pthread_mutex_unlock(&lock);
	json_object_put(obj);
}

static struct json_object *with_job(long long job)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "job", json_object_new_int64(job));
	return o;
}

void sm_event_phase(long long job, const char *phase, const char *status, const char *error)
{
	struct json_object *o;

	if (!wanted())
		return;
	o = with_job(job);
	json_object_object_add(o, "phase", json_object_new_string(phase));
	json_object_object_add(o, "status", json_object_new_string(status));
	if (error)
		json_object_object_add(o, "error", json_object_new_string(error));
	sm_event_emit("phase", o);
}

/* true when this disk and kind may report now. */
static bool may_report(const char *disk, const char *kind, bool last)
{
	char key[96];
	double now = sm_monotonic();
	bool ok = true;
	size_t i, free_slot = SM_ARRAY_LEN(throttles);

	snprintf(key, sizeof(key), "%s/%s", disk ? disk : "", kind);
	pthread_mutex_lock(&lock);
	for (i = 0; i < SM_ARRAY_LEN(throttles); i++) {
		if (strcmp(throttles[i].key, key) == 0)
			break;
		if (!throttles[i].key[0] && free_slot == SM_ARRAY_LEN(throttles))
			free_slot = i;
	}
	if (i == SM_ARRAY_LEN(throttles) && free_slot < SM_ARRAY_LEN(throttles)) {
		i = free_slot;
		snprintf(throttles[i].key, sizeof(throttles[i].key), "%s", key);
		throttles[i].last = 0;
	}
	if (i < SM_ARRAY_LEN(throttles)) {
		if (!last && now - throttles[i].last < 0.1)
			ok = false;
		else
			throttles[i].last = now;
	}
	pthread_mutex_unlock(&lock);
	return ok;
}

void sm_event_progress(long long job, const char *disk, const char *kind, const char *image,
		       unsigned long long done, unsigned long long total, double rate)
{
	struct json_object *o;

	if (!wanted() || !may_report(disk, kind, done >= total))
		return;
	o = with_job(job);
	if (disk)
		json_object_object_add(o, "disk", json_object_new_string(disk));
	json_object_object_add(o, "kind", json_object_new_string(kind));
	if (image)
		json_object_object_add(o, "image", json_object_new_string(image));
	json_object_object_add(o, "done", json_object_new_int64((int64_t)done));
	json_object_object_add(o, "total", json_object_new_int64((int64_t)total));
	json_object_object_add(o, "rate", json_object_new_double(rate > 0 ? rate : 0));
	sm_event_emit("progress", o);
}

void sm_event_warning(long long job, const char *disk, const char *message)
{
	struct json_object *o;

	if (disk)
		sm_log_job(LOG_WARNING, job, NULL, "warning: disk '%s': %s", disk, message);
	else
		sm_log_job(LOG_WARNING, job, NULL, "warning: %s", message);
	if (!wanted())
		return;
	o = with_job(job);
	if (disk)
		json_object_object_add(o, "disk", json_object_new_string(disk));
	json_object_object_add(o, "message", json_object_new_string(message));
	sm_event_emit("warning", o);
}

/* How a program run (a hook, a provisioner) ended, as both events say it. */
static void add_run(struct json_object *o, int exit_status, bool timed_out, double seconds)
{
	json_object_object_add(o, "exit", json_object_new_int(exit_status));
	json_object_object_add(o, "timed_out", json_object_new_boolean(timed_out));
	json_object_object_add(o, "seconds", json_object_new_double(seconds));
}

void sm_event_hook(long long job, const char *point, const char *hook, int exit_status,
		   bool timed_out, double seconds)
{
	struct json_object *o;

	if (!wanted())
		return;
	o = with_job(job);
	json_object_object_add(o, "point", json_object_new_string(point));
	json_object_object_add(o, "hook", json_object_new_string(hook));
	add_run(o, exit_status, timed_out, seconds);
	sm_event_emit("hook", o);
}

void sm_event_provision(long long job, const char *action, long long device, const char *arg,
			int exit_status, bool timed_out, double seconds)
{
	struct json_object *o;

	if (!wanted())
		return;
	o = with_job(job);
	json_object_object_add(o, "action", json_object_new_string(action));
	json_object_object_add(o, "device", json_object_new_int64(device));
	json_object_object_add(o, "argument", json_object_new_string(arg));
	add_run(o, exit_status, timed_out, seconds);
	sm_event_emit("provision", o);
}
