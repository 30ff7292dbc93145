/* job_run.h: moved to src/job/job_run.h; only for src/hooks.c until it
 * includes "job/job_run.h" (remove this file then). */
#include "job/job_run.h"
