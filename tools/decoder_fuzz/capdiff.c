/* See capdiff.h. */
#include "capdiff.h"

#include <fnmatch.h>
#include <stdio.h>
#include <string.h>

/* The `why` diagnostics below may be cut at the caller's buffer size on purpose; -O3's
 * constant propagation otherwise turns that into -Wformat-truncation errors. */
#pragma GCC diagnostic ignored "-Wformat-truncation"

static uint64_t rnd(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

static unsigned parse_modes(const char *s)
{
    unsigned m = 0;
    if (strstr(s, "16")) m |= 1u << DECODER_MODE_16;
    if (strstr(s, "32")) m |= 1u << DECODER_MODE_32;
    if (strstr(s, "64")) m |= 1u << DECODER_MODE_64;
    return m ? m : 7;
}

int capdiff_open(struct capdiff *c, enum decoder_mode mode, const char *allowlist)
{
    memset(c, 0, sizeof *c);
    c->mode = mode;
    cs_mode m = mode == DECODER_MODE_64 ? CS_MODE_64 : mode == DECODER_MODE_32 ? CS_MODE_32 : CS_MODE_16;
    if (cs_open(CS_ARCH_X86, m, &c->cs) != CS_ERR_OK || cs_open(CS_ARCH_X86, m, &c->csd) != CS_ERR_OK)
        return -1;
    cs_option(c->csd, CS_OPT_DETAIL, CS_OPT_ON);
    if (!allowlist)
        return 0;
    FILE *f = fopen(allowlist, "r");
    if (!f)
        return -1;
    char line[512];
    while (fgets(line, sizeof line, f) && c->nallow < CAPDIFF_MAX_ALLOW) {
        char *h = strchr(line, '#');
        if (h)
            *h = 0;
        struct capdiff_allow *a = &c->allow[c->nallow];
        char modes[32] = "";
        a->opstr[0] = 0;
        int k = sscanf(line, "%15s %31s %31s %31s %63s", a->kind, a->ours, a->cs, modes, a->opstr);
        if (k < 3)
            continue;
        a->modes = k >= 4 ? parse_modes(modes) : 7;
        a->hits = 0;
        c->nallow++;
    }
    fclose(f);
    return 0;
}

void capdiff_close(struct capdiff *c)
{
    cs_close(&c->cs);
    cs_close(&c->csd);
}

/* Capstone folds prefixes into the mnemonic ("lock add", "rep stosb"). */
static const char *cs_base_mnemonic(const char *m)
{
    static const char *const pfx[] = {"lock ", "rep ", "repe ", "repne ", "repz ", "repnz ",
                                      "xacquire ", "xrelease ", "bnd ", "notrack ", "data16 "};
    for (int again = 1; again;) {
        again = 0;
        for (size_t i = 0; i < sizeof pfx / sizeof pfx[0]; i++) {
            size_t l = strlen(pfx[i]);
            if (!strncmp(m, pfx[i], l)) {
                m += l;
                again = 1;
            }
        }
    }
    return m;
}

/* Prefix bytes (legacy and, in 64-bit mode, REX) before the opcode. */
static size_t prefix_len(const struct capdiff *c, const uint8_t *b, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t x = b[i];
        int legacy = x == 0xf0 || x == 0xf2 || x == 0xf3 || x == 0x2e || x == 0x36 || x == 0x3e ||
                     x == 0x26 || x == 0x64 || x == 0x65 || x == 0x66 || x == 0x67;
        if (!legacy && !(c->mode == DECODER_MODE_64 && (x & 0xf0) == 0x40))
            break;
        i++;
    }
    return i;
}

/* AMD XOP: 8F with map select >= 8 (AMD APM vol.4); on Intel 8F is POP r/m. */
static int is_xop(const struct capdiff *c, const uint8_t *b, size_t n)
{
    size_t np = prefix_len(c, b, n);
    return np + 1 < n && b[np] == 0x8f && (b[np + 1] & 0x1f) >= 8;
}

/* Equal mnemonics, or a naming difference listed as "mnemonic" in the allow-list. */
static int same_name(const struct capdiff *c, const char *ours, const char *cs)
{
    if (!strcmp(ours, cs))
        return 1;
    for (unsigned i = 0; i < c->nallow; i++) {
        const struct capdiff_allow *a = &c->allow[i];
        if ((a->modes & (1u << c->mode)) && !strcmp(a->kind, "mnemonic") && !a->opstr[0] &&
            !fnmatch(a->ours, ours, 0) && !fnmatch(a->cs, cs, 0))
            return 1;
    }
    return 0;
}

/* Rewrite the prefix bytes per `rule`, decode ours again, and report whether
 * that reproduces Capstone's mnemonic and length: Capstone then merely
 * misinterpreted those prefixes. */
static int rule_has(const char *rules, const char *name)
{
    size_t l = strlen(name);
    for (const char *p = rules; (p = strstr(p, name)); p += l)
        if ((p == rules || p[-1] == '+') && (p[l] == 0 || p[l] == '+'))
            return 1;
    return 0;
}

/* Apply the prefix rewrites named in `rule` to b[0..n) into t; returns its length. */
static size_t rewrite(const struct capdiff *c, const char *rule, const uint8_t *b, size_t n,
                      const struct decoded_insn *orig, uint8_t t[32], size_t *removed_out, size_t *np_out)
{
    size_t np = prefix_len(c, b, n);
    /* Capstone's prefix-order bugs need at least two prefix bytes (legacy or REX) */
    unsigned nlegacy = (unsigned)np;
    /* a VEX/EVEX prefix right after the legacy prefixes (SDM 2.3.5: outside
     * 64-bit mode only when the next byte has mod=11) */
    int vex_follows = np + 1 < n && (b[np] == 0xc4 || b[np] == 0xc5) &&
                      (c->mode == DECODER_MODE_64 || (b[np + 1] & 0xc0) == 0xc0);
    size_t m = 0, removed = 0, added = 0;
    for (size_t i = 0; i < n && m < 32; i++) {
        uint8_t x = b[i];
        if (i < np) {
            /* Capstone never checks LOCK legality, so every rule also drops LOCK */
            if (x == 0xf0) { removed++; continue; }
            if (nlegacy >= 2 && rule_has(rule, "drop-rep") && (x == 0xf2 || x == 0xf3)) { removed++; continue; }
            if (nlegacy >= 2 && rule_has(rule, "drop-66") && x == 0x66) { removed++; continue; }
            if (nlegacy >= 2 && rule_has(rule, "drop-67") && x == 0x67) { removed++; continue; }
            if (rule_has(rule, "mp16") && c->mode == DECODER_MODE_16 && (x == 0x66 || x == 0xf2 || x == 0xf3)) { removed++; continue; }
            if (rule_has(rule, "67-as-66") && x == 0x67 && !added && m < 31) {
                /* Capstone keeps the 67 (address size) and also applies it as a 66 */
                t[m++] = 0x67;
                x = 0x66;
                added++;
            }
            /* np-66: neutralize the 66 (a DS override keeps the byte count and any REX non-adjacent) */
            if (rule_has(rule, "np-66") && x == 0x66 && orig->status == DECODER_UD) x = 0x3e;
            if (rule_has(rule, "vex-pfx") && vex_follows && (x == 0x66 || x == 0xf2 || x == 0xf3 || (x & 0xf0) == 0x40)) { removed++; continue; }
            if (rule_has(rule, "drop-rexw") && c->mode == DECODER_MODE_64 && (x & 0xf8) == 0x48) x &= 0xf7;
        }
        /* VEX3 payload byte 2: W is bit 7, L is bit 2 */
        if (i == np + 2 && b[np] == 0xc4 && vex_follows) {
            if (rule_has(rule, "vex-w0")) x &= 0x7f;
            if (rule_has(rule, "vex-l1")) x |= 0x04;
        }
        t[m++] = x;
    }
    *removed_out = removed - added; /* net bytes removed; may wrap when bytes were added */
    *np_out = np;
    return m;
}

static int rule_explains(const struct capdiff *c, const char *rule, const uint8_t *b, size_t n,
                         const char *csm, int cslen, const struct decoded_insn *orig)
{
    uint8_t t[32];
    size_t removed, np;
    size_t m = rewrite(c, rule, b, n, orig, t, &removed, &np);
    if (m == n && !memcmp(t, b, m) && !rule_has(rule, "branch-66"))
        return 0;
    struct decoded_insn d;
    if (decoder_decode(t, m, c->mode, &d) != DECODER_OK)
        return cslen == 0; /* Capstone rejected what the rewritten prefixes make invalid */
    if (cslen == 0)
        return 0;
    if (rule_has(rule, "branch-66")) {
        /* Capstone decodes 66/67-prefixed near branches in 64-bit mode with a
         * 16-bit displacement (AMD behaviour); Intel ignores 66 there. */
        int has66 = memchr(t, 0x66, np) != NULL || memchr(t, 0x67, np) != NULL;
        return c->mode == DECODER_MODE_64 && has66 && (d.flags & DFLAG_BRANCH) && d.nops == 1 &&
               d.ops[0].kind == DOPND_REL && same_name(c, decoder_op_name(d.op), csm);
    }
    return same_name(c, decoder_op_name(d.op), csm) && (size_t)d.length + removed == (size_t)cslen;
}

static int allowed(struct capdiff *c, const char *kind, const char *ours, const char *cs,
                   const char *opstr, const uint8_t *b, size_t n, int cslen,
                   const struct decoded_insn *d)
{
    for (unsigned i = 0; i < c->nallow; i++) {
        struct capdiff_allow *a = &c->allow[i];
        if (!(a->modes & (1u << c->mode)))
            continue;
        if (!strcmp(a->kind, "rule")) {
            if (rule_explains(c, a->ours, b, n, cs, cslen, d)) {
                a->hits++;
                return 1;
            }
            continue;
        }
        if (strcmp(a->kind, kind))
            continue;
        if (a->opstr[0] && fnmatch(a->opstr, opstr, 0))
            continue;
        if (fnmatch(a->ours, ours, 0) || fnmatch(a->cs, cs, 0))
            continue;
        a->hits++;
        return 1;
    }
    return 0;
}

enum capdiff_result capdiff_check(struct capdiff *c, const uint8_t *b, size_t n, char *why,
                                  size_t whysz)
{
    struct decoded_insn d;
    decoder_decode(b, n, c->mode, &d);
    cs_insn *insn = NULL;
    size_t cnt = cs_disasm(c->cs, b, n, 0x1000, 1, &insn);
    const char *ours = d.status == DECODER_OK ? decoder_op_name(d.op) : "(bad)";
    const char *kind = NULL;
    char csm[64] = "*", csops[160] = "";
    int cslen = 0;
    if (cnt) {
        snprintf(csm, sizeof csm, "%s", cs_base_mnemonic(insn->mnemonic));
        snprintf(csops, sizeof csops, "%s", insn->op_str);
        cslen = insn->size;
    }
    if (!cnt && d.status != DECODER_OK)
        kind = NULL;
    else if (!cnt)
        kind = "cs-invalid";
    else if (d.status != DECODER_OK && (d.prefixes & DPFX_EVEX))
        kind = d.length == cslen ? "evex" : "evex-length"; /* no AVX-512: #UD, but measured */
    else if (d.status != DECODER_OK && is_xop(c, b, n))
        kind = "xop";
    else if (d.status != DECODER_OK)
        kind = "ours-invalid";
    else if (strcmp(ours, csm))
        kind = "mnemonic";
    else if (cslen != d.length)
        kind = "length";
    if (why && whysz) {
        char hex[64] = "";
        size_t show = cnt ? (size_t)cslen : d.length ? d.length : 1;
        if (d.status == DECODER_OK && d.length > show)
            show = d.length;
        for (size_t i = 0; i < show && i < n; i++)
            snprintf(hex + 2 * i, sizeof hex - 2 * i, "%02x", b[i]);
        char mine[96];
        decoder_format(&d, 0x1000, mine, sizeof mine);
        /* a diagnostic: truncating it is fine */
        snprintf(why, whysz, "%s mode%d %s: ours '%s' len %d st %d | capstone '%s %s' len %d",
                 kind ? kind : "agree", 16 << c->mode, hex, mine, d.length, d.status,
                 cnt ? insn->mnemonic : "(invalid)", cnt ? insn->op_str : "", cslen);
    }
    if (cnt)
        cs_free(insn, cnt);
    c->n++;
    if (!kind) {
        c->exact++;
        return CAPDIFF_AGREE;
    }
    if (!cnt)
        decoder_format(&d, 0x1000, csops, sizeof csops); /* match our text when Capstone has none */
    if (allowed(c, kind, ours, csm, csops, b, n, cslen, &d)) {
        c->allowed++;
        return CAPDIFF_ALLOWED;
    }
    c->unexplained++;
    return CAPDIFF_DISAGREE;
}

static const char *cs_reg(csh h, unsigned r)
{
    const char *n = r ? cs_reg_name(h, r) : NULL;
    return n ? n : "";
}

/* one operand: 0 same, else a short reason */
static const char *operand_diff(const struct capdiff *c, const struct decoded_insn *d,
                                const struct decoder_operand *o, const cs_x86_op *x)
{
    switch (o->kind) {
    case DOPND_REG:
        if (x->type != X86_OP_REG)
            return "kind";
        return strcmp(decoder_reg_name(o), cs_reg(c->csd, x->reg)) ? "register" : NULL;
    case DOPND_MEM: {
        if (x->type != X86_OP_MEM)
            return "kind";
        char ours[16] = "";
        if (o->base == DECODER_BASE_RIP)
            snprintf(ours, sizeof ours, "%s", d->addrsize == 4 ? "eip" : "rip");
        else if (o->base != DECODER_NO_REG) {
            struct decoder_operand r = {.kind = DOPND_REG, .reg_class = DREG_GPR, .reg = o->base, .size = d->addrsize};
            snprintf(ours, sizeof ours, "%s", decoder_reg_name(&r));
        }
        if (strcmp(ours, cs_reg(c->csd, x->mem.base)))
            return "base";
        ours[0] = 0;
        if (o->index != DECODER_NO_REG) {
            struct decoder_operand r = {.kind = DOPND_REG, .reg_class = DREG_GPR, .reg = o->index, .size = d->addrsize};
            if (d->flags & DFLAG_VSIB) {
                r.reg_class = DREG_XMM;
                r.size = decoder_vsib_index_size(d);
            }
            snprintf(ours, sizeof ours, "%s", decoder_reg_name(&r));
        }
        if (strcmp(ours, cs_reg(c->csd, x->mem.index)))
            return "index";
        if (o->index != DECODER_NO_REG && o->scale != x->mem.scale)
            return "scale";
        uint64_t mask = d->addrsize == 8 ? ~0ull : (1ull << (8 * d->addrsize)) - 1;
        if (((uint64_t)o->disp & mask) != ((uint64_t)x->mem.disp & mask))
            return "displacement";
        return NULL;
    }
    case DOPND_IMM: {
        if (x->type != X86_OP_IMM)
            return "kind";
        unsigned sz = o->size ? o->size : 8;
        if (sz == 8 && (int64_t)(int32_t)o->disp == o->disp)
            sz = 4; /* imm32 sign-extended to 64 (SDM); Capstone reports it unextended */
        uint64_t mask = sz >= 8 ? ~0ull : (1ull << (8 * sz)) - 1;
        return ((uint64_t)o->disp & mask) == ((uint64_t)x->imm & mask) ? NULL : "immediate";
    }
    case DOPND_REL: {
        if (x->type != X86_OP_IMM)
            return "kind";
        uint64_t t = 0x1000 + d->length + (uint64_t)o->disp;
        uint64_t mask = d->mode == DECODER_MODE_64 ? ~0ull : d->opsize == 2 ? 0xffff : 0xffffffff;
        return (t & mask) == ((uint64_t)x->imm & mask) ? NULL : "branch target";
    }
    default:
        return "kind";
    }
}

static int operands_equal(const struct capdiff *c, const struct decoded_insn *d, const cs_insn *insn)
{
    const cs_x86 *x = &insn->detail->x86;
    if (x->op_count != d->nops)
        return 0;
    for (unsigned k = 0; k < d->nops; k++)
        if (operand_diff(c, d, &d->ops[k], &x->operands[k]))
            return 0;
    return 1;
}

/* A prefix rule explains an operand difference when our decode of the
 * rewritten bytes has Capstone's operands. */
static int operands_rule(const struct capdiff *c, const char *rule, const uint8_t *b, size_t n,
                         const struct decoded_insn *orig, const cs_insn *insn)
{
    if (rule_has(rule, "branch-66"))
        return c->mode == DECODER_MODE_64 && orig->nops == 1 && orig->ops[0].kind == DOPND_REL &&
               (memchr(b, 0x66, prefix_len(c, b, n)) || memchr(b, 0x67, prefix_len(c, b, n)));
    uint8_t t[32];
    size_t removed, np;
    if (rule_has(rule, "gpr-size-66rep")) {
        /* Capstone 4 prints 32-bit registers for 66-prefixed GPR forms when F2/F3 is
         * also present, while decoding the 16-bit immediate: only the size differs. */
        size_t np0 = prefix_len(c, b, n);
        if (!memchr(b, 0x66, np0) || (!memchr(b, 0xf2, np0) && !memchr(b, 0xf3, np0)))
            return 0;
        const cs_x86 *x = &insn->detail->x86;
        for (unsigned k = 0; k < orig->nops; k++) {
            const struct decoder_operand *o = &orig->ops[k];
            if (!operand_diff(c, orig, o, &x->operands[k]))
                continue;
            if (o->kind != DOPND_REG || o->reg_class != DREG_GPR || x->operands[k].type != X86_OP_REG)
                return 0;
            struct decoder_operand wide = *o;
            wide.size = 4;
            if (strcmp(decoder_reg_name(&wide), cs_reg(c->csd, x->operands[k].reg)))
                return 0;
        }
        return 1;
    }
    size_t m = rewrite(c, rule, b, n, orig, t, &removed, &np);
    if (m == n && !memcmp(t, b, m))
        return 0;
    struct decoded_insn d;
    if (decoder_decode(t, m, c->mode, &d) != DECODER_OK || d.op != orig->op)
        return 0;
    d.length = orig->length; /* branch targets are relative to the original length */
    return operands_equal(c, &d, insn);
}

enum capdiff_result capdiff_check_operands(struct capdiff *c, const uint8_t *b, size_t n, char *why,
                                           size_t whysz)
{
    struct decoded_insn d;
    if (decoder_decode(b, n, c->mode, &d) != DECODER_OK)
        return CAPDIFF_AGREE;
    cs_insn *insn = NULL;
    size_t cnt = cs_disasm(c->csd, b, n, 0x1000, 1, &insn);
    if (!cnt)
        return CAPDIFF_AGREE;
    enum capdiff_result res = CAPDIFF_AGREE;
    const cs_x86 *x = &insn->detail->x86;
    const char *csm = cs_base_mnemonic(insn->mnemonic);
    if (insn->size != d.length || strcmp(csm, decoder_op_name(d.op)) || x->op_count != d.nops) {
        c->opskipped++; /* different instruction (handled by capdiff_check) or implicit-operand conventions */
        goto out;
    }
    c->opn++;
    for (unsigned k = 0; k < d.nops; k++) {
        const char *diff = operand_diff(c, &d, &d.ops[k], &x->operands[k]);
        if (!diff)
            continue;
        if (why && whysz) {
            char mine[96];
            decoder_format(&d, 0x1000, mine, sizeof mine);
            char hex[40] = "";
            for (size_t i = 0; i < d.length && i < 15; i++)
                snprintf(hex + 2 * i, sizeof hex - 2 * i, "%02x", b[i]);
            snprintf(why, whysz, "operands mode%d %s: operand %u %s: ours '%s' | capstone '%s %s'", 16 << c->mode,
                     hex, k, diff, mine, insn->mnemonic, insn->op_str);
        }
        int ok = 0;
        for (unsigned i = 0; i < c->nallow && !ok; i++) {
            struct capdiff_allow *a = &c->allow[i];
            if (!(a->modes & (1u << c->mode)))
                continue;
            if (!strcmp(a->kind, "operands") && !fnmatch(a->ours, decoder_op_name(d.op), 0) &&
                !fnmatch(a->cs, diff, 0)) {
                a->hits++;
                ok = 1;
            } else if (!strcmp(a->kind, "rule") && operands_rule(c, a->ours, b, n, &d, insn)) {
                a->hits++;
                ok = 1;
            }
        }
        if (ok) {
            c->opallowed++;
            res = CAPDIFF_ALLOWED;
        } else {
            c->opbad++;
            res = CAPDIFF_DISAGREE;
        }
        goto out;
    }
    c->opsame++;
out:
    cs_free(insn, cnt);
    return res;
}

static const uint8_t legacy_pfx[] = {0x66, 0x67, 0xf2, 0xf3, 0xf0, 0x2e, 0x36, 0x3e, 0x26, 0x64, 0x65};

void capdiff_gen(uint64_t *s, enum decoder_mode mode, uint8_t buf[15])
{
    for (int i = 0; i < 15; i += 8) {
        uint64_t r = rnd(s);
        for (int k = 0; k < 8 && i + k < 15; k++)
            buf[i + k] = (uint8_t)(r >> (8 * k));
    }
    uint64_t r = rnd(s);
    if ((r & 7) == 0)
        return; /* fully random bytes */
    int p = 0;
    unsigned npfx = (r >> 3) & 3;
    if ((r >> 5) & 1)
        npfx = 0;
    for (unsigned k = 0; k < npfx; k++)
        buf[p++] = legacy_pfx[rnd(s) % sizeof legacy_pfx];
    if (mode == DECODER_MODE_64 && ((r >> 6) & 1))
        buf[p++] = (uint8_t)(0x40 | ((r >> 7) & 15));
    switch ((r >> 11) % 10) {
    case 0: case 1: case 2: break; /* one-byte map */
    case 3: case 4: buf[p++] = 0x0f; break;
    case 5: buf[p++] = 0x0f; buf[p++] = 0x38; break;
    case 6: buf[p++] = 0x0f; buf[p++] = 0x3a; break;
    case 7: /* VEX2 */
        buf[p] = 0xc5;
        if (mode != DECODER_MODE_64)
            buf[p + 1] |= 0xc0;
        break;
    case 8: /* VEX3 with a plausible map */
        buf[p] = 0xc4;
        buf[p + 1] = (uint8_t)((buf[p + 1] & 0xe0) | (1 + (r >> 20) % 3));
        if (mode != DECODER_MODE_64)
            buf[p + 1] |= 0xc0;
        break;
    case 9: /* x87 */
        buf[p] = (uint8_t)(0xd8 + ((r >> 24) & 7));
        break;
    }
}
