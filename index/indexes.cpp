// Indexes: keeps Xapian and FAISS in step with the Store's index_ops outbox.
//
// Convergence argument (sync/rebuild):
//  - Each index stores the last op seq it applied atomically with its data (Xapian
//    metadata committed with the documents; the FAISS container written whole). After a
//    crash an index is at some committed state S_i and replays ops > S_i.
//  - Replay is idempotent: Add of a chunk already indexed replaces it (Xapian) or is
//    skipped (FAISS); Add of a chunk no longer in the store is skipped (its Remove op
//    follows); Remove of an absent id is a no-op. Chunk ids are never reused.
//  - A rebuild first captures S = store.last_op_seq(), then scans the chunks: every op
//    <= S is reflected in the scan, and later ops are replayed idempotently, so the scan
//    may see some of them too.
//  - Ops are pruned only up to min(applied) after both indexes are durable (and never
//    past a re-embed in progress); an index behind the pruned point, missing, unreadable,
//    or ahead of the store (the database was replaced) is rebuilt.
//  - Embedder switch (reembed): the new vector index is built beside the old one in
//    vectors.faiss.next by the same scan-then-replay argument, then, under write_mu_ (so
//    no sync interleaves), replayed to the end of the outbox, saved, and renamed over
//    vectors.faiss. Until the rename the old file is the state; after it, the new one,
//    complete up to its applied seq. DATA_DIR/embedders.json is written before the
//    rename, so it always lists the embedder of the file on disk.
// Because of idempotent replay, sync tolerates store writers running concurrently (other
// connections, other threads); sync, rebuild and reembed's install serialize on
// write_mu_, and the caller's directory lock keeps other processes out.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <unordered_map>

#include "index/internal.h"

namespace ragd {
namespace {

constexpr int kOpBatch = 1000;    // ops read per round trip
constexpr int kEmbedBatch = 256;  // texts embedded at once during rebuilds

}  // namespace

Indexes::Indexes(const Config& cfg, std::shared_ptr<const Embedder> embedder,
                 EmbedderResolver resolver)
    : cfg_(cfg), embedder_(std::move(embedder)), resolver_(std::move(resolver)) {
    if (!embedder_) throw Error(Error::Code::InvalidArgument, "Indexes needs an embedder");
    keyword_ = std::make_unique<KeywordIndex>(cfg_.data_dir + "/xapian");
    const std::string path = cfg_.data_dir + "/vectors.faiss";
    // A re-embed that did not finish left its temp file: it starts over when asked.
    std::remove((path + ".next").c_str());
    std::remove((path + ".next.tmp").c_str());

    auto target_side = [&] {
        auto s = std::make_shared<VectorSide>();
        s->embedder = embedder_;
        s->index = std::make_unique<VectorIndex>(path, embedder_->name(), embedder_->dim(),
                                                 cfg_.hnsw_ef_search);
        return s;
    };
    std::string name;
    int dim = 0;
    if (!read_vector_header(path, &name, &dim) ||
        (name == embedder_->name() && dim == embedder_->dim())) {
        side_ = target_side();
        side_->index->load();  // a missing or bad file leaves it empty; sync() rebuilds
        return;
    }
    // Built by another embedder: keep serving it if that embedder can be had.
    std::shared_ptr<const Embedder> old = resolver_ ? resolver_(name, dim) : nullptr;
    if (old && old->name() == name && old->dim() == dim) {
        auto s = std::make_shared<VectorSide>();
        s->embedder = old;
        s->index = std::make_unique<VectorIndex>(path, name, dim, cfg_.hnsw_ef_search);
        if (s->index->load()) {
            side_ = std::move(s);
            return;
        }
        side_ = target_side();  // unreadable: as if missing
        return;
    }
    note_ = "vector index built by embedder " + name + " (dimension " + std::to_string(dim) +
            "), which is not available; vector search is off until it is re-embedded with " +
            embedder_->name();
}

Indexes::~Indexes() = default;

std::shared_ptr<VectorSide> Indexes::side() const {
    std::lock_guard lock(side_mu_);
    return side_;
}

void Indexes::set_side(std::shared_ptr<VectorSide> s) {
    std::shared_ptr<VectorSide> old;
    {
        std::lock_guard lock(side_mu_);
        old = std::move(side_);
        side_ = std::move(s);
        note_.clear();
    }
    // OLD is freed here, or by the last search still using it.
}

bool Indexes::needs_reembed() const {
    auto s = side();
    return !s || s->embedder != embedder_;
}

std::string Indexes::serving_embedder() const {
    auto s = side();
    return s ? s->embedder->name() : std::string();
}

std::string Indexes::vector_note() const {
    std::lock_guard lock(side_mu_);
    return note_;
}

void Indexes::embed_timed(const Embedder& e, const std::vector<std::string>& texts, float* out) {
    auto t0 = std::chrono::steady_clock::now();
    e.embed(texts, out);
    embed_ns_ +=
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0)
            .count();
}

// Fills the chosen indexes from every chunk in the store; they end at applied = S.
void Indexes::fill(Store& store, const Embedder& emb, KeywordIndex* kw, VectorIndex* vec) {
    int64_t s = store.last_op_seq();  // before the scan: see the note at the top
    std::vector<KeywordDoc> kdocs;
    std::vector<std::string> texts;
    std::vector<int64_t> ids;
    std::vector<float> vecs;
    auto flush = [&] {
        if (kw && !kdocs.empty()) kw->put(kdocs);
        if (vec && !texts.empty()) {
            vecs.resize(texts.size() * size_t(emb.dim()));
            embed_timed(emb, texts, vecs.data());
            vec->add(int64_t(ids.size()), ids.data(), vecs.data());
        }
        kdocs.clear();
        texts.clear();
        ids.clear();
    };
    store.for_each_chunk([&](const ChunkRow& c) {
        if (kw) kdocs.push_back({c.id, c.document_id, c.collection, c.text});
        if (vec) {
            texts.push_back(c.text);
            ids.push_back(c.id);
        }
        if (int(std::max(kdocs.size(), ids.size())) >= kEmbedBatch) flush();
    });
    flush();
    if (kw) kw->commit(s);
    if (vec) {
        vec->set_applied_seq(s);
        vec->save();
    }
}

int64_t Indexes::sync(Store& store) {
    if (!background_ && needs_reembed()) reembed(store);
    std::lock_guard wlock(write_mu_);
    std::shared_ptr<VectorSide> vs = side();
    VectorIndex* vec = vs ? vs->index.get() : nullptr;
    int64_t pruned = store.ops_pruned_upto();
    int64_t last = store.last_op_seq();
    std::optional<int64_t> ka = keyword_->applied_seq();
    std::optional<int64_t> va = vec ? vec->applied_seq() : std::optional<int64_t>(last);
    auto stale = [&](const std::optional<int64_t>& a) { return !a || *a < pruned || *a > last; };
    bool rk = stale(ka), rv = vec && stale(va);
    if (rv && vs->embedder != embedder_) {
        // Old vectors that cannot be caught up: out of service; the re-embed replaces them.
        {
            std::lock_guard lock(side_mu_);
            side_.reset();
            note_ = "vector index of " + vs->embedder->name() +
                    " is out of date; vector search is off until it is re-embedded with " +
                    embedder_->name();
        }
        vs.reset();
        vec = nullptr;
        rv = false;
        va = last;
    }
    if (rk || rv) {
        if (rk) keyword_->reset();
        if (rv) vec->reset();
        if (rv) record_embedder(cfg_.data_dir, *vs->embedder);  // before the file changes
        fill(store, *vs->embedder, rk ? keyword_.get() : nullptr, rv ? vec : nullptr);
        ka = keyword_->applied_seq();
        if (vec) va = vec->applied_seq();
    }

    // Replay the outbox past each index's own position.
    int64_t kseq = *ka, vseq = *va;
    int64_t from = std::min(kseq, vseq);
    int64_t applied = 0;
    std::vector<std::string> texts;
    std::vector<float> vecs;
    for (;;) {
        std::vector<IndexOp> ops = store.ops_after(from, kOpBatch);
        if (ops.empty()) break;
        std::vector<int64_t> add_ids, k_remove, v_remove;
        for (const IndexOp& op : ops) {
            if (op.kind == IndexOp::Add) {
                add_ids.push_back(op.chunk_id);
            } else {
                if (op.seq > kseq) k_remove.push_back(op.chunk_id);
                if (op.seq > vseq) v_remove.push_back(op.chunk_id);
            }
        }
        // Chunks gone from the store are skipped: their Remove op is in the outbox.
        std::sort(add_ids.begin(), add_ids.end());
        add_ids.erase(std::unique(add_ids.begin(), add_ids.end()), add_ids.end());
        std::vector<ChunkRow> rows = store.chunks(add_ids);
        // An Add needs applying to an index only if its seq is past that index's position;
        // map chunk id -> the highest Add seq in this batch.
        std::unordered_map<int64_t, int64_t> add_seq;
        for (const IndexOp& op : ops) {
            if (op.kind == IndexOp::Add) add_seq[op.chunk_id] = op.seq;
        }
        std::vector<KeywordDoc> kdocs;
        std::vector<int64_t> vids;
        texts.clear();
        for (const ChunkRow& c : rows) {
            int64_t seq = add_seq[c.id];
            if (seq > kseq) kdocs.push_back({c.id, c.document_id, c.collection, c.text});
            if (vec && seq > vseq && !vec->contains(c.id)) {
                vids.push_back(c.id);
                texts.push_back(c.text);
            }
        }
        if (!kdocs.empty()) keyword_->put(kdocs);
        if (!texts.empty()) {
            vecs.resize(texts.size() * size_t(vs->embedder->dim()));
            embed_timed(*vs->embedder, texts, vecs.data());
            vec->add(int64_t(vids.size()), vids.data(), vecs.data());
        }
        // Removes after adds: a chunk added and removed within the batch ends absent.
        if (!k_remove.empty()) keyword_->remove(k_remove);
        if (vec && !v_remove.empty()) vec->remove(v_remove);

        applied += int64_t(ops.size());
        from = ops.back().seq;
        kseq = std::max(kseq, from);
        vseq = std::max(vseq, from);
        if (int(ops.size()) < kOpBatch) break;
    }

    if (applied > 0) {
        keyword_->commit(kseq);
        if (vec) {
            vec->set_applied_seq(vseq);
            vec->save();
        }
    }
    // A re-embed in progress still needs the ops past its own position.
    int64_t prune_to = std::min({kseq, vseq, pin_.load()});
    if (prune_to > pruned) store.prune_ops(prune_to);
    return applied;
}

namespace {

// Thrown out of Store::for_each_chunk to end a scan early.
struct ScanStopped {};

// Applies the vector side of the ops after VEC's position (at most MAX_OPS of them, or
// all when MAX_OPS <= 0). Returns how many ops were read.
int64_t replay_vectors(Store& store, const Embedder& emb, VectorIndex* vec,
                       const std::function<void(const std::vector<std::string>&, float*)>& embed,
                       int64_t max_ops) {
    int64_t seq = *vec->applied_seq();
    int64_t read = 0;
    std::vector<std::string> texts;
    std::vector<float> vecs;
    for (;;) {
        std::vector<IndexOp> ops = store.ops_after(seq, kOpBatch);
        if (ops.empty()) break;
        std::vector<int64_t> add_ids, removes;
        for (const IndexOp& op : ops) {
            if (op.kind == IndexOp::Add)
                add_ids.push_back(op.chunk_id);
            else
                removes.push_back(op.chunk_id);
        }
        std::sort(add_ids.begin(), add_ids.end());
        add_ids.erase(std::unique(add_ids.begin(), add_ids.end()), add_ids.end());
        std::vector<int64_t> vids;
        texts.clear();
        for (const ChunkRow& c : store.chunks(add_ids)) {
            if (vec->contains(c.id)) continue;
            vids.push_back(c.id);
            texts.push_back(c.text);
        }
        if (!texts.empty()) {
            vecs.resize(texts.size() * size_t(emb.dim()));
            embed(texts, vecs.data());
            vec->add(int64_t(vids.size()), vids.data(), vecs.data());
        }
        if (!removes.empty()) vec->remove(removes);
        seq = ops.back().seq;
        vec->set_applied_seq(seq);
        read += int64_t(ops.size());
        if (int(ops.size()) < kOpBatch || (max_ops > 0 && read >= max_ops)) break;
    }
    return read;
}

void fsync_dir(const std::string& dir) {
    int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        ::fsync(fd);
        ::close(fd);
    }
}

}  // namespace

bool Indexes::reembed(Store& store, const std::function<void(int64_t, int64_t)>& progress,
                      const std::atomic<bool>* stop) {
    if (!needs_reembed()) return true;
    const std::string path = cfg_.data_dir + "/vectors.faiss";
    const std::string next = path + ".next";
    std::remove(next.c_str());
    auto fresh = std::make_shared<VectorSide>();
    fresh->embedder = embedder_;
    fresh->index = std::make_unique<VectorIndex>(next, embedder_->name(), embedder_->dim(),
                                                 cfg_.hnsw_ef_search);
    VectorIndex* vec = fresh->index.get();
    const Embedder& emb = *embedder_;
    auto embed = [&](const std::vector<std::string>& texts, float* out) {
        embed_timed(emb, texts, out);
    };
    struct Unpin {
        std::atomic<int64_t>& pin;
        ~Unpin() { pin = INT64_MAX; }
    } unpin{pin_};
    auto stopped = [&] { return stop && stop->load(); };

    // 1. The bulk: every chunk as of S, while sync() keeps the old index current.
    int64_t s;
    {
        std::lock_guard wlock(write_mu_);  // sync() prunes under it: nothing past S goes
        s = store.last_op_seq();
        pin_ = s;
    }
    int64_t total = store.counts().chunks, done = 0;
    if (progress) progress(0, total);
    std::vector<std::string> texts;
    std::vector<int64_t> ids;
    std::vector<float> vecs;
    auto flush = [&] {
        if (texts.empty()) return;
        vecs.resize(texts.size() * size_t(emb.dim()));
        embed(texts, vecs.data());
        vec->add(int64_t(ids.size()), ids.data(), vecs.data());
        done += int64_t(texts.size());
        texts.clear();
        ids.clear();
        if (progress) progress(std::min(done, total), total);
    };
    try {
        store.for_each_chunk([&](const ChunkRow& c) {
            if (stopped()) throw ScanStopped{};
            texts.push_back(c.text);
            ids.push_back(c.id);
            if (int(texts.size()) >= kEmbedBatch) flush();
        });
    } catch (const ScanStopped&) {
        return false;
    }
    flush();
    vec->set_applied_seq(s);

    // 2. Catch up with what changed meanwhile, still beside the old index.
    for (int round = 0; round < 8; ++round) {
        if (stopped()) return false;
        int64_t n = replay_vectors(store, emb, vec, embed, 0);
        pin_ = *vec->applied_seq();
        if (n < kOpBatch / 4) break;
    }
    if (stopped()) return false;

    // 3. Under the write lock: the last ops, then install (record, rename, swap).
    std::lock_guard wlock(write_mu_);
    replay_vectors(store, emb, vec, embed, 0);
    vec->save();  // to vectors.faiss.next
    record_embedder(cfg_.data_dir, emb);
    if (::rename(next.c_str(), path.c_str()) != 0) {
        int err = errno;
        std::remove(next.c_str());
        throw Error(Error::Code::IO, "rename " + next + ": " + std::strerror(err));
    }
    fsync_dir(cfg_.data_dir);
    vec->set_path(path);
    set_side(std::move(fresh));
    int64_t upto = std::min(keyword_->applied_seq().value_or(0), *vec->applied_seq());
    if (upto > store.ops_pruned_upto()) store.prune_ops(upto);
    if (progress) progress(total, total);
    return true;
}

void Indexes::rebuild(Store& store) {
    std::lock_guard wlock(write_mu_);
    auto fresh = std::make_shared<VectorSide>();
    fresh->embedder = embedder_;
    fresh->index = std::make_unique<VectorIndex>(
        cfg_.data_dir + "/vectors.faiss", embedder_->name(), embedder_->dim(), cfg_.hnsw_ef_search);
    keyword_->reset();
    record_embedder(cfg_.data_dir, *embedder_);
    fill(store, *embedder_, keyword_.get(), fresh->index.get());
    int64_t upto = std::min({*keyword_->applied_seq(), *fresh->index->applied_seq(), pin_.load()});
    set_side(std::move(fresh));
    if (upto > store.ops_pruned_upto()) store.prune_ops(upto);
}

std::vector<KeywordHit> Indexes::keyword_search(const std::string& query, int k,
                                                const IndexFilter& filter, Store& /*store*/) {
    return keyword_->search(query, k, filter);
}

std::vector<VectorHit> Indexes::vector_search(const std::string& query, int k,
                                              const IndexFilter& filter, Store& store) {
    if (k <= 0) return {};
    std::shared_ptr<VectorSide> vs = side();  // kept alive through a concurrent swap
    if (!vs) return {};
    const Embedder& emb = *vs->embedder;
    std::vector<float> q(size_t(emb.dim()));
    emb.embed({query}, q.data());
    bool zero = std::all_of(q.begin(), q.end(), [](float x) { return x == 0.0f; });
    if (zero) return {};  // nothing to compare: no words in the query
    if (filter.collection.empty() && filter.document_id == 0) {
        return vs->index->search(q.data(), k, nullptr);
    }
    std::vector<int64_t> allowed = store.chunk_ids(filter.collection, filter.document_id);
    if (allowed.empty()) return {};
    return vs->index->search(q.data(), k, &allowed);
}

int64_t Indexes::keyword_docs() {
    return keyword_->doc_count();
}

int64_t Indexes::vectors() {
    std::shared_ptr<VectorSide> vs = side();
    return vs ? vs->index->live() : 0;
}

}  // namespace ragd
