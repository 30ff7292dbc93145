/* outcome.c: the names and exit statuses of enum sm_move_result. */
#include "job/outcome.h"

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
