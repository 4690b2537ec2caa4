/* decoder: every entry of the opcode table (decoder/opcodes.tbl) gets a test.
 *
 * For each decode entry an encoding satisfying its constraints is synthesized
 * (mode, mandatory prefix / VEX.pp, REX.W / VEX.W, VEX.L, ModRM reg/mod/rm),
 * decoded, and checked: the op is the entry's op, the length equals the length
 * computed independently here from the operand types (prefixes + escape +
 * opcode + ModRM + displacement + immediates), the operand count and kinds
 * match the types. The same bytes are then checked against Capstone (the
 * allow-list in capstone_allowlist.txt explains known Capstone mistakes).
 * Finally every DOP (1..DOP_COUNT-1) must have been reached by some entry. */
#include <check.h>
#include "tests/check_main.h"
#include <stdio.h>
#include <string.h>

#include "decoder/decoder.h"
#include "decoder/decoder_tables.h"
#include "decoder/operand_types.h"

#include "../../tools/decoder_fuzz/capdiff.c"

static char allowlist[512];

static void init_paths(void)
{
    snprintf(allowlist, sizeof allowlist, "%s", __FILE__);
    char *slash = strrchr(allowlist, '/');
    snprintf(slash ? slash + 1 : allowlist, sizeof allowlist - (size_t)(slash ? slash + 1 - allowlist : 0),
             "capstone_allowlist.txt");
}

struct synth {
    uint8_t b[20];
    unsigned n;
    unsigned expect_len;
    enum decoder_mode mode;
};

static int map_of_entry(unsigned idx, unsigned *opc)
{
    for (int m = 0; m < DEC_NMAPS; m++)
        for (unsigned o = 0; o < 256; o++) {
            const struct dec_slot *s = &dec_slots[m][o];
            if (s->count && idx >= s->first && idx < (unsigned)s->first + s->count) {
                *opc = o;
                return m;
            }
        }
    return -1;
}

static int uses_vvvv(const struct dec_entry *e)
{
    for (int k = 0; k < 4; k++)
        if (dec_opnd_desc[e->opnd[k]].src == S_H)
            return 1;
    return 0;
}

/* Independent length model of SDM vol.2 ch.2 for the synthesized forms:
 * memory operands use [rAX]/[BX+SI] (no displacement). */
static unsigned imm_bytes(const struct dec_entry *e, unsigned opsize, unsigned addrsize)
{
    unsigned n = 0;
    for (int k = 0; k < 4; k++) {
        switch (e->opnd[k]) {
        case OT_Ib: case OT_Ibs: case OT_Ib2: case OT_Jb: case OT_Lx: n += 1; break;
        case OT_Iw: n += 2; break;
        case OT_Iz: case OT_Jz: n += opsize == 2 ? 2 : 4; break;
        case OT_Iv: n += opsize; break;
        case OT_Ap: n += (opsize == 2 ? 2 : 4) + 2; break;
        case OT_Ob: case OT_Ov: n += addrsize; break;
        default: break;
        }
    }
    return n;
}

/* Build an encoding of entry e with the given ModRM byte. Returns 0 if the
 * constraints cannot be met by this generator. */
static int synth(const struct dec_entry *e, int map, unsigned opc, unsigned modrm, int rexb,
                 struct synth *s)
{
    memset(s, 0, sizeof *s);
    s->mode = (e->modes & 4) ? DECODER_MODE_64 : DECODER_MODE_32;
    if (e->asz == 2 || (e->osz == 2 && !(e->modes & 4)))
        s->mode = DECODER_MODE_32;
    int m64 = s->mode == DECODER_MODE_64;
    int vex = map >= 4;
    unsigned opsize = 4;
    if (e->asz == 2 || (m64 && e->asz == 4))
        s->b[s->n++] = 0x67;
    if (e->asz == 8 && !m64)
        return 0;
    unsigned addrsize = m64 ? (e->asz == 4 ? 4 : 8) : (e->asz == 2 ? 2 : 4);
    int rexw = e->w == 2 || e->osz == 8;
    if (rexw && !m64 && !vex)
        return 0;
    if (e->osz == 2) {
        if (e->pfx == 2)
            return 0;
        s->b[s->n++] = 0x66;
        opsize = 2;
    }
    if (!vex) {
        static const uint8_t mp[5] = {0, 0, 0x66, 0xf3, 0xf2};
        if (e->pfx >= 2)
            s->b[s->n++] = mp[e->pfx];
        if (rexw || rexb)
            s->b[s->n++] = (uint8_t)(0x40 | (rexw ? 8 : 0) | (rexb ? 1 : 0));
        if (map == 1) s->b[s->n++] = 0x0f;
        if (map == 2) { s->b[s->n++] = 0x0f; s->b[s->n++] = 0x38; }
        if (map == 3) { s->b[s->n++] = 0x0f; s->b[s->n++] = 0x3a; }
    } else {
        unsigned pp = e->pfx ? e->pfx - 1u : 0;
        unsigned vvvv = uses_vvvv(e) ? 1 : 0;
        s->b[s->n++] = 0xc4;
        s->b[s->n++] = (uint8_t)(0xe0 | (unsigned)(map - 3));
        s->b[s->n++] = (uint8_t)((e->w == 2 ? 0x80 : 0) | ((~vvvv & 15) << 3) | (e->l == 2 ? 4 : 0) | pp);
    }
    if (e->w == 2 && vex)
        rexw = 1;
    if (m64 && (rexw && !vex))
        opsize = 8;
    if (m64 && (e->d64 || e->f64) && opsize != 2)
        opsize = 8;
    if (m64 && e->f64)
        opsize = 8;
    if (m64 && rexw)
        opsize = 8;
    s->b[s->n++] = (uint8_t)opc;
    unsigned len = s->n;
    if (dec_slots[map][opc].modrm) {
        s->b[s->n++] = (uint8_t)modrm;
        len++;
        if ((modrm >> 6) != 3 && (modrm & 7) == 4 && s->mode != DECODER_MODE_16) {
            s->b[s->n++] = 0x08; /* SIB: [rax + rcx*1] (VSIB: index xmm1) */
            len++;
        }
    }
    unsigned imm = imm_bytes(e, opsize, addrsize);
    for (unsigned k = 0; k < imm; k++)
        s->b[s->n++] = (uint8_t)(0x11 + k);
    s->expect_len = len + imm;
    /* pad so a decoder reading too far is caught as a length mismatch */
    while (s->n < 16)
        s->b[s->n++] = 0x90;
    return 1;
}

static int modrm_ok(const struct dec_entry *e, unsigned modrm, enum decoder_mode mode)
{
    unsigned mod = modrm >> 6, reg = (modrm >> 3) & 7, rm = modrm & 7;
    if (e->reg != 0xff && reg != e->reg)
        return 0;
    if (e->mod == 1 && mod == 3)
        return 0;
    if (e->mod == 2 && mod != 3)
        return 0;
    if (e->rm != 0xff && rm != e->rm)
        return 0;
    /* no displacement / SIB in the synthesized memory forms */
    if (mod == 1 || mod == 2)
        return 0;
    if (mod == 0 && rm == 5)
        return 0;
    (void)mode;
    return 1;
}

static unsigned char reached[DOP_COUNT];

START_TEST(test_every_entry)
{
    init_paths();
    struct capdiff cd[3];
    for (int m = 0; m < 3; m++)
        ck_assert_int_eq(capdiff_open(&cd[m], (enum decoder_mode)m, allowlist), 0);
    unsigned tested = 0, skipped = 0, cs_agree = 0, cs_bad = 0;
    char why[256];
    for (unsigned i = 0; i < dec_nentries; i++) {
        const struct dec_entry *e = &dec_entries[i];
        unsigned opc;
        int map = map_of_entry(i, &opc);
        ck_assert_int_ge(map, 0);
        if (e->op == DOP_INVALID)
            continue; /* explicit #UD entries: checked by the Capstone comparison */
        int ok = 0;
        struct synth s;
        struct decoded_insn d;
        unsigned nmodrm = dec_slots[map][opc].modrm ? 256 : 1;
        /* first ModRM value that satisfies the constraints and is not claimed by a more specific entry */
        /* second pass with REX.B: reaches e.g. 41 90 = XCHG r8, rAX */
        for (unsigned modrm = 0; modrm < 2 * nmodrm && !ok; modrm++) {
            if (nmodrm > 1 && !modrm_ok(e, modrm % nmodrm, DECODER_MODE_64))
                continue;
            int rexb = modrm >= nmodrm;
            if (rexb && (!(e->modes & 4) || map >= 4))
                break;
            if (!synth(e, map, opc, modrm % nmodrm, rexb, &s))
                break;
            if (decoder_decode(s.b, s.n, s.mode, &d) != DECODER_OK || d.op != e->op)
                continue;
            ok = 1;
        }
        if (!ok) {
            /* Entries the simple generator cannot reach must be rare and are listed. */
            skipped++;
            fprintf(stderr, "not synthesized: entry %u op %s map %d opcode %02x\n", i,
                    decoder_op_name(e->op), map, opc);
            continue;
        }
        tested++;
        reached[e->op] = 1;
        ck_assert_msg(d.length == s.expect_len, "%s: length %u, expected %u", decoder_op_name(e->op),
                      d.length, s.expect_len);
        unsigned nops = 0;
        while (nops < 4 && e->opnd[nops])
            nops++;
        ck_assert_int_eq(d.nops, nops);
        for (unsigned k = 0; k < nops; k++) {
            const struct dec_opnd_desc *t = &dec_opnd_desc[e->opnd[k]];
            int kind = d.ops[k].kind;
            switch (t->src) {
            case S_M: ck_assert_int_eq(kind, DOPND_MEM); break;
            case S_G: case S_R: case S_H: case S_Z: case S_FIX: case S_L:
                ck_assert_int_eq(kind, DOPND_REG); break;
            case S_E: ck_assert(kind == DOPND_REG || kind == DOPND_MEM); break;
            case S_IMM: case S_I1: ck_assert_int_eq(kind, DOPND_IMM); break;
            case S_J: ck_assert_int_eq(kind, DOPND_REL); break;
            case S_AP: ck_assert_int_eq(kind, DOPND_FAR); break;
            case S_O: case S_X: case S_Y: ck_assert_int_eq(kind, DOPND_MEM); break;
            }
        }
        enum capdiff_result r = capdiff_check(&cd[s.mode], s.b, s.n, why, sizeof why);
        if (r == CAPDIFF_DISAGREE) {
            fprintf(stderr, "capstone: %s\n", why);
            cs_bad++;
        }
        cs_agree += r == CAPDIFF_AGREE;
    }
    unsigned missing = 0;
    for (unsigned op = 1; op < DOP_COUNT; op++)
        if (!reached[op]) {
            fprintf(stderr, "op without a tested encoding: %s\n", decoder_op_name((uint16_t)op));
            missing++;
        }
    fprintf(stderr, "opcode table: %u entries tested (%u exact Capstone agreement), %u not synthesized, %u/%u ops covered\n",
           tested, cs_agree, skipped, DOP_COUNT - 1 - missing, DOP_COUNT - 1);
    ck_assert_int_eq(missing, 0);
    ck_assert_int_eq(cs_bad, 0);
    for (int m = 0; m < 3; m++)
        capdiff_close(&cd[m]);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("decoder_opcodes");
    TCase *tc = tcase_create("opcodes");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_every_entry);
    suite_add_tcase(s, tc);
    return softkvm_check_run(s);
}
