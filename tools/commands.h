/* Subcommands of the softkvm tool, one file each (tools/cmd_*.c). */
#ifndef SOFTKVM_TOOLS_COMMANDS_H
#define SOFTKVM_TOOLS_COMMANDS_H
int softkvm_cmd_run(int argc, char **argv);
int softkvm_cmd_selftests(int argc, char **argv);
#endif
