/* The test cluster of pg.h. */
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <grp.h>
#include <libpq-fe.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness/harness.h"
#include "harness/pg.h"

#define NOBODY   65534 /* Debian's nobody and nogroup */
#define START_MS 30000
#define STOP_MS  30000

/* The newest installed server's bin directory. */
static void bindir(char *out, size_t size)
{
	glob_t g;

	if (glob("/usr/lib/postgresql/*/bin/initdb", 0, NULL, &g) != 0 || g.gl_pathc == 0)
		fail_msg("PostgreSQL is not installed (scripts/bootstrap installs postgresql)");
	snprintf(out, size, "%s", g.gl_pathv[g.gl_pathc - 1]);
	*strrchr(out, '/') = '\0';
	globfree(&g);
}

/* fork + exec argv, as nobody when we are root, output to log. */
static pid_t spawn(char *const argv[], const char *log)
{
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);

		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		if (geteuid() == 0 &&
		    (setgroups(0, NULL) != 0 || setgid(NOBODY) != 0 || setuid(NOBODY) != 0))
			_exit(126);
		execv(argv[0], argv);
		_exit(127);
	}
	return pid;
}

static int wait_exit(pid_t pid, long ms)
{
	int64_t end = tlm_h_now_ms() + ms;
	int status;

	while (tlm_h_now_ms() < end) {
		pid_t r = waitpid(pid, &status, WNOHANG);

		if (r == pid)
			return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
		tlm_h_sleep_ms(20);
	}
	return -1;
}

static void conninfo(const tlm_h_pg *pg, const char *db, char *out, size_t size)
{
	snprintf(out, size,
		 "host=127.0.0.1 port=%u user=telemachy password=%s dbname=%s connect_timeout=2",
		 pg->port, pg->password, db);
}

static void start_server(tlm_h_pg *pg)
{
	char bin[256], exe[320], data[300], port[16], log[320], info[256];
	int64_t end = tlm_h_now_ms() + START_MS;

	bindir(bin, sizeof(bin));
	snprintf(exe, sizeof(exe), "%s/postgres", bin);
	snprintf(data, sizeof(data), "%s/data", pg->dir);
	snprintf(log, sizeof(log), "%s/server.log", pg->dir);
	snprintf(port, sizeof(port), "%u", pg->port);
	{
		char *argv[] = { exe,
				 "-D",
				 data,
				 "-p",
				 port,
				 "-c",
				 "listen_addresses=127.0.0.1",
				 "-c",
				 "unix_socket_directories=",
				 "-c",
				 "fsync=off",
				 "-c",
				 "max_connections=200",
				 NULL };

		pg->pid = spawn(argv, log);
	}
	conninfo(pg, "postgres", info, sizeof(info));
	while (PQping(info) != PQPING_OK) {
		if (tlm_h_now_ms() > end || waitpid(pg->pid, NULL, WNOHANG) == pg->pid)
			fail_msg("PostgreSQL did not start; see %s", log);
		tlm_h_sleep_ms(50);
	}
}

void tlm_h_pg_start(tlm_h_pg *pg)
{
	char bin[256], exe[320], data[300], pwfile[300], log[320];
	unsigned char rnd[12];
	FILE *f;
	int i;

	memset(pg, 0, sizeof(*pg));
	bindir(bin, sizeof(bin));
	pg->dir = tlm_h_tmpdir();
	pg->port = tlm_h_free_port();
	f = fopen("/dev/urandom", "r");
	assert_non_null(f);
	assert_int_equal(fread(rnd, 1, sizeof(rnd), f), sizeof(rnd));
	fclose(f);
	strcpy(pg->password, "pw");
	for (i = 0; i < (int)sizeof(rnd); i++)
		snprintf(pg->password + 2 + 2 * i, 3, "%02x", rnd[i]);
	snprintf(pwfile, sizeof(pwfile), "%s/pw", pg->dir);
	f = fopen(pwfile, "w");
	assert_non_null(f);
	fprintf(f, "%s\n", pg->password);
	fclose(f);
	if (geteuid() == 0) { /* PostgreSQL refuses to run as root */
		assert_int_equal(chown(pg->dir, NOBODY, NOBODY), 0);
		assert_int_equal(chown(pwfile, NOBODY, NOBODY), 0);
	}
	snprintf(exe, sizeof(exe), "%s/initdb", bin);
	snprintf(data, sizeof(data), "%s/data", pg->dir);
	snprintf(log, sizeof(log), "%s/initdb.log", pg->dir);
	{
		char pwarg[320];
		char *argv[] = {
			exe,   "-D", data,   "-U",        "telemachy", "-A", "scram-sha-256",
			pwarg, "-E", "UTF8", "--no-sync", NULL
		};

		snprintf(pwarg, sizeof(pwarg), "--pwfile=%s", pwfile);
		if (wait_exit(spawn(argv, log), START_MS) != 0)
			fail_msg("initdb failed; see %s", log);
	}
	setenv("PGPASSWORD", pg->password, 1);
	start_server(pg);
}

char *tlm_h_pg_query(tlm_h_pg *pg, const char *uri, const char *sql)
{
	char info[256];
	PGconn *c;
	PGresult *r;
	char *out = NULL;

	conninfo(pg, "postgres", info, sizeof(info));
	c = PQconnectdb(uri != NULL ? uri : info);
	if (PQstatus(c) != CONNECTION_OK)
		fail_msg("cannot connect to the test PostgreSQL: %s", PQerrorMessage(c));
	r = PQexec(c, sql);
	if (PQresultStatus(r) != PGRES_TUPLES_OK && PQresultStatus(r) != PGRES_COMMAND_OK)
		fail_msg("test SQL failed: %s: %s", sql, PQresultErrorMessage(r));
	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0 && !PQgetisnull(r, 0, 0))
		out = strdup(PQgetvalue(r, 0, 0));
	PQclear(r);
	PQfinish(c);
	return out;
}

char *tlm_h_pg_newdb(tlm_h_pg *pg)
{
	char sql[64], uri[160];

	snprintf(sql, sizeof(sql), "CREATE DATABASE t%d", ++pg->ndb);
	free(tlm_h_pg_query(pg, NULL, sql));
	snprintf(uri, sizeof(uri), "postgresql://telemachy@127.0.0.1:%u/t%d", pg->port, pg->ndb);
	return strdup(uri);
}

void tlm_h_pg_halt(tlm_h_pg *pg)
{
	if (pg->pid <= 0)
		return;
	kill(pg->pid, SIGINT); /* fast shutdown: ends every session */
	if (wait_exit(pg->pid, STOP_MS) < 0) {
		kill(pg->pid, SIGKILL);
		waitpid(pg->pid, NULL, 0);
	}
	pg->pid = 0;
}

void tlm_h_pg_restart(tlm_h_pg *pg)
{
	start_server(pg);
}

void tlm_h_pg_stop(tlm_h_pg *pg)
{
	tlm_h_pg_halt(pg);
	tlm_h_rmrf(pg->dir);
	free(pg->dir);
	pg->dir = NULL;
}

tlm_h_pg tlm_h_pg_group;

int tlm_h_pg_group_setup(void **state)
{
	(void)state;
	tlm_h_pg_start(&tlm_h_pg_group);
	return 0;
}

int tlm_h_pg_group_teardown(void **state)
{
	(void)state;
	tlm_h_pg_stop(&tlm_h_pg_group);
	return 0;
}
