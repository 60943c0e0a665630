/*
 * Runs a libFuzzer target's inputs without libFuzzer: every file given, and
 * every file in each directory given (in name order), once each through
 * LLVMFuzzerTestOneInput.  Built in every build, with gcc too, so a target's
 * corpus (its seeds and the reproducers of what fuzzing found) is a
 * regression test that CI runs without clang: ctest -R fuzz.
 * Exit 0 when every input ran (a broken promise aborts), 2 when an input
 * could not be read or there was none.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Exactly size bytes (at least one) of malloc'ed memory, so a sanitizer
 * catches any read past the input as libFuzzer's own buffers would. */
static int run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	long size;
	int rc = -1;

	if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 ||
	    fseek(f, 0, SEEK_SET) != 0)
		goto done;
	if ((buf = malloc(size > 0 ? (size_t)size : 1)) == NULL ||
	    fread(buf, 1, (size_t)size, f) != (size_t)size)
		goto done;
	LLVMFuzzerTestOneInput(buf, (size_t)size);
	rc = 0;
done:
	if (rc != 0)
		fprintf(stderr, "replay: cannot read %s\n", path);
	free(buf);
	if (f != NULL)
		fclose(f);
	return rc;
}

int main(int argc, char **argv)
{
	size_t ran = 0;
	int i, failed = 0;

	for (i = 1; i < argc; i++) {
		struct dirent **names = NULL;
		struct stat st;
		int n, j;

		if (stat(argv[i], &st) != 0 || !S_ISDIR(st.st_mode)) {
			failed |= run_file(argv[i]) != 0;
			ran++;
			continue;
		}
		if ((n = scandir(argv[i], &names, NULL, alphasort)) < 0) {
			fprintf(stderr, "replay: cannot list %s\n", argv[i]);
			failed = 1;
			continue;
		}
		for (j = 0; j < n; j++) {
			char path[4096];

			snprintf(path, sizeof(path), "%s/%s", argv[i], names[j]->d_name);
			if (names[j]->d_name[0] != '.' && stat(path, &st) == 0 &&
			    S_ISREG(st.st_mode)) {
				printf("%s\n", path);
				fflush(stdout);
				failed |= run_file(path) != 0;
				ran++;
			}
			free(names[j]);
		}
		free(names);
	}
	printf("replay: %zu inputs\n", ran);
	return failed || ran == 0 ? 2 : 0;
}
