// ragd: the one executable. `ragd __pdf-worker FILE` is the isolated PDF parser that
// ingestion spawns (see ingest/ingest.h); everything else is the command line.
#include <cstring>

#include "api/cli.h"
#include "ingest/ingest.h"

int main(int argc, char** argv) {
    if (argc >= 2 && std::strcmp(argv[1], "__pdf-worker") == 0)
        return ragd::pdf_worker_main(argc, argv);
    return ragd::run_cli(argc, argv);
}
