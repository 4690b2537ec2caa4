/* decoder: hand-checked encodings (bytes -> status, length, Intel text).
 * Expected texts were written from the SDM opcode pages, not from decoder output. */
#include <check.h>
#include "tests/check_main.h"
#include <stdlib.h>
#include <string.h>

#include "decoder/decoder.h"

struct tcase {
    enum decoder_mode mode;
    const char *hex;
    int status;
    int length;
    const char *text; /* NULL: not checked */
};

static const struct tcase cases[] = {
    {DECODER_MODE_64, "4801d8", DECODER_OK, 3, "add rax, rbx"},
    {DECODER_MODE_64, "48034c9810", DECODER_OK, 5, "add rcx, qword ptr [rax + rbx*4 + 0x10]"},
    {DECODER_MODE_64, "8b0501000000", DECODER_OK, 6, "mov eax, dword ptr [rip + 1]"},
    {DECODER_MODE_64, "48b88877665544332211", DECODER_OK, 10, "mov rax, 0x1122334455667788"},
    {DECODER_MODE_64, "4883c0ff", DECODER_OK, 4, "add rax, -1"},
    {DECODER_MODE_64, "f0480fb10a", DECODER_OK, 5, "lock cmpxchg qword ptr [rdx], rcx"},
    {DECODER_MODE_64, "f04801d8", DECODER_UD, 4, NULL}, /* LOCK on register destination */
    {DECODER_MODE_64, "f090", DECODER_UD, 2, NULL},
    {DECODER_MODE_64, "0f01c1", DECODER_OK, 3, "vmcall"},
    {DECODER_MODE_64, "0f01d8", DECODER_OK, 3, "vmrun"},
    {DECODER_MODE_64, "0f32", DECODER_OK, 2, "rdmsr"},
    {DECODER_MODE_64, "0f30", DECODER_OK, 2, "wrmsr"},
    {DECODER_MODE_64, "0fa2", DECODER_OK, 2, "cpuid"},
    {DECODER_MODE_64, "0f22d8", DECODER_OK, 3, "mov cr3, rax"},
    {DECODER_MODE_64, "0f20c8", DECODER_UD, 3, NULL}, /* CR1 does not exist */
    {DECODER_MODE_64, "440f20c0", DECODER_OK, 4, "mov rax, cr8"},
    {DECODER_MODE_64, "0f0110", DECODER_OK, 3, "lgdt xword ptr [rax]"},
    {DECODER_MODE_64, "0f0138", DECODER_OK, 3, "invlpg byte ptr [rax]"},
    {DECODER_MODE_64, "eb fe", DECODER_OK, 2, "jmp 0x1000"},
    {DECODER_MODE_64, "0f84 00000000", DECODER_OK, 6, "je 0x1006"},
    {DECODER_MODE_64, "e8 00000000", DECODER_OK, 5, "call 0x1005"},
    {DECODER_MODE_64, "0f4fc1", DECODER_OK, 3, "cmovg eax, ecx"},
    {DECODER_MODE_64, "0f92c0", DECODER_OK, 3, "setb al"},
    {DECODER_MODE_64, "400f92c4", DECODER_OK, 4, "setb spl"},
    {DECODER_MODE_64, "0f92c4", DECODER_OK, 3, "setb ah"},
    {DECODER_MODE_64, "f348a5", DECODER_OK, 3, "rep movsq qword ptr [rdi], qword ptr [rsi]"},
    {DECODER_MODE_64, "6a ff", DECODER_OK, 2, "push -1"},
    {DECODER_MODE_64, "50", DECODER_OK, 1, "push rax"},
    {DECODER_MODE_64, "4150", DECODER_OK, 2, "push r8"},
    {DECODER_MODE_64, "06", DECODER_UD, 1, NULL}, /* push es invalid in 64-bit */
    {DECODER_MODE_64, "64488b0425 28000000", DECODER_OK, 9, "mov rax, qword ptr fs:[0x28]"},
    {DECODER_MODE_64, "0f05", DECODER_OK, 2, "syscall"},
    {DECODER_MODE_64, "48cf", DECODER_OK, 2, "iretq"},
    {DECODER_MODE_64, "f390", DECODER_OK, 2, "pause"},
    {DECODER_MODE_64, "4190", DECODER_OK, 2, "xchg eax, r8d"},
    {DECODER_MODE_64, "90", DECODER_OK, 1, "nop"},
    {DECODER_MODE_64, "0f", DECODER_TRUNCATED, 1, NULL},
    {DECODER_MODE_64, "666666666666666666666666666666 90", DECODER_TOO_LONG, 15, NULL},
    {DECODER_MODE_64, "66666666666666666666666666 90", DECODER_OK, 14, "nop"},
    {DECODER_MODE_32, "40", DECODER_OK, 1, "inc eax"},
    {DECODER_MODE_32, "8b4508", DECODER_OK, 3, "mov eax, dword ptr [ebp + 8]"},
    {DECODER_MODE_16, "8b4608", DECODER_OK, 3, "mov ax, word ptr [bp + 8]"},
    {DECODER_MODE_16, "8b00", DECODER_OK, 2, "mov ax, word ptr [bx + si]"},
    {DECODER_MODE_16, "66b878563412", DECODER_OK, 6, "mov eax, 0x12345678"},
    {DECODER_MODE_16, "ea00100000", DECODER_OK, 5, "ljmp 0x0:0x1000"},
    {DECODER_MODE_32, "c5f9", DECODER_TRUNCATED, 2, NULL},
};

static size_t unhex(const char *h, uint8_t *out)
{
    size_t n = 0;
    while (*h) {
        if (*h == ' ') {
            h++;
            continue;
        }
        char b[3] = {h[0], h[1], 0};
        out[n++] = (uint8_t)strtoul(b, NULL, 16);
        h += 2;
    }
    return n;
}

START_TEST(test_cases)
{
    const struct tcase *t = &cases[_i];
    uint8_t bytes[32];
    size_t n = unhex(t->hex, bytes);
    struct decoded_insn d;
    int st = decoder_decode(bytes, n, t->mode, &d);
    char text[128];
    decoder_format(&d, 0x1000, text, sizeof text);
    ck_assert_msg(st == t->status, "%s: status %d want %d (%s)", t->hex, st, t->status, text);
    ck_assert_msg(d.length == t->length, "%s: length %d want %d", t->hex, d.length, t->length);
    if (t->text)
        ck_assert_msg(!strcmp(text, t->text), "%s: '%s' want '%s'", t->hex, text, t->text);
}
END_TEST

START_TEST(test_op_names)
{
    ck_assert_str_eq(decoder_op_name(DOP_ADD), "add");
    ck_assert_str_eq(decoder_op_name(DOP_JNE), "jne");
    ck_assert_str_eq(decoder_op_name(DOP_CMOVG), "cmovg");
    ck_assert_str_eq(decoder_op_name(DOP_SETB), "setb");
    ck_assert_str_eq(decoder_op_name(DOP_INVALID), "(bad)");
    ck_assert(decoder_op_info[DOP_JMP].flags & DFLAG_BRANCH);
    ck_assert(decoder_op_info[DOP_WRMSR].flags & DFLAG_PRIVILEGED);
    ck_assert_int_eq(decoder_op_info[DOP_VMLAUNCH].ext, DEXT_VMX);
}
END_TEST

/* Fields emu/ relies on, beyond the text: sizes, segments, registers, flags. */
START_TEST(test_fields)
{
    struct decoded_insn d;
    const uint8_t load[] = {0x48, 0x8b, 0x44, 0x24, 0x08}; /* mov rax, [rsp+8] */
    ck_assert_int_eq(decoder_decode(load, sizeof load, DECODER_MODE_64, &d), DECODER_OK);
    ck_assert_int_eq(d.op, DOP_MOV);
    ck_assert_int_eq(d.opsize, 8);
    ck_assert_int_eq(d.addrsize, 8);
    ck_assert_int_eq(d.nops, 2);
    ck_assert_int_eq(d.ops[0].kind, DOPND_REG);
    ck_assert_int_eq(d.ops[0].reg, 0);
    ck_assert_int_eq(d.ops[1].kind, DOPND_MEM);
    ck_assert_int_eq(d.ops[1].base, 4);
    ck_assert_int_eq(d.ops[1].index, DECODER_NO_REG);
    ck_assert_int_eq(d.ops[1].disp, 8);
    ck_assert_int_eq(d.ops[1].seg, 2); /* rSP base: SS */
    ck_assert_int_eq(d.ops[1].size, 8);
    ck_assert(d.flags & DFLAG_MODRM);

    const uint8_t lockadd[] = {0xf0, 0x83, 0x00, 0x01}; /* lock add dword [rax], 1 */
    ck_assert_int_eq(decoder_decode(lockadd, sizeof lockadd, DECODER_MODE_64, &d), DECODER_OK);
    ck_assert(d.flags & DFLAG_LOCK_OK);
    ck_assert(d.prefixes & DPFX_LOCK);
    ck_assert_int_eq(d.ops[1].kind, DOPND_IMM);
    ck_assert_int_eq(d.ops[1].disp, 1);

    const uint8_t pmov[] = {0xc4, 0xe2, 0x7d, 0x21, 0x00}; /* vpmovsxbd ymm0, qword [rax] */
    ck_assert_int_eq(decoder_decode(pmov, sizeof pmov, DECODER_MODE_64, &d), DECODER_OK);
    ck_assert_int_eq(d.op, DOP_VPMOVSXBD);
    ck_assert_int_eq(d.ops[0].size, 32);
    ck_assert_int_eq(d.ops[1].size, 8);
    ck_assert(d.prefixes & DPFX_VEX);

    const uint8_t gather[] = {0xc4, 0xe2, 0x7d, 0x90, 0x04, 0x88, 0x00}; /* vpgatherdd ymm0, [rax+ymm1*4], ymm0 */
    ck_assert_int_eq(decoder_decode(gather, 6, DECODER_MODE_64, &d), DECODER_OK);
    ck_assert(d.flags & DFLAG_VSIB);
    ck_assert_int_eq(d.ops[1].index, 1);
    ck_assert_int_eq(d.ops[1].scale, 4);
    ck_assert_uint_eq(decoder_vsib_index_size(&d), 32);

    const uint8_t jne[] = {0x75, 0xfe};
    ck_assert_int_eq(decoder_decode(jne, sizeof jne, DECODER_MODE_64, &d), DECODER_OK);
    ck_assert_int_eq(d.cond, 5);
    ck_assert_int_eq(d.ops[0].kind, DOPND_REL);
    ck_assert_int_eq(d.ops[0].disp, -2);
    ck_assert(d.flags & DFLAG_BRANCH);
    ck_assert(d.flags & DFLAG_ENDS_BLOCK);

    const uint8_t evex[] = {0x62, 0xf1, 0x7c, 0x48, 0x58, 0xc1}; /* vaddps zmm0, zmm0, zmm1 */
    ck_assert_int_eq(decoder_decode(evex, sizeof evex, DECODER_MODE_64, &d), DECODER_UD); /* no AVX-512 */
    ck_assert_int_eq(d.length, 6);
    ck_assert_int_eq(d.op, DOP_VADDPS);

    const uint8_t fs16[] = {0x26, 0x8b, 0x46, 0x02}; /* mov ax, es:[bp+2] (16-bit) */
    ck_assert_int_eq(decoder_decode(fs16, sizeof fs16, DECODER_MODE_16, &d), DECODER_OK);
    ck_assert_int_eq(d.opsize, 2);
    ck_assert_int_eq(d.addrsize, 2);
    ck_assert_int_eq(d.ops[1].base, 5);
    ck_assert_int_eq(d.ops[1].seg, 0);
    ck_assert_str_eq(decoder_reg_name(&d.ops[0]), "ax");
    ck_assert_int_eq(decoder_op_info[DOP_PADDB].ext, DEXT_MMX);
    ck_assert_str_eq(decoder_ext_names[DEXT_SSE41], "sse41");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("decoder_basic");
    TCase *tc = tcase_create("basic");
    tcase_add_loop_test(tc, test_cases, 0, (int)(sizeof cases / sizeof cases[0]));
    tcase_add_test(tc, test_op_names);
    tcase_add_test(tc, test_fields);
    suite_add_tcase(s, tc);
    return softkvm_check_run(s);
}
