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
//  - Ops are pruned only up to min(applied) after both indexes are durable; an index
//    behind the pruned point, missing, unreadable, from another embedder, or ahead of
//    the store (the database was replaced) is rebuilt.
// Because of idempotent replay, sync tolerates store writers running concurrently (other
// connections, other threads); only one sync/rebuild may run at a time per Indexes, which
// the caller's directory lock guarantees across processes.
#include <algorithm>
#include <cstdio>
#include <unordered_map>

#include "index/internal.h"

namespace ragd {
namespace {

constexpr int kOpBatch = 1000;    // ops read per round trip
constexpr int kEmbedBatch = 256;  // texts embedded at once during rebuilds

}  // namespace

Indexes::Indexes(const Config& cfg, std::shared_ptr<const Embedder> embedder)
    : cfg_(cfg), embedder_(std::move(embedder)) {
    if (!embedder_) throw Error(Error::Code::InvalidArgument, "Indexes needs an embedder");
    keyword_ = std::make_unique<KeywordIndex>(cfg_.data_dir + "/xapian");
    vector_ = std::make_unique<VectorIndex>(cfg_.data_dir + "/vectors.faiss", embedder_->name(),
                                            embedder_->dim(), cfg_.hnsw_ef_search);
    vector_->load();  // a missing or bad file leaves it empty; sync() rebuilds
}

Indexes::~Indexes() = default;

// Fills the chosen indexes from every chunk in the store; they end at applied = S.
static void fill_from_store(Store& store, const Embedder& emb, KeywordIndex* kw, VectorIndex* vec) {
    int64_t s = store.last_op_seq();  // before the scan: see the note at the top
    std::vector<KeywordDoc> kdocs;
    std::vector<std::string> texts;
    std::vector<int64_t> ids;
    std::vector<float> vecs;
    auto flush = [&] {
        if (kw && !kdocs.empty()) kw->put(kdocs);
        if (vec && !texts.empty()) {
            vecs.resize(texts.size() * size_t(emb.dim()));
            emb.embed(texts, vecs.data());
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
    int64_t pruned = store.ops_pruned_upto();
    int64_t last = store.last_op_seq();
    std::optional<int64_t> ka = keyword_->applied_seq();
    std::optional<int64_t> va = vector_->applied_seq();
    auto stale = [&](const std::optional<int64_t>& a) { return !a || *a < pruned || *a > last; };
    bool rk = stale(ka), rv = stale(va);
    if (rk || rv) {
        if (rk) keyword_->reset();
        if (rv) vector_->reset();
        fill_from_store(store, *embedder_, rk ? keyword_.get() : nullptr,
                        rv ? vector_.get() : nullptr);
        ka = keyword_->applied_seq();
        va = vector_->applied_seq();
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
            if (seq > vseq && !vector_->contains(c.id)) {
                vids.push_back(c.id);
                texts.push_back(c.text);
            }
        }
        if (!kdocs.empty()) keyword_->put(kdocs);
        if (!texts.empty()) {
            vecs.resize(texts.size() * size_t(embedder_->dim()));
            embedder_->embed(texts, vecs.data());
            vector_->add(int64_t(vids.size()), vids.data(), vecs.data());
        }
        // Removes after adds: a chunk added and removed within the batch ends absent.
        if (!k_remove.empty()) keyword_->remove(k_remove);
        if (!v_remove.empty()) vector_->remove(v_remove);

        applied += int64_t(ops.size());
        from = ops.back().seq;
        kseq = std::max(kseq, from);
        vseq = std::max(vseq, from);
        if (int(ops.size()) < kOpBatch) break;
    }

    if (applied > 0) {
        keyword_->commit(kseq);
        vector_->set_applied_seq(vseq);
        vector_->save();
    }
    int64_t prune_to = std::min(kseq, vseq);
    if (prune_to > pruned) store.prune_ops(prune_to);
    return applied;
}

void Indexes::rebuild(Store& store) {
    keyword_->reset();
    vector_->reset();
    fill_from_store(store, *embedder_, keyword_.get(), vector_.get());
    int64_t upto = std::min(*keyword_->applied_seq(), *vector_->applied_seq());
    if (upto > store.ops_pruned_upto()) store.prune_ops(upto);
}

std::vector<KeywordHit> Indexes::keyword_search(const std::string& query, int k,
                                                const IndexFilter& filter, Store& /*store*/) {
    return keyword_->search(query, k, filter);
}

std::vector<VectorHit> Indexes::vector_search(const std::string& query, int k,
                                              const IndexFilter& filter, Store& store) {
    if (k <= 0) return {};
    std::vector<float> q(size_t(embedder_->dim()));
    embedder_->embed({query}, q.data());
    bool zero = std::all_of(q.begin(), q.end(), [](float x) { return x == 0.0f; });
    if (zero) return {};  // nothing to compare: no words in the query
    if (filter.collection.empty() && filter.document_id == 0) {
        return vector_->search(q.data(), k, nullptr);
    }
    std::vector<int64_t> allowed = store.chunk_ids(filter.collection, filter.document_id);
    if (allowed.empty()) return {};
    return vector_->search(q.data(), k, &allowed);
}

int64_t Indexes::keyword_docs() {
    return keyword_->doc_count();
}

int64_t Indexes::vectors() {
    return vector_->live();
}

}  // namespace ragd
