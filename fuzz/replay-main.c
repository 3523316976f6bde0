/* SPDX-License-Identifier: MIT */
/*
 * replay-main.c - run a libFuzzer target without libFuzzer: replay its corpus
 *
 * Usage: fuzz-TARGET DIR-OR-FILE...  Every regular file of every directory given (and every
 * file given) is passed to LLVMFuzzerTestOneInput(), and so is every prefix of it (all lengths
 * from 0 to the whole file), so that truncated messages are exercised too. Each input is a
 * fresh malloc'ed copy of exactly its length, so AddressSanitizer sees reads past the end.
 * A missing or unreadable argument is an error (exit 1): a corpus must not silently vanish.
 * This is what the 'fuzz' suite runs in builds without -Dfuzz=true (gcc).
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t n_files, n_inputs;

static int replay_file(const char *path)
{
        FILE *f = fopen(path, "re");
        uint8_t *buf = NULL;
        size_t size = 0, alloc = 0, k;

        if (!f) {
                fprintf(stderr, "%s: %s\n", path, strerror(errno));
                return -1;
        }
        do {
                if (size == alloc) {
                        uint8_t *b = realloc(buf, alloc ? alloc * 2 : 4096);
                        if (!b) {
                                fclose(f);
                                free(buf);
                                return -1;
                        }
                        buf = b;
                        alloc = alloc ? alloc * 2 : 4096;
                }
                k = fread(buf + size, 1, alloc - size, f);
                size += k;
        } while (k > 0);
        fclose(f);

        for (size_t n = 0; n <= size; n++) {
                uint8_t *copy = malloc(n ? n : 1);

                if (!copy) {
                        free(buf);
                        return -1;
                }
                memcpy(copy, buf, n);
                (void)LLVMFuzzerTestOneInput(copy, n);
                free(copy);
                n_inputs++;
        }
        free(buf);
        n_files++;
        return 0;
}

static int filter_regular(const struct dirent *de)
{
        return de->d_name[0] != '.';
}

static int replay(const char *path)
{
        struct dirent **entries;
        struct stat st;
        int n, r = 0;

        if (stat(path, &st) < 0) {
                fprintf(stderr, "%s: %s\n", path, strerror(errno));
                return -1;
        }
        if (!S_ISDIR(st.st_mode))
                return replay_file(path);
        n = scandir(path, &entries, filter_regular, alphasort);
        if (n < 0) {
                fprintf(stderr, "%s: %s\n", path, strerror(errno));
                return -1;
        }
        for (int i = 0; i < n; i++) {
                char *p;

                if (r == 0 && asprintf(&p, "%s/%s", path, entries[i]->d_name) >= 0) {
                        if (stat(p, &st) == 0 && S_ISREG(st.st_mode) && replay_file(p) < 0)
                                r = -1;
                        free(p);
                }
                free(entries[i]);
        }
        free(entries);
        return r;
}

int main(int argc, char **argv)
{
        if (argc < 2) {
                fprintf(stderr, "usage: %s DIR-OR-FILE...\n", argv[0]);
                return 2;
        }
        for (int i = 1; i < argc; i++)
                if (replay(argv[i]) < 0)
                        return 1;
        printf("%s: replayed %zu files, %zu inputs (all prefixes)\n", argv[0], n_files, n_inputs);
        return n_files > 0 ? 0 : 1;
}
