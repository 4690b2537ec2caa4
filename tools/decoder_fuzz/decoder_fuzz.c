/* decoder-fuzz: differential fuzzing of softkvm's decoder against Capstone 4.
 *   decoder-fuzz --mode 64 --count N --seed S [--allow FILE] [--show K]
 * Prints each unexplained disagreement (up to K) and "agree A of N". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "capdiff.h"

#ifndef CAPDIFF_ALLOWLIST
#define CAPDIFF_ALLOWLIST NULL
#endif

int main(int argc, char **argv)
{
    int mode_bits = 64;
    unsigned long count = 100000, seed = 1, show = 20;
    const char *allow = CAPDIFF_ALLOWLIST;
    int hits = 0, operands = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--mode") && i + 1 < argc) mode_bits = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--count") && i + 1 < argc) count = strtoul(argv[++i], NULL, 0);
        else if (!strcmp(argv[i], "--seed") && i + 1 < argc) seed = strtoul(argv[++i], NULL, 0);
        else if (!strcmp(argv[i], "--allow") && i + 1 < argc) allow = argv[++i];
        else if (!strcmp(argv[i], "--show") && i + 1 < argc) show = strtoul(argv[++i], NULL, 0);
        else if (!strcmp(argv[i], "--hits")) hits = 1;
        else if (!strcmp(argv[i], "--operands")) operands = 1;
        else {
            fprintf(stderr, "usage: decoder-fuzz --mode 16|32|64 --count N --seed S [--allow FILE] [--show K] [--hits] [--operands]\n");
            return 2;
        }
    }
    enum decoder_mode mode = mode_bits == 16 ? DECODER_MODE_16 : mode_bits == 32 ? DECODER_MODE_32 : DECODER_MODE_64;
    struct capdiff c;
    if (capdiff_open(&c, mode, allow)) {
        fprintf(stderr, "decoder-fuzz: cannot open capstone or allow-list %s\n", allow ? allow : "");
        return 2;
    }
    uint64_t st = seed * 0x9e3779b97f4a7c15ull + 1;
    uint8_t buf[15];
    char why[256];
    unsigned long shown = 0;
    clock_t t0 = clock();
    for (unsigned long i = 0; i < count; i++) {
        capdiff_gen(&st, mode, buf);
        if (capdiff_check(&c, buf, sizeof buf, why, sizeof why) == CAPDIFF_DISAGREE && shown < show) {
            printf("%s\n", why);
            shown++;
        }
        if (operands && capdiff_check_operands(&c, buf, sizeof buf, why, sizeof why) == CAPDIFF_DISAGREE &&
            shown < show) {
            printf("%s\n", why);
            shown++;
        }
    }
    double secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
    if (hits)
        for (unsigned i = 0; i < c.nallow; i++)
            printf("allow %-12s %-12s %-12s hits %lu\n", c.allow[i].kind, c.allow[i].ours, c.allow[i].cs, c.allow[i].hits);
    printf("mode %d seed %lu: agree %lu of %lu (exact %lu, allow-listed %lu, unexplained %lu) in %.1fs\n",
           mode_bits, seed, c.exact + c.allowed, c.n, c.exact, c.allowed, c.unexplained, secs);
    if (operands)
        printf("operands: compared %lu (same %lu, allow-listed %lu, unexplained %lu), skipped %lu (operand count differs)\n",
               c.opn, c.opsame, c.opallowed, c.opbad, c.opskipped);
    capdiff_close(&c);
    return c.unexplained || c.opbad ? 1 : 0;
}
