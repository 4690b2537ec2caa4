/* Differential check of softkvm's decoder against Capstone 4 (one instruction
 * at a time): validity, length and mnemonic. Known Capstone mistakes are read
 * from ONE allow-list file (tests/decoder/capstone_allowlist.txt). Shared by
 * the decoder-fuzz tool and tests/decoder/test_capstone.c. */
#ifndef SOFTKVM_CAPDIFF_H
#define SOFTKVM_CAPDIFF_H
#include <capstone/capstone.h>
#include <stddef.h>
#include <stdint.h>

#include "decoder/decoder.h"

#define CAPDIFF_MAX_ALLOW 256

struct capdiff_allow {
    char kind[16];  /* cs-invalid | ours-invalid | length | mnemonic | rule (ours = rule name) */
    char ours[32];  /* our mnemonic or "*" */
    char cs[32];    /* Capstone's mnemonic or "*" */
    unsigned modes; /* bit per enum decoder_mode */
    char opstr[64]; /* optional fnmatch pattern: Capstone operand text (cs-invalid: our full text) */
    unsigned long hits;
};

struct capdiff {
    csh cs;
    enum decoder_mode mode;
    struct capdiff_allow allow[CAPDIFF_MAX_ALLOW];
    unsigned nallow;
    unsigned long n, exact, allowed, unexplained;
    csh csd; /* second handle with detail on, for operand comparison */
    unsigned long opn, opsame, opskipped, opallowed, opbad;
};

enum capdiff_result { CAPDIFF_AGREE, CAPDIFF_ALLOWED, CAPDIFF_DISAGREE };

/* Returns 0 on success; allowlist may be NULL. */
int capdiff_open(struct capdiff *c, enum decoder_mode mode, const char *allowlist);
void capdiff_close(struct capdiff *c);
/* Compare one instruction at b[0..n). why (if non-NULL) receives a one-line explanation. */
enum capdiff_result capdiff_check(struct capdiff *c, const uint8_t *b, size_t n, char *why,
                                  size_t whysz);
/* Operand-level comparison for an instruction both decoders agree on (mnemonic,
 * length): register names, memory base/index/scale/displacement, immediates and
 * branch targets, in Intel order, when both list the same number of operands.
 * Differences are explained only by "operands" allow-list entries. */
enum capdiff_result capdiff_check_operands(struct capdiff *c, const uint8_t *b, size_t n, char *why,
                                           size_t whysz);
/* Fill buf[0..15) with a random instruction-shaped byte string (prefixes, REX,
 * escapes, VEX, then random bytes); state is a xorshift64 seed, never 0. */
void capdiff_gen(uint64_t *state, enum decoder_mode mode, uint8_t buf[15]);

#endif
