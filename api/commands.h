// api/commands: the CLI commands implemented outside cli.cpp (the model commands).
#pragma once

namespace ragd {

int cmd_run(int argc, char** argv);       // ragd run -m MODEL -p PROMPT ...
int cmd_tokenize(int argc, char** argv);  // ragd tokenize -m MODEL TEXT
int cmd_bench(int argc, char** argv);     // ragd bench -m MODEL [-p N] [-n N] ...
int cmd_embed(int argc, char** argv);     // ragd embed -m MODEL [--pooling P] TEXT...
int cmd_extract(int argc, char** argv);   // ragd extract -m MODEL --schema FILE DOC

}  // namespace ragd
