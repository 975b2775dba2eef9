// genie_run's command line: subcommands, flag parsing (flags override --config, which overrides a
// resumed checkpoint's settings, which override the defaults), progress display and the summary.
//
//   genie_run [quantize] --model FILE --out DIR [flags]   Genie-D → Genie-M → quantized model
//   genie_run distill    --model FILE --out DIR [flags]   Genie-D only
//   genie_run eval       --model FILE --eval SRC          FP32 or quantized file: one JSON line
//   genie_run info       --model FILE [--json]            architecture, units, bits
//
// Exit codes: 0 success; 2 bad input (unknown flag, value out of range, unreadable model or data,
// unwritable --out, incompatible checkpoint) — reported before anything is written; 1 a failure
// while running.
#pragma once
#include <iosfwd>
#include <map>
#include <string>
#include <vector>

#include "engine/pipeline.h"

namespace genie::cli {

// Runs genie_run with `args` (without the program name); progress and errors go to `err`, results
// (summary table, JSON lines) to `out`. `err_is_tty` selects progress bars over plain lines.
int run(const std::vector<std::string>& args, std::ostream& out, std::ostream& err,
        bool err_is_tty);
// main(): std::cout / std::cerr, bars when stderr is a terminal.
int main(int argc, char** argv);

// The parsed command line of quantize / distill (throws genie::InputError naming the flag).
struct Parsed {
  std::string command;  // "quantize" | "distill"
  engine::PipelineConfig cfg;
  bool help = false, version = false;
};
Parsed parse(const std::string& command, const std::vector<std::string>& args);

// "--name value", "--name=value", "--switch" into name -> value ("1" for switches), checked against
// the known names (an unknown flag names itself and the closest known one; a value flag without a
// value, a switch given a value, and repeated flags are errors).
std::vector<std::pair<std::string, std::string>> split_flags(
    const std::vector<std::string>& args, const std::vector<std::string>& with_value,
    const std::vector<std::string>& switches, const std::string& command);

}  // namespace genie::cli
