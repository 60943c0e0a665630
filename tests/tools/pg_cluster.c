/* A throwaway PostgreSQL cluster for the shell tests (tests/harness/pg.h):
 * starts one, makes a database, prints its URI and the password on two
 * lines, then holds the cluster until its standard input ends (the test
 * closed it, or died) and stops it.  Bounded: after HOLD_MAX_MS it stops
 * anyway.  Run it as a coprocess:
 *
 *   coproc PG { exec "$TLM_TEST_PG"; }
 *   read -r -u "${PG[0]}" uri; read -r -u "${PG[0]}" password
 *
 * Its arguments are none, so a test's `pkill -f "$tmp/"` never kills it
 * before it stops the server. */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "harness/harness.h"
#include "harness/pg.h"

#define HOLD_MAX_MS (60 * 60 * 1000) /* longer than any ctest timeout */

/* Until stdin is at its end or in error, or the bound is reached. */
static void hold(void)
{
	struct pollfd p = { .fd = 0, .events = POLLIN };
	char buf[256];
	int waited = 0;

	while (waited < HOLD_MAX_MS) {
		int n = poll(&p, 1, 1000);

		waited += 1000;
		if (n > 0 && read(0, buf, sizeof(buf)) <= 0)
			return;
		if (n < 0)
			return;
	}
}

int main(void)
{
	tlm_h_pg pg = { 0 };
	char *uri;

	tlm_h_pg_start(&pg);
	uri = tlm_h_pg_newdb(&pg);
	printf("%s\n%s\n", uri, pg.password);
	fflush(stdout);
	hold();
	free(uri);
	tlm_h_pg_stop(&pg);
	return 0;
}
