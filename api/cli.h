// api/cli: the `ragd` command line (the contract is in DESIGN.md).
//
// Every command prints its result on stdout (text, or JSON with --json), progress and
// errors on stderr, and exits 0 on success, 1 when the command ran but failed (a file
// that could not be ingested, nothing found to remove), 2 on bad usage or bad input.
#pragma once

namespace ragd {

// Runs `ragd ARGS...`; returns the process exit code. Never throws.
int run_cli(int argc, char** argv);

}  // namespace ragd
