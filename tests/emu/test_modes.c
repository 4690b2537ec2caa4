/* tests/emu: legacy protected mode: 32-bit paging (4 KiB + 4 MiB PSE pages), PAE paging
 * with NX, interrupt/trap gates with 32-bit frames (SDM vol.3 4.3, 4.4, 6.12), and the
 * real -> protected mode switch through CR0.PE and a far jump. */
#include <check.h>
#include "tests/check_main.h"
#include <stdlib.h>

#include "tests/emu/emu_test_vm.h"

static struct tvm T;
static struct emu_exit X;

#define PD32 0x10000
#define PT32 0x11000
#define PDPT 0x12000
#define PDPAE 0x13000
#define IDT32 0x14000

static void w32(uint64_t gpa, uint32_t v) { memcpy(T.ram + gpa, &v, 4); }
static uint32_t r32(uint64_t gpa) { uint32_t v; memcpy(&v, T.ram + gpa, 4); return v; }

/* 32-bit protected mode, CPL 0, flat segments, IDT with 32-bit interrupt gates to the stubs */
static void setup32(void)
{
    tvm_init64(&T);
    struct cpu *c = T.c;
    for (unsigned n = 0; n < 256; n++) {
        uint32_t off = TVM_STUB + n * 16;
        uint64_t g = (off & 0xffff) | ((uint64_t)SEL_CODE32 << 16) | (0xeull << 40) | (1ull << 47) |
                     ((uint64_t)(off >> 16) << 48);
        tvm_w64(&T, IDT32 + n * 8, g);
    }
    c->idtr.base = IDT32;
    c->idtr.limit = 0x7ff;
    c->efer = 0;
    c->cr0 = 0x11; /* PE ET */
    c->cr4 = 0;
    tvm_set_seg(&c->seg[EMU_CS], SEL_CODE32, 0xb, 0, 0, 1);
    c->rip = TVM_CODE;
    c->gpr[EMU_RSP] = 0x80000;
    emu_state_changed(T.v);
}
static void teardown(void) { tvm_destroy(&T); }

#define CODE(...) do { static const uint8_t c_[] = {__VA_ARGS__}; tvm_code(&T, c_, sizeof c_); } while (0)

START_TEST(paging32_pse_and_fault_frame)
{
    /* PDE0 -> PT (identity 4K), PDE1 = 4 MiB page at 0x800000; PDE2 not present */
    w32(PD32, PT32 | 3);
    w32(PD32 + 4, 0x800000 | 0x83);
    for (unsigned i = 0; i < 1024; i++)
        w32(PT32 + i * 4, (i << 12) | 3);
    T.ram[0x800000 + 0x1234] = 0x5a;
    T.c->cr4 = 0x10; /* PSE */
    T.c->cr3 = PD32;
    T.c->cr0 |= 0x80000000;
    emu_state_changed(T.v);
    /* mov al,[0x401234]; mov ebx,[0x800000]  (PDE2 not present) */
    CODE(0xa0, 0x34, 0x12, 0x40, 0x00, 0x8b, 0x1d, 0x00, 0x00, 0x80, 0x00);
    ck_assert_int_eq(tvm_run(&T, &X), EMU_EXIT_HLT);
    ck_assert_uint_eq(T.c->gpr[EMU_RAX] & 0xff, 0x5a);
    ck_assert_int_eq(tvm_halted_vector(&T), 14);
    ck_assert_uint_eq(T.c->cr2, 0x800000);
    uint32_t sp = (uint32_t)T.c->gpr[EMU_RSP];
    ck_assert_uint_eq(sp, 0x80000 - 16);     /* error code, EIP, CS, EFLAGS */
    ck_assert_uint_eq(r32(sp), 0);           /* not present, read, supervisor */
    ck_assert_uint_eq(r32(sp + 4), TVM_CODE + 5);
    ck_assert_uint_eq(r32(sp + 8), SEL_CODE32);
    ck_assert(r32(PD32 + 4) & 0x20);         /* accessed bit set in the PSE PDE */
}
END_TEST

START_TEST(pae_paging_nx)
{
    /* PDPT[0] -> PD with 2 MiB pages; page 1 (2M..4M) is NX */
    tvm_w64(&T, PDPT, PDPAE | 1);
    tvm_w64(&T, PDPAE, 0x83);
    tvm_w64(&T, PDPAE + 8, 0x200000 | 0x83 | (1ull << 63));
    T.c->cr4 = 0x20;
    T.c->cr3 = PDPT;
    T.c->efer = 0x800; /* NXE */
    T.c->cr0 |= 0x80000000;
    emu_state_changed(T.v);
    T.ram[0x200000] = 0xf4;
    /* mov eax,[0x200000]; jmp 0x200000 */
    CODE(0xa1, 0x00, 0x00, 0x20, 0x00, 0xb9, 0x00, 0x00, 0x20, 0x00, 0xff, 0xe1);
    ck_assert_int_eq(tvm_run(&T, &X), EMU_EXIT_HLT);
    ck_assert_int_eq(tvm_halted_vector(&T), 14);
    ck_assert_uint_eq(T.c->cr2, 0x200000);
    ck_assert_uint_eq(r32((uint32_t)T.c->gpr[EMU_RSP]), 0x11); /* P | I/D */
    ck_assert_uint_eq(T.c->gpr[EMU_RAX] & 0xff, 0xf4);      /* the data read worked */
}
END_TEST

START_TEST(pae_reserved_pdpte_gp)
{
    /* loading CR3 with a present PDPTE that has reserved bits set is #GP(0) */
    tvm_w64(&T, PDPT, PDPAE | 1 | 0x4); /* bit 2 reserved in a PAE PDPTE */
    tvm_w64(&T, PDPAE, 0x83);
    T.c->cr4 = 0x20;
    T.c->cr3 = 0;
    T.c->cr0 |= 0x80000000;
    /* identity for the code while we try: use a valid PDPT at PDPT+0x20 first */
    tvm_w64(&T, PDPT + 0x20, PDPAE | 1);
    T.c->cr3 = PDPT + 0x20;
    emu_state_changed(T.v);
    /* mov eax,PDPT; mov cr3,eax */
    CODE(0xb8, 0x00, 0x20, 0x01, 0x00, 0x0f, 0x22, 0xd8);
    ck_assert_int_eq(tvm_run(&T, &X), EMU_EXIT_HLT);
    ck_assert_int_eq(tvm_halted_vector(&T), 13);
    ck_assert_uint_eq(T.c->cr3, PDPT + 0x20);
}
END_TEST

START_TEST(int_trap_gate_and_iret32)
{
    /* vector 0x80 as a trap gate whose handler is "iretd" -> back to the caller */
    uint32_t off = TVM_CODE + 0x100;
    tvm_w64(&T, IDT32 + 0x80 * 8, (off & 0xffff) | ((uint64_t)SEL_CODE32 << 16) | (0xfull << 40) |
                                      (1ull << 47) | ((uint64_t)(off >> 16) << 48));
    T.ram[off] = 0xcf; /* iretd */
    emu_set_rflags(T.v, 0x202);
    /* int 0x80; mov eax,1; hlt */
    CODE(0xcd, 0x80, 0xb8, 1, 0, 0, 0, 0xf4);
    ck_assert_int_eq(tvm_run(&T, &X), EMU_EXIT_HLT);
    ck_assert_uint_eq(T.c->gpr[EMU_RAX] & 0xffffffff, 1);
    ck_assert_uint_eq(T.c->rip, TVM_CODE + 8);
    ck_assert_uint_eq(T.c->gpr[EMU_RSP], 0x80000);
    ck_assert(emu_get_rflags(T.v) & EMU_FL_IF);
}
END_TEST

START_TEST(real_to_protected_switch)
{
    emu_reset(T.v);
    /* real mode at 0000:7c00: lgdt [gdtd]; mov eax,cr0; or al,1; mov cr0,eax;
     * jmp 0x18:pm32 ; pm32 (32-bit): mov ax,0x10; mov ds,ax; mov dword [0x9000... */
    static const uint8_t code[] = {
        0x0f, 0x01, 0x16, 0x00, 0x7e,             /* lgdt [0x7e00] */
        0x0f, 0x20, 0xc0,                         /* mov eax,cr0 */
        0x0c, 0x01,                               /* or al,1 */
        0x0f, 0x22, 0xc0,                         /* mov cr0,eax */
        0x66, 0xea, 0x20, 0x7c, 0x00, 0x00, 0x18, 0x00, /* jmp dword 0x18:0x7c20 */
        0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90,
        /* 0x7c20: */
        0x66, 0xb8, 0x10, 0x00,                   /* mov ax,0x10 */
        0x8e, 0xd8,                               /* mov ds,ax */
        0xc7, 0x05, 0x00, 0x00, 0x50, 0x00, 0x78, 0x56, 0x34, 0x12, /* mov dword [0x500000],0x12345678 */
        0xf4,
    };
    memcpy(T.ram + 0x7c00, code, sizeof code);
    uint16_t lim = 0x57;
    uint32_t base = TVM_GDT;
    memcpy(T.ram + 0x7e00, &lim, 2);
    memcpy(T.ram + 0x7e02, &base, 4);
    T.c->seg[EMU_CS].selector = 0;
    T.c->seg[EMU_CS].base = 0;
    T.c->rip = 0x7c00;
    emu_state_changed(T.v);
    ck_assert_int_eq(tvm_run(&T, &X), EMU_EXIT_HLT);
    ck_assert_uint_eq(r32(0x500000), 0x12345678);
    ck_assert_uint_eq(T.c->seg[EMU_CS].selector, 0x18);
    ck_assert_uint_eq(T.c->seg[EMU_CS].db, 1);
    ck_assert_uint_eq(T.c->seg[EMU_DS].base, 0);
    ck_assert_uint_eq(T.c->seg[EMU_DS].limit, 0xffffffff);
}
END_TEST

START_TEST(segment_limit_and_null_selector)
{
    /* DS with a 0xfff limit: an access at 0x1000 is #GP(0); loading a null SS is #GP(0) */
    tvm_w64(&T, TVM_GDT + 0x20, tvm_seg_desc(0, 0xfff, 0x3, 1, 0, 0, 1, 0));
    /* mov ax,0x20; mov ds,ax; mov eax,[0xffe] -> crosses limit */
    CODE(0x66, 0xb8, 0x20, 0x00, 0x8e, 0xd8, 0xa1, 0xfe, 0x0f, 0x00, 0x00);
    ck_assert_int_eq(tvm_run(&T, &X), EMU_EXIT_HLT);
    ck_assert_int_eq(tvm_halted_vector(&T), 13);
    ck_assert_uint_eq(r32((uint32_t)T.c->gpr[EMU_RSP]), 0);
    ck_assert_uint_eq(r32((uint32_t)T.c->gpr[EMU_RSP] + 4), TVM_CODE + 6);
}
END_TEST

START_TEST(io_bitmap_cpl3)
{
    /* CPL 3, IOPL 0: port 0x80 allowed by the TSS bitmap, port 0x81 denied -> #GP(0) */
    tvm_w64(&T, TVM_GDT + 0x20, tvm_seg_desc(0, 0xfffff, 0xb, 1, 3, 0, 1, 1)); /* 32-bit user code */
    /* I/O bitmap for ports 0..0xff (32 bytes) then the 0xff terminator */
    tvm_w64(&T, TVM_GDT + 0x40, tvm_seg_desc(TVM_TSS, 0x88, 0xb, 0, 0, 0, 0, 0));
    T.c->seg[EMU_TR].limit = 0x88;
    T.ram[TVM_TSS + 0x66] = 0x68;
    T.ram[TVM_TSS + 0x67] = 0;
    memset(T.ram + TVM_TSS + 0x68, 0xff, 33);
    T.ram[TVM_TSS + 0x68 + 0x80 / 8] = 0xfe; /* port 0x80 allowed */
    tvm_w64(&T, TVM_TSS + 4, 0x90000);      /* ESP0 */
    T.ram[TVM_TSS + 8] = SEL_DATA;          /* SS0 */
    tvm_set_seg(&T.c->seg[EMU_CS], 0x23, 0xb, 3, 0, 1);
    tvm_set_seg(&T.c->seg[EMU_SS], SEL_UDATA, 0x3, 3, 0, 1);
    emu_state_changed(T.v);
    /* out 0x80,al; out 0x81,al */
    CODE(0xe6, 0x80, 0xe6, 0x81);
    ck_assert_int_eq(tvm_run(&T, &X), EMU_EXIT_IO);
    ck_assert_uint_eq(X.io.port, 0x80);
    ck_assert_int_eq(tvm_run(&T, &X), EMU_EXIT_HLT);
    ck_assert_int_eq(tvm_halted_vector(&T), 13);
    ck_assert_uint_eq(T.c->gpr[EMU_RSP], 0x90000 - 24); /* SS, ESP, EFLAGS, CS, EIP, error */
    ck_assert_uint_eq(r32(0x90000 - 4), SEL_UDATA);
    ck_assert_uint_eq(r32(0x90000 - 20), TVM_CODE + 2);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("emu_modes");
    TCase *t = tcase_create("modes");
    tcase_add_checked_fixture(t, setup32, teardown);
    tcase_add_test(t, paging32_pse_and_fault_frame);
    tcase_add_test(t, pae_paging_nx);
    tcase_add_test(t, pae_reserved_pdpte_gp);
    tcase_add_test(t, int_trap_gate_and_iret32);
    tcase_add_test(t, real_to_protected_switch);
    tcase_add_test(t, segment_limit_and_null_selector);
    tcase_add_test(t, io_bitmap_cpl3);
    suite_add_tcase(s, t);
    return softkvm_check_run(s);
}
