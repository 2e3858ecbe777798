// choose_embedder / record_embedder (index.h): which embedder a data directory uses, and
// the record of the model files whose vectors it may hold (DATA_DIR/embedders.json).
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>

#include "index/index.h"

namespace ragd {

namespace {

using json = nlohmann::json;

constexpr size_t kMaxRecorded = 8;  // models remembered (oldest dropped first)

std::string record_path(const std::string& data_dir) {
    return data_dir + "/embedders.json";
}

// The record, or an empty object if there is none or it is unreadable (it is advisory:
// losing it only means an old index cannot be served during a switch).
json read_record(const std::string& data_dir) {
    std::ifstream in(record_path(data_dir), std::ios::binary);
    if (!in) return json::object();
    std::stringstream ss;
    ss << in.rdbuf();
    json j = json::parse(ss.str(), nullptr, /*allow_exceptions=*/false);
    if (!j.is_object()) return json::object();
    if (!j.contains("models") || !j["models"].is_array()) j["models"] = json::array();
    return j;
}

std::string str(const json& o, const char* key) {
    auto it = o.find(key);
    return it != o.end() && it->is_string() ? it->get<std::string>() : std::string();
}

}  // namespace

void record_embedder(const std::string& data_dir, const Embedder& e) {
    json j = read_record(data_dir);
    j["current"] = e.name();
    if (!e.source().empty()) {
        json models = json::array();
        models.push_back({{"name", e.name()}, {"path", e.source()}, {"dim", e.dim()}});
        for (const json& m : j["models"]) {
            if (models.size() >= kMaxRecorded) break;
            if (m.is_object() && str(m, "name") != e.name()) models.push_back(m);
        }
        j["models"] = std::move(models);
    }
    std::string text = j.dump(2) + "\n";
    std::string path = record_path(data_dir), tmp = path + ".tmp";
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) throw Error(Error::Code::IO, "open " + tmp + ": " + std::strerror(errno));
    bool ok = ::write(fd, text.data(), text.size()) == ssize_t(text.size()) && ::fsync(fd) == 0;
    ::close(fd);
    if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
        int err = errno;
        ::unlink(tmp.c_str());
        throw Error(Error::Code::IO, "write " + path + ": " + std::strerror(err));
    }
}

EmbedderChoice choose_embedder(const Config& cfg) {
    std::shared_ptr<const Embedder> builtin = make_hashed_embedder();
    json rec = read_record(cfg.data_dir);
    int threads = cfg.model_threads;

    EmbedderChoice c;
    if (cfg.embed_model == kBuiltinEmbedder) {
        c.target = builtin;
    } else if (!cfg.embed_model.empty()) {
        c.target = make_gguf_embedder(cfg.embed_model, threads);
    } else {
        // The model the data directory was last indexed with, if it is a model.
        std::string current = str(rec, "current");
        for (const json& m : rec["models"]) {
            if (!m.is_object() || str(m, "name") != current || current.empty()) continue;
            std::string path = str(m, "path");
            std::shared_ptr<const Embedder> e;
            try {
                e = make_gguf_embedder(path, threads);
            } catch (const Error& err) {
                throw Error(err.code(), std::string(err.what()) + " (" + cfg.data_dir +
                                            " is indexed with it; pass --embed-model builtin "
                                            "or another model to re-embed)");
            }
            if (e->name() != current)
                throw Error(Error::Code::InvalidArgument,
                            "embedding model " + path + " changed since " + cfg.data_dir +
                                " was indexed with it (now " + e->name() + ", was " + current +
                                "); pass --embed-model to re-embed");
            c.target = std::move(e);
            break;
        }
        if (!c.target) c.target = builtin;
    }

    // Embedders that may have built the vectors on disk, loaded only when asked for.
    std::shared_ptr<const Embedder> target = c.target;
    std::vector<std::pair<std::string, std::string>> known;  // name, path
    for (const json& m : rec["models"])
        if (m.is_object()) known.push_back({str(m, "name"), str(m, "path")});
    c.resolver = [builtin, target, known, threads](const std::string& name,
                                                   int dim) -> std::shared_ptr<const Embedder> {
        if (target->name() == name && target->dim() == dim) return target;
        if (builtin->name() == name && builtin->dim() == dim) return builtin;
        for (const auto& [n, path] : known) {
            if (n != name || path.empty()) continue;
            try {
                std::shared_ptr<const Embedder> e = make_gguf_embedder(path, threads);
                if (e->name() == name && e->dim() == dim) return e;
            } catch (const Error& e) {
                std::fprintf(stderr, "ragd: note: previous %s\n", e.what());
            }
        }
        return nullptr;
    };
    return c;
}

}  // namespace ragd
