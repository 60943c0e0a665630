/* A throwaway PostgreSQL cluster for the tests (docs/distributed.md,
 * "Testing"): initdb in a temporary directory, the server on a free loopback
 * port with TCP only and password authentication, run as an unprivileged
 * user (nobody) when the suite runs as root, stopped and removed at the end.
 * The password is random and exported as PGPASSWORD, which libpq (and so
 * every telemachy process a test starts) reads; tests look for it in what
 * telemachy prints and journals, to prove it never appears. */
#ifndef TLM_TEST_PG_H
#define TLM_TEST_PG_H

#include <sys/types.h>

typedef struct tlm_h_pg {
	pid_t pid;
	char *dir;
	unsigned short port;
	char password[40];
	int ndb;
} tlm_h_pg;

/* Starts a cluster; fails the test when PostgreSQL is missing or will not
 * start (the suite installs it: scripts/bootstrap). */
void tlm_h_pg_start(tlm_h_pg *pg);

/* A fresh, empty database on it: its URI (no password), malloc'd. */
char *tlm_h_pg_newdb(tlm_h_pg *pg);

/* Runs SQL as the superuser on database uri (NULL: the maintenance db);
 * returns the first column of the first row, malloc'd, or NULL. */
char *tlm_h_pg_query(tlm_h_pg *pg, const char *uri, const char *sql);

/* Stops the server (a fast shutdown) and removes the directory. */
void tlm_h_pg_stop(tlm_h_pg *pg);

/* The cluster a cmocka group shares: its group setup starts it, its group
 * teardown stops it (cmocka_run_group_tests(tests, tlm_h_pg_group_setup,
 * tlm_h_pg_group_teardown)). */
extern tlm_h_pg tlm_h_pg_group;
int tlm_h_pg_group_setup(void **state);
int tlm_h_pg_group_teardown(void **state);

/* Stops the server only, or starts it again on the same port and data. */
void tlm_h_pg_halt(tlm_h_pg *pg);
void tlm_h_pg_restart(tlm_h_pg *pg);

#endif
