/* tests/emu: run loop, exits and completions (KVM semantics), exceptions through the
 * IDT (SDM vol.3 ch.6), paging faults/bits (SDM vol.3 ch.4), self-modifying code,
 * real-mode reset state. */
#include <check.h>
#include "tests/check_main.h"
#include <stdlib.h>

#include "tests/emu/emu_test_vm.h"

static struct tvm T;
static struct emu_exit X;

static void setup(void) { tvm_init64(&T); }
static void teardown(void) { tvm_destroy(&T); }

#define RUN() tvm_run(&T, &X)
#define CODE(...) do { static const uint8_t c_[] = {__VA_ARGS__}; tvm_code(&T, c_, sizeof c_); } while (0)

START_TEST(out_exit_rip_advanced)
{
    /* mov eax,5; add eax,7; out 0x10,al; hlt */
    CODE(0xb8, 5, 0, 0, 0, 0x83, 0xc0, 7, 0xe6, 0x10, 0xf4);
    ck_assert_int_eq(RUN(), EMU_EXIT_IO);
    ck_assert_uint_eq(X.io.port, 0x10);
    ck_assert(!X.io.in);
    ck_assert_uint_eq(X.io.size, 1);
    ck_assert_uint_eq(X.io.data[0], 12);
    ck_assert_uint_eq(T.c->rip, TVM_CODE + 10); /* past the OUT */
    ck_assert_int_eq(RUN(), EMU_EXIT_HLT);
    ck_assert_uint_eq(T.c->rip, TVM_CODE + 11);
}
END_TEST

START_TEST(in_completes_on_next_run)
{
    /* mov eax,0xffffffff; in ax,dx (dx=0x3f8); hlt */
    T.c->gpr[EMU_RDX] = 0x3f8;
    CODE(0xb8, 0xff, 0xff, 0xff, 0xff, 0x66, 0xed, 0xf4);
    ck_assert_int_eq(RUN(), EMU_EXIT_IO);
    ck_assert(X.io.in);
    ck_assert_uint_eq(X.io.port, 0x3f8);
    ck_assert_uint_eq(X.io.size, 2);
    ck_assert_uint_eq(T.c->rip, TVM_CODE + 5); /* not yet advanced */
    uint8_t d[2] = {0x34, 0x12};
    emu_complete_io(T.v, d);
    ck_assert_int_eq(RUN(), EMU_EXIT_HLT);
    ck_assert_uint_eq(T.c->gpr[EMU_RAX], 0xffff1234);
}
END_TEST

START_TEST(divide_error_through_idt)
{
    /* xor ecx,ecx; div ecx */
    CODE(0x31, 0xc9, 0xf7, 0xf1);
    uint64_t rsp0 = T.c->gpr[EMU_RSP];
    ck_assert_int_eq(RUN(), EMU_EXIT_HLT);
    ck_assert_int_eq(tvm_halted_vector(&T), 0);
    uint64_t sp = T.c->gpr[EMU_RSP];
    ck_assert_uint_eq(sp, (rsp0 & ~15ull) - 40); /* no error code: 5 qwords */
    ck_assert_uint_eq(tvm_r64(&T, sp), TVM_CODE + 2); /* fault: RIP of the DIV */
    ck_assert_uint_eq(tvm_r64(&T, sp + 8), SEL_CODE64);
    ck_assert_uint_eq(tvm_r64(&T, sp + 24), rsp0);
    ck_assert_uint_eq(tvm_r64(&T, sp + 32), SEL_DATA);
}
END_TEST

START_TEST(page_fault_not_present_cr2)
{
    /* mov rax,[0x40000000]  (PDPT[1] not present) */
    CODE(0x48, 0x8b, 0x04, 0x25, 0x00, 0x00, 0x00, 0x40);
    ck_assert_int_eq(RUN(), EMU_EXIT_HLT);
    ck_assert_int_eq(tvm_halted_vector(&T), 14);
    ck_assert_uint_eq(T.c->cr2, 0x40000000);
    ck_assert_uint_eq(tvm_r64(&T, T.c->gpr[EMU_RSP]), 0); /* error code: not present, read, sup */
    ck_assert_uint_eq(tvm_r64(&T, T.c->gpr[EMU_RSP] + 8), TVM_CODE);
}
END_TEST

START_TEST(page_fault_write_protect)
{
    tvm_w64(&T, TVM_PT + 5 * 8, 0x5000 | 5); /* present, user, read-only */
    /* mov dword [0x5008], eax */
    CODE(0x89, 0x04, 0x25, 0x08, 0x50, 0x00, 0x00);
    ck_assert_int_eq(RUN(), EMU_EXIT_HLT);
    ck_assert_int_eq(tvm_halted_vector(&T), 14);
    ck_assert_uint_eq(T.c->cr2, 0x5008);
    ck_assert_uint_eq(tvm_r64(&T, T.c->gpr[EMU_RSP]), 3);
}
END_TEST

START_TEST(wp_clear_allows_supervisor_write)
{
    tvm_w64(&T, TVM_PT + 5 * 8, 0x5000 | 5);
    T.c->cr0 &= ~(1ull << 16);
    emu_state_changed(T.v);
    CODE(0xb8, 0x78, 0x56, 0x34, 0x12, 0x89, 0x04, 0x25, 0x08, 0x50, 0x00, 0x00, 0xf4);
    ck_assert_int_eq(RUN(), EMU_EXIT_HLT);
    ck_assert_int_eq(tvm_halted_vector(&T), -1);
    ck_assert_uint_eq(tvm_r64(&T, 0x5008) & 0xffffffff, 0x12345678);
}
END_TEST

START_TEST(accessed_dirty_bits)
{
    tvm_w64(&T, TVM_PT + 7 * 8, 0x7000 | 7);
    tvm_w64(&T, TVM_PT + 8 * 8, 0x8000 | 7);
    /* mov eax,[0x7000]; mov [0x8000],eax; hlt */
    CODE(0x8b, 0x04, 0x25, 0x00, 0x70, 0, 0, 0x89, 0x04, 0x25, 0x00, 0x80, 0, 0, 0xf4);
    ck_assert_int_eq(RUN(), EMU_EXIT_HLT);
    ck_assert_uint_eq(tvm_r64(&T, TVM_PT + 7 * 8) & 0x60, 0x20); /* A, not D */
    ck_assert_uint_eq(tvm_r64(&T, TVM_PT + 8 * 8) & 0x60, 0x60); /* A and D */
    ck_assert(tvm_r64(&T, TVM_PML4) & 0x20);
    ck_assert(tvm_r64(&T, TVM_PDPT) & 0x20);
}
END_TEST

START_TEST(nx_fetch_fault)
{
    tvm_w64(&T, TVM_PT + 0xa * 8, 0xa000 | 7 | (1ull << 63));
    T.ram[0xa000] = 0x90;
    /* jmp to 0xa000: mov eax,0xa000; jmp rax */
    CODE(0xb8, 0x00, 0xa0, 0, 0, 0xff, 0xe0);
    ck_assert_int_eq(RUN(), EMU_EXIT_HLT);
    ck_assert_int_eq(tvm_halted_vector(&T), 14);
    ck_assert_uint_eq(T.c->cr2, 0xa000);
    ck_assert_uint_eq(tvm_r64(&T, T.c->gpr[EMU_RSP]), 0x11); /* P | I/D */
}
END_TEST

START_TEST(user_access_supervisor_page)
{
    /* drop to CPL 3 with an IRETQ frame, then read a supervisor-only page */
    tvm_w64(&T, TVM_PT + 0xb * 8, 0xb000 | 3); /* present, writable, supervisor */
    static const uint8_t user[] = {0x8b, 0x04, 0x25, 0x00, 0xb0, 0, 0}; /* mov eax,[0xb000] */
    memcpy(T.ram + TVM_CODE + 0x800, user, sizeof user);
    /* push ss; push rsp; push rflags; push cs; push rip; iretq */
    CODE(0x6a, SEL_UDATA, 0x68, 0x00, 0xf0, 0x2f, 0x00, 0x9c, 0x6a, SEL_UCODE64, 0x68, 0x00, 0x08, 0x10, 0x00,
         0x48, 0xcf);
    ck_assert_int_eq(RUN(), EMU_EXIT_HLT);
    ck_assert_int_eq(tvm_halted_vector(&T), 14);
    ck_assert_uint_eq(T.c->cpl, 0);
    ck_assert_uint_eq(tvm_r64(&T, T.c->gpr[EMU_RSP]), 0x5); /* P | U */
    ck_assert_uint_eq(tvm_r64(&T, T.c->gpr[EMU_RSP] + 16), SEL_UCODE64);
    /* privilege change: stack from TSS.RSP0 */
    ck_assert_uint_eq(T.c->gpr[EMU_RSP], TVM_STACK - 48);
}
END_TEST

START_TEST(smep_smap)
{
    /* supervisor fetch from a user page with SMEP -> #PF(P|I) */
    T.c->cr4 |= 1u << 20;
    for (unsigned i = 0; i < 512; i++)
        tvm_w64(&T, TVM_PT + i * 8, ((uint64_t)i << 12) | 3);
    tvm_w64(&T, TVM_PD + 8, (1ull << 21) | 0x83);
    tvm_w64(&T, TVM_PT + 0x20 * 8, 0x20000 | 7); /* the only user page */
    T.ram[0x20000] = 0xf4;
    T.c->rip = 0x20000;
    emu_state_changed(T.v);
    ck_assert_int_eq(RUN(), EMU_EXIT_HLT);
    ck_assert_int_eq(tvm_halted_vector(&T), 14);
    ck_assert_uint_eq(tvm_r64(&T, T.c->gpr[EMU_RSP]), 0x11);
}
END_TEST

START_TEST(smap_data_access)
{
    T.c->cr4 |= 1u << 21;
    emu_state_changed(T.v);
    tvm_w64(&T, TVM_PD + 8, (1ull << 21) | 0x83); /* stack: supervisor */
    for (unsigned i = 0; i < 512; i++)
        tvm_w64(&T, TVM_PT + i * 8, ((uint64_t)i << 12) | (i == 0xc ? 7 : 3));
    /* mov eax,[0xc000] with AC=0 -> #PF(P); stac; mov eax,[0xc000] ok */
    static const uint8_t code[] = {0x8b, 0x04, 0x25, 0x00, 0xc0, 0, 0, 0xf4};
    memcpy(T.ram + 0x1000 * 0x20, code, sizeof code); /* supervisor code page */
    T.c->rip = 0x20000;
    ck_assert_int_eq(RUN(), EMU_EXIT_HLT);
    ck_assert_int_eq(tvm_halted_vector(&T), 14);
    ck_assert_uint_eq(tvm_r64(&T, T.c->gpr[EMU_RSP]), 0x1);
    /* again with EFLAGS.AC=1 */
    T.c->rip = 0x20000;
    T.c->halted = false;
    T.c->gpr[EMU_RSP] = TVM_STACK - 0x1000;
    emu_set_rflags(T.v, 2 | EMU_FL_AC);
    ck_assert_int_eq(RUN(), EMU_EXIT_HLT);
    ck_assert_int_eq(tvm_halted_vector(&T), -1);
    ck_assert_uint_eq(T.c->rip, 0x20008);
}
END_TEST

START_TEST(self_modifying_code)
{
    /* loop twice over "mov al, imm" patching its immediate in between */
    /* 0: mov al,1 (b0 01) ; 2: mov byte [rip-3], 2 (c6 05 f9 ff ff ff 02) -> patches offset 1
     * 9: inc ecx ; b: cmp ecx,2 ; e: jne 0 ; 10: hlt */
    CODE(0xb0, 0x01, 0xc6, 0x05, 0xf8, 0xff, 0xff, 0xff, 0x02, 0xff, 0xc1, 0x83, 0xf9, 0x02, 0x75, 0xf0,
         0xf4);
    ck_assert_int_eq(RUN(), EMU_EXIT_HLT);
    ck_assert_uint_eq(T.c->gpr[EMU_RCX], 2);
    ck_assert_uint_eq(T.c->gpr[EMU_RAX] & 0xff, 2); /* second pass ran the patched insn */
}
END_TEST

START_TEST(host_modified_code)
{
    CODE(0xb0, 0x01, 0xf4);
    ck_assert_int_eq(RUN(), EMU_EXIT_HLT);
    ck_assert_uint_eq(T.c->gpr[EMU_RAX] & 0xff, 1);
    T.ram[TVM_CODE + 1] = 0x55; /* the VMM rewrites guest code */
    T.c->rip = TVM_CODE;
    T.c->halted = false;
    ck_assert_int_eq(RUN(), EMU_EXIT_HLT);
    ck_assert_uint_eq(T.c->gpr[EMU_RAX] & 0xff, 0x55);
}
END_TEST

START_TEST(smc_next_insn_in_same_block)
{
    /* a store into the very next instruction of the running block, no jump between
     * (SDM vol.3 11.6: the store is seen by the following fetch):
     * 0: mov byte [rip+1], 2 (c6 05 01 00 00 00 02) patches the imm of
     * 7: mov al, 1 (b0 01) ; 9: hlt */
    CODE(0xc6, 0x05, 0x01, 0x00, 0x00, 0x00, 0x02, 0xb0, 0x01, 0xf4);
    ck_assert_int_eq(RUN(), EMU_EXIT_HLT);
    ck_assert_uint_eq(T.c->gpr[EMU_RAX] & 0xff, 2);
}
END_TEST

START_TEST(smc_other_page_then_call)
{
    /* code on another page runs once (its block is cached), a store patches it, and the
     * second call must run the new bytes:
     * 0: call 0x1000 ; 5: mov byte [rip+0xff5], 3 (-> 0x1001) ; 12: call 0x1000 ; 17: hlt
     * 0x1000: mov al, 1 ; ret */
    CODE(0xe8, 0xfb, 0x0f, 0x00, 0x00, 0xc6, 0x05, 0xf5, 0x0f, 0x00, 0x00, 0x03, 0xe8, 0xef, 0x0f,
         0x00, 0x00, 0xf4);
    T.ram[TVM_CODE + 0x1000] = 0xb0;
    T.ram[TVM_CODE + 0x1001] = 0x01;
    T.ram[TVM_CODE + 0x1002] = 0xc3;
    T.c->gpr[EMU_RAX] = 0;
    ck_assert_int_eq(RUN(), EMU_EXIT_HLT);
    ck_assert_uint_eq(T.c->gpr[EMU_RAX] & 0xff, 3);
    ck_assert_uint_eq(T.ram[TVM_CODE + 0x1001], 3);
}
END_TEST

START_TEST(smc_loop_patching_itself_many_times)
{
    /* the patched instruction runs 1000 times, patched to the loop count each time:
     * 0: mov dl, 0 (b2 00) ; 2: movzx eax, dl (0f b6 c2) ; 5: add ebx, eax (01 c3)
     * 7: inc ecx (ff c1) ; 9: mov [rip-10], cl (88 0d f2 ff ff ff) -> offset 1
     * f: cmp ecx, 1000 (81 f9 e8 03 00 00) ; 15: jne 0 (75 e9) ; 17: hlt */
    CODE(0xb2, 0x00, 0x0f, 0xb6, 0xc2, 0x01, 0xc3, 0xff, 0xc1, 0x88, 0x0d, 0xf2, 0xff, 0xff, 0xff,
         0x81, 0xf9, 0xe8, 0x03, 0x00, 0x00, 0x75, 0xe9, 0xf4);
    T.c->gpr[EMU_RBX] = 0;
    T.c->gpr[EMU_RCX] = 0;
    ck_assert_int_eq(RUN(), EMU_EXIT_HLT);
    /* pass k (0-based) adds the low byte of k: sum over k < 1000 of (k & 0xff) */
    uint64_t want = 0;
    for (unsigned k = 0; k < 1000; k++)
        want += k & 0xff;
    ck_assert_uint_eq(T.c->gpr[EMU_RBX], want);
}
END_TEST

START_TEST(mmio_read_and_write)
{
    /* mov eax,[0x2000000] (no slot); mov [0x2000010],ebx; hlt */
    T.c->gpr[EMU_RBX] = 0xcafef00d;
    CODE(0x8b, 0x04, 0x25, 0x00, 0x00, 0x00, 0x02, 0x89, 0x1c, 0x25, 0x10, 0x00, 0x00, 0x02, 0xf4);
    ck_assert_int_eq(RUN(), EMU_EXIT_MMIO);
    ck_assert(!X.mmio.is_write);
    ck_assert_uint_eq(X.mmio.gpa, 0x2000000);
    ck_assert_uint_eq(X.mmio.len, 4);
    ck_assert_uint_eq(T.c->rip, TVM_CODE);
    uint8_t d[4] = {1, 2, 3, 4};
    emu_complete_mmio(T.v, d);
    ck_assert_int_eq(RUN(), EMU_EXIT_MMIO);
    ck_assert_uint_eq(T.c->gpr[EMU_RAX], 0x04030201);
    ck_assert(X.mmio.is_write);
    ck_assert_uint_eq(X.mmio.gpa, 0x2000010);
    ck_assert_uint_eq(X.mmio.len, 4);
    ck_assert_uint_eq(X.mmio.data[0], 0x0d);
    ck_assert_uint_eq(X.mmio.data[3], 0xca);
    ck_assert_uint_eq(T.c->rip, TVM_CODE + 14);
    ck_assert_int_eq(RUN(), EMU_EXIT_HLT);
}
END_TEST

/* REP STOS / REP MOVS touching MMIO: one MMIO exit per element, RIP stays on the
 * instruction until the last one (SeaVGABIOS clears b800:0 with `rep stosw`) */
START_TEST(rep_string_mmio_per_element)
{
    /* mov edi,0x2000000; mov eax,0x11223344; mov ecx,3; rep stosd;
     * mov esi,0x2000100; mov edi,DATA; mov ecx,2; rep movsb; hlt */
    CODE(0xbf, 0x00, 0x00, 0x00, 0x02, 0xb8, 0x44, 0x33, 0x22, 0x11, 0xb9, 3, 0, 0, 0, 0xf3, 0xab,
         0xbe, 0x00, 0x01, 0x00, 0x02, 0xbf, 0x00, 0x00, 0x20, 0x00, 0xb9, 2, 0, 0, 0, 0xf3, 0xa4,
         0xf4);
    for (unsigned i = 0; i < 3; i++) {
        ck_assert_int_eq(RUN(), EMU_EXIT_MMIO);
        ck_assert(X.mmio.is_write);
        ck_assert_uint_eq(X.mmio.gpa, 0x2000000 + 4 * i);
        ck_assert_uint_eq(X.mmio.len, 4);
        ck_assert_uint_eq(X.mmio.data[0], 0x44);
        ck_assert_uint_eq(T.c->gpr[EMU_RCX], 2 - i);
        ck_assert_uint_eq(T.c->rip, i < 2 ? TVM_CODE + 15 : TVM_CODE + 17);
    }
    for (unsigned i = 0; i < 2; i++) {
        ck_assert_int_eq(RUN(), EMU_EXIT_MMIO);
        ck_assert(!X.mmio.is_write);
        ck_assert_uint_eq(X.mmio.gpa, 0x2000100 + i);
        ck_assert_uint_eq(X.mmio.len, 1);
        uint8_t b = (uint8_t)(0xa0 + i);
        emu_complete_mmio(T.v, &b);
    }
    ck_assert_int_eq(RUN(), EMU_EXIT_HLT);
    ck_assert_uint_eq(T.ram[TVM_DATA], 0xa0);
    ck_assert_uint_eq(T.ram[TVM_DATA + 1], 0xa1);
    ck_assert_uint_eq(T.c->gpr[EMU_RCX], 0);
    ck_assert_uint_eq(T.c->gpr[EMU_RSI], 0x2000102);
}
END_TEST

START_TEST(readonly_slot_write_is_mmio)
{
    T.pm.slots[1].gpa = 0x1000000;
    T.pm.slots[1].size = 0x1000;
    T.pm.slots[1].host = T.ram + 0xf00000;
    T.pm.slots[1].readonly = true;
    T.pm.nslots = 2;
    T.pm.generation++;
    T.ram[0xf00000] = 0x77;
    /* mov al,[0x1000000]; mov [0x1000000],bl; hlt */
    T.c->gpr[EMU_RBX] = 0x99;
    CODE(0x8a, 0x04, 0x25, 0, 0, 0, 1, 0x88, 0x1c, 0x25, 0, 0, 0, 1, 0xf4);
    ck_assert_int_eq(RUN(), EMU_EXIT_MMIO);
    ck_assert_uint_eq(T.c->gpr[EMU_RAX] & 0xff, 0x77);
    ck_assert(X.mmio.is_write);
    ck_assert_uint_eq(X.mmio.data[0], 0x99);
    ck_assert_uint_eq(T.ram[0xf00000], 0x77);
}
END_TEST

START_TEST(unimplemented_is_internal_error)
{
    /* clzero: decodes, no semantics (emu/insn_missing.c); with CPUID.80000008:EBX.CLZERO
     * set the emulator cannot run it, which KVM reports as an emulation failure */
    struct emu_cpuid_entry e[] = {
        {0x80000000u, 0, 0, 0x80000008u, 0, 0, 0},
        {0x80000008u, 0, 0, 0, 1, 0, 0},
    };
    emu_set_cpuid(T.v, e, 2);
    CODE(0x0f, 0x01, 0xfc);
    ck_assert_int_eq(RUN(), EMU_EXIT_INTERNAL);
    ck_assert_uint_eq(X.internal.suberror, 1);
    ck_assert_uint_eq(X.internal.insn_len, 3);
    ck_assert_uint_eq(X.internal.insn_bytes[0], 0x0f);
    ck_assert_uint_eq(X.internal.insn_bytes[2], 0xfc);
    ck_assert_uint_eq(T.c->rip, TVM_CODE);
}
END_TEST

START_TEST(undefined_opcode_ud)
{
    CODE(0x0f, 0x0b); /* ud2 */
    ck_assert_int_eq(RUN(), EMU_EXIT_HLT);
    ck_assert_int_eq(tvm_halted_vector(&T), 6);
    ck_assert_uint_eq(tvm_r64(&T, T.c->gpr[EMU_RSP]), TVM_CODE);
}
END_TEST

START_TEST(gp_error_code_and_df_and_triple_fault)
{
    /* mov rax, noncanonical; mov [rax], eax -> #GP(0) */
    CODE(0x48, 0xb8, 0, 0, 0, 0, 0, 0, 0x00, 0x80, 0x89, 0x00);
    ck_assert_int_eq(RUN(), EMU_EXIT_HLT);
    ck_assert_int_eq(tvm_halted_vector(&T), 13);
    ck_assert_uint_eq(tvm_r64(&T, T.c->gpr[EMU_RSP]), 0);

    /* #GP whose gate is not present -> #NP during delivery -> #DF */
    tvm_w64(&T, TVM_IDT + 13 * 16, tvm_r64(&T, TVM_IDT + 13 * 16) & ~(1ull << 47));
    T.c->rip = TVM_CODE;
    T.c->halted = false;
    T.c->gpr[EMU_RSP] = TVM_STACK - 0x1000;
    ck_assert_int_eq(RUN(), EMU_EXIT_HLT);
    ck_assert_int_eq(tvm_halted_vector(&T), 8);
    ck_assert_uint_eq(tvm_r64(&T, T.c->gpr[EMU_RSP]), 0);

    /* and with #DF's gate gone too: shutdown */
    tvm_w64(&T, TVM_IDT + 8 * 16, tvm_r64(&T, TVM_IDT + 8 * 16) & ~(1ull << 47));
    T.c->rip = TVM_CODE;
    T.c->halted = false;
    T.c->gpr[EMU_RSP] = TVM_STACK - 0x1000;
    ck_assert_int_eq(RUN(), EMU_EXIT_SHUTDOWN);
}
END_TEST

START_TEST(ist_stack_and_error_code_push)
{
    /* vector 14 uses IST1 */
    tvm_w64(&T, TVM_IDT + 14 * 16, tvm_r64(&T, TVM_IDT + 14 * 16) | (1ull << 32));
    tvm_w64(&T, TVM_PT + 5 * 8, 0x5000 | 5);
    CODE(0x89, 0x04, 0x25, 0x08, 0x50, 0x00, 0x00); /* write to read-only page */
    ck_assert_int_eq(RUN(), EMU_EXIT_HLT);
    ck_assert_int_eq(tvm_halted_vector(&T), 14);
    ck_assert_uint_eq(T.c->gpr[EMU_RSP], TVM_IST_STACK - 48);
    ck_assert_uint_eq(tvm_r64(&T, T.c->gpr[EMU_RSP]), 3);
}
END_TEST

static enum emu_msr_result test_rdmsr(void *ctx, struct cpu *cpu, uint32_t index, uint64_t *value,
                                      uint32_t *reason)
{
    (void)ctx;
    (void)cpu;
    if (index == 0x10)
        return *value = 0x1122334455667788ull, EMU_MSR_OK;
    if (index == 0x4b564d00)
        return *reason = 2, EMU_MSR_EXIT;
    return EMU_MSR_GP;
}
static enum emu_msr_result test_wrmsr(void *ctx, struct cpu *cpu, uint32_t index, uint64_t value,
                                      uint32_t *reason)
{
    (void)ctx;
    (void)cpu;
    (void)value;
    (void)index;
    *reason = 1;
    return EMU_MSR_EXIT;
}

START_TEST(msr_ok_gp_and_exit)
{
    struct emu_msr_ops ops = {.rdmsr = test_rdmsr, .wrmsr = test_wrmsr, .ctx = NULL};
    emu_set_msr_ops(T.v, &ops);
    /* mov ecx,0x10; rdmsr; mov ecx,0x4b564d00; rdmsr; wrmsr; mov ecx,1; rdmsr */
    CODE(0xb9, 0x10, 0, 0, 0, 0x0f, 0x32, 0xb9, 0x00, 0x4d, 0x56, 0x4b, 0x0f, 0x32, 0x0f, 0x30,
         0xb9, 1, 0, 0, 0, 0x0f, 0x32);
    ck_assert_int_eq(RUN(), EMU_EXIT_MSR);
    ck_assert_uint_eq(T.c->gpr[EMU_RAX], 0x55667788);
    ck_assert_uint_eq(T.c->gpr[EMU_RDX], 0x11223344);
    ck_assert(!X.msr.is_write);
    ck_assert_uint_eq(X.msr.index, 0x4b564d00);
    ck_assert_uint_eq(X.msr.reason, 2);
    ck_assert_uint_eq(T.c->rip, TVM_CODE + 12);
    emu_complete_msr(T.v, false, 0xabcdef0123ull);
    ck_assert_uint_eq(T.c->rip, TVM_CODE + 14);
    ck_assert_int_eq(RUN(), EMU_EXIT_MSR);
    ck_assert(X.msr.is_write);
    ck_assert_uint_eq(X.msr.data, (T.c->gpr[EMU_RDX] << 32) | (uint32_t)T.c->gpr[EMU_RAX]);
    emu_complete_msr(T.v, true, 0);
    ck_assert_int_eq(RUN(), EMU_EXIT_HLT);
    ck_assert_int_eq(tvm_halted_vector(&T), 13); /* error from user space -> #GP */
    ck_assert_uint_eq(tvm_r64(&T, T.c->gpr[EMU_RSP] + 8), TVM_CODE + 14);
}
END_TEST

START_TEST(cpuid_from_table)
{
    struct emu_cpuid_entry e[] = {
        {0, 0, 0, 0xd, 0x756e6547, 0x6c65746e, 0x49656e69},
        {7, 0, 1, 2, 3, 4, 5},
        {7, 1, 1, 6, 7, 8, 9},
    };
    emu_set_cpuid(T.v, e, 3);
    /* mov eax,7; mov ecx,1; cpuid; hlt */
    CODE(0xb8, 7, 0, 0, 0, 0xb9, 1, 0, 0, 0, 0x0f, 0xa2, 0xf4);
    ck_assert_int_eq(RUN(), EMU_EXIT_HLT);
    ck_assert_uint_eq(T.c->gpr[EMU_RAX], 6);
    ck_assert_uint_eq(T.c->gpr[EMU_RDX], 9);
}
END_TEST

START_TEST(rep_movs_stos)
{
    for (int i = 0; i < 10000; i++)
        T.ram[TVM_DATA + i] = (uint8_t)(i * 7);
    /* mov rsi,DATA; mov rdi,DATA+0x10000; mov ecx,10000; rep movsb;
     * mov rdi,DATA+0x20000; mov eax,0x41; mov ecx,5000; rep stosw; hlt */
    CODE(0x48, 0xc7, 0xc6, 0x00, 0x00, 0x20, 0x00, 0x48, 0xc7, 0xc7, 0x00, 0x00, 0x21, 0x00, 0xb9,
         0x10, 0x27, 0, 0, 0xf3, 0xa4, 0x48, 0xc7, 0xc7, 0x00, 0x00, 0x22, 0x00, 0xb8, 0x41, 0, 0, 0,
         0xb9, 0x88, 0x13, 0, 0, 0x66, 0xf3, 0xab, 0xf4);
    ck_assert_int_eq(RUN(), EMU_EXIT_HLT);
    ck_assert_int_eq(memcmp(T.ram + TVM_DATA, T.ram + TVM_DATA + 0x10000, 10000), 0);
    ck_assert_uint_eq(T.c->gpr[EMU_RSI], TVM_DATA + 10000);
    ck_assert_uint_eq(T.c->gpr[EMU_RCX], 0);
    ck_assert_uint_eq(T.ram[TVM_DATA + 0x20000 + 9998], 0x41);
    ck_assert_uint_eq(T.ram[TVM_DATA + 0x20000 + 10000], 0);
    ck_assert_uint_eq(T.c->gpr[EMU_RDI], TVM_DATA + 0x20000 + 10000);
}
END_TEST

START_TEST(syscall_sysret_roundtrip)
{
    T.c->star = ((uint64_t)0x20 << 48) | ((uint64_t)SEL_CODE64 << 32); /* sysret base 0x20 -> CS 0x33? */
    T.c->lstar = TVM_CODE + 0x100;
    T.c->sfmask = EMU_FL_IF;
    static const uint8_t kern[] = {0x48, 0x0f, 0x07}; /* sysretq */
    memcpy(T.ram + TVM_CODE + 0x100, kern, sizeof kern);
    emu_set_rflags(T.v, 2 | EMU_FL_IF);
    /* syscall; hlt  (hlt at CPL3 -> #GP) */
    CODE(0x0f, 0x05, 0xf4);
    ck_assert_int_eq(RUN(), EMU_EXIT_HLT);
    ck_assert_int_eq(tvm_halted_vector(&T), 13);
    ck_assert_uint_eq(tvm_r64(&T, T.c->gpr[EMU_RSP] + 8), TVM_CODE + 2);
    ck_assert_uint_eq(tvm_r64(&T, T.c->gpr[EMU_RSP] + 16), (0x20 + 16) | 3);
}
END_TEST

START_TEST(locked_ops)
{
    tvm_w64(&T, TVM_DATA, 10);
    /* mov rbx,DATA; mov eax,5; lock xadd [rbx],eax; mov eax,15; mov ecx,99; lock cmpxchg [rbx],ecx; hlt */
    CODE(0x48, 0xc7, 0xc3, 0x00, 0x00, 0x20, 0x00, 0xb8, 5, 0, 0, 0, 0xf0, 0x0f, 0xc1, 0x03, 0xb8, 15,
         0, 0, 0, 0xb9, 99, 0, 0, 0, 0xf0, 0x0f, 0xb1, 0x0b, 0xf4);
    ck_assert_int_eq(RUN(), EMU_EXIT_HLT);
    ck_assert_uint_eq(tvm_r64(&T, TVM_DATA), 99);
    ck_assert(emu_get_rflags(T.v) & EMU_FL_ZF);
}
END_TEST

START_TEST(real_mode_reset_vector)
{
    /* power-on state: CS.base 0xffff0000, IP 0xfff0 */
    emu_reset(T.v);
    T.pm.slots[1].gpa = 0xffff0000;
    T.pm.slots[1].size = 0x10000;
    T.pm.slots[1].host = T.ram + 0x800000;
    T.pm.nslots = 2;
    T.pm.generation++;
    /* mov ax,0x1234; out 0x80,ax; hlt  at 0xfffffff0 */
    static const uint8_t code[] = {0xb8, 0x34, 0x12, 0xe7, 0x80, 0xf4};
    memcpy(T.ram + 0x800000 + 0xfff0, code, sizeof code);
    ck_assert_uint_eq(T.c->seg[EMU_CS].selector, 0xf000);
    ck_assert_int_eq(RUN(), EMU_EXIT_IO);
    ck_assert_uint_eq(X.io.size, 2);
    ck_assert_uint_eq(X.io.data[0] | (X.io.data[1] << 8), 0x1234);
    ck_assert_int_eq(RUN(), EMU_EXIT_HLT);
    ck_assert_uint_eq(T.c->rip, 0xfff6);
}
END_TEST

START_TEST(real_mode_int_ivt)
{
    emu_reset(T.v);
    /* IVT entry 0x21 -> 0000:0x0500 ; code at 0x7c00 with CS=0 */
    uint32_t ent = 0x0500;
    memcpy(T.ram + 0x21 * 4, &ent, 4);
    T.ram[0x500] = 0xf4; /* hlt */
    static const uint8_t code[] = {0xcd, 0x21};
    memcpy(T.ram + 0x7c00, code, 2);
    T.c->seg[EMU_CS].selector = 0;
    T.c->seg[EMU_CS].base = 0;
    T.c->rip = 0x7c00;
    T.c->gpr[EMU_RSP] = 0x7000;
    emu_set_rflags(T.v, 2 | EMU_FL_IF);
    emu_state_changed(T.v);
    ck_assert_int_eq(RUN(), EMU_EXIT_HLT);
    ck_assert_uint_eq(T.c->rip, 0x501);
    ck_assert_uint_eq(T.c->gpr[EMU_RSP], 0x7000 - 6);
    ck_assert_uint_eq(T.ram[0x7000 - 6] | (T.ram[0x7000 - 5] << 8), 0x7c02); /* return IP */
    ck_assert(!(emu_get_rflags(T.v) & EMU_FL_IF));
}
END_TEST

START_TEST(guest_tf_single_step_db)
{
    emu_set_rflags(T.v, 2 | EMU_FL_TF);
    CODE(0x90, 0x90);
    ck_assert_int_eq(RUN(), EMU_EXIT_HLT);
    ck_assert_int_eq(tvm_halted_vector(&T), 1);
    ck_assert_uint_eq(tvm_r64(&T, T.c->gpr[EMU_RSP]), TVM_CODE + 1); /* trap: after the nop */
    ck_assert(T.c->dr[6] & 0x4000);                                  /* DR6.BS */
    ck_assert(!(emu_get_rflags(T.v) & EMU_FL_TF));                   /* delivery clears TF */
}
END_TEST

START_TEST(guest_debug_singlestep_sw_and_hw_bp)
{
    uint64_t dbg[8] = {0};
    /* nop; int3; nop; nop; hlt */
    CODE(0x90, 0xcc, 0x90, 0x90, 0xf4);
    emu_set_guest_debug(T.v, 0x1 | 0x2, dbg); /* ENABLE | SINGLESTEP */
    ck_assert_int_eq(RUN(), EMU_EXIT_DEBUG);
    ck_assert_uint_eq(X.debug.exception, 1);
    ck_assert_uint_eq(X.debug.pc, TVM_CODE + 1);
    ck_assert_uint_eq(X.debug.dr6, 0xffff4ff0);
    emu_set_guest_debug(T.v, 0x1 | 0x10000, dbg); /* USE_SW_BP */
    ck_assert_int_eq(RUN(), EMU_EXIT_DEBUG);
    ck_assert_uint_eq(X.debug.exception, 3);
    ck_assert_uint_eq(X.debug.pc, TVM_CODE + 1);
    ck_assert_uint_eq(T.c->rip, TVM_CODE + 1);
    T.c->rip += 1; /* the VMM skips the int3 */
    dbg[2] = TVM_CODE + 3;
    dbg[7] = 0x400 | (1u << 5); /* G2, execute */
    emu_set_guest_debug(T.v, 0x1 | 0x20000, dbg);
    ck_assert_int_eq(RUN(), EMU_EXIT_DEBUG);
    ck_assert_uint_eq(X.debug.pc, TVM_CODE + 3);
    ck_assert_uint_eq(X.debug.dr6, 0xffff0ff0 | 4);
    ck_assert_int_eq(RUN(), EMU_EXIT_HLT); /* resumes past the breakpoint */
}
END_TEST

START_TEST(dirty_log_and_generation_flush)
{
    /* slot 1: 64 KiB at 16 MiB with a dirty bitmap; identity-mapped by the 2M pages */
    static uint64_t bitmap[1];
    static uint8_t a[0x10000], b[0x10000];
    memset(a, 0x11, sizeof a);
    memset(b, 0x22, sizeof b);
    bitmap[0] = 0;
    T.pm.slots[1] = (struct emu_slot){.gpa = 0x1000000, .size = 0x10000, .host = a, .dirty_bitmap = bitmap};
    T.pm.nslots = 2;
    T.pm.generation++;
    /* mov al,[0x1003000]; mov [0x1005008],al; hlt */
    CODE(0x8a, 0x04, 0x25, 0x00, 0x30, 0x00, 0x01, 0x88, 0x04, 0x25, 0x08, 0x50, 0x00, 0x01, 0xf4);
    ck_assert_int_eq(RUN(), EMU_EXIT_HLT);
    ck_assert_uint_eq(bitmap[0], 1u << 5); /* only the written page */
    ck_assert_uint_eq(a[0x5008], 0x11);
    /* the VMM remaps the slot to other memory: after the generation bump the cached
     * translations must not be used any more */
    T.pm.slots[1].host = b;
    T.pm.generation++;
    T.c->rip = TVM_CODE;
    T.c->halted = false;
    ck_assert_int_eq(RUN(), EMU_EXIT_HLT);
    ck_assert_uint_eq(T.c->gpr[EMU_RAX] & 0xff, 0x22);
    ck_assert_uint_eq(b[0x5008], 0x22);
    ck_assert_uint_eq(a[0x5008], 0x11);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("emu_core");
    TCase *t = tcase_create("core");
    tcase_add_checked_fixture(t, setup, teardown);
    tcase_add_test(t, out_exit_rip_advanced);
    tcase_add_test(t, in_completes_on_next_run);
    tcase_add_test(t, divide_error_through_idt);
    tcase_add_test(t, page_fault_not_present_cr2);
    tcase_add_test(t, page_fault_write_protect);
    tcase_add_test(t, wp_clear_allows_supervisor_write);
    tcase_add_test(t, accessed_dirty_bits);
    tcase_add_test(t, nx_fetch_fault);
    tcase_add_test(t, user_access_supervisor_page);
    tcase_add_test(t, smep_smap);
    tcase_add_test(t, smap_data_access);
    tcase_add_test(t, self_modifying_code);
    tcase_add_test(t, host_modified_code);
    tcase_add_test(t, smc_next_insn_in_same_block);
    tcase_add_test(t, smc_other_page_then_call);
    tcase_add_test(t, smc_loop_patching_itself_many_times);
    tcase_add_test(t, mmio_read_and_write);
    tcase_add_test(t, readonly_slot_write_is_mmio);
    tcase_add_test(t, rep_string_mmio_per_element);
    tcase_add_test(t, unimplemented_is_internal_error);
    tcase_add_test(t, undefined_opcode_ud);
    tcase_add_test(t, gp_error_code_and_df_and_triple_fault);
    tcase_add_test(t, ist_stack_and_error_code_push);
    tcase_add_test(t, msr_ok_gp_and_exit);
    tcase_add_test(t, cpuid_from_table);
    tcase_add_test(t, rep_movs_stos);
    tcase_add_test(t, syscall_sysret_roundtrip);
    tcase_add_test(t, locked_ops);
    tcase_add_test(t, real_mode_reset_vector);
    tcase_add_test(t, real_mode_int_ivt);
    tcase_add_test(t, guest_tf_single_step_db);
    tcase_add_test(t, dirty_log_and_generation_flush);
    tcase_add_test(t, guest_debug_singlestep_sw_and_hw_bp);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return softkvm_check_run(suite());
}
