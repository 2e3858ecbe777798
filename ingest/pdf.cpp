#include "ingest/ingest.h"
// Scaffold until the PDF child process lands.
namespace ragd {
int pdf_worker_main(int, char**) { return 2; }
}  // namespace ragd
