/* opgen: turns decoder/opcodes.tbl (the one opcode definition table) into
 *   decoder_ops.h    enum decoder_op, enum decoder_ext, per-op metadata declarations
 *   decoder_tables.c op names, per-op metadata, operand-type enum users, decode entries
 *
 * Written in C so a fresh Debian 12 with only gcc+cmake can build (no python).
 * Usage: opgen <opcodes.tbl> <out_dir>
 *
 * Table line format (whitespace separated, '#' comments, '-' = empty field):
 *   map  opcode  constraints  mnemonic[:DOPNAME]  operands  ext  flags
 * map:       1b 0f 0f38 0f3a (legacy maps; VEX forms come from the V/VN constraints)
 * opcode:    hex byte, "XX+r" (8 opcodes, register in low 3 bits) or "XX+cc" (16
 *            opcodes, condition code in low 4 bits; "CC" in the mnemonic becomes the suffix)
 * constraints (comma list):
 *   /r        has ModRM           /0../7  ModRM.reg must equal   mem / reg  ModRM.mod != 3 / == 3
 *   m=XX      exact ModRM byte    p=none|66|F3|F2 mandatory prefix
 *   o16 o32 o64  effective operand size   a16 a32 a64 effective address size
 *   w0 w1     REX.W / VEX.W       b0   REX.B must be 0     l0 l1  VEX.L
 *   i64       invalid in 64-bit   x64  valid only in 64-bit
 *   d64       operand size defaults to 64 in 64-bit mode   f64  forced to 64 in 64-bit mode
 *   vex       only as VEX-encoded (map must then be 0f/0f38/0f3a)
 *   V         also emit VEX form "v<mnemonic>" with VEX.vvvv inserted as operand 2
 *   VN        also emit VEX form "v<mnemonic>" without a vvvv operand (vvvv must be 1111b)
 * operands:  comma list of operand types (see OPND_NAMES below)
 * ext:       ISA extension tag (see EXT_NAMES)
 * flags:     lock branch end priv string
 * A mnemonic of "-ud-" marks an encoding that must decode as #UD even though a
 * less specific entry would match it.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const EXT_NAMES[] = {"base", "x87", "mmx", "sse", "sse2", "sse3", "ssse3",
                                        "sse41", "sse42", "avx", "avx2", "bmi", "system",
                                        "vmx", "svm", "aes", "pclmul", "fma", "f16c", "other"};
#define NEXT (sizeof EXT_NAMES / sizeof EXT_NAMES[0])

/* Operand types, SDM vol.2 appendix A.2 notation (E/G/I/J/M/O/S/C/D/X/Y/V/W/U/H/P/Q/N...).
 * The decoder (decoder/operands.c) gives each its meaning. */
static const char *const OPND_NAMES[] = {
    "NONE",
    /* ModRM r/m (register or memory) */
    "Eb", "Ew", "Ed", "Eq", "Ev", "Ey",
    /* ModRM.reg GPR */
    "Gb", "Gw", "Gd", "Gq", "Gv", "Gy", "Gz",
    /* ModRM r/m register only (any mod) */
    "Rd", "Ry", "Rv",
    /* memory-only */
    "M", "Mb", "Mw", "Md", "Mq", "Mdq", "Mqq", "Mt", "Mp", "Ms", "Mv", "My", "Mx",
    /* immediates */
    "Ib", "Ibs", "Iw", "Iz", "Iv", "I1", "Ib2",
    /* relative / far */
    "Jb", "Jz", "Ap",
    /* moffs */
    "Ob", "Ov",
    /* register from opcode low bits */
    "Zb", "Zv",
    /* fixed registers */
    "AL", "CL", "DX", "rAX", "eAX", "AX", "ES", "CS", "SS", "DS", "FS", "GS",
    /* segment / control / debug registers from ModRM.reg */
    "Sw", "Cd", "Dd",
    /* string operands */
    "Xb", "Xv", "Xz", "Yb", "Yv", "Yz",
    /* SSE/AVX */
    "Vx", "Vdq", "Vqq", "Vss", "Vsd", "Vq", "Vd",
    "Wx", "Wdq", "Wss", "Wsd", "Wq", "Wd", "Ww", "Wb", "Wqq",
    "Ux", "Udq", "Uq", "Hx", "Hdq", "Hss", "Hsd", "By", "Lx",
    /* MMX */
    "Pq", "Qq", "Qd", "Nq", "Pd",
    /* x87 */
    "ST0", "STi", "Mfs", "Mfd", "Mft", "Mfi16", "Mfi32", "Mfi64", "Mbcd", "Menv", "Mfst",
    /* bound / mem+reg tricky */
    "Ma", "Mxs", "XMM0",
    /* VSIB memory (AVX2 gathers): SIB index is a vector register */
    "Mvsib",
    /* vector sources that are a half/quarter/eighth of the destination width (VEX.L scales them) */
    "Wh", "Wqtr", "Woct",
};
#define NOPND (sizeof OPND_NAMES / sizeof OPND_NAMES[0])

static const char *const CC_SUFFIX[16] = {"o", "no", "b", "ae", "e", "ne", "be", "a",
                                          "s", "ns", "p", "np", "l", "ge", "le", "g"};

enum { F_LOCK = 1, F_BRANCH = 4, F_PRIV = 8, F_END = 16, F_STRING = 32 };

struct op {
    char name[48];  /* printed mnemonic */
    char dop[48];   /* DOP_ identifier suffix */
    int ext;
    int flags;
};
static struct op ops[4096];
static int nops = 1; /* 0 = INVALID */

struct entry {
    int map; /* 0..3 legacy, 4..6 VEX 0F/0F38/0F3A */
    int opc;
    int op;
    int modrm, reg, mod, rm, pfx, osz, asz, w, b0, l, modes, d64, f64, lock, cond, vexnovvvv;
    int opnd[4];
    int spec;
    int line;
};
static struct entry ents[16384];
static int nents;

static void die(int line, const char *msg, const char *arg)
{
    fprintf(stderr, "opcodes.tbl:%d: %s %s\n", line, msg, arg ? arg : "");
    exit(1);
}

static int find_op(const char *name, const char *dop, int ext, int flags, int line)
{
    if (!strcmp(name, "-ud-"))
        return 0; /* explicitly undefined encoding: decodes as #UD */
    for (int i = 1; i < nops; i++)
        if (!strcmp(ops[i].dop, dop)) {
            if (strcmp(ops[i].name, name))
                die(line, "DOP name reused with another mnemonic:", dop);
            ops[i].flags |= flags;
            return i;
        }
    if (nops >= 4096)
        die(line, "too many ops", NULL);
    snprintf(ops[nops].name, sizeof ops[nops].name, "%s", name);
    snprintf(ops[nops].dop, sizeof ops[nops].dop, "%s", dop);
    ops[nops].ext = ext;
    ops[nops].flags = flags;
    return nops++;
}

static int opnd_id(const char *s, int line)
{
    for (unsigned i = 0; i < NOPND; i++)
        if (!strcmp(OPND_NAMES[i], s))
            return (int)i;
    die(line, "unknown operand type", s);
    return 0;
}

static void upcase(char *d, const char *s, size_t n)
{
    size_t i = 0;
    for (; s[i] && i + 1 < n; i++)
        d[i] = (char)toupper((unsigned char)s[i]);
    d[i] = 0;
}

static int specificity(const struct entry *e)
{
    return (e->reg >= 0) + (e->mod != 0) + (e->rm >= 0) * 2 + (e->pfx != 0) + (e->osz != 0) +
           (e->asz != 0) + (e->w != 0) + e->b0 + (e->l != 0) + (e->modes != 7);
}

static void add_entry(struct entry *e)
{
    if (nents >= 16384)
        die(e->line, "too many entries", NULL);
    e->spec = specificity(e);
    ents[nents++] = *e;
}

static void parse_line(char *line, int lineno)
{
    char *f[8];
    int n = 0;
    for (char *t = strtok(line, " \t\r\n"); t && n < 8; t = strtok(NULL, " \t\r\n"))
        f[n++] = t;
    if (n == 0)
        return;
    if (n != 7)
        die(lineno, "expected 7 fields, got", n < 7 ? "fewer" : "more");
    struct entry e;
    memset(&e, 0, sizeof e);
    e.line = lineno;
    e.reg = e.rm = -1;
    e.modes = 7;
    if (!strcmp(f[0], "1b")) e.map = 0;
    else if (!strcmp(f[0], "0f")) e.map = 1;
    else if (!strcmp(f[0], "0f38")) e.map = 2;
    else if (!strcmp(f[0], "0f3a")) e.map = 3;
    else die(lineno, "bad map", f[0]);

    int count = 1, ccexp = 0;
    char *plus = strchr(f[1], '+');
    if (plus) {
        *plus = 0;
        if (!strcmp(plus + 1, "r")) count = 8;
        else if (!strcmp(plus + 1, "cc")) { count = 16; ccexp = 1; }
        else die(lineno, "bad opcode suffix", plus + 1);
    }
    int base = (int)strtol(f[1], NULL, 16);

    int vexform = 0, vexonly = 0;
    if (strcmp(f[2], "-")) {
        for (char *c = strtok(f[2], ","); c; c = strtok(NULL, ",")) {
            if (!strcmp(c, "/r")) e.modrm = 1;
            else if (c[0] == '/' && c[1] >= '0' && c[1] <= '7' && !c[2]) { e.modrm = 1; e.reg = c[1] - '0'; }
            else if (!strcmp(c, "mem")) { e.modrm = 1; e.mod = 1; }
            else if (!strcmp(c, "reg")) { e.modrm = 1; e.mod = 2; }
            else if (!strncmp(c, "m=", 2)) {
                int m = (int)strtol(c + 2, NULL, 16);
                e.modrm = 1; e.mod = 2; e.reg = (m >> 3) & 7; e.rm = m & 7;
                if ((m >> 6) != 3) die(lineno, "m= needs mod 3", c);
            }
            else if (!strcmp(c, "p=none")) e.pfx = 1;
            else if (!strcmp(c, "p=66")) e.pfx = 2;
            else if (!strcmp(c, "p=F3")) e.pfx = 3;
            else if (!strcmp(c, "p=F2")) e.pfx = 4;
            else if (!strcmp(c, "o16")) e.osz = 2;
            else if (!strcmp(c, "o32")) e.osz = 4;
            else if (!strcmp(c, "o64")) e.osz = 8;
            else if (!strcmp(c, "a16")) e.asz = 2;
            else if (!strcmp(c, "a32")) e.asz = 4;
            else if (!strcmp(c, "a64")) e.asz = 8;
            else if (!strcmp(c, "w0")) e.w = 1;
            else if (!strcmp(c, "w1")) e.w = 2;
            else if (!strcmp(c, "b0")) e.b0 = 1;
            else if (!strcmp(c, "l0")) e.l = 1;
            else if (!strcmp(c, "l1")) e.l = 2;
            else if (!strcmp(c, "i64")) e.modes = 3;
            else if (!strcmp(c, "x64")) e.modes = 4;
            else if (!strcmp(c, "d64")) e.d64 = 1;
            else if (!strcmp(c, "f64")) e.f64 = 1;
            else if (!strcmp(c, "V")) vexform = 1;
            else if (!strcmp(c, "VN")) vexform = 2;
            else if (!strcmp(c, "vex")) vexonly = 1;
            else die(lineno, "bad constraint", c);
        }
    }
    int ext = -1;
    for (unsigned i = 0; i < NEXT; i++)
        if (!strcmp(EXT_NAMES[i], f[5]))
            ext = (int)i;
    if (ext < 0)
        die(lineno, "bad ext", f[5]);
    int flags = 0;
    if (strcmp(f[6], "-")) {
        for (char *c = strtok(f[6], ","); c; c = strtok(NULL, ",")) {
            if (!strcmp(c, "lock")) e.lock = 1;
            else if (!strcmp(c, "branch")) flags |= F_BRANCH | F_END;
            else if (!strcmp(c, "end")) flags |= F_END;
            else if (!strcmp(c, "priv")) flags |= F_PRIV;
            else if (!strcmp(c, "string")) flags |= F_STRING;
            else die(lineno, "bad flag", c);
        }
    }
    int nop = 0;
    if (strcmp(f[4], "-")) {
        for (char *c = strtok(f[4], ","); c; c = strtok(NULL, ",")) {
            if (nop >= 4) die(lineno, "too many operands", NULL);
            e.opnd[nop++] = opnd_id(c, lineno);
        }
    }
    char mnem[32], dop[40];
    char *colon = strchr(f[3], ':');
    if (colon) *colon = 0;

    for (int k = 0; k < count; k++) {
        struct entry x = e;
        x.opc = base + k;
        const char *m = f[3];
        char buf[32];
        if (ccexp) {
            char *cc = strstr(m, "CC");
            if (!cc) die(lineno, "+cc needs CC in mnemonic", m);
            snprintf(buf, sizeof buf, "%.*s%s%s", (int)(cc - m), m, CC_SUFFIX[k], cc + 2);
            m = buf;
            x.cond = k;
        }
        snprintf(mnem, sizeof mnem, "%s", m);
        if (colon && !ccexp) snprintf(dop, sizeof dop, "%s", colon + 1);
        else upcase(dop, mnem, sizeof dop);
        if (!vexonly) {
            x.op = find_op(mnem, dop, ext, flags, lineno);
            add_entry(&x);
        }
        if (vexform || vexonly) {
            if (e.map == 0) die(lineno, "VEX form needs a 0F map", NULL);
            struct entry v = x;
            v.map = e.map + 3;
            char vm[48], vd[48];
            if (vexonly) {
                snprintf(vm, sizeof vm, "%s", mnem);
                snprintf(vd, sizeof vd, "%s", dop);
            } else {
                snprintf(vm, sizeof vm, "v%s", mnem);
                snprintf(vd, sizeof vd, "V%s", dop);
            }
            int vext = vexonly ? ext : 9; /* avx */
            v.op = find_op(vm, vd, vext, flags, lineno);
            if (vexform == 1) {
                /* NDS form: insert VEX.vvvv as the second operand (SDM 2.3.6) */
                int hx = opnd_id("Hx", lineno);
                int o1 = x.opnd[0];
                const char *n1 = OPND_NAMES[o1];
                if (!strcmp(n1, "Vss")) hx = opnd_id("Hss", lineno);
                else if (!strcmp(n1, "Vsd")) hx = opnd_id("Hsd", lineno);
                else if (!strcmp(n1, "Vdq") || !strcmp(n1, "Vq") || !strcmp(n1, "Vd")) hx = opnd_id("Hdq", lineno);
                v.opnd[3] = x.opnd[2];
                v.opnd[2] = x.opnd[1];
                v.opnd[1] = hx;
                if (x.opnd[3]) die(lineno, "V form with 4 operands", NULL);
            } else if (vexform == 2) {
                v.vexnovvvv = 1;
            }
            add_entry(&v);
        }
    }
}

/* The commonest operand shapes get a straight-line path in the decoder:
 * 1 = Ev,Gv  2 = Gv,Ev  3 = Eb,Gb  4 = Gb,Eb  5 = Jb  6 = Jz  7 = Zv (see dec_entry.shape). */
static int gpr_shape(const struct entry *e)
{
    const char *a = OPND_NAMES[e->opnd[0]], *b = OPND_NAMES[e->opnd[1]];
    if (e->opnd[2])
        return 0;
    if (!strcmp(a, "Ev") && !strcmp(b, "Gv")) return 1;
    if (!strcmp(a, "Gv") && !strcmp(b, "Ev")) return 2;
    if (!strcmp(a, "Eb") && !strcmp(b, "Gb")) return 3;
    if (!strcmp(a, "Gb") && !strcmp(b, "Eb")) return 4;
    if (e->opnd[1])
        return 0;
    if (!strcmp(a, "Jb")) return 5;
    if (!strcmp(a, "Jz")) return 6;
    if (!strcmp(a, "Zv")) return 7;
    return 0;
}

static int cmp_ent(const void *a, const void *b)
{
    const struct entry *x = a, *y = b;
    if (x->map != y->map) return x->map - y->map;
    if (x->opc != y->opc) return x->opc - y->opc;
    if (x->spec != y->spec) return y->spec - x->spec; /* most specific first */
    return x->line - y->line;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: opgen <opcodes.tbl> <outdir>\n");
        return 2;
    }
    snprintf(ops[0].name, sizeof ops[0].name, "(bad)");
    snprintf(ops[0].dop, sizeof ops[0].dop, "INVALID");
    FILE *in = fopen(argv[1], "r");
    if (!in) { perror(argv[1]); return 1; }
    char line[1024];
    int lineno = 0;
    while (fgets(line, sizeof line, in)) {
        lineno++;
        char *h = strchr(line, '#');
        if (h) *h = 0;
        parse_line(line, lineno);
    }
    fclose(in);
    qsort(ents, (size_t)nents, sizeof ents[0], cmp_ent);
    for (int i = 1; i < nents; i++)
        if (ents[i].map == ents[i - 1].map && ents[i].opc == ents[i - 1].opc &&
            ents[i].modrm != ents[i - 1].modrm)
            die(ents[i].line, "entries of one opcode disagree on ModRM presence", NULL);

    char path[4096];
    snprintf(path, sizeof path, "%s/decoder_ops.h", argv[2]);
    FILE *h = fopen(path, "w");
    if (!h) { perror(path); return 1; }
    fprintf(h, "/* GENERATED by decoder/gen/opgen.c from decoder/opcodes.tbl: do not edit. */\n"
               "#ifndef SOFTKVM_DECODER_OPS_H\n#define SOFTKVM_DECODER_OPS_H\n#include <stdint.h>\n\n"
               "enum decoder_op {\n");
    for (int i = 0; i < nops; i++)
        fprintf(h, "    DOP_%s,%s\n", ops[i].dop, i == 0 ? " /* = 0 */" : "");
    fprintf(h, "    DOP_COUNT\n};\n\n/* ISA extension an op belongs to (what emu/ must implement for it). */\n"
               "enum decoder_ext {\n");
    for (unsigned i = 0; i < NEXT; i++) {
        char u[32];
        upcase(u, EXT_NAMES[i], sizeof u);
        fprintf(h, "    DEXT_%s,\n", u);
    }
    fprintf(h, "    DEXT_COUNT\n};\n\n"
               "/* Per-op metadata (flags are DFLAG_BRANCH/PRIVILEGED/ENDS_BLOCK/STRING of decoder.h). */\n"
               "struct decoder_op_info {\n    const char *name;\n    uint8_t flags;\n    uint8_t ext;\n};\n"
               "extern const struct decoder_op_info decoder_op_info[DOP_COUNT];\n"
               "extern const char *const decoder_ext_names[DEXT_COUNT];\n\n#endif\n");
    fclose(h);

    snprintf(path, sizeof path, "%s/decoder_opnd.h", argv[2]);
    h = fopen(path, "w");
    if (!h) { perror(path); return 1; }
    fprintf(h, "/* GENERATED by decoder/gen/opgen.c: operand types of the decode table. */\n"
               "#ifndef SOFTKVM_DECODER_OPND_H\n#define SOFTKVM_DECODER_OPND_H\nenum dec_opnd_type {\n");
    for (unsigned i = 0; i < NOPND; i++)
        fprintf(h, "    OT_%s,\n", OPND_NAMES[i]);
    fprintf(h, "    OT_COUNT\n};\n#endif\n");
    fclose(h);

    snprintf(path, sizeof path, "%s/decoder_tables.c", argv[2]);
    FILE *c = fopen(path, "w");
    if (!c) { perror(path); return 1; }
    fprintf(c, "/* GENERATED by decoder/gen/opgen.c from decoder/opcodes.tbl: do not edit. */\n"
               "#include \"decoder/decoder.h\"\n#include \"decoder/decoder_tables.h\"\n\n"
               "const char *const decoder_ext_names[DEXT_COUNT] = {");
    for (unsigned i = 0; i < NEXT; i++)
        fprintf(c, "\"%s\", ", EXT_NAMES[i]);
    fprintf(c, "};\n\nconst struct decoder_op_info decoder_op_info[DOP_COUNT] = {\n");
    for (int i = 0; i < nops; i++) {
        char u[32];
        upcase(u, EXT_NAMES[ops[i].ext], sizeof u);
        fprintf(c, "    [DOP_%s] = {\"%s\", %d, DEXT_%s},\n", ops[i].dop, ops[i].name,
                ops[i].flags & ~F_LOCK, u);
    }
    fprintf(c, "};\n\nconst struct dec_entry dec_entries[] = {\n");
    for (int i = 0; i < nents; i++) {
        struct entry *e = &ents[i];
        /* constraint key mask/value, bit layout shared with decoder.c (DKEY_*) */
        unsigned mask = 0, val = 0;
        if (e->reg >= 0) { mask |= 7u; val |= (unsigned)e->reg; }
        if (e->mod == 1) { mask |= 1u << 3; val |= 1u << 3; }
        if (e->mod == 2) { mask |= 1u << 4; val |= 1u << 4; }
        if (e->rm >= 0) { mask |= 7u << 5; val |= (unsigned)e->rm << 5; }
        if (e->pfx) { mask |= 7u << 8; val |= (unsigned)e->pfx << 8; }
        if (e->asz) { mask |= 15u << 11; val |= (unsigned)e->asz << 11; }
        if (e->w) { mask |= 1u << 15; val |= (e->w == 2 ? 1u : 0u) << 15; }
        if (e->b0) mask |= 1u << 16;
        if (e->l) { mask |= 1u << 17; val |= (e->l == 2 ? 1u : 0u) << 17; }
        if (e->vexnovvvv) mask |= 1u << 18;
        fprintf(c, "    {DOP_%s, %d, %d, %d, %d, %d, %d, %d, %d, %d, %d, %d, %d, %d, %d, %d, {%d, %d, %d, %d}, %d, 0x%x, 0x%x, %d, %d}, /* line %d */\n",
                ops[e->op].dop, e->reg < 0 ? 0xff : e->reg, e->mod, e->rm < 0 ? 0xff : e->rm,
                e->pfx, e->osz, e->asz, e->w, e->b0, e->l, e->modes, e->d64, e->f64, e->lock,
                e->cond, e->vexnovvvv, e->opnd[0], e->opnd[1], e->opnd[2], e->opnd[3],
                ops[e->op].flags & ~F_LOCK, mask, val,
                (e->opnd[0] != 0) + (e->opnd[1] != 0) + (e->opnd[2] != 0) + (e->opnd[3] != 0),
                gpr_shape(e), e->line);
    }
    fprintf(c, "    {0}\n};\n\n");
    /* slot index: per map (7) x 256 opcodes: first entry, count, has-ModRM */
    fprintf(c, "const struct dec_slot dec_slots[DEC_NMAPS][256] = {\n");
    int idx = 0;
    for (int m = 0; m < 7; m++) {
        fprintf(c, "  {\n");
        for (int o = 0; o < 256; o++) {
            int first = idx, cnt = 0, modrm = 0;
            while (idx < nents && ents[idx].map == m && ents[idx].opc == o) {
                modrm = ents[idx].modrm;
                idx++, cnt++;
            }
            int simple = cnt == 1 && specificity(&ents[first]) == 0 && !ents[first].vexnovvvv &&
                         ents[first].op != 0;
            if (cnt)
                fprintf(c, "    [0x%02x] = {%d, %d, %d, %d},\n", o, first, cnt, modrm, simple);
        }
        fprintf(c, "  },\n");
    }
    fprintf(c, "};\n\nconst unsigned dec_nentries = %d;\n", nents);
    fclose(c);
    fprintf(stderr, "opgen: %d ops, %d entries\n", nops, nents);
    return 0;
}
