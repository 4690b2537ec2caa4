/* emu-fuzz --count N --seed S [--mode 64|32] [--verbose]: differential test of emu/ against Unicorn
 * (see difftest.h). Prints "agree A of N" and, with --verbose, each disagreement. */
#include <stdlib.h>

#include "tools/emu_fuzz/difftest.h"

int main(int argc, char **argv)
{
    unsigned long count = 1000;
    uint64_t seed = 1;
    int verbose = 0;
    long only = -1; /* run (and print) just this case number */
    bool m32 = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--count") && i + 1 < argc)
            count = strtoul(argv[++i], NULL, 0);
        else if (!strcmp(argv[i], "--seed") && i + 1 < argc)
            seed = strtoull(argv[++i], NULL, 0);
        else if (!strcmp(argv[i], "--only") && i + 1 < argc)
            only = strtol(argv[++i], NULL, 0);
        else if (!strcmp(argv[i], "--mode") && i + 1 < argc)
            m32 = !strcmp(argv[++i], "32");
        else if (!strcmp(argv[i], "--verbose") || !strcmp(argv[i], "-v"))
            verbose++;
        else {
            fprintf(stderr, "usage: %s [--count N] [--seed S] [--mode 64|32] [--only K] [--verbose]\n", argv[0]);
            return 2;
        }
    }
    struct dt_rng r = {seed};
    static struct dt_case c;
    unsigned long agree = 0;
    for (unsigned long n = 0; n < count; n++) {
        char why[256] = "";
        dt_gen_case(&r, &c, m32);
        if (only >= 0 && (long)n != only)
            continue;
        if (only >= 0)
            dt_print_case(stdout, &c);
        if (dt_run_case(&c, why, sizeof why)) {
            agree++;
        } else if (verbose) {
            printf("case %lu: %s\n", n, why);
            if (verbose > 1)
                dt_print_case(stdout, &c);
        }
    }
    unsigned long ran = only >= 0 ? 1 : count;
    printf("agree %lu of %lu\n", agree, ran);
    return agree == ran ? 0 : 1;
}
