/* Harness: `telemachy ui` (docs/ui.md) as a real process. */
#ifndef TLM_TEST_HARNESS_UI_H
#define TLM_TEST_HARNESS_UI_H

#include <sys/types.h>

typedef struct tlm_h_ui {
	pid_t pid;
	char url[160]; /* "http://127.0.0.1:PORT" (no trailing slash) */
} tlm_h_ui;

/* Starts `telemachy ui ARGS...` (NULL-terminated) without
 * TELEMACHY_STATE_DIR / TELEMACHY_JOURNAL and with env ("NAME=VALUE",
 * may be NULL) added, its stdout in a file under dir, SIGKILLed if the test
 * process dies; fills u once the URL
 * line is out (10 s at most, else the test fails).  Returns -1 and the exit
 * code in *code when the process ended instead. */
int tlm_h_ui_start(const char *dir, tlm_h_ui *u, const char *const *args, const char *const *env,
		   int *code);

/* SIGTERM, and the test fails unless it exits 0 within 5 s. */
void tlm_h_ui_stop(tlm_h_ui *u);

#endif
