// api/cli_extract: `ragd extract -m MODEL --schema FILE [--seed S] [--temp T] DOC`.
//
// DOC is a document id or the path of an ingested file (looked up in the data directory),
// or else a text or Markdown file read directly (not ingested). Prints {data, evidence}
// on stdout (generate/extract.h), statistics on stderr.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "api/args.h"
#include "api/commands.h"
#include "generate/extract.h"
#include "generate/json_schema.h"
#include "generate/runner.h"
#include "index/index.h"
#include "ingest/store.h"

namespace ragd {

namespace {

namespace fs = std::filesystem;
using OJ = nlohmann::ordered_json;

std::string read_all(const std::string& path, const char* what, size_t limit) {
    std::error_code ec;
    auto size = fs::file_size(path, ec);
    if (ec) throw Error(Error::Code::NotFound, std::string(what) + " " + path + " not found");
    if (size > limit)
        throw Error(Error::Code::InvalidArgument, std::string(what) + " " + path + " is over " +
                                                      std::to_string(limit) + " bytes");
    std::ifstream f(path, std::ios::binary);
    if (!f) throw Error(Error::Code::IO, "cannot read " + path);
    std::ostringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

}  // namespace

int cmd_extract(int argc, char** argv) {
    Args args = parse_args(argc, argv, 2,
                           {{"-m --model", true},
                            {"--schema", true},
                            {"--seed", true},
                            {"--temp --temperature", true},
                            {"-n --max-tokens", true},
                            {"--instructions", true},
                            {"--data", true},
                            {"--embed-model", true},
                            {"-t --threads", true},
                            {"-c --ctx-size", true},
                            {"--mmap", false},
                            {"--no-mmap", false}});
    if (args.positional.size() != 1)
        throw Error(Error::Code::InvalidArgument,
                    "extract takes one DOC (a document id, an ingested path or a text file)");
    const std::string doc = args.positional[0];
    if (!args.has("-m") || args.get("-m").empty())
        throw Error(Error::Code::InvalidArgument, "-m MODEL.gguf is required");
    if (!args.has("--schema") || args.get("--schema").empty())
        throw Error(Error::Code::InvalidArgument, "--schema FILE is required");
    OJ schema;
    {
        std::string text = read_all(args.get("--schema"), "schema", 4u << 20);
        try {
            schema = OJ::parse(text);
        } catch (const std::exception& e) {
            throw Error(Error::Code::InvalidArgument,
                        "--schema " + args.get("--schema") + " is not JSON: " + e.what());
        }
    }
    compile_json_schema(schema);  // a bad schema fails before the model loads
    GenerateOptions opts;
    opts.max_tokens = int(args.get_int("-n", 512, 1, 1 << 20));
    opts.sampling.temperature = float(get_double(args, "--temp", 0.0, 0, 100));
    opts.sampling.seed = uint64_t(args.get_int("--seed", 0, 0, INT64_MAX));
    const std::string instructions = args.get("--instructions");

    Config cfg;
    cfg.data_dir = resolve_data_dir(args.get("--data"));
    cfg.embed_model = args.get("--embed-model");
    apply_model_env(&cfg);

    auto runner = std::make_unique<ModelRunner>(
        Model::load(args.get("-m"), gguf::load_mode(args.has("--mmap"), args.has("--no-mmap"))),
        int(args.get_int("-c", 0, 0, 1 << 24)), int(args.get_int("-t", 0, 0, 1024)));
    // Passages get what the context leaves after the schema, instructions and output.
    const int fixed = int(runner->tokenize_prompt(schema.dump() + instructions).size()) + 128;
    const int budget =
        std::max(64, std::min(cfg.context_tokens, runner->n_ctx() - opts.max_tokens - fixed));

    std::vector<Passage> passages;
    const bool is_id = !doc.empty() && doc.find_first_not_of("0123456789") == std::string::npos;
    const bool have_store = fs::exists(cfg.data_dir + "/ragd.db");
    int64_t id = 0;
    std::unique_ptr<Store> store;
    if (have_store) {
        store = std::make_unique<Store>(cfg.data_dir);
        if (is_id) {
            id = std::stoll(doc.substr(0, 18));
        } else if (auto d =
                       store->document_by_path(fs::absolute(doc).lexically_normal().string())) {
            id = d->id;
        }
    }
    if (id > 0) {
        if (!store->document(id))
            throw Error(Error::Code::NotFound, "no document with id " + std::to_string(id));
        EmbedderChoice emb = choose_embedder(cfg);
        Indexes indexes(cfg, emb.target, emb.resolver);
        indexes.set_background_reembed(true);
        passages = document_passages(indexes, *store, id, schema, instructions, cfg, budget);
    } else if (!is_id && fs::is_regular_file(doc)) {
        std::string ext = fs::path(doc).extension().string();
        if (ext == ".pdf" || ext == ".PDF")
            throw Error(
                Error::Code::InvalidArgument,
                doc + " is a PDF: ingest it first (ragd ingest), then extract by id or path");
        passages = text_passages(read_all(doc, "document", 64u << 20), budget);
        for (Passage& p : passages) {
            p.hit.chunk.document = fs::path(doc).filename().string();
            p.hit.chunk.path = fs::absolute(doc).lexically_normal().string();
        }
    } else {
        throw Error(Error::Code::NotFound, "no document " + doc +
                                               (have_store ? " in " + cfg.data_dir : "") +
                                               " (a document id, an ingested path or a text file)");
    }

    Extraction e = extract(*runner, schema, instructions, passages, opts);
    OJ out;
    out["data"] = e.data;
    out["evidence"] = OJ::parse(e.evidence.dump());
    std::string s = out.dump(2);
    std::printf("%s\n", s.c_str());
    std::fprintf(stderr,
                 "[%zu passages; %d prompt tokens, %d generated in %.2f s (%.3f s masks)]\n",
                 passages.size(), e.stats.prompt_tokens, e.stats.completion_tokens,
                 e.stats.generate_seconds, e.stats.constraint_seconds);
    return 0;
}

}  // namespace ragd
