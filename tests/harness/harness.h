/* Test harness for the C tests: real services on free loopback ports.
 * Every helper fails the current cmocka test on error. */
#ifndef TLM_TEST_HARNESS_H
#define TLM_TEST_HARNESS_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdint.h>
#include <sys/types.h>

/* A free TCP port on 127.0.0.1 (bound and released; good enough for tests). */
unsigned short tlm_h_free_port(void);

/* A new temporary directory (caller frees the string; tlm_h_rmrf removes it). */
char *tlm_h_tmpdir(void);
void tlm_h_rmrf(const char *path);

/* Milliseconds on the monotonic clock, and a sleep that is only ever a pause
 * (tests synchronise by polling with a deadline, never by sleeping). */
int64_t tlm_h_now_ms(void);
void tlm_h_sleep_ms(long ms);

#endif
