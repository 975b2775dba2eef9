// genie_run: the command-line tool (subcommands quantize — the default —, distill, eval, info).
// Everything lives in engine/cli.h so that the library, the tests and this binary share it.
#include "engine/cli.h"

int main(int argc, char** argv) { return genie::cli::main(argc, argv); }
