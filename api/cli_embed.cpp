// api/cli_embed: `ragd embed`, embeddings of texts with a GGUF encoder (bert family).
//
// Prints a JSON array with one array of floats per TEXT, in order, one vector per line.
// Vectors are L2-normalised unless --no-normalize; pooling is the model's own (its GGUF
// pooling_type) unless --pooling says mean, cls or last. A text longer than the model's
// context is truncated to it (keeping [SEP]); an empty text is embedded as [CLS] [SEP].
#include <charconv>
#include <cstdio>
#include <string>
#include <vector>

#include "api/args.h"
#include "api/commands.h"
#include "generate/bert.h"

namespace ragd {

namespace {

void append_float(std::string& out, float v) {
    char buf[32];
    auto res = std::to_chars(buf, buf + sizeof(buf), v);  // shortest round-trip form
    out.append(buf, res.ptr);
}

}  // namespace

int cmd_embed(int argc, char** argv) {
    Args args = parse_args(argc, argv, 2,
                           {{"-m --model", true},
                            {"--pooling", true},
                            {"-t --threads", true},
                            {"-b --batch-tokens", true},
                            {"--no-normalize", false},
                            {"--mmap", false},
                            {"--no-mmap", false}});
    if (!args.has("-m") || args.get("-m").empty())
        throw Error(Error::Code::InvalidArgument, "-m MODEL.gguf is required");
    if (args.positional.empty())
        throw Error(Error::Code::InvalidArgument, "embed takes at least one TEXT argument");
    Pooling pooling = Pooling::None;
    if (args.has("--pooling")) {
        pooling = parse_pooling(args.get("--pooling"));
        if (pooling == Pooling::None || pooling == Pooling::Rank)
            throw Error(Error::Code::InvalidArgument,
                        "--pooling takes mean, cls or last, not '" + args.get("--pooling") + "'");
    }
    const int threads = int(args.get_int("-t", 0, 0, 1024));
    const int batch_tokens = int(args.get_int("-b", 2048, 1, 1 << 20));

    std::unique_ptr<BertModel> model =
        BertModel::load(args.get("-m"), gguf::load_mode(args.has("--mmap"), args.has("--no-mmap")));
    Encoder enc(*model, threads);
    enc.batch_tokens = batch_tokens;
    std::vector<float> v = enc.embed(args.positional, pooling, !args.has("--no-normalize"));

    const size_t dim = size_t(model->dim());
    std::string out = "[";
    for (size_t i = 0; i < args.positional.size(); ++i) {
        out += i ? ",\n [" : "[";
        for (size_t d = 0; d < dim; ++d) {
            if (d) out += ", ";
            append_float(out, v[i * dim + d]);
        }
        out += "]";
    }
    out += "]\n";
    std::fwrite(out.data(), 1, out.size(), stdout);
    return 0;
}

}  // namespace ragd
