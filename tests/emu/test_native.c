/* tests/emu: the host CPU as oracle. One instruction runs natively (in a generated
 * stub that loads RAX RCX RDX RBX RSI RBP and RFLAGS from a state block, executes it, and
 * stores them back) and in the emulator from the same state; results and the status
 * flags must agree. Covers forms where Unicorn is not a reliable reference (SHLD/SHRD
 * flags, LOCK NEG, CMPXCHG register write-back) and a sample of the rest. */
#include <check.h>
#include "tests/check_main.h"
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "emu/internal.h"
#include "tests/emu/emu_test_vm.h"

/* state block: regs[0..5] = rax rcx rdx rbx rsi rbp, [6] = rflags, mem[4] at +0x40 */
struct nstate {
    uint64_t r[6];
    uint64_t fl;
    uint64_t pad;
    uint64_t mem[4];
};
static const unsigned nregs[6] = {EMU_RAX, EMU_RCX, EMU_RDX, EMU_RBX, EMU_RSI, EMU_RBP};

typedef void stub_fn(struct nstate *);

/* Build: push rbx; push rbp; load; push [rdi+48]; popfq; insn; pushfq; pop [rdi+48]; store; pop; ret */
static stub_fn *make_stub(uint8_t *page, const uint8_t *insn, unsigned len)
{
    uint8_t *p = page;
    *p++ = 0x53; /* push rbx */
    *p++ = 0x55; /* push rbp */
    static const uint8_t modrm[6] = {0x47, 0x4f, 0x57, 0x5f, 0x77, 0x6f}; /* rax rcx rdx rbx rsi rbp, [rdi+d8] */
    for (int i = 0; i < 6; i++) {
        *p++ = 0x48, *p++ = 0x8b, *p++ = modrm[i], *p++ = (uint8_t)(i * 8); /* mov reg,[rdi+i*8] */
    }
    *p++ = 0xff, *p++ = 0x77, *p++ = 48; /* push qword [rdi+48] */
    *p++ = 0x9d;                         /* popfq */
    memcpy(p, insn, len);
    p += len;
    *p++ = 0x9c;                         /* pushfq */
    *p++ = 0x8f, *p++ = 0x47, *p++ = 48; /* pop qword [rdi+48] */
    for (int i = 0; i < 6; i++) {
        *p++ = 0x48, *p++ = 0x89, *p++ = modrm[i], *p++ = (uint8_t)(i * 8); /* mov [rdi+i*8],reg */
    }
    *p++ = 0x5d; /* pop rbp */
    *p++ = 0x5b; /* pop rbx */
    *p++ = 0xc3;
    return (stub_fn *)(void *)page;
}

static uint64_t rng = 88172645463325252ull;
static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* Instruction under test; memory operands must be [rdi+0x40] (state mem[0]). */
struct ncase {
    const char *name;
    uint8_t b[15];
    uint8_t len;
    uint16_t undef; /* flags the SDM leaves undefined for this form */
};

static const struct ncase ncases[] = {
    {"shld eax,ecx,cl", {0x0f, 0xa5, 0xc8}, 3, 0x810},
    {"shrd eax,ecx,cl", {0x0f, 0xad, 0xc8}, 3, 0x810},
    {"shld rbx,rdx,cl", {0x48, 0x0f, 0xa5, 0xd3}, 4, 0x810},
    {"shrd rbx,rdx,cl", {0x48, 0x0f, 0xad, 0xd3}, 4, 0x810},
    {"shld [rdi+0x40],edx,cl", {0x0f, 0xa5, 0x57, 0x40}, 4, 0x810},
    {"shrd [rdi+0x40],rdx,cl", {0x48, 0x0f, 0xad, 0x57, 0x40}, 5, 0x810},
    {"lock neg byte [rdi+0x40]", {0xf0, 0xf6, 0x5f, 0x40}, 4, 0},
    {"lock neg qword [rdi+0x40]", {0xf0, 0x48, 0xf7, 0x5f, 0x40}, 5, 0},
    {"lock not dword [rdi+0x40]", {0xf0, 0xf7, 0x57, 0x40}, 4, 0},
    {"cmpxchg ebx,ecx", {0x0f, 0xb1, 0xcb}, 3, 0},
    {"cmpxchg rbx,rcx", {0x48, 0x0f, 0xb1, 0xcb}, 4, 0},
    {"cmpxchg bl,cl", {0x0f, 0xb0, 0xcb}, 3, 0},
    {"lock cmpxchg [rdi+0x40],ecx", {0xf0, 0x0f, 0xb1, 0x4f, 0x40}, 5, 0},
    {"rcl eax,cl", {0xd3, 0xd0}, 2, 0x800},
    {"rcr bx,cl", {0x66, 0xd3, 0xdb}, 3, 0x800},
    {"sar rdx,cl", {0x48, 0xd3, 0xfa}, 3, 0x810},
    {"rol byte [rdi+0x40],cl", {0xd2, 0x47, 0x40}, 3, 0x800},
    {"adc rax,rcx", {0x48, 0x11, 0xc8}, 3, 0},
    {"sbb eax,ecx", {0x19, 0xc8}, 2, 0},
    {"imul rax,rbx", {0x48, 0x0f, 0xaf, 0xc3}, 4, 0xd4},
    {"mul rbx", {0x48, 0xf7, 0xe3}, 3, 0xd4},
    {"bsf eax,ecx", {0x0f, 0xbc, 0xc1}, 3, 0x895},
    {"bsr rax,rcx", {0x48, 0x0f, 0xbd, 0xc1}, 4, 0x895},
    {"bt [rdi+0x40],ecx", {0x0f, 0xa3, 0x4f, 0x40}, 4, 0x894},
    {"lock bts [rdi+0x40],rcx", {0xf0, 0x48, 0x0f, 0xab, 0x4f, 0x40}, 6, 0x894},
    {"xadd ebx,ebx", {0x0f, 0xc1, 0xdb}, 3, 0},
    {"lahf", {0x9f}, 1, 0},
    {"sahf", {0x9e}, 1, 0},
    {"cmc", {0xf5}, 1, 0},
    {"neg si", {0x66, 0xf7, 0xde}, 3, 0},
    {"movbe eax,[rdi+0x40]", {0x0f, 0x38, 0xf0, 0x47, 0x40}, 5, 0},
};

START_TEST(host_cpu_agreement)
{
    const struct ncase *nc = &ncases[_i];
    uint8_t *page = mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ck_assert_ptr_ne(page, MAP_FAILED);
    stub_fn *fn = make_stub(page, nc->b, nc->len);
    unsigned bad = 0;
    for (int iter = 0; iter < 300; iter++) {
        struct nstate in, hw;
        for (int i = 0; i < 6; i++)
            in.r[i] = (iter & 3) == 0 ? rnd() & 0xff : (iter & 3) == 1 ? (uint32_t)rnd() : rnd();
        if (strstr(nc->name, "bt"))
            in.r[1] = (rnd() % 256) - 64; /* bit offsets within the state block */
        if (iter & 4)
            in.r[3] = in.r[0]; /* make CMPXCHG succeed sometimes */
        in.fl = 0x202 | (rnd() & 0x8d5);
        in.pad = 0;
        for (int i = 0; i < 4; i++)
            in.mem[i] = rnd();
        if (iter & 8)
            in.mem[0] = in.r[0];
        hw = in;
        fn(&hw);

        struct tvm t;
        tvm_init64(&t);
        memcpy(t.ram + TVM_CODE, nc->b, nc->len);
        t.ram[TVM_CODE + nc->len] = 0xf4;
        for (int i = 0; i < 6; i++)
            t.c->gpr[nregs[i]] = in.r[i];
        t.c->gpr[EMU_RDI] = TVM_DATA;
        memcpy(t.ram + TVM_DATA, &in, sizeof in);
        emu_set_rflags(t.v, in.fl);
        struct emu_exit x;
        emu_run(t.v, &x);
        bool ok = x.reason == EMU_EXIT_HLT && tvm_halted_vector(&t) < 0;
        uint64_t mask = 0x8d5 & ~(uint64_t)nc->undef;
        for (int i = 0; i < 6 && ok; i++)
            ok = t.c->gpr[nregs[i]] == hw.r[i];
        ok = ok && ((emu_get_rflags(t.v) ^ hw.fl) & mask) == 0;
        ok = ok && memcmp(t.ram + TVM_DATA + 0x40, hw.mem, sizeof hw.mem) == 0;
        if (!ok && bad++ < 3) {
            fprintf(stderr, "%s: mismatch (iter %d)\n", nc->name, iter);
            for (int i = 0; i < 6; i++)
                fprintf(stderr, "  r%d in %016llx hw %016llx emu %016llx\n", i,
                        (unsigned long long)in.r[i], (unsigned long long)hw.r[i],
                        (unsigned long long)t.c->gpr[nregs[i]]);
            fprintf(stderr, "  fl in %llx hw %llx emu %llx\n", (unsigned long long)in.fl,
                    (unsigned long long)hw.fl, (unsigned long long)emu_get_rflags(t.v));
        }
        tvm_destroy(&t);
    }
    munmap(page, 4096);
    ck_assert_msg(bad == 0, "%s: %u of 300 disagree with the host CPU", nc->name, bad);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("emu_native");
    TCase *t = tcase_create("native");
    tcase_set_timeout(t, 120);
    tcase_add_loop_test(t, host_cpu_agreement, 0, (int)(sizeof ncases / sizeof ncases[0]));
    suite_add_tcase(s, t);
    return softkvm_check_run(s);
}
