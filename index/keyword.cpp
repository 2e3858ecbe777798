// KeywordIndex: Xapian BM25 over chunk text (layout in index.h, contract in internal.h).
#include <xapian.h>

#include <cstdio>
#include <filesystem>
#include <string>

#include "index/internal.h"

namespace ragd {
namespace {

constexpr const char* kAppliedSeqKey = "applied_seq";
constexpr size_t kMaxTermBytes = 240;  // Xapian's limit is 245 bytes per term

// (Built with += : "Q" + std::to_string() trips a GCC 12 -Wrestrict false positive.)
std::string id_term(int64_t chunk_id) {
    std::string t = "Q";
    t += std::to_string(chunk_id);
    return t;
}

[[noreturn]] void rethrow_xapian(const Xapian::Error& e, const std::string& what) {
    std::string msg = "keyword index: " + what + ": " + e.get_type() + ": " + e.get_msg();
    // Xapian::Error is not polymorphic: tell the subclasses apart by name.
    const std::string type = e.get_type();
    if (type == "DatabaseLockError") throw Error(Error::Code::Busy, msg);
    if (type == "QueryParserError") {
        throw Error(Error::Code::InvalidArgument, "bad query: " + e.get_msg());
    }
    if (type == "DatabaseCorruptError") throw Error(Error::Code::Corrupt, msg);
    if (type.rfind("Database", 0) == 0) throw Error(Error::Code::IO, msg);
    throw Error(Error::Code::Internal, msg);
}

// Xapian's view of the shared stop list (is_stop_word).
class StopList : public Xapian::Stopper {
  public:
    bool operator()(const std::string& term) const override { return is_stop_word(term); }
};

}  // namespace

KeywordIndex::KeywordIndex(std::string dir)
    : dir_(std::move(dir)), stopper_(std::make_unique<StopList>()) {}

KeywordIndex::~KeywordIndex() {
    // Xapian commits pending documents on close, but applied_seq moves only in commit(),
    // so whatever was not committed by us is replayed from the outbox (idempotently).
    try {
        writer_.reset();
        reader_.reset();
    } catch (...) {
    }
}

std::string KeywordIndex::collection_term(const std::string& collection) {
    std::string t = "XC";
    t += collection;
    if (t.size() > kMaxTermBytes) {
        // Too long for a term: keep a prefix and make it unique with a hash of the rest.
        uint64_t h = 0xcbf29ce484222325ull;
        for (unsigned char c : collection) h = (h ^ c) * 0x100000001b3ull;
        char hex[17];
        std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
        t = t.substr(0, kMaxTermBytes - 17) + "#" + hex;
    }
    return t;
}

std::string KeywordIndex::document_term(int64_t document_id) {
    std::string t = "XD";
    t += std::to_string(document_id);
    return t;
}

void KeywordIndex::open_writer() {
    if (writer_) return;
    reader_.reset();
    try {
        writer_ = std::make_unique<Xapian::WritableDatabase>(dir_, Xapian::DB_CREATE_OR_OPEN);
    } catch (const Xapian::DatabaseLockError& e) {
        rethrow_xapian(e, "open " + dir_);
    } catch (const Xapian::DatabaseOpeningError& e) {
        // Unreadable (corrupt, wrong version, garbage files): it is derived data, so start
        // over; the caller notices applied_seq() == nullopt and rebuilds.
        std::fprintf(stderr, "ragd: keyword index %s unreadable (%s), rebuilding\n", dir_.c_str(),
                     e.get_msg().c_str());
    } catch (const Xapian::DatabaseCorruptError& e) {
        std::fprintf(stderr, "ragd: keyword index %s corrupt (%s), rebuilding\n", dir_.c_str(),
                     e.get_msg().c_str());
    } catch (const Xapian::Error& e) {
        rethrow_xapian(e, "open " + dir_);
    }
    if (writer_) return;
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
    try {
        writer_ = std::make_unique<Xapian::WritableDatabase>(dir_, Xapian::DB_CREATE_OR_OVERWRITE);
    } catch (const Xapian::Error& e) {
        rethrow_xapian(e, "create " + dir_);
    }
}

Xapian::Database& KeywordIndex::reader() {
    if (writer_) return *writer_;
    if (!reader_) {
        reader_ = std::make_unique<Xapian::Database>(dir_);
    } else {
        reader_->reopen();  // see the latest commit of the writer (maybe another process)
    }
    return *reader_;
}

std::optional<int64_t> KeywordIndex::applied_seq() {
    std::lock_guard lock(mu_);
    open_writer();
    std::string v;
    try {
        v = writer_->get_metadata(kAppliedSeqKey);
    } catch (const Xapian::Error& e) {
        std::fprintf(stderr, "ragd: keyword index %s unreadable (%s), rebuilding\n", dir_.c_str(),
                     e.get_msg().c_str());
        return std::nullopt;
    }
    if (v.empty()) return std::nullopt;
    char* end = nullptr;
    long long seq = std::strtoll(v.c_str(), &end, 10);
    if (*end != '\0' || seq < 0) return std::nullopt;
    return seq;
}

void KeywordIndex::reset() {
    std::lock_guard lock(mu_);
    try {
        writer_.reset();  // releases the lock (Xapian commits on close; the files go next)
        reader_.reset();
        std::error_code ec;
        std::filesystem::remove_all(dir_, ec);
        if (ec) throw Error(Error::Code::IO, "cannot remove " + dir_ + ": " + ec.message());
        writer_ = std::make_unique<Xapian::WritableDatabase>(dir_, Xapian::DB_CREATE_OR_OVERWRITE);
    } catch (const Xapian::Error& e) {
        rethrow_xapian(e, "reset " + dir_);
    }
}

void KeywordIndex::put(const std::vector<KeywordDoc>& docs) {
    std::lock_guard lock(mu_);
    open_writer();
    try {
        Xapian::TermGenerator tg;
        tg.set_stemmer(Xapian::Stem("english"));
        tg.set_stopper(stopper_.get());
        tg.set_stemming_strategy(Xapian::TermGenerator::STEM_SOME);
        for (const KeywordDoc& d : docs) {
            Xapian::Document doc;
            tg.set_document(doc);
            tg.index_text(d.text);
            std::string q = id_term(d.chunk_id);
            doc.add_boolean_term(q);
            doc.add_boolean_term(collection_term(d.collection));
            doc.add_boolean_term(document_term(d.document_id));
            doc.set_data(std::to_string(d.chunk_id));
            writer_->replace_document(q, doc);
        }
    } catch (const Xapian::Error& e) {
        rethrow_xapian(e, "add");
    }
}

void KeywordIndex::remove(const std::vector<int64_t>& chunk_ids) {
    std::lock_guard lock(mu_);
    open_writer();
    try {
        for (int64_t id : chunk_ids) writer_->delete_document(id_term(id));
    } catch (const Xapian::Error& e) {
        rethrow_xapian(e, "remove");
    }
}

void KeywordIndex::commit(int64_t applied_seq) {
    std::lock_guard lock(mu_);
    open_writer();
    try {
        writer_->set_metadata(kAppliedSeqKey, std::to_string(applied_seq));
        writer_->commit();
    } catch (const Xapian::Error& e) {
        rethrow_xapian(e, "commit");
    }
}

std::vector<KeywordHit> KeywordIndex::search(const std::string& query, int k,
                                             const IndexFilter& filter) {
    std::vector<KeywordHit> hits;
    if (k <= 0) return hits;
    std::lock_guard lock(mu_);
    for (int attempt = 0;; ++attempt) {
        try {
            if (!writer_ && !std::filesystem::exists(dir_)) return hits;  // never built
            Xapian::Database& db = reader();
            Xapian::QueryParser qp;
            qp.set_stemmer(Xapian::Stem("english"));
            qp.set_stopper(stopper_.get());
            qp.set_stemming_strategy(Xapian::QueryParser::STEM_SOME);
            qp.set_default_op(Xapian::Query::OP_OR);
            qp.set_database(db);
            unsigned flags = Xapian::QueryParser::FLAG_PHRASE | Xapian::QueryParser::FLAG_BOOLEAN |
                             Xapian::QueryParser::FLAG_LOVEHATE | Xapian::QueryParser::FLAG_DEFAULT;
            Xapian::Query q = qp.parse_query(query, flags);
            if (q.empty()) return hits;  // empty, or nothing but punctuation
            // Xapian keeps stop words when the query has nothing else ("The" would then
            // match every chunk with "the" in it): such a query asks for nothing.
            bool only_stop_words = true;
            for (auto t = q.get_unique_terms_begin(); t != q.get_unique_terms_end(); ++t) {
                std::string term = *t;
                if (!term.empty() && term[0] == 'Z') term.erase(0, 1);
                if (!(*stopper_)(term)) {
                    only_stop_words = false;
                    break;
                }
            }
            if (only_stop_words) return hits;
            if (!filter.collection.empty()) {
                q = Xapian::Query(Xapian::Query::OP_FILTER, q,
                                  Xapian::Query(collection_term(filter.collection)));
            }
            if (filter.document_id != 0) {
                q = Xapian::Query(Xapian::Query::OP_FILTER, q,
                                  Xapian::Query(document_term(filter.document_id)));
            }
            Xapian::Enquire enq(db);
            enq.set_weighting_scheme(Xapian::BM25Weight());
            enq.set_query(q);
            Xapian::MSet ms = enq.get_mset(0, Xapian::doccount(k));
            hits.reserve(ms.size());
            for (Xapian::MSetIterator it = ms.begin(); it != ms.end(); ++it) {
                std::string data = it.get_document().get_data();
                char* end = nullptr;
                long long id = std::strtoll(data.c_str(), &end, 10);
                if (data.empty() || *end != '\0') continue;  // not one of ours
                hits.push_back({id, it.get_weight()});
            }
            return hits;
        } catch (const Xapian::DatabaseModifiedError& e) {
            // Another process committed while we read: reopen and retry.
            hits.clear();
            if (attempt >= 3) rethrow_xapian(e, "search");
            if (reader_) reader_->reopen();
        } catch (const Xapian::DatabaseOpeningError& e) {
            if (!writer_) {
                reader_.reset();
                return hits;  // no database yet (or being recreated): nothing to find
            }
            rethrow_xapian(e, "search");
        } catch (const Xapian::Error& e) {
            rethrow_xapian(e, "search");
        }
    }
}

int64_t KeywordIndex::doc_count() {
    std::lock_guard lock(mu_);
    try {
        if (!writer_ && !std::filesystem::exists(dir_)) return 0;
        return int64_t(reader().get_doccount());
    } catch (const Xapian::DatabaseOpeningError&) {
        reader_.reset();
        return 0;
    } catch (const Xapian::Error& e) {
        rethrow_xapian(e, "count");
    }
}

}  // namespace ragd
