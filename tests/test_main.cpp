// Test main: the same binary also serves as the PDF child process, as ragd does, so
// ingestion tests exercise the real isolation path (Config::pdf_worker_exe = /proc/self/exe).
#include <gtest/gtest.h>

#include <cstring>

#include "ingest/ingest.h"

int main(int argc, char** argv) {
    if (argc >= 2 && std::strcmp(argv[1], "__pdf-worker") == 0)
        return ragd::pdf_worker_main(argc, argv);
    ::testing::InitGoogleTest(&argc, argv);
    return RUN_ALL_TESTS();
}
