/* SIMD instruction handlers end to end: instructions run by emu_run in a
 * 64-bit guest (tests/emu/emu_test_vm.h) and, on the same register values, by
 * the host CPU; registers, status flags and MXCSR must agree. Plus the fault
 * rules (#UD/#NM/#GP/#XM), VEX upper-half zeroing and the XSAVE family. */
#include <check.h>
#include "tests/check_main.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "emu/cpu.h"
#include "emu/emu.h"
#include "emu_test_vm.h"

static struct tvm T;
static struct emu_exit X;

/* Run from the current RIP; a previous HLT exit leaves the vCPU halted (as KVM's
 * mp_state would), so wake it first. */
static enum emu_exit_reason go(void)
{
    T.c->halted = false;
    return tvm_run(&T, &X);
}

static uint64_t rs = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void)
{
    rs ^= rs << 13;
    rs ^= rs >> 7;
    rs ^= rs << 17;
    return rs;
}

/* ---------------- host oracle (as in test_simd.c) ---------------- */
struct regs {
    uint8_t xmm0[16], xmm1[16]; /* 0, 16 */
    uint64_t rax, rcx, rdx;     /* 32, 40, 48 */
    uint64_t rflags;            /* 56 */
    uint32_t mxcsr_in, mxcsr_out, mxcsr_host;
};

static void host_exec(const uint8_t *insn, size_t len, struct regs *io)
{
    static const uint8_t pro[] = { 0xf3, 0x0f, 0x6f, 0x07, 0xf3, 0x0f, 0x6f, 0x4f, 0x10,
                                   0x48, 0x8b, 0x47, 0x20, 0x48, 0x8b, 0x4f, 0x28,
                                   0x48, 0x8b, 0x57, 0x30, 0x0f, 0xae, 0x57, 0x40,
                                   0x6a, 0x02, 0x9d /* push 2; popfq: status flags as in the guest */ };
    static const uint8_t epi[] = { 0xf3, 0x0f, 0x7f, 0x07, 0xf3, 0x0f, 0x7f, 0x4f, 0x10,
                                   0x48, 0x89, 0x47, 0x20, 0x48, 0x89, 0x4f, 0x28,
                                   0x48, 0x89, 0x57, 0x30, 0x9c, 0x8f, 0x47, 0x38,
                                   0x0f, 0xae, 0x5f, 0x44, 0x0f, 0xae, 0x57, 0x48, 0xc3 };
    uint8_t *page = mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC,
                         MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ck_assert_ptr_ne(page, MAP_FAILED);
    memcpy(page, pro, sizeof(pro));
    memcpy(page + sizeof(pro), insn, len);
    memcpy(page + sizeof(pro) + len, epi, sizeof(epi));
    __asm__ volatile("stmxcsr %0" : "=m"(io->mxcsr_host));
    ((void (*)(struct regs *))(void *)page)(io);
    munmap(page, 4096);
}

/* The same instruction in the guest: insn; hlt. */
static void guest_exec(const uint8_t *insn, size_t len, struct regs *io)
{
    uint8_t code[32];
    memcpy(code, insn, len);
    code[len] = 0xf4;
    tvm_code(&T, code, len + 1);
    struct cpu *c = T.c;
    c->rip = TVM_CODE;
    memcpy(c->fpu.xmm[0], io->xmm0, 16);
    memcpy(c->fpu.xmm[1], io->xmm1, 16);
    c->gpr[EMU_RAX] = io->rax;
    c->gpr[EMU_RCX] = io->rcx;
    c->gpr[EMU_RDX] = io->rdx;
    c->fpu.mxcsr = io->mxcsr_in;
    c->rflags = 2;
    emu_state_changed(T.v);
    ck_assert_int_eq(go(), EMU_EXIT_HLT);
    ck_assert_msg(tvm_halted_vector(&T) == -1, "exception %d at %02x %02x %02x %02x %02x",
                  tvm_halted_vector(&T), insn[0], insn[1], insn[2], insn[3], insn[4]);
    ck_assert_uint_eq(c->rip, TVM_CODE + len + 1);
    memcpy(io->xmm0, c->fpu.xmm[0], 16);
    memcpy(io->xmm1, c->fpu.xmm[1], 16);
    io->rax = c->gpr[EMU_RAX];
    io->rcx = c->gpr[EMU_RCX];
    io->rdx = c->gpr[EMU_RDX];
    io->rflags = emu_get_rflags(T.v);
    io->mxcsr_out = c->fpu.mxcsr;
}

static void setup(void)
{
    tvm_init64(&T);
    T.c->xcr0 = 7; /* x87|SSE|AVX enabled, as an OS using AVX would */
}
static void teardown(void) { tvm_destroy(&T); }

/* Register-only forms on xmm0, xmm1, eax, ecx, edx ("ib" = random imm8 appended). */
struct form {
    uint8_t b[8];
    uint8_t len;
    bool ib;
};
static const struct form forms[] = {
    /* SSE2 integer */
    { { 0x66, 0x0f, 0xfc, 0xc1 }, 4, 0 }, { { 0x66, 0x0f, 0xfe, 0xc1 }, 4, 0 },
    { { 0x66, 0x0f, 0xd4, 0xc1 }, 4, 0 }, { { 0x66, 0x0f, 0xf9, 0xc1 }, 4, 0 },
    { { 0x66, 0x0f, 0xec, 0xc1 }, 4, 0 }, { { 0x66, 0x0f, 0xd8, 0xc1 }, 4, 0 },
    { { 0x66, 0x0f, 0xe5, 0xc1 }, 4, 0 }, { { 0x66, 0x0f, 0xf5, 0xc1 }, 4, 0 },
    { { 0x66, 0x0f, 0xf6, 0xc1 }, 4, 0 }, { { 0x66, 0x0f, 0x74, 0xc1 }, 4, 0 },
    { { 0x66, 0x0f, 0x66, 0xc1 }, 4, 0 }, { { 0x66, 0x0f, 0xef, 0xc1 }, 4, 0 },
    { { 0x66, 0x0f, 0xdf, 0xc1 }, 4, 0 }, { { 0x0f, 0x57, 0xc1 }, 3, 0 },
    { { 0x66, 0x0f, 0x60, 0xc1 }, 4, 0 }, { { 0x66, 0x0f, 0x6d, 0xc1 }, 4, 0 },
    { { 0x0f, 0x14, 0xc1 }, 3, 0 }, { { 0x66, 0x0f, 0x63, 0xc1 }, 4, 0 },
    { { 0x66, 0x0f, 0x67, 0xc1 }, 4, 0 },
    /* shifts: by xmm count, by immediate */
    { { 0x66, 0x0f, 0xd1, 0xc1 }, 4, 0 }, { { 0x66, 0x0f, 0xe2, 0xc1 }, 4, 0 },
    { { 0x66, 0x0f, 0xf3, 0xc1 }, 4, 0 }, { { 0x66, 0x0f, 0x71, 0xd0 }, 4, 1 },
    { { 0x66, 0x0f, 0x72, 0xe0 }, 4, 1 }, { { 0x66, 0x0f, 0x73, 0xf8 }, 4, 1 },
    { { 0x66, 0x0f, 0x73, 0xd8 }, 4, 1 },
    /* shuffles */
    { { 0x66, 0x0f, 0x70, 0xc1 }, 4, 1 }, { { 0xf2, 0x0f, 0x70, 0xc1 }, 4, 1 },
    { { 0x0f, 0xc6, 0xc1 }, 3, 1 }, { { 0x66, 0x0f, 0xc6, 0xc1 }, 4, 1 },
    { { 0x66, 0x0f, 0x3a, 0x0f, 0xc1 }, 5, 1 }, { { 0x66, 0x0f, 0x3a, 0x0e, 0xc1 }, 5, 1 },
    /* moves */
    { { 0x0f, 0x28, 0xc1 }, 3, 0 }, { { 0xf3, 0x0f, 0x10, 0xc1 }, 4, 0 },
    { { 0xf2, 0x0f, 0x10, 0xc1 }, 4, 0 }, { { 0x0f, 0x12, 0xc1 }, 3, 0 },
    { { 0x0f, 0x16, 0xc1 }, 3, 0 }, { { 0x66, 0x0f, 0x6e, 0xc0 }, 4, 0 },
    { { 0x66, 0x48, 0x0f, 0x6e, 0xc1 }, 5, 0 }, { { 0x66, 0x0f, 0x7e, 0xc1 }, 4, 0 },
    { { 0x66, 0x48, 0x0f, 0x7e, 0xc0 }, 5, 0 }, { { 0xf3, 0x0f, 0x7e, 0xc1 }, 4, 0 },
    { { 0x66, 0x0f, 0xd6, 0xc8 }, 4, 0 },
    /* masks, insert/extract */
    { { 0x66, 0x0f, 0xd7, 0xc1 }, 4, 0 }, { { 0x0f, 0x50, 0xc1 }, 3, 0 },
    { { 0x66, 0x0f, 0xc4, 0xc1 }, 4, 1 }, { { 0x66, 0x0f, 0xc5, 0xc1 }, 4, 1 },
    { { 0x66, 0x0f, 0x3a, 0x16, 0xc1 }, 5, 1 }, { { 0x66, 0x48, 0x0f, 0x3a, 0x22, 0xc1 }, 6, 1 },
    { { 0x66, 0x0f, 0x3a, 0x14, 0xc8 }, 5, 1 }, { { 0x66, 0x0f, 0x3a, 0x21, 0xc1 }, 5, 1 },
    /* SSSE3 / SSE4.1 */
    { { 0x66, 0x0f, 0x38, 0x00, 0xc1 }, 5, 0 }, { { 0x66, 0x0f, 0x38, 0x04, 0xc1 }, 5, 0 },
    { { 0x66, 0x0f, 0x38, 0x1e, 0xc1 }, 5, 0 }, { { 0x66, 0x0f, 0x38, 0x17, 0xc1 }, 5, 0 },
    { { 0x66, 0x0f, 0x38, 0x20, 0xc1 }, 5, 0 }, { { 0x66, 0x0f, 0x38, 0x35, 0xc1 }, 5, 0 },
    { { 0x66, 0x0f, 0x38, 0x3d, 0xc1 }, 5, 0 }, { { 0x66, 0x0f, 0x38, 0x40, 0xc1 }, 5, 0 },
    { { 0x66, 0x0f, 0x38, 0x10, 0xc1 }, 5, 0 }, { { 0x66, 0x0f, 0x38, 0x41, 0xc1 }, 5, 0 },
    /* AES-NI: aesenc, aesenclast, aesdec, aesdeclast, aesimc, aeskeygenassist; vaesenc */
    { { 0x66, 0x0f, 0x38, 0xdc, 0xc1 }, 5, 0 }, { { 0x66, 0x0f, 0x38, 0xdd, 0xc1 }, 5, 0 },
    { { 0x66, 0x0f, 0x38, 0xde, 0xc1 }, 5, 0 }, { { 0x66, 0x0f, 0x38, 0xdf, 0xc1 }, 5, 0 },
    { { 0x66, 0x0f, 0x38, 0xdb, 0xc1 }, 5, 0 }, { { 0x66, 0x0f, 0x3a, 0xdf, 0xc1 }, 5, 1 },
    { { 0xc4, 0xe2, 0x71, 0xdc, 0xc0 }, 5, 0 },
    /* MPSADBW, DPPS, DPPD */
    { { 0x66, 0x0f, 0x3a, 0x42, 0xc1 }, 5, 1 }, { { 0x66, 0x0f, 0x3a, 0x40, 0xc1 }, 5, 1 },
    { { 0x66, 0x0f, 0x3a, 0x41, 0xc1 }, 5, 1 },
    /* SSE4.2 */
    { { 0x66, 0x0f, 0x3a, 0x63, 0xc1 }, 5, 1 }, { { 0x66, 0x0f, 0x3a, 0x60, 0xc1 }, 5, 1 },
    { { 0xf2, 0x0f, 0x38, 0xf1, 0xc1 }, 5, 0 }, { { 0xf2, 0x48, 0x0f, 0x38, 0xf1, 0xc1 }, 6, 0 },
    { { 0x66, 0x0f, 0x38, 0x37, 0xc1 }, 5, 0 },
    /* floating point */
    { { 0x0f, 0x58, 0xc1 }, 3, 0 }, { { 0xf2, 0x0f, 0x59, 0xc1 }, 4, 0 },
    { { 0x66, 0x0f, 0x5e, 0xc1 }, 4, 0 }, { { 0xf3, 0x0f, 0x51, 0xc1 }, 4, 0 },
    { { 0x0f, 0x5d, 0xc1 }, 3, 0 }, { { 0x66, 0x0f, 0x5f, 0xc1 }, 4, 0 },
    { { 0x0f, 0x5b, 0xc1 }, 3, 0 }, { { 0xf3, 0x0f, 0x5b, 0xc1 }, 4, 0 },
    { { 0x0f, 0x5a, 0xc1 }, 3, 0 }, { { 0xf2, 0x0f, 0x5a, 0xc1 }, 4, 0 },
    { { 0xf2, 0x0f, 0x7c, 0xc1 }, 4, 0 }, { { 0x0f, 0xc2, 0xc1 }, 3, 1 },
    { { 0xf2, 0x0f, 0xc2, 0xc1 }, 4, 1 }, { { 0x0f, 0x2f, 0xc1 }, 3, 0 },
    { { 0x66, 0x0f, 0x2e, 0xc1 }, 4, 0 }, { { 0xf3, 0x48, 0x0f, 0x2a, 0xc1 }, 5, 0 },
    { { 0xf2, 0x0f, 0x2a, 0xc1 }, 4, 0 }, { { 0xf3, 0x48, 0x0f, 0x2d, 0xc1 }, 5, 0 },
    { { 0xf2, 0x0f, 0x2c, 0xc1 }, 4, 0 }, { { 0x66, 0x0f, 0x3a, 0x0a, 0xc1 }, 5, 1 },
    { { 0x66, 0x0f, 0x3a, 0x09, 0xc1 }, 5, 1 },
    /* VEX.128 */
    { { 0xc5, 0xf1, 0xfc, 0xc0 }, 4, 0 }, { { 0xc5, 0xf0, 0x58, 0xc0 }, 4, 0 },
    { { 0xc5, 0xf9, 0xef, 0xc1 }, 4, 0 }, { { 0xc5, 0xf9, 0x6f, 0xc1 }, 4, 0 },
    { { 0xc5, 0xf2, 0x59, 0xc0 }, 4, 0 }, { { 0xc4, 0xe2, 0x79, 0x00, 0xc1 }, 5, 0 },
};

static void rnd_fill(uint8_t *p, size_t n, bool fp)
{
    for (size_t i = 0; i < n; i += 4) {
        uint64_t r = rnd();
        uint32_t v = (uint32_t)r;
        if (fp && (r >> 40) % 4 != 0) { /* ordinary floats / doubles most of the time */
            float f = (float)((int64_t)(r >> 20) % 100000) / (float)(1 + ((r >> 4) & 255));
            memcpy(&v, &f, 4);
        }
        memcpy(p + i, &v, 4);
    }
}

START_TEST(insns_match_host)
{
    unsigned checked = 0;
    for (unsigned k = 0; k < sizeof(forms) / sizeof(forms[0]); k++) {
        for (int it = 0; it < 60; it++) {
            struct regs in = { .mxcsr_in = 0x1f80 | ((unsigned)(it & 3) << 13) };
            rnd_fill(in.xmm0, 16, it & 4);
            rnd_fill(in.xmm1, 16, it & 4);
            in.rax = rnd() >> (rnd() & 63);
            in.rcx = rnd();
            in.rdx = (uint64_t)((int64_t)(rnd() % 40) - 20);
            uint8_t insn[9];
            memcpy(insn, forms[k].b, forms[k].len);
            size_t len = forms[k].len;
            if (forms[k].ib)
                insn[len++] = (uint8_t)rnd();
            struct regs h = in, g = in;
            host_exec(insn, len, &h);
            guest_exec(insn, len, &g);
            const uint64_t sf = 0x8d5; /* OF SF ZF AF PF CF */
            if (memcmp(h.xmm0, g.xmm0, 16) || memcmp(h.xmm1, g.xmm1, 16) || h.rax != g.rax ||
                h.rcx != g.rcx || h.rdx != g.rdx || (h.rflags & sf) != (g.rflags & sf) ||
                h.mxcsr_out != g.mxcsr_out) {
                fprintf(stderr, "insn:");
                for (size_t i = 0; i < len; i++)
                    fprintf(stderr, " %02x", insn[i]);
                fprintf(stderr, "\nhost  rax %llx rcx %llx fl %llx mxcsr %x\nguest rax %llx rcx %llx fl %llx mxcsr %x\n",
                        (unsigned long long)h.rax, (unsigned long long)h.rcx,
                        (unsigned long long)(h.rflags & sf), h.mxcsr_out,
                        (unsigned long long)g.rax, (unsigned long long)g.rcx,
                        (unsigned long long)(g.rflags & sf), g.mxcsr_out);
                ck_abort_msg("form %u differs from the host CPU", k);
            }
            checked++;
        }
    }
    fprintf(stderr, "simd insns: %u executions agree with the host CPU\n", checked);
}
END_TEST

/* Memory forms: alignment rules and data movement through guest memory. */
START_TEST(memory_forms_and_alignment)
{
    uint8_t *data = T.ram + TVM_DATA;
    for (int i = 0; i < 64; i++)
        data[i] = (uint8_t)(i * 7 + 1);
    /* movups xmm2, [rdi+1]; movaps [rdi+32], xmm2; hlt */
    static const uint8_t c1[] = { 0x0f, 0x10, 0x57, 0x01, 0x0f, 0x29, 0x57, 0x20, 0xf4 };
    tvm_code(&T, c1, sizeof(c1));
    T.c->gpr[EMU_RDI] = TVM_DATA;
    ck_assert_int_eq(go(), EMU_EXIT_HLT);
    ck_assert_int_eq(tvm_halted_vector(&T), -1);
    ck_assert_int_eq(memcmp(data + 32, data + 1, 16), 0);
    /* movaps xmm2, [rdi+1] -> #GP(0) */
    static const uint8_t c2[] = { 0x0f, 0x28, 0x57, 0x01, 0xf4 };
    tvm_code(&T, c2, sizeof(c2));
    T.c->rip = TVM_CODE;
    ck_assert_int_eq(go(), EMU_EXIT_HLT);
    ck_assert_int_eq(tvm_halted_vector(&T), 13);
    /* paddd xmm2, [rdi+4] (legacy 16-byte operand) -> #GP; vpaddd xmm2, xmm2, [rdi+4] is fine */
    static const uint8_t c3[] = { 0x66, 0x0f, 0xfe, 0x57, 0x04, 0xf4 };
    tvm_code(&T, c3, sizeof(c3));
    T.c->rip = TVM_CODE;
    T.c->gpr[EMU_RSP] = TVM_STACK - 0x1000;
    ck_assert_int_eq(go(), EMU_EXIT_HLT);
    ck_assert_int_eq(tvm_halted_vector(&T), 13);
    static const uint8_t c4[] = { 0xc5, 0xe9, 0xfe, 0x57, 0x04, 0xf4 };
    tvm_code(&T, c4, sizeof(c4));
    T.c->rip = TVM_CODE;
    T.c->gpr[EMU_RSP] = TVM_STACK - 0x1000;
    ck_assert_int_eq(go(), EMU_EXIT_HLT);
    ck_assert_int_eq(tvm_halted_vector(&T), -1);
    /* movss xmm3, [rdi] zero-extends; movsd [rdi+48], xmm3 stores 8 bytes */
    memset(T.c->fpu.xmm[3], 0xee, 16);
    static const uint8_t c5[] = { 0xf3, 0x0f, 0x10, 0x1f, 0xf2, 0x0f, 0x11, 0x5f, 0x30, 0xf4 };
    tvm_code(&T, c5, sizeof(c5));
    T.c->rip = TVM_CODE;
    ck_assert_int_eq(go(), EMU_EXIT_HLT);
    ck_assert_int_eq(memcmp(T.c->fpu.xmm[3], data, 4), 0);
    for (int i = 4; i < 16; i++)
        ck_assert_uint_eq(T.c->fpu.xmm[3][i], 0);
    ck_assert_int_eq(memcmp(data + 48, data, 4), 0);
    ck_assert_uint_eq(data[52], 0);
    /* vpmovzxbw ymm2, [rdi]: a 16-byte memory source for the 256-bit form */
    static const uint8_t c6[] = { 0xc4, 0xe2, 0x7d, 0x30, 0x17, 0xf4 };
    tvm_code(&T, c6, sizeof(c6));
    T.c->rip = TVM_CODE;
    ck_assert_int_eq(go(), EMU_EXIT_HLT);
    ck_assert_int_eq(tvm_halted_vector(&T), -1);
    for (int i = 0; i < 8; i++) {
        uint16_t lo, hi;
        memcpy(&lo, T.c->fpu.xmm[2] + 2 * i, 2);
        memcpy(&hi, T.c->fpu.ymmh[2] + 2 * i, 2);
        ck_assert_uint_eq(lo, data[i]);
        ck_assert_uint_eq(hi, data[8 + i]);
    }
}
END_TEST

/* On MMIO only the forms KVM's emulator knows may exit to user space; the rest
 * are emulation failures (KVM_EXIT_INTERNAL_ERROR), as on real KVM. */
START_TEST(mmio_forms_as_kvm)
{
    const uint64_t mmio = 0x30000000; /* mapped by the page tables, no memory slot */
    /* MOVQ mm2, [rdi] (0F 6F): emulated by KVM; 8 bytes = one MMIO exit. (16-byte
     * MOVUPS needs two 8-byte MMIO fragments, which the core does not split yet.) */
    static const uint8_t movups[] = { 0x0f, 0x6f, 0x17, 0xf4 };
    static const uint8_t movss[] = { 0xf3, 0x0f, 0x10, 0x17, 0xf4 };
    static const uint8_t flds[] = { 0xd9, 0x07, 0xf4 };
    static const uint8_t vmovups[] = { 0xc5, 0xf8, 0x10, 0x17, 0xf4 };
    tvm_code(&T, movups, sizeof(movups));
    T.c->rip = TVM_CODE;
    T.c->gpr[EMU_RDI] = mmio;
    ck_assert_int_eq(go(), EMU_EXIT_MMIO);
    ck_assert_uint_eq(X.mmio.gpa, mmio);
    const uint8_t *bad[] = { movss, flds, vmovups };
    const size_t len[] = { sizeof(movss), sizeof(flds), sizeof(vmovups) };
    for (int i = 0; i < 3; i++) {
        tvm_code(&T, bad[i], len[i]);
        T.c->rip = TVM_CODE;
        ck_assert_int_eq(go(), EMU_EXIT_INTERNAL);
        ck_assert_uint_eq(T.c->rip, TVM_CODE);
    }
}
END_TEST

/* Legacy SSE keeps YMM bits 255:128, VEX.128 clears them, VZEROUPPER clears all. */
START_TEST(vex_upper_zeroing)
{
    T.c->xcr0 = 7;
    memset(T.c->fpu.ymmh, 0x5a, sizeof(T.c->fpu.ymmh));
    /* pxor xmm1, xmm1; vpxor xmm2, xmm2, xmm2; hlt */
    static const uint8_t c[] = { 0x66, 0x0f, 0xef, 0xc9, 0xc5, 0xe9, 0xef, 0xd2, 0xf4 };
    tvm_code(&T, c, sizeof(c));
    ck_assert_int_eq(go(), EMU_EXIT_HLT);
    ck_assert_int_eq(tvm_halted_vector(&T), -1);
    ck_assert_uint_eq(T.c->fpu.ymmh[1][0], 0x5a);
    ck_assert_uint_eq(T.c->fpu.ymmh[2][0], 0);
    static const uint8_t z[] = { 0xc5, 0xf8, 0x77, 0xf4 };
    tvm_code(&T, z, sizeof(z));
    T.c->rip = TVM_CODE;
    ck_assert_int_eq(go(), EMU_EXIT_HLT);
    for (int r = 0; r < 16; r++)
        ck_assert_uint_eq(T.c->fpu.ymmh[r][15], 0);
    /* VEX with XCR0.YMM clear -> #UD */
    T.c->xcr0 = 3;
    tvm_code(&T, c + 4, 5);
    T.c->rip = TVM_CODE;
    ck_assert_int_eq(go(), EMU_EXIT_HLT);
    ck_assert_int_eq(tvm_halted_vector(&T), 6);
}
END_TEST

static int run_one(const uint8_t *code, size_t n)
{
    tvm_code(&T, code, n);
    T.c->rip = TVM_CODE;
    T.c->gpr[EMU_RSP] = TVM_STACK - 0x1000;
    enum emu_exit_reason r = go();
    ck_assert_msg(r == EMU_EXIT_HLT, "exit %d at %02x %02x %02x", r, code[0], code[1], code[2]);
    return tvm_halted_vector(&T);
}

START_TEST(fault_rules)
{
    static const uint8_t pxor[] = { 0x66, 0x0f, 0xef, 0xc9, 0xf4 };
    emu_state_changed(T.v);
    ck_assert_int_eq(run_one(pxor, sizeof(pxor)), -1);
    T.c->cr0 |= 8; /* TS -> #NM */
    emu_state_changed(T.v);
    ck_assert_int_eq(run_one(pxor, sizeof(pxor)), 7);
    T.c->cr0 &= ~8ull;
    T.c->cr4 &= ~0x200ull; /* !OSFXSR -> #UD */
    emu_state_changed(T.v);
    ck_assert_int_eq(run_one(pxor, sizeof(pxor)), 6);
    T.c->cr4 |= 0x200;
    T.c->cr0 |= 4; /* EM -> #UD */
    emu_state_changed(T.v);
    ck_assert_int_eq(run_one(pxor, sizeof(pxor)), 6);
    T.c->cr0 &= ~4ull;
    emu_state_changed(T.v);
    /* divss by zero with ZM unmasked: #XM, MXCSR.ZE set, destination untouched */
    static const uint8_t divss[] = { 0xf3, 0x0f, 0x5e, 0xc1, 0xf4 };
    float one = 1.0f, zero = 0.0f;
    memcpy(T.c->fpu.xmm[0], &one, 4);
    memcpy(T.c->fpu.xmm[1], &zero, 4);
    T.c->fpu.mxcsr = 0x1f80 & ~0x200u;
    ck_assert_int_eq(run_one(divss, sizeof(divss)), 19);
    ck_assert_uint_eq(T.c->fpu.mxcsr & 4, 4);
    ck_assert_int_eq(memcmp(T.c->fpu.xmm[0], &one, 4), 0);
    /* same with CR4.OSXMMEXCPT = 0: #UD */
    T.c->fpu.mxcsr = 0x1f80 & ~0x200u;
    T.c->cr4 &= ~0x400ull;
    emu_state_changed(T.v);
    ck_assert_int_eq(run_one(divss, sizeof(divss)), 6);
    /* LDMXCSR with a reserved bit -> #GP */
    T.c->cr4 |= 0x400;
    emu_state_changed(T.v);
    uint32_t bad = 0x10000 | 0x1f80;
    memcpy(T.ram + TVM_DATA, &bad, 4);
    T.c->gpr[EMU_RDI] = TVM_DATA;
    static const uint8_t ldm[] = { 0x0f, 0xae, 0x17, 0xf4 };
    ck_assert_int_eq(run_one(ldm, sizeof(ldm)), 13);
}
END_TEST

START_TEST(xsave_family)
{
    /* xgetbv (ecx=0) */
    static const uint8_t xg[] = { 0x0f, 0x01, 0xd0, 0xf4 };
    T.c->xcr0 = 1;
    T.c->gpr[EMU_RCX] = 0;
    ck_assert_int_eq(run_one(xg, sizeof(xg)), -1);
    ck_assert_uint_eq(T.c->gpr[EMU_RAX], 1);
    /* xsetbv to 7 without CPUID leaf 0DH -> #GP; with it -> ok */
    static const uint8_t xs[] = { 0x0f, 0x01, 0xd1, 0xf4 };
    T.c->gpr[EMU_RAX] = 7;
    T.c->gpr[EMU_RDX] = 0;
    T.c->gpr[EMU_RCX] = 0;
    ck_assert_int_eq(run_one(xs, sizeof(xs)), 13);
    struct emu_cpuid_entry e = { .function = 0xd, .index = 0, .eax = 7 };
    emu_set_cpuid(T.v, &e, 1);
    T.c->gpr[EMU_RAX] = 7;
    T.c->gpr[EMU_RDX] = 0;
    T.c->gpr[EMU_RCX] = 0;
    ck_assert_int_eq(run_one(xs, sizeof(xs)), -1);
    ck_assert_uint_eq(T.c->xcr0, 7);
    T.c->gpr[EMU_RAX] = 5; /* AVX without SSE */
    T.c->gpr[EMU_RCX] = 0;
    ck_assert_int_eq(run_one(xs, sizeof(xs)), 13);
    /* xsave [rdi]; change state; xrstor [rdi]: state restored */
    for (int r = 0; r < 16; r++)
        for (int i = 0; i < 16; i++) {
            T.c->fpu.xmm[r][i] = (uint8_t)(r * 16 + i);
            T.c->fpu.ymmh[r][i] = (uint8_t)(255 - r * 16 - i);
        }
    struct emu_fpu saved = T.c->fpu;
    memset(T.ram + TVM_DATA, 0, 4096);
    static const uint8_t sv[] = { 0x48, 0x0f, 0xae, 0x27, 0xf4 };
    T.c->gpr[EMU_RDI] = TVM_DATA;
    T.c->gpr[EMU_RAX] = 7;
    T.c->gpr[EMU_RDX] = 0;
    ck_assert_int_eq(run_one(sv, sizeof(sv)), -1);
    uint64_t bv;
    memcpy(&bv, T.ram + TVM_DATA + 512, 8);
    ck_assert_uint_eq(bv, 7);
    memset(T.c->fpu.xmm, 0, sizeof(T.c->fpu.xmm));
    memset(T.c->fpu.ymmh, 0, sizeof(T.c->fpu.ymmh));
    static const uint8_t rs_[] = { 0x48, 0x0f, 0xae, 0x2f, 0xf4 };
    ck_assert_int_eq(run_one(rs_, sizeof(rs_)), -1);
    ck_assert_int_eq(memcmp(T.c->fpu.xmm, saved.xmm, sizeof(saved.xmm)), 0);
    ck_assert_int_eq(memcmp(T.c->fpu.ymmh, saved.ymmh, sizeof(saved.ymmh)), 0);
    /* misaligned XSAVE -> #GP */
    T.c->gpr[EMU_RDI] = TVM_DATA + 16;
    ck_assert_int_eq(run_one(sv, sizeof(sv)), 13);
    /* fxsave64 [rdi] / fxrstor64 [rdi] */
    T.c->gpr[EMU_RDI] = TVM_DATA + 0x1000;
    static const uint8_t fx[] = { 0x48, 0x0f, 0xae, 0x07, 0x48, 0x0f, 0xae, 0x0f, 0xf4 };
    ck_assert_int_eq(run_one(fx, sizeof(fx)), -1);
    ck_assert_int_eq(memcmp(T.ram + TVM_DATA + 0x1000 + 160, saved.xmm, 256), 0);
}
END_TEST

/* x87 programs: run natively (ending in RET) and in the guest (ending in HLT),
 * both with RDI pointing at a 64-byte buffer; the buffers must match. */
static void x87_prog(const uint8_t *code, size_t n, const uint8_t in[64])
{
    uint8_t host[64], *guest = T.ram + TVM_DATA;
    memcpy(host, in, 64);
    memcpy(guest, in, 64);
    uint8_t *page = mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC,
                         MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ck_assert_ptr_ne(page, MAP_FAILED);
    /* fnstenv/fldenv around the program keep the host FPU state intact */
    memcpy(page, code, n);
    page[n] = 0xc3;
    uint8_t env[108];
    __asm__ volatile("fnsave %0" : "=m"(env));
    ((void (*)(uint8_t *))(void *)page)(host);
    __asm__ volatile("frstor %0" : : "m"(env));
    munmap(page, 4096);
    uint8_t code2[128];
    ck_assert_uint_lt(n, sizeof(code2));
    memcpy(code2, code, n);
    code2[n] = 0xf4;
    tvm_code(&T, code2, n + 1);
    T.c->rip = TVM_CODE;
    T.c->gpr[EMU_RDI] = TVM_DATA;
    ck_assert_int_eq(go(), EMU_EXIT_HLT);
    ck_assert_int_eq(tvm_halted_vector(&T), -1);
    for (int i = 0; i < 64; i++)
        ck_assert_msg(host[i] == guest[i], "x87 program: byte %d host %02x guest %02x", i,
                      host[i], guest[i]);
}

START_TEST(x87_programs_match_host)
{
    uint8_t in[64] = { 0 };
    /* fninit; fld1; fldpi; faddp; fst qword [rdi]; fld1; fdivrp (1/(1+pi));
     * fstp tword [rdi+8]; fnstsw [rdi+18]; fnstcw [rdi+20] */
    static const uint8_t p1[] = { 0xdb, 0xe3, 0xd9, 0xe8, 0xd9, 0xeb, 0xde, 0xc1, 0xdd, 0x17,
                                  0xd9, 0xe8, 0xde, 0xf1, 0xdb, 0x7f, 0x08, 0xdd, 0x7f, 0x12,
                                  0xd9, 0x7f, 0x14 };
    x87_prog(p1, sizeof(p1), in);
    for (int it = 0; it < 200; it++) {
        int32_t a = (int32_t)rnd() >> (rnd() & 31), b = (int32_t)rnd() >> (rnd() & 31);
        double x, y;
        uint64_t r1 = rnd(), r2 = rnd();
        x = (double)(int64_t)(r1 >> 12) / (double)(1 + (r1 & 0xffff));
        y = (it & 1) ? -x : (double)(int64_t)(r2 >> 20) / 7.0;
        memcpy(in + 32, &a, 4);
        memcpy(in + 36, &b, 4);
        memcpy(in + 40, &x, 8);
        memcpy(in + 48, &y, 8);
        uint16_t cw = (uint16_t)(0x037f | ((rnd() & 3) << 10) | ((rnd() & 1) ? 0 : 0x100));
        memcpy(in + 56, &cw, 2);
        /* fninit; fldcw [rdi+56]; fild dword [rdi+32]; fidiv dword [rdi+36]; fst qword [rdi];
         * fsqrt; fistp dword [rdi+8]; fld qword [rdi+40]; fmul qword [rdi+48];
         * fsub qword [rdi+40]; fstp tword [rdi+12]; fnstsw [rdi+22] */
        static const uint8_t p2[] = { 0xdb, 0xe3, 0xd9, 0x6f, 0x38, 0xdb, 0x47, 0x20, 0xda, 0x77,
                                      0x24, 0xdd, 0x17, 0xd9, 0xfa, 0xdb, 0x5f, 0x08, 0xdd, 0x47,
                                      0x28, 0xdc, 0x4f, 0x30, 0xdc, 0x67, 0x28, 0xdb, 0x7f, 0x0c,
                                      0xdd, 0x7f, 0x16 };
        x87_prog(p2, sizeof(p2), in);
        /* compares: fninit; fld qword [rdi+48]; fld qword [rdi+40]; fcom st1; fnstsw [rdi];
         * fucomi st1 ... ; fcompp; fnstsw [rdi+2]; fild dword [rdi+32]; fisttp word [rdi+4];
         * fnstsw [rdi+6] */
        static const uint8_t p3[] = { 0xdb, 0xe3, 0xdd, 0x47, 0x30, 0xdd, 0x47, 0x28, 0xd8, 0xd1,
                                      0xdd, 0x3f, 0xde, 0xd9, 0xdd, 0x7f, 0x02, 0xdb, 0x47, 0x20,
                                      0xdf, 0x4f, 0x04, 0xdd, 0x7f, 0x06 };
        x87_prog(p3, sizeof(p3), in);
        /* fninit; fld [rdi+48]; fld [rdi+40]; fcomi st,st1; sbb eax,eax; mov [rdi],eax;
         * fucomip st,st1; setz al; mov [rdi+4],al; fld1; fxch st1; fcmovb st,st1;
         * fstp qword [rdi+8]; fchs; fabs; frndint; fst qword [rdi+16]; fild dword [rdi+32];
         * fimul dword [rdi+36]; fistp word [rdi+24]; fnstsw [rdi+26]; fldz; fdivr st,st1;
         * fstp tword [rdi]; fxam; fnstsw [rdi+28]; ffree st0; fincstp; fnstsw [rdi+30]; fninit */
        static const uint8_t p4[] = {
            0xdb, 0xe3, 0xdd, 0x47, 0x30, 0xdd, 0x47, 0x28, 0xdb, 0xf1, 0x19, 0xc0,
            0x89, 0x07, 0xdf, 0xe9, 0x0f, 0x94, 0xc0, 0x88, 0x47, 0x04, 0xd9, 0xe8,
            0xd9, 0xc9, 0xda, 0xc1, 0xdd, 0x5f, 0x08, 0xd9, 0xe0, 0xd9, 0xe1, 0xd9,
            0xfc, 0xdd, 0x57, 0x10, 0xdb, 0x47, 0x20, 0xda, 0x4f, 0x24, 0xdf, 0x5f,
            0x18, 0xdd, 0x7f, 0x1a, 0xd9, 0xee, 0xd8, 0xf9, 0xdb, 0x3f, 0xd9, 0xe5,
            0xdd, 0x7f, 0x1c, 0xdd, 0xc0, 0xd9, 0xf7, 0xdd, 0x7f, 0x1e, 0xdb, 0xe3,
        };
        x87_prog(p4, sizeof(p4), in);
        /* fninit; fldcw [rdi+56]; fld qword [rdi+40] (x); fld qword [rdi+48] (y); fprem;
         * fnstsw [rdi]; fst [rdi+2]; fprem1; fst [rdi+10]; fscale; fstp tword [rdi+18];
         * fsincos; fstp [rdi+28]; fptan; fstp [rdi+36]; fld1; fpatan; fstp [rdi+44];
         * fld1; fld [rdi+40]; fyl2x; fstp [rdi+52]; fnstsw [rdi+60]; fninit */
        static const uint8_t p5[] = {
            0xdb, 0xe3, 0xd9, 0x6f, 0x38, 0xdd, 0x47, 0x28, 0xdd, 0x47, 0x30,
            0xd9, 0xf8, 0xdd, 0x3f, 0xdd, 0x57, 0x02, 0xd9, 0xf5, 0xdd, 0x57, 0x0a,
            0xd9, 0xfd, 0xdb, 0x7f, 0x12, 0xd9, 0xfb, 0xdd, 0x5f, 0x1c,
            0xd9, 0xf2, 0xdd, 0x5f, 0x24, 0xd9, 0xe8, 0xd9, 0xf3, 0xdd, 0x5f, 0x2c,
            0xd9, 0xe8, 0xdd, 0x47, 0x28, 0xd9, 0xf1, 0xdd, 0x5f, 0x34,
            0xdd, 0x7f, 0x3c, 0xdb, 0xe3,
        };
        x87_prog(p5, sizeof(p5), in);
        /* BCD: fninit; fldcw [rdi+56]; fild dword [rdi+32]; fbstp [rdi]; fbld [rdi];
         * fld qword [rdi+40]; fbstp [rdi+10]; fistp qword [rdi+20]; fnstsw [rdi+28] */
        static const uint8_t p6[] = { 0xdb, 0xe3, 0xd9, 0x6f, 0x38, 0xdb, 0x47, 0x20, 0xdf, 0x37,
                                      0xdf, 0x27, 0xdd, 0x47, 0x28, 0xdf, 0x77, 0x0a,
                                      0xdf, 0x7f, 0x14, 0xdd, 0x7f, 0x1c, 0xdb, 0xe3 };
        x87_prog(p6, sizeof(p6), in);
        if (it < 4) { /* BCD edge cases: out of range (indefinite), negative, -0, NaN */
            static const double edge[] = { 1e20, -12345.5, -0.0, __builtin_nan("") };
            memcpy(in + 40, &edge[it], 8);
            x87_prog(p6, sizeof(p6), in);
        }
    }
}
END_TEST

/* Masked moves touch only the selected elements: a masked-off element on an
 * unmapped page must not fault. FWAIT honours CR0.MP/TS. */
START_TEST(masked_moves_and_fwait)
{
    /* mask in ymm1: elements 0 and 2 (dwords) selected */
    memset(T.c->fpu.xmm[1], 0, 16);
    memset(T.c->fpu.ymmh[1], 0, 16);
    T.c->fpu.xmm[1][3] = 0x80;
    T.c->fpu.xmm[1][11] = 0x80;
    uint8_t *data = T.ram + TVM_DATA;
    for (int i = 0; i < 32; i++)
        data[i] = (uint8_t)(0x40 + i);
    memset(T.c->fpu.xmm[0], 0xee, 16);
    memset(T.c->fpu.ymmh[0], 0xee, 16);
    /* vmaskmovps ymm0, ymm1, [rdi] */
    static const uint8_t ld[] = { 0xc4, 0xe2, 0x75, 0x2c, 0x07, 0xf4 };
    tvm_code(&T, ld, sizeof(ld));
    T.c->rip = TVM_CODE;
    T.c->gpr[EMU_RDI] = TVM_DATA;
    ck_assert_int_eq(go(), EMU_EXIT_HLT);
    ck_assert_int_eq(tvm_halted_vector(&T), -1);
    ck_assert_int_eq(memcmp(T.c->fpu.xmm[0], data, 4), 0);
    ck_assert_uint_eq(T.c->fpu.xmm[0][4], 0);
    ck_assert_int_eq(memcmp(T.c->fpu.xmm[0] + 8, data + 8, 4), 0);
    ck_assert_uint_eq(T.c->fpu.ymmh[0][0], 0);
    /* vmaskmovps [rdi], ymm1, ymm2 with only element 0 selected, 4 bytes before an
     * unmapped page: no #PF */
    tvm_w64(&T, TVM_PT + 0x21 * 8, 0); /* page 0x21000 not present */
    memset(T.c->fpu.xmm[1], 0, 16);
    T.c->fpu.xmm[1][3] = 0x80;
    memset(T.c->fpu.xmm[2], 0x5a, 16);
    static const uint8_t st[] = { 0xc4, 0xe2, 0x75, 0x2e, 0x17, 0xf4 };
    tvm_code(&T, st, sizeof(st));
    T.c->rip = TVM_CODE;
    T.c->gpr[EMU_RDI] = 0x21000 - 4;
    emu_state_changed(T.v);
    ck_assert_int_eq(go(), EMU_EXIT_HLT);
    ck_assert_int_eq(tvm_halted_vector(&T), -1);
    ck_assert_uint_eq(T.ram[0x21000 - 4], 0x5a);
    /* selecting element 1 too faults */
    T.c->fpu.xmm[1][7] = 0x80;
    T.c->rip = TVM_CODE;
    T.c->gpr[EMU_RSP] = TVM_STACK - 0x1000;
    ck_assert_int_eq(go(), EMU_EXIT_HLT);
    ck_assert_int_eq(tvm_halted_vector(&T), 14);
    /* fwait: CR0.TS alone does not fault, TS+MP does (#NM) */
    static const uint8_t w[] = { 0x9b, 0xf4 };
    T.c->cr0 = (T.c->cr0 | 8) & ~2ull;
    emu_state_changed(T.v);
    tvm_code(&T, w, sizeof(w));
    T.c->rip = TVM_CODE;
    T.c->gpr[EMU_RSP] = TVM_STACK - 0x1000;
    ck_assert_int_eq(go(), EMU_EXIT_HLT);
    ck_assert_int_eq(tvm_halted_vector(&T), -1);
    T.c->cr0 |= 2;
    emu_state_changed(T.v);
    T.c->rip = TVM_CODE;
    ck_assert_int_eq(go(), EMU_EXIT_HLT);
    ck_assert_int_eq(tvm_halted_vector(&T), 7);
}
END_TEST

/* Outside 64-bit mode XSAVE/XRSTOR do not touch XMM8-15 (SDM 13.5.2). */
START_TEST(xsave_compat_mode_xmm8_15)
{
    struct emu_cpuid_entry e = { .function = 0xd, .index = 0, .eax = 7 };
    emu_set_cpuid(T.v, &e, 1);
    tvm_set_seg(&T.c->seg[EMU_CS], SEL_CODE32, 0xb, 0, 0, 1); /* compatibility mode */
    emu_state_changed(T.v);
    memset(T.ram + TVM_DATA, 0xcc, 1024);
    memset(T.ram + TVM_DATA + 512, 0, 64); /* XSAVE leaves the header's reserved bytes alone */
    memset(T.c->fpu.xmm, 0x11, sizeof(T.c->fpu.xmm));
    T.c->gpr[EMU_RDI] = TVM_DATA;
    T.c->gpr[EMU_RAX] = 3;
    T.c->gpr[EMU_RDX] = 0;
    static const uint8_t sv[] = { 0x0f, 0xae, 0x27, 0xf4 }; /* xsave [edi] */
    tvm_code(&T, sv, sizeof(sv));
    T.c->rip = TVM_CODE;
    ck_assert_int_eq(go(), EMU_EXIT_HLT);
    ck_assert_int_eq(tvm_halted_vector(&T), -1);
    ck_assert_uint_eq(T.ram[TVM_DATA + 160], 0x11);       /* XMM0 saved */
    ck_assert_uint_eq(T.ram[TVM_DATA + 160 + 128], 0xcc); /* XMM8 slot untouched */
    memset(T.ram + TVM_DATA + 160, 0x22, 256);
    static const uint8_t rs_[] = { 0x0f, 0xae, 0x2f, 0xf4 }; /* xrstor [edi] */
    tvm_code(&T, rs_, sizeof(rs_));
    T.c->rip = TVM_CODE;
    ck_assert_int_eq(go(), EMU_EXIT_HLT);
    ck_assert_int_eq(tvm_halted_vector(&T), -1);
    ck_assert_uint_eq(T.c->fpu.xmm[7][0], 0x22);
    ck_assert_uint_eq(T.c->fpu.xmm[8][0], 0x11);
}
END_TEST

/* FNSTENV image (FCW, FSW, full tag word) vs the host, FNSAVE/FRSTOR round trip.
 * FIP/FDP hold host vs guest addresses, so only the address-free fields are compared. */
START_TEST(x87_env_match_host)
{
    uint8_t in[64] = { 0 };
    double x = -0.0, y = 1e-310; /* zero and denormal tags */
    memcpy(in + 40, &x, 8);
    memcpy(in + 48, &y, 8);
    /* fninit; fld1; fld [rdi+40]; fld [rdi+48]; fldpi; ffree st1; fnstenv [rdi] */
    static const uint8_t p[] = { 0xdb, 0xe3, 0xd9, 0xe8, 0xdd, 0x47, 0x28, 0xdd, 0x47, 0x30,
                                 0xd9, 0xeb, 0xdd, 0xc1, 0xd9, 0x37 };
    uint8_t host[64], *guest = T.ram + TVM_DATA;
    memcpy(host, in, 64);
    memcpy(guest, in, 64);
    uint8_t *page = mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC,
                         MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    memcpy(page, p, sizeof(p));
    page[sizeof(p)] = 0xdb; /* fninit */
    page[sizeof(p) + 1] = 0xe3;
    page[sizeof(p) + 2] = 0xc3;
    uint8_t env[108];
    __asm__ volatile("fnsave %0" : "=m"(env));
    ((void (*)(uint8_t *))(void *)page)(host);
    __asm__ volatile("frstor %0" : : "m"(env));
    munmap(page, 4096);
    uint8_t code[32];
    memcpy(code, p, sizeof(p));
    code[sizeof(p)] = 0xf4;
    tvm_code(&T, code, sizeof(p) + 1);
    T.c->rip = TVM_CODE;
    T.c->gpr[EMU_RDI] = TVM_DATA;
    ck_assert_int_eq(go(), EMU_EXIT_HLT);
    ck_assert_int_eq(tvm_halted_vector(&T), -1);
    ck_assert_int_eq(memcmp(host, guest, 12), 0);          /* FCW, FSW, full FTW */
    /* FOP is not compared: recent CPUs store it only after unmasked exceptions */
    ck_assert_uint_eq(T.c->fpu.fcw & 0x3f, 0x3f);           /* FNSTENV masked everything */
    /* FNSAVE then FRSTOR restores the stack exactly; FNSAVE reinitialises */
    struct emu_fpu before = T.c->fpu;
    static const uint8_t sv[] = { 0xdd, 0x37, 0xf4 };
    tvm_code(&T, sv, sizeof(sv));
    T.c->rip = TVM_CODE;
    ck_assert_int_eq(go(), EMU_EXIT_HLT);
    ck_assert_uint_eq(T.c->fpu.fcw, 0x37f);
    ck_assert_uint_eq(T.c->fpu.ftw, 0);
    static const uint8_t rs_[] = { 0xdd, 0x27, 0xf4 };
    tvm_code(&T, rs_, sizeof(rs_));
    T.c->rip = TVM_CODE;
    ck_assert_int_eq(go(), EMU_EXIT_HLT);
    ck_assert_uint_eq(T.c->fpu.fcw, before.fcw);
    ck_assert_uint_eq(T.c->fpu.fsw, before.fsw);
    ck_assert_uint_eq(T.c->fpu.ftw, before.ftw);
    for (int i = 0; i < 8; i++)
        ck_assert_int_eq(memcmp(T.c->fpu.st[i], before.st[i], 10), 0);
}
END_TEST

/* An unmasked x87 exception is delivered as #MF by the next waiting x87
 * instruction when CR0.NE = 1 (SDM vol.1 8.7). */
START_TEST(x87_pending_exception_mf)
{
    /* fninit; fldcw [rdi] (ZM unmasked); fldz; fld1; fdiv st,st1 (1/0: ZE pending, ST0 kept);
     * fnstsw [rdi+2] (no-wait: runs); fld1 (waiting: #MF) */
    static const uint8_t c[] = { 0xdb, 0xe3, 0xd9, 0x2f, 0xd9, 0xee, 0xd9, 0xe8, 0xd8, 0xf1,
                                 0xdd, 0x7f, 0x02, 0xd9, 0xe8, 0xf4 };
    uint16_t cw = 0x37f & ~0x4;
    memcpy(T.ram + TVM_DATA, &cw, 2);
    tvm_code(&T, c, sizeof(c));
    T.c->rip = TVM_CODE;
    T.c->gpr[EMU_RDI] = TVM_DATA;
    ck_assert_int_eq(go(), EMU_EXIT_HLT);
    ck_assert_int_eq(tvm_halted_vector(&T), 16);
    uint16_t sw;
    memcpy(&sw, T.ram + TVM_DATA + 2, 2);
    ck_assert_uint_eq(sw & 0x80ff, 0x8084); /* B, ES, ZE */
    ck_assert_uint_eq(T.c->fpu.st[0][9] & 0x7f, 0x3f); /* ST0 still 1.0: no result stored */
}
END_TEST

/* ---------------- 256-bit forms ---------------- */
struct yregs {
    uint8_t y0[32], y1[32], y2[32]; /* 0, 32, 64 */
    uint64_t rax, rcx, rflags;      /* 96, 104, 112 */
    uint32_t mxcsr_in, mxcsr_out, mxcsr_host; /* 120, 124, 128 */
};

static void host_exec_y(const uint8_t *insn, size_t len, struct yregs *io)
{
    static const uint8_t pro[] = { 0xc5, 0xfe, 0x6f, 0x07, 0xc5, 0xfe, 0x6f, 0x4f, 0x20,
                                   0xc5, 0xfe, 0x6f, 0x57, 0x40, 0x48, 0x8b, 0x47, 0x60,
                                   0x48, 0x8b, 0x4f, 0x68, 0x0f, 0xae, 0x57, 0x78,
                                   0x6a, 0x02, 0x9d };
    static const uint8_t epi[] = { 0xc5, 0xfe, 0x7f, 0x07, 0xc5, 0xfe, 0x7f, 0x4f, 0x20,
                                   0x48, 0x89, 0x47, 0x60, 0x48, 0x89, 0x4f, 0x68,
                                   0x9c, 0x8f, 0x47, 0x70, 0x0f, 0xae, 0x5f, 0x7c,
                                   0x0f, 0xae, 0x97, 0x80, 0x00, 0x00, 0x00,
                                   0xc5, 0xf8, 0x77, 0xc3 };
    uint8_t *page = mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC,
                         MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ck_assert_ptr_ne(page, MAP_FAILED);
    memcpy(page, pro, sizeof(pro));
    memcpy(page + sizeof(pro), insn, len);
    memcpy(page + sizeof(pro) + len, epi, sizeof(epi));
    __asm__ volatile("stmxcsr %0" : "=m"(io->mxcsr_host));
    ((void (*)(struct yregs *))(void *)page)(io);
    munmap(page, 4096);
}

static void guest_exec_y(const uint8_t *insn, size_t len, struct yregs *io)
{
    uint8_t code[32];
    memcpy(code, insn, len);
    code[len] = 0xf4;
    tvm_code(&T, code, len + 1);
    struct cpu *c = T.c;
    c->rip = TVM_CODE;
    const uint8_t *in[3] = { io->y0, io->y1, io->y2 };
    for (int r = 0; r < 3; r++) {
        memcpy(c->fpu.xmm[r], in[r], 16);
        memcpy(c->fpu.ymmh[r], in[r] + 16, 16);
    }
    c->gpr[EMU_RAX] = io->rax;
    c->gpr[EMU_RCX] = io->rcx;
    c->fpu.mxcsr = io->mxcsr_in;
    c->rflags = 2;
    emu_state_changed(T.v);
    enum emu_exit_reason why = go();
    ck_assert_msg(why == EMU_EXIT_HLT && tvm_halted_vector(&T) == -1,
                  "exit %d vector %d at %02x %02x %02x %02x %02x", why, tvm_halted_vector(&T),
                  insn[0], insn[1], insn[2], insn[3], insn[4]);
    memcpy(io->y0, c->fpu.xmm[0], 16);
    memcpy(io->y0 + 16, c->fpu.ymmh[0], 16);
    memcpy(io->y1, c->fpu.xmm[1], 16);
    memcpy(io->y1 + 16, c->fpu.ymmh[1], 16);
    io->rax = c->gpr[EMU_RAX];
    io->rcx = c->gpr[EMU_RCX];
    io->rflags = emu_get_rflags(T.v);
    io->mxcsr_out = c->fpu.mxcsr;
}

static const struct form yforms[] = {
    /* AVX2 lane-wise: vpaddb, vpshufb, vpunpcklbw, vpsrlw (xmm count), vpshufd, vpalignr */
    { { 0xc5, 0xf5, 0xfc, 0xc2 }, 4, 0 }, { { 0xc4, 0xe2, 0x75, 0x00, 0xc2 }, 5, 0 },
    { { 0xc5, 0xf5, 0x60, 0xc2 }, 4, 0 }, { { 0xc5, 0xf5, 0xd1, 0xc2 }, 4, 0 },
    { { 0xc5, 0xfd, 0x70, 0xc1 }, 4, 1 }, { { 0xc4, 0xe3, 0x75, 0x0f, 0xc2 }, 5, 1 },
    /* AVX float: vaddps, vxorps, vshufpd, vblendps; masks and tests */
    { { 0xc5, 0xf4, 0x58, 0xc2 }, 4, 0 }, { { 0xc5, 0xf4, 0x57, 0xc2 }, 4, 0 },
    { { 0xc5, 0xf5, 0xc6, 0xc2 }, 4, 1 }, { { 0xc4, 0xe3, 0x75, 0x0c, 0xc2 }, 5, 1 },
    { { 0xc5, 0xfd, 0xd7, 0xc1 }, 4, 0 }, { { 0xc4, 0xe2, 0x7d, 0x17, 0xca }, 5, 0 },
    { { 0xc5, 0xfe, 0x6f, 0xc1 }, 4, 0 },
    /* cross-lane: vpbroadcastd/b, vinserti128, vextracti128, vperm2i128, vpermq, vpermd */
    { { 0xc4, 0xe2, 0x7d, 0x58, 0xc1 }, 5, 0 }, { { 0xc4, 0xe2, 0x7d, 0x78, 0xc1 }, 5, 0 },
    { { 0xc4, 0xe3, 0x75, 0x38, 0xc2 }, 5, 1 }, { { 0xc4, 0xe3, 0x7d, 0x39, 0xc8 }, 5, 1 },
    { { 0xc4, 0xe3, 0x75, 0x46, 0xc2 }, 5, 1 }, { { 0xc4, 0xe3, 0xfd, 0x00, 0xc1 }, 5, 1 },
    { { 0xc4, 0xe2, 0x75, 0x36, 0xc2 }, 5, 0 },
    /* vpblendd, vblendvps (mask ymm0), vpermilps (var, imm), vtestps, variable shifts */
    { { 0xc4, 0xe3, 0x75, 0x02, 0xc2 }, 5, 1 }, { { 0xc4, 0xe3, 0x75, 0x4a, 0xc2, 0x00 }, 6, 0 },
    { { 0xc4, 0xe2, 0x75, 0x0c, 0xc2 }, 5, 0 }, { { 0xc4, 0xe3, 0x7d, 0x04, 0xc1 }, 5, 1 },
    { { 0xc4, 0xe2, 0x7d, 0x0e, 0xca }, 5, 0 }, { { 0xc4, 0xe2, 0x75, 0x47, 0xc2 }, 5, 0 },
    { { 0xc4, 0xe2, 0x75, 0x46, 0xc2 }, 5, 0 }, { { 0xc4, 0xe2, 0xf5, 0x45, 0xc2 }, 5, 0 },
    /* 256-bit conversions and widening moves: vcvtps2pd, vcvtpd2ps, vcvtdq2pd, vcvttpd2dq,
     * vcvtpd2dq, vpmovzxbw, vpmovsxbd, vpmovzxdq */
    { { 0xc5, 0xfc, 0x5a, 0xc1 }, 4, 0 }, { { 0xc5, 0xfd, 0x5a, 0xc1 }, 4, 0 },
    { { 0xc5, 0xfe, 0xe6, 0xc1 }, 4, 0 }, { { 0xc5, 0xfd, 0xe6, 0xc1 }, 4, 0 },
    { { 0xc5, 0xff, 0xe6, 0xc1 }, 4, 0 }, { { 0xc4, 0xe2, 0x7d, 0x30, 0xc1 }, 5, 0 },
    { { 0xc4, 0xe2, 0x7d, 0x21, 0xc1 }, 5, 0 }, { { 0xc4, 0xe2, 0x7d, 0x35, 0xc1 }, 5, 0 },
    /* FMA3: vfmadd132ps ymm, vfmadd231sd xmm, vfnmsub213pd ymm, vfmaddsub231ps ymm,
     * vfmsubadd132pd xmm; F16C: vcvtph2ps ymm0, xmm1; vcvtps2ph xmm0, ymm1, ib */
    { { 0xc4, 0xe2, 0x75, 0x98, 0xc2 }, 5, 0 }, { { 0xc4, 0xe2, 0xf1, 0xb9, 0xc2 }, 5, 0 },
    { { 0xc4, 0xe2, 0xf5, 0xae, 0xc2 }, 5, 0 }, { { 0xc4, 0xe2, 0x75, 0xb6, 0xc2 }, 5, 0 },
    { { 0xc4, 0xe2, 0xf1, 0x97, 0xc2 }, 5, 0 }, { { 0xc4, 0xe2, 0x7d, 0x13, 0xc1 }, 5, 0 },
    { { 0xc4, 0xe3, 0x7d, 0x1d, 0xc8 }, 5, 1 },
    /* vmpsadbw ymm, vdpps ymm */
    { { 0xc4, 0xe3, 0x75, 0x42, 0xc2 }, 5, 1 }, { { 0xc4, 0xe3, 0x75, 0x40, 0xc2 }, 5, 1 },
    /* pclmulqdq xmm0, xmm1 / vpclmulqdq xmm0, xmm1, xmm2 */
    { { 0x66, 0x0f, 0x3a, 0x44, 0xc1 }, 5, 1 }, { { 0xc4, 0xe3, 0x71, 0x44, 0xc2 }, 5, 1 },
};

START_TEST(ymm_insns_match_host)
{
    unsigned checked = 0;
    for (unsigned k = 0; k < sizeof(yforms) / sizeof(yforms[0]); k++) {
        for (int it = 0; it < 60; it++) {
            struct yregs in = { .mxcsr_in = 0x1f80 };
            rnd_fill(in.y0, 32, it & 1);
            rnd_fill(in.y1, 32, it & 1);
            rnd_fill(in.y2, 32, it & 1);
            if (it & 2) /* small per-element counts / indices sometimes */
                for (int i = 0; i < 32; i++)
                    in.y2[i] &= 0x1f;
            in.rax = rnd();
            in.rcx = rnd();
            uint8_t insn[9];
            memcpy(insn, yforms[k].b, yforms[k].len);
            size_t len = yforms[k].len;
            if (yforms[k].ib)
                insn[len++] = (uint8_t)rnd();
            struct yregs h = in, g = in;
            host_exec_y(insn, len, &h);
            guest_exec_y(insn, len, &g);
            const uint64_t sf = 0x8d5;
            if (memcmp(h.y0, g.y0, 32) || memcmp(h.y1, g.y1, 32) || h.rax != g.rax ||
                (h.rflags & sf) != (g.rflags & sf) || h.mxcsr_out != g.mxcsr_out) {
                fprintf(stderr, "insn:");
                for (size_t i = 0; i < len; i++)
                    fprintf(stderr, " %02x", insn[i]);
                fprintf(stderr, "\n");
                ck_abort_msg("ymm form %u differs from the host CPU", k);
            }
            checked++;
        }
    }
    fprintf(stderr, "ymm insns: %u executions agree with the host CPU\n", checked);
}
END_TEST

/* MMX aliases the physical x87 registers: MMi = R(i) whatever TOP was. */
START_TEST(mmx_aliasing)
{
    /* fninit; fld1; fldz (TOP=6: R7 = 1.0, R6 = 0.0); movq mm2, mm7; movq [rdi], mm2;
     * mov eax, 0x11223344; movd mm1, eax; paddb mm1, mm1; movd ecx, mm1; emms; hlt */
    static const uint8_t c[] = { 0xdb, 0xe3, 0xd9, 0xe8, 0xd9, 0xee, 0x0f, 0x6f, 0xd7,
                                 0x0f, 0x7f, 0x17, 0xb8, 0x44, 0x33, 0x22, 0x11,
                                 0x0f, 0x6e, 0xc8, 0x0f, 0xfc, 0xc9, 0x0f, 0x7e, 0xc9,
                                 0x0f, 0x77, 0xf4 };
    tvm_code(&T, c, sizeof(c));
    T.c->rip = TVM_CODE;
    T.c->gpr[EMU_RDI] = TVM_DATA;
    ck_assert_int_eq(go(), EMU_EXIT_HLT);
    ck_assert_int_eq(tvm_halted_vector(&T), -1);
    ck_assert_uint_eq(tvm_r64(&T, TVM_DATA), 0x8000000000000000ull); /* mantissa of 1.0 */
    ck_assert_uint_eq(T.c->gpr[EMU_RCX], 0x22446688u);
    ck_assert_uint_eq(T.c->fpu.ftw, 0);                  /* EMMS: all empty */
    ck_assert_uint_eq((T.c->fpu.fsw >> 11) & 7, 0);      /* MMX set TOP = 0 */
    ck_assert_uint_eq(T.c->fpu.st[1][8], 0xff);          /* MMX write: exponent all ones */

    /* mov eax,7; movd mm1,eax; cvtpi2ps xmm0,mm1; cvttps2pi mm2,xmm0; movd ecx,mm2;
     * cvtpi2pd xmm3,mm1; cvtpd2pi mm4,xmm3; movd edx,mm4; emms; hlt */
    static const uint8_t cv[] = { 0xb8, 0x07, 0x00, 0x00, 0x00, 0x0f, 0x6e, 0xc8, 0x0f, 0x2a, 0xc1,
                                  0x0f, 0x2c, 0xd0, 0x0f, 0x7e, 0xd1, 0x66, 0x0f, 0x2a, 0xd9,
                                  0x66, 0x0f, 0x2d, 0xe3, 0x0f, 0x7e, 0xe2, 0x0f, 0x77, 0xf4 };
    memset(T.c->fpu.xmm[0], 0x77, 16);
    tvm_code(&T, cv, sizeof(cv));
    T.c->rip = TVM_CODE;
    ck_assert_int_eq(go(), EMU_EXIT_HLT);
    ck_assert_int_eq(tvm_halted_vector(&T), -1);
    float f0;
    memcpy(&f0, T.c->fpu.xmm[0], 4);
    ck_assert(f0 == 7.0f);
    ck_assert_uint_eq(T.c->fpu.xmm[0][15], 0x77); /* CVTPI2PS keeps bits 127:64 */
    ck_assert_uint_eq(T.c->gpr[EMU_RCX], 7);
    ck_assert_uint_eq(T.c->gpr[EMU_RDX], 7);
    double d3;
    memcpy(&d3, T.c->fpu.xmm[3], 8);
    ck_assert(d3 == 7.0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("simd_insn");
    TCase *tc = tcase_create("insn");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, insns_match_host);
    tcase_add_test(tc, memory_forms_and_alignment);
    tcase_add_test(tc, mmio_forms_as_kvm);
    tcase_add_test(tc, vex_upper_zeroing);
    tcase_add_test(tc, fault_rules);
    tcase_add_test(tc, xsave_family);
    tcase_add_test(tc, x87_programs_match_host);
    tcase_add_test(tc, mmx_aliasing);
    tcase_add_test(tc, x87_pending_exception_mf);
    tcase_add_test(tc, x87_env_match_host);
    tcase_add_test(tc, xsave_compat_mode_xmm8_15);
    tcase_add_test(tc, masked_moves_and_fwait);
    tcase_add_test(tc, ymm_insns_match_host);
    suite_add_tcase(s, tc);
    return softkvm_check_run(s);
}
