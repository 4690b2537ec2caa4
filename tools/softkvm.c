/* softkvm: the command-line front end. Subcommands are a table so that
 * `softkvm help` and dispatch cannot drift apart. */
#include <stdio.h>
#include <string.h>

#include "softkvm_version.h"
#include "commands.h"

struct subcommand {
    const char *name;
    const char *help;
    int (*fn)(int argc, char **argv);
};

static int cmd_version(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    printf("softkvm %s\n", SOFTKVM_VERSION);
    return 0;
}

static int cmd_help(int argc, char **argv);

static const struct subcommand subcommands[] = {
    {"--version", "print the version", cmd_version},
    {"version", "print the version", cmd_version},
    {"run", "run -- CMD ARGS: run CMD with softkvm serving /dev/kvm", softkvm_cmd_run},
    {"selftests", "build and run the Linux KVM selftests under softkvm", softkvm_cmd_selftests},
    {"help", "list subcommands", cmd_help},
};

static int cmd_help(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    printf("usage: softkvm COMMAND [ARGS]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof subcommands / sizeof subcommands[0]; i++)
        printf("  %-12s %s\n", subcommands[i].name, subcommands[i].help);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return cmd_help(argc, argv), 2;
    for (size_t i = 0; i < sizeof subcommands / sizeof subcommands[0]; i++)
        if (strcmp(argv[1], subcommands[i].name) == 0)
            return subcommands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "softkvm: unknown command '%s' (try 'softkvm help')\n", argv[1]);
    return 2;
}
