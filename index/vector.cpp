// VectorIndex: FAISS HNSW over chunk embeddings (contract in internal.h).
//
// In memory: IndexIDMap2 (external id = chunk id) around IndexHNSWFlat (M = 32, inner
// product, efConstruction 80). HNSW cannot delete, so removed ids become tombstones: the
// set of removed chunk ids (persisted) and a byte per internal (FAISS storage) id
// (derived). Searches skip tombstones with an IDSelector over internal ids, which FAISS
// 1.7.3's IndexHNSW honours through SearchParametersHNSW::sel (IndexIDMap2 itself rejects
// search parameters there, so we search the inner HNSW and translate ids with id_map).
// When tombstones pass a quarter of the stored vectors, compaction rebuilds the graph
// from the live vectors read back from the flat storage (no re-embedding).
//
// Distances: Debian's libfaiss is built for baseline x86-64, so its inner product is a
// scalar loop (~1500 cycles at d = 384). The flat storage is therefore our FastFlatIP, an
// IndexFlatIP whose DistanceComputer calls dot() below (AVX2+FMA when the CPU has it,
// chosen at run time; a portable 8-accumulator loop otherwise). It serializes as a plain
// IndexFlatIP ("IxFI") and is swapped back in after loading.
//
// Filtered search (collection/document): the caller passes the allowed chunk ids. A
// small set (<= brute_max, default 20000, or under 1/16 of the live vectors) is scored
// exactly by brute force over the stored vectors; a large one goes through HNSW with a
// selector that also enforces the allow-set and a wider efSearch; if HNSW returns fewer
// than k hits, brute force answers instead, so a filter never loses results.
//
// HNSW vs IVF-PQ: HNSW-Flat costs about 4*d bytes of vector plus ~2*M*4 bytes of links
// per vector: ~1.8 KB at d = 384, M = 32, i.e. ~1.8 GB per million chunks. Past a few
// million chunks (say > 2M, ~4 GB), an IVF-PQ index (e.g. "IVF4096,PQ48", trained on a
// sample of ~100k vectors, nprobe ~ 32) keeps ~50-100 bytes per vector at some recall
// cost (re-rank the top candidates by re-embedding their text from SQLite). IVF-PQ is
// NOT implemented yet: ragd always builds HNSW-Flat, which is right for the collections
// it targets today (up to ~1-2M chunks on a workstation).
//
// File DATA_DIR/vectors.faiss ("RAGDVEC1" container), integers little-endian:
//   char[8]  magic "RAGDVEC1"
//   i64      applied_seq        last index_ops seq applied
//   u32      name_len           <= 1024
//   byte[]   embedder name
//   u32      dim                1..65536
//   u64      n_tombstones       then n_tombstones x i64 chunk ids (sorted)
//   u64      faiss_len          then faiss_len bytes of faiss::write_index output
//   u64      checksum           of every byte before it (word-wise multiply-xorshift)
// Written whole to "vectors.faiss.tmp", fsynced, renamed over the old file, directory
// fsynced. On load every length is checked against the file size and the checksum is
// verified before FAISS parses anything; any failure means "missing, rebuild".
#include <faiss/IndexFlat.h>
#include <faiss/IndexHNSW.h>
#include <faiss/IndexIDMap.h>
#include <faiss/impl/FaissException.h>
#include <faiss/impl/IDSelector.h>
#include <faiss/impl/io.h>
#include <faiss/index_io.h>
#include <fcntl.h>
#include <omp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "index/internal.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

static_assert(std::endian::native == std::endian::little, "the vector file is little-endian");

namespace ragd {

using faiss_idx = faiss::Index::idx_t;

namespace {

constexpr char kMagic[8] = {'R', 'A', 'G', 'D', 'V', 'E', 'C', '1'};
constexpr int kHnswM = 32;
constexpr int kEfConstruction = 80;
constexpr uint32_t kMaxNameLen = 1024;

}  // namespace

uint64_t vector_file_checksum(const uint8_t* p, size_t n) {
    uint64_t h = 0x243f6a8885a308d3ull ^ n;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        std::memcpy(&w, p + i, 8);
        h = (h ^ w) * 0x9e3779b97f4a7c15ull;
        h ^= h >> 29;
    }
    for (; i < n; ++i) h = (h ^ p[i]) * 0x100000001b3ull;
    h ^= h >> 31;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 27;
    return h;
}

namespace {

template <typename T>
void put(std::vector<uint8_t>* out, T v) {
    const uint8_t* p = reinterpret_cast<const uint8_t*>(&v);
    out->insert(out->end(), p, p + sizeof v);
}

// Reads fixed-size fields from a byte range, failing (returning false) past its end.
struct Cursor {
    const uint8_t* p;
    size_t left;
    template <typename T>
    bool get(T* v) {
        if (left < sizeof(T)) return false;
        std::memcpy(v, p, sizeof(T));
        p += sizeof(T);
        left -= sizeof(T);
        return true;
    }
    bool skip(size_t n) {
        if (left < n) return false;
        p += n;
        left -= n;
        return true;
    }
};

// faiss::IOReader over bytes we already hold (no copy).
struct MemReader : faiss::IOReader {
    const uint8_t* p;
    size_t left;
    MemReader(const uint8_t* data, size_t n) : p(data), left(n) { name = "vectors.faiss"; }
    size_t operator()(void* ptr, size_t size, size_t nitems) override {
        if (size == 0) return 0;
        size_t n = std::min(nitems, left / size);
        if (n == 0) return 0;  // (FAISS reads empty vectors into a null pointer)
        std::memcpy(ptr, p, n * size);
        p += n * size;
        left -= n * size;
        return n;
    }
};

// Accepts internal ids that are not dead and, if allow is set, are allowed.
struct LiveSelector : faiss::IDSelector {
    const uint8_t* dead;
    const uint8_t* allow;  // may be null
    LiveSelector(const uint8_t* d, const uint8_t* a) : dead(d), allow(a) {}
    bool is_member(faiss_idx i) const override { return !dead[i] && (!allow || allow[i]); }
};

void write_all(int fd, const uint8_t* p, size_t n, const std::string& path) {
    while (n > 0) {
        ssize_t w = ::write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) throw Error(Error::Code::IO, "write " + path + ": " + std::strerror(errno));
        p += w;
        n -= size_t(w);
    }
}

bool read_whole(const std::string& path, std::vector<uint8_t>* out, bool* missing) {
    *missing = false;
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) {
            *missing = true;
            return false;
        }
        throw Error(Error::Code::IO, "open " + path + ": " + std::strerror(errno));
    }
    struct stat st;
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        ::close(fd);
        return false;
    }
    out->resize(size_t(st.st_size));
    size_t got = 0;
    while (got < out->size()) {
        ssize_t r = ::read(fd, out->data() + got, out->size() - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        got += size_t(r);
    }
    ::close(fd);
    out->resize(got);
    return true;
}

std::string dir_of(const std::string& path) {
    size_t slash = path.rfind('/');
    if (slash == std::string::npos) return ".";
    if (slash == 0) return "/";
    return path.substr(0, slash);
}

}  // namespace

// ---- dot product kernels --------------------------------------------------------------

float dot_generic(const float* a, const float* b, size_t n) {
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        for (int j = 0; j < 8; ++j) acc[j] += a[i + j] * b[i + j];
    }
    float s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (; i < n; ++i) s += a[i] * b[i];
    return s;
}

#if defined(__x86_64__) || defined(__i386__)
__attribute__((target("avx2,fma"))) static float dot_avx2(const float* a, const float* b,
                                                          size_t n) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    __m256 s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
        s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), s2);
        s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), s3);
    }
    for (; i + 8 <= n; i += 8) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    }
    __m256 s = _mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3));
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    float r = _mm_cvtss_f32(h);
    for (; i < n; ++i) r += a[i] * b[i];
    return r;
}

static DotFn pick_dot() {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return dot_avx2;
    return dot_generic;
}
#else
static DotFn pick_dot() {
    return dot_generic;
}
#endif

const DotFn dot = pick_dot();

namespace {

// The HNSW storage: an IndexFlatIP whose distances use dot().
struct FastIPComputer : faiss::FlatCodesDistanceComputer {
    const float* xb;
    size_t d;
    const float* q = nullptr;
    FastIPComputer(const float* xb_, size_t d_)
        : faiss::FlatCodesDistanceComputer(reinterpret_cast<const uint8_t*>(xb_),
                                           d_ * sizeof(float)),
          xb(xb_),
          d(d_) {}
    void set_query(const float* x) override { q = x; }
    float distance_to_code(const uint8_t* code) override {
        return dot(q, reinterpret_cast<const float*>(code), d);
    }
    float symmetric_dis(idx_t i, idx_t j) override {
        return dot(xb + size_t(i) * d, xb + size_t(j) * d, d);
    }
};

struct FastFlatIP : faiss::IndexFlatIP {
    explicit FastFlatIP(idx_t d) : faiss::IndexFlatIP(d) {}
    faiss::FlatCodesDistanceComputer* get_FlatCodesDistanceComputer() const override {
        return new FastIPComputer(get_xb(), size_t(d));
    }
};

// Replaces an HNSW's flat storage with a FastFlatIP holding the same vectors.
void use_fast_storage(faiss::IndexHNSWFlat* hnsw) {
    auto* old = static_cast<faiss::IndexFlat*>(hnsw->storage);
    auto* fast = new FastFlatIP(old->d);
    fast->codes.swap(old->codes);
    fast->ntotal = old->ntotal;
    if (hnsw->own_fields) delete old;
    hnsw->storage = fast;
    hnsw->own_fields = true;
}

}  // namespace

struct VectorIndex::State {
    std::unique_ptr<faiss::IndexIDMap2> index;  // owns its HNSW
    faiss::IndexHNSWFlat* hnsw = nullptr;       // index->index
    std::unordered_set<int64_t> tomb;           // removed chunk ids still stored
    std::vector<uint8_t> dead;                  // (ntotal) 1 = tombstoned, by internal id
    std::optional<int64_t> applied;

    const float* xb() const {
        return static_cast<const faiss::IndexFlat*>(hnsw->storage)->get_xb();
    }
};

namespace {

std::unique_ptr<VectorIndex::State> empty_state(int dim, int ef_search) {
    auto st = std::make_unique<VectorIndex::State>();
    auto hnsw = std::make_unique<faiss::IndexHNSWFlat>(dim, kHnswM, faiss::METRIC_INNER_PRODUCT);
    hnsw->hnsw.efConstruction = kEfConstruction;
    hnsw->hnsw.efSearch = ef_search;
    use_fast_storage(hnsw.get());
    st->hnsw = hnsw.get();
    st->index = std::make_unique<faiss::IndexIDMap2>(hnsw.release());
    st->index->own_fields = true;
    return st;
}

// FAISS trusts the graph it reads; a checksum-valid but inconsistent file (a bug, a
// hand-edited file) must still not crash a later search, so check every link.
bool hnsw_consistent(const faiss::IndexHNSWFlat& index, std::string* why) {
    const faiss::HNSW& h = index.hnsw;
    size_t n = size_t(index.ntotal);
    const auto* flat = dynamic_cast<const faiss::IndexFlat*>(index.storage);
    if (!flat || flat->ntotal != index.ntotal || flat->d != index.d ||
        flat->codes.size() != n * size_t(index.d) * sizeof(float)) {
        *why = "flat storage does not match the graph";
        return false;
    }
    const std::vector<int>& cum = h.cum_nneighbor_per_level;
    if (h.levels.size() != n || h.offsets.size() != n + 1 || h.offsets[0] != 0 || cum.empty() ||
        cum[0] != 0) {
        *why = "bad HNSW tables";
        return false;
    }
    for (size_t l = 1; l < cum.size(); ++l) {
        if (cum[l] < cum[l - 1]) {
            *why = "bad HNSW level table";
            return false;
        }
    }
    for (size_t i = 0; i < n; ++i) {
        int lv = h.levels[i];
        if (lv < 1 || size_t(lv) >= cum.size() ||
            h.offsets[i + 1] != h.offsets[i] + size_t(cum[size_t(lv)])) {
            *why = "bad HNSW levels or offsets";
            return false;
        }
    }
    if (h.neighbors.size() != h.offsets[n]) {
        *why = "bad HNSW neighbor count";
        return false;
    }
    for (faiss::HNSW::storage_idx_t v : h.neighbors) {
        if (v < -1 || v >= faiss::HNSW::storage_idx_t(n)) {
            *why = "HNSW link out of range";
            return false;
        }
    }
    if (n == 0 ? h.entry_point != -1
               : (h.entry_point < 0 || size_t(h.entry_point) >= n ||
                  h.max_level != h.levels[size_t(h.entry_point)] - 1)) {
        *why = "bad HNSW entry point";
        return false;
    }
    return true;
}

// Parses a container; returns null (with *why set) if anything is off.
std::unique_ptr<VectorIndex::State> decode(const std::vector<uint8_t>& file,
                                           const std::string& want_name, int want_dim,
                                           int ef_search, std::string* why) {
    if (file.size() < sizeof kMagic + 8 || std::memcmp(file.data(), kMagic, 8) != 0) {
        *why = "bad magic or too short";
        return nullptr;
    }
    size_t body = file.size() - 8;
    uint64_t sum;
    std::memcpy(&sum, file.data() + body, 8);
    if (sum != vector_file_checksum(file.data(), body)) {
        *why = "checksum mismatch (truncated or damaged)";
        return nullptr;
    }
    Cursor c{file.data() + 8, body - 8};
    int64_t applied;
    uint32_t name_len, dim;
    uint64_t n_tomb, faiss_len;
    if (!c.get(&applied) || applied < 0 || !c.get(&name_len) || name_len > kMaxNameLen ||
        c.left < name_len) {
        *why = "bad header";
        return nullptr;
    }
    std::string name(reinterpret_cast<const char*>(c.p), name_len);
    c.skip(name_len);
    if (!c.get(&dim) || dim == 0 || dim > 65536 || !c.get(&n_tomb) || n_tomb > c.left / 8) {
        *why = "bad header";
        return nullptr;
    }
    if (name != want_name || int(dim) != want_dim) {
        *why = "built by embedder " + name + "/" + std::to_string(dim) + ", now " + want_name +
               "/" + std::to_string(want_dim);
        return nullptr;
    }
    std::vector<int64_t> tomb(n_tomb);
    for (uint64_t i = 0; i < n_tomb; ++i) c.get(&tomb[i]);
    if (!c.get(&faiss_len) || faiss_len != c.left) {
        *why = "bad FAISS length";
        return nullptr;
    }

    std::unique_ptr<faiss::Index> raw;
    try {
        MemReader r(c.p, c.left);
        raw.reset(faiss::read_index(&r));
    } catch (const std::exception& e) {
        *why = std::string("FAISS: ") + e.what();
        return nullptr;
    }
    auto* map = dynamic_cast<faiss::IndexIDMap2*>(raw.get());
    auto* hnsw = map ? dynamic_cast<faiss::IndexHNSWFlat*>(map->index) : nullptr;
    if (!hnsw || !dynamic_cast<const faiss::IndexFlat*>(hnsw->storage) || map->d != int(dim) ||
        hnsw->d != int(dim) || hnsw->metric_type != faiss::METRIC_INNER_PRODUCT ||
        map->id_map.size() != size_t(map->ntotal) || hnsw->ntotal != map->ntotal ||
        map->rev_map.size() != map->id_map.size()) {
        *why = "unexpected FAISS index type or inconsistent id map";
        return nullptr;
    }
    if (!hnsw_consistent(*hnsw, why)) return nullptr;
    for (size_t i = 0; i < map->id_map.size(); ++i) {
        auto it = map->rev_map.find(map->id_map[i]);
        if (it == map->rev_map.end() || it->second != faiss_idx(i)) {
            *why = "inconsistent id map";
            return nullptr;
        }
    }
    auto st = std::make_unique<VectorIndex::State>();
    raw.release();
    st->index.reset(map);
    st->index->own_fields = true;
    st->hnsw = hnsw;
    // Scalars FAISS reads back but we own: never trust them from the file.
    st->hnsw->hnsw.efSearch = ef_search;
    st->hnsw->hnsw.efConstruction = kEfConstruction;
    st->hnsw->hnsw.upper_beam = 1;
    st->hnsw->hnsw.search_bounded_queue = true;
    use_fast_storage(hnsw);
    st->dead.assign(size_t(map->ntotal), 0);
    for (int64_t id : tomb) {
        auto it = map->rev_map.find(id);
        if (it == map->rev_map.end()) {
            *why = "tombstone for an id not stored";
            return nullptr;
        }
        st->dead[size_t(it->second)] = 1;
        st->tomb.insert(id);
    }
    st->applied = applied;
    return st;
}

}  // namespace

VectorIndex::VectorIndex(std::string path, std::string embedder_name, int dim, int ef_search)
    : path_(std::move(path)),
      embedder_name_(std::move(embedder_name)),
      dim_(dim),
      ef_search_(std::max(ef_search, 1)),
      st_(empty_state(dim_, ef_search_)) {}

VectorIndex::~VectorIndex() = default;

void VectorIndex::set_path(std::string path) {
    std::unique_lock lock(mu_);
    path_ = std::move(path);
}

bool read_vector_header(const std::string& path, std::string* name, int* dim) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    uint8_t head[8 + 8 + 4 + kMaxNameLen + 4];
    size_t got = 0;
    while (got < sizeof head) {
        ssize_t r = ::read(fd, head + got, sizeof head - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        got += size_t(r);
    }
    ::close(fd);
    Cursor c{head, got};
    char magic[8];
    int64_t applied;
    uint32_t name_len, d;
    if (!c.get(&magic) || std::memcmp(magic, kMagic, 8) != 0 || !c.get(&applied) ||
        !c.get(&name_len) || name_len > kMaxNameLen || c.left < name_len)
        return false;
    name->assign(reinterpret_cast<const char*>(c.p), name_len);
    c.skip(name_len);
    if (!c.get(&d) || d == 0 || d > 65536) return false;
    *dim = int(d);
    return true;
}

bool VectorIndex::load() {
    std::vector<uint8_t> file;
    bool missing = false;
    std::unique_ptr<State> st;
    std::string why = "not a regular file";
    if (read_whole(path_, &file, &missing)) {
        st = decode(file, embedder_name_, dim_, ef_search_, &why);
    }
    std::unique_lock lock(mu_);
    if (!st) {
        if (!missing) {
            std::fprintf(stderr, "ragd: vector index %s unusable (%s), rebuilding\n", path_.c_str(),
                         why.c_str());
        }
        st_ = empty_state(dim_, ef_search_);
        return false;
    }
    st_ = std::move(st);
    return true;
}

void VectorIndex::reset() {
    std::unique_lock lock(mu_);
    st_ = empty_state(dim_, ef_search_);
}

std::optional<int64_t> VectorIndex::applied_seq() const {
    std::shared_lock lock(mu_);
    return st_->applied;
}

void VectorIndex::set_applied_seq(int64_t seq) {
    std::unique_lock lock(mu_);
    st_->applied = seq;
}

bool VectorIndex::contains(int64_t id) const {
    std::shared_lock lock(mu_);
    return st_->index->rev_map.count(id) && !st_->tomb.count(id);
}

int64_t VectorIndex::stored() const {
    std::shared_lock lock(mu_);
    return st_->index->ntotal;
}

int64_t VectorIndex::tombstones() const {
    std::shared_lock lock(mu_);
    return int64_t(st_->tomb.size());
}

int64_t VectorIndex::live() const {
    std::shared_lock lock(mu_);
    return st_->index->ntotal - int64_t(st_->tomb.size());
}

void VectorIndex::add(int64_t n, const int64_t* ids, const float* vectors) {
    std::unique_lock lock(mu_);
    std::vector<faiss_idx> new_ids;
    std::vector<float> xs;
    std::unordered_set<int64_t> batch;
    bool revive = false;
    for (int64_t i = 0; i < n; ++i) {
        int64_t id = ids[i];
        if (st_->index->rev_map.count(id)) {
            if (!st_->tomb.count(id)) continue;  // already live: replayed op
            revive = true;  // an id removed, then added again: drop the stale copy first
        }
        if (!batch.insert(id).second) continue;
        new_ids.push_back(id);
        xs.insert(xs.end(), vectors + i * dim_, vectors + (i + 1) * dim_);
    }
    if (new_ids.empty()) return;
    if (revive) compact_locked();
    try {
        st_->index->add_with_ids(faiss_idx(new_ids.size()), xs.data(), new_ids.data());
    } catch (const std::exception& e) {
        throw Error(Error::Code::Internal, std::string("vector index: add: ") + e.what());
    }
    st_->dead.resize(size_t(st_->index->ntotal), 0);
}

void VectorIndex::remove(const std::vector<int64_t>& ids) {
    std::unique_lock lock(mu_);
    for (int64_t id : ids) {
        auto it = st_->index->rev_map.find(id);
        if (it == st_->index->rev_map.end()) continue;
        if (st_->tomb.insert(id).second) st_->dead[size_t(it->second)] = 1;
    }
}

bool VectorIndex::needs_compaction() const {
    int64_t t = int64_t(st_->tomb.size());
    return t > 0 && (t == st_->index->ntotal || (t * 4 > st_->index->ntotal && t >= compact_min));
}

void VectorIndex::compact() {
    std::unique_lock lock(mu_);
    compact_locked();
}

void VectorIndex::compact_locked() {
    if (st_->tomb.empty()) return;
    State& old = *st_;
    size_t n = size_t(old.index->ntotal);
    std::vector<faiss_idx> ids;
    std::vector<float> xs;
    ids.reserve(n - old.tomb.size());
    xs.reserve((n - old.tomb.size()) * size_t(dim_));
    const float* xb = old.xb();
    for (size_t i = 0; i < n; ++i) {
        if (old.dead[i]) continue;
        ids.push_back(old.index->id_map[i]);
        xs.insert(xs.end(), xb + i * dim_, xb + (i + 1) * dim_);
    }
    std::unique_ptr<State> st = empty_state(dim_, ef_search_);
    try {
        if (!ids.empty()) st->index->add_with_ids(faiss_idx(ids.size()), xs.data(), ids.data());
    } catch (const std::exception& e) {
        throw Error(Error::Code::Internal, std::string("vector index: compact: ") + e.what());
    }
    st->dead.assign(ids.size(), 0);
    st->applied = old.applied;
    st_ = std::move(st);
}

void VectorIndex::save() {
    {
        std::unique_lock lock(mu_);
        if (!st_->applied) throw Error(Error::Code::Internal, "vector index saved before sync");
        if (needs_compaction()) compact_locked();
    }
    faiss::VectorIOWriter w;
    size_t len_at;
    {
        std::shared_lock lock(mu_);
        std::vector<uint8_t>& out = w.data;
        out.insert(out.end(), kMagic, kMagic + 8);
        put(&out, int64_t(*st_->applied));
        put(&out, uint32_t(embedder_name_.size()));
        out.insert(out.end(), embedder_name_.begin(), embedder_name_.end());
        put(&out, uint32_t(dim_));
        std::vector<int64_t> tomb(st_->tomb.begin(), st_->tomb.end());
        std::sort(tomb.begin(), tomb.end());
        put(&out, uint64_t(tomb.size()));
        for (int64_t id : tomb) put(&out, id);
        len_at = out.size();
        put(&out, uint64_t(0));  // faiss_len, patched below
        try {
            faiss::write_index(st_->index.get(), &w);
        } catch (const std::exception& e) {
            throw Error(Error::Code::Internal, std::string("vector index: write: ") + e.what());
        }
    }
    std::vector<uint8_t>& out = w.data;
    uint64_t faiss_len = out.size() - len_at - 8;
    std::memcpy(out.data() + len_at, &faiss_len, 8);
    put(&out, vector_file_checksum(out.data(), out.size()));

    std::string tmp = path_ + ".tmp";
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) throw Error(Error::Code::IO, "open " + tmp + ": " + std::strerror(errno));
    try {
        write_all(fd, out.data(), out.size(), tmp);
        if (::fsync(fd) != 0)
            throw Error(Error::Code::IO, "fsync " + tmp + ": " + std::strerror(errno));
    } catch (...) {
        ::close(fd);
        ::unlink(tmp.c_str());
        throw;
    }
    ::close(fd);
    if (::rename(tmp.c_str(), path_.c_str()) != 0) {
        int err = errno;
        ::unlink(tmp.c_str());
        throw Error(Error::Code::IO, "rename " + tmp + ": " + std::strerror(err));
    }
    std::string dir = dir_of(path_);
    int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        ::fsync(dfd);
        ::close(dfd);
    }
}

namespace {

// Sets the calling thread's OpenMP team size for a scope. FAISS parallelizes a search over
// its queries: with one query there is nothing to share, and the fork/join alone cost
// about 10 ms per query on a busy 2-core machine (1.1 ms hybrid p50 with one thread vs
// 12 ms with two at 100k chunks, bench/README.md). Builds keep every core.
class OmpThreads {
  public:
    explicit OmpThreads(int n) : saved_(omp_get_max_threads()) { omp_set_num_threads(n); }
    ~OmpThreads() { omp_set_num_threads(saved_); }
    OmpThreads(const OmpThreads&) = delete;
    OmpThreads& operator=(const OmpThreads&) = delete;

  private:
    int saved_;
};

}  // namespace

std::vector<VectorHit> VectorIndex::search(const float* query, int k,
                                           const std::vector<int64_t>* allowed) const {
    OmpThreads single(1);
    std::vector<VectorHit> hits;
    std::shared_lock lock(mu_);
    const State& st = *st_;
    int64_t live = st.index->ntotal - int64_t(st.tomb.size());
    if (k <= 0 || live <= 0) return hits;

    // Exact scoring of the given internal ids; keeps the best k.
    auto brute = [&](const std::vector<faiss_idx>& internal) {
        std::vector<std::pair<float, int64_t>> scored;
        scored.reserve(internal.size());
        const float* xb = st.xb();
        for (faiss_idx i : internal) {
            float s = dot(query, xb + size_t(i) * dim_, size_t(dim_));
            scored.push_back({s, st.index->id_map[size_t(i)]});
        }
        size_t m = std::min(scored.size(), size_t(k));
        auto better = [](const auto& a, const auto& b) {
            return a.first != b.first ? a.first > b.first : a.second < b.second;
        };
        std::partial_sort(scored.begin(), scored.begin() + m, scored.end(), better);
        std::vector<VectorHit> out;
        out.reserve(m);
        for (size_t j = 0; j < m; ++j) out.push_back({scored[j].second, scored[j].first});
        return out;
    };

    std::vector<uint8_t> allow_bits;
    std::vector<faiss_idx> allowed_internal;
    if (allowed) {
        allowed_internal.reserve(allowed->size());
        for (int64_t id : *allowed) {
            auto it = st.index->rev_map.find(id);
            if (it != st.index->rev_map.end() && !st.dead[size_t(it->second)]) {
                allowed_internal.push_back(it->second);
            }
        }
        std::sort(allowed_internal.begin(), allowed_internal.end());
        allowed_internal.erase(std::unique(allowed_internal.begin(), allowed_internal.end()),
                               allowed_internal.end());
        if (allowed_internal.empty()) return hits;
        if (allowed_internal.size() <= brute_max || int64_t(allowed_internal.size()) * 16 <= live) {
            return brute(allowed_internal);
        }
        allow_bits.assign(size_t(st.index->ntotal), 0);
        for (faiss_idx i : allowed_internal) allow_bits[size_t(i)] = 1;
    }
    int64_t candidates = allowed ? int64_t(allowed_internal.size()) : live;
    int64_t want = std::min<int64_t>(k, candidates);

    faiss::SearchParametersHNSW params;
    params.efSearch = std::max(ef_search_, k);
    if (allowed) {
        int64_t widen = std::clamp<int64_t>(live / candidates, 1, 16);
        params.efSearch = int(std::min<int64_t>(int64_t(params.efSearch) * widen, 4096));
    }
    LiveSelector sel(st.dead.data(), allowed ? allow_bits.data() : nullptr);
    if (allowed || !st.tomb.empty()) params.sel = &sel;
    std::vector<float> dist(static_cast<size_t>(k));
    std::vector<faiss_idx> labels(static_cast<size_t>(k), -1);
    try {
        st.hnsw->search(1, query, k, dist.data(), labels.data(), &params);
    } catch (const std::exception& e) {
        throw Error(Error::Code::Internal, std::string("vector index: search: ") + e.what());
    }
    for (int j = 0; j < k; ++j) {
        faiss_idx i = labels[size_t(j)];
        if (i < 0 || i >= st.index->ntotal || st.dead[size_t(i)]) continue;
        if (allowed && !allow_bits[size_t(i)]) continue;
        hits.push_back({st.index->id_map[size_t(i)], dist[size_t(j)]});
    }
    if (int64_t(hits.size()) < want) {
        // HNSW came back short (a tight filter or many tombstones): answer exactly.
        if (!allowed) {
            allowed_internal.reserve(size_t(live));
            for (faiss_idx i = 0; i < st.index->ntotal; ++i) {
                if (!st.dead[size_t(i)]) allowed_internal.push_back(i);
            }
        }
        return brute(allowed_internal);
    }
    return hits;
}

}  // namespace ragd
