/* emu/opcheck: build-time completeness check of the handler table against the decoder's
 * op list (generated from decoder/opcodes.tbl). Run as a POST_BUILD step of the
 * softkvm library, so a table row whose op has neither semantics nor an entry in
 * emu/insn_missing.c fails the build, and so does a missing-list entry whose op has
 * semantics now (the list would lie). Exit 0 and one summary line when complete. */
#include <stdio.h>

#include "emu/internal.h"

int main(void)
{
    unsigned bad = 0, nmissing = 0;
    for (unsigned op = 1; op < DOP_COUNT; op++) {
        bool listed = false;
        for (const struct emu_missing_op *m = emu_missing_ops; m->op; m++)
            listed |= m->op == op;
        const char *name = decoder_op_name((uint16_t)op);
        if (emu_semantic_handler_for((uint16_t)op) && listed) {
            fprintf(stderr, "emu-opcheck: %s has semantics: drop it from emu/insn_missing.c\n", name);
            bad++;
        } else if (!emu_semantic_handler_for((uint16_t)op) && !listed) {
            fprintf(stderr, "emu-opcheck: decoder op %s (decoder/opcodes.tbl) has no handler in emu/ "
                            "and is not in emu/insn_missing.c\n", name);
            bad++;
        }
        nmissing += listed;
        if (!emu_handler_for((uint16_t)op)) {
            fprintf(stderr, "emu-opcheck: %s: no dispatch entry\n", name);
            bad++;
        }
    }
    if (bad)
        return 1;
    printf("emu-opcheck: %u decoder ops, %u without semantics (emu/insn_missing.c)\n",
           (unsigned)DOP_COUNT - 1, nmissing);
    return 0;
}
