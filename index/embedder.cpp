// The built-in embedder "hashed-ngram-v2": no weights, deterministic everywhere.
//
//   text -> ASCII-lowercase -> words (runs of [a-z0-9] and UTF-8 multibyte bytes), stop
//             words (is_stop_word) dropped
//   features: word unigrams (weight 1.0) and bigrams of neighbouring words (0.7), both on
//             English (Snowball) stems; character 3..5-grams of
//             "<word>" counted in code points (0.25 each; words over 48 code points get
//             none: they are hashes, ids or junk)
//   each feature: 64-bit hash (FNV-1a + a splitmix64 finish, seeded per kind), term
//             frequency weight kind_weight * (1 + ln tf), scattered into kScatter
//             dimensions with signs, all drawn from the hash (sparse signed random
//             projection)
//   then L2-normalized; a text with no words embeds to the zero vector.
//
// Changing anything here changes every vector: bump the name so indexes get rebuilt.
#include <xapian.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "index/index.h"

namespace ragd {
namespace {

constexpr int kScatter = 4;        // dimensions per feature
constexpr int kMaxGramWord = 48;   // code points; longer words get no char n-grams
constexpr uint64_t kKindMask = 3;  // low bits of a feature hash hold its kind
constexpr uint64_t kWord = 0, kBigram = 1, kChar = 2;
constexpr float kKindWeight[4] = {1.0f, 0.7f, 0.25f, 0.0f};

constexpr uint64_t kSeedWord = 0x8f14c2a1e9b3d507ull;
constexpr uint64_t kSeedBigram = 0x2d6a91f3c47e0b58ull;
constexpr uint64_t kSeedChar = 0xc3b1e5f70a29d864ull;
constexpr uint64_t kSeedScatter = 0x5bd1e9955bd1e995ull;

// splitmix64's finalizer: a bijective 64-bit mix.
inline uint64_t mix64(uint64_t x) {
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    x ^= x >> 31;
    return x;
}

inline uint64_t hash_bytes(const char* p, size_t n, uint64_t seed) {
    uint64_t h = 0xcbf29ce484222325ull ^ seed;  // FNV-1a, seeded basis
    for (size_t i = 0; i < n; ++i) {
        h ^= static_cast<unsigned char>(p[i]);
        h *= 0x100000001b3ull;
    }
    return mix64(h ^ n);
}

inline uint64_t with_kind(uint64_t h, uint64_t kind) {
    return (h & ~kKindMask) | kind;
}

inline bool is_word_byte(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c >= 0x80;
}

struct Word {
    uint32_t start, len;
};

class HashedEmbedder : public Embedder {
  public:
    explicit HashedEmbedder(int dim) : dim_(dim) {
        for (int tf = 1; tf < kTfTable; ++tf) tf_weight_[tf] = 1.0f + std::log(float(tf));
    }
    std::string name() const override { return "hashed-ngram-v2"; }
    int dim() const override { return dim_; }

    void embed(const std::vector<std::string>& texts, float* out) const override {
        std::string low;               // lowercased text
        std::vector<Word> words;       // spans into low
        std::vector<uint64_t> keys;    // feature table: hash (kind in the low bits), 0 = empty
        std::vector<uint32_t> counts;  // term frequency per table slot
        std::vector<uint32_t> order;   // occupied slots in first-seen order
        std::vector<uint32_t> cp;      // code point offsets of "<word>"
        std::string gram;              // "<word>"
        std::string stem;
        Xapian::Stem stemmer("english");  // per call: a Stem must not be shared by threads
        for (size_t t = 0; t < texts.size(); ++t) {
            const std::string& text = texts[t];
            float* v = out + t * size_t(dim_);
            std::fill(v, v + dim_, 0.0f);

            low.resize(text.size());
            for (size_t i = 0; i < text.size(); ++i) {
                unsigned char c = static_cast<unsigned char>(text[i]);
                low[i] = static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c);
            }
            words.clear();
            for (size_t i = 0; i < low.size();) {
                if (!is_word_byte(static_cast<unsigned char>(low[i]))) {
                    ++i;
                    continue;
                }
                size_t j = i;
                while (j < low.size() && is_word_byte(static_cast<unsigned char>(low[j]))) ++j;
                words.push_back({uint32_t(i), uint32_t(j - i)});
                i = j;
            }
            if (words.empty()) continue;

            // Count features in an open-addressing table (key 0 = empty), then weight them
            // in first-seen order, which depends only on the text: deterministic.
            size_t bound = 2 * words.size();
            for (const Word& w : words) bound += 3 * (size_t(w.len) + 2);
            size_t cap = 16;
            while (cap < 2 * bound) cap <<= 1;
            keys.assign(cap, 0);
            counts.resize(cap);
            order.clear();
            const size_t mask = cap - 1;
            auto count = [&](uint64_t h) {
                if (h == 0) h = kKindMask + 1;
                size_t i = size_t(h >> 2) & mask;
                while (keys[i] != 0 && keys[i] != h) i = (i + 1) & mask;
                if (keys[i] == 0) {
                    keys[i] = h;
                    counts[i] = 0;
                    order.push_back(uint32_t(i));
                }
                ++counts[i];
            };
            uint64_t prev = 0;
            bool have_prev = false;
            for (size_t w = 0; w < words.size(); ++w) {
                const char* p = low.data() + words[w].start;
                size_t n = words[w].len;
                // Stop words say little about meaning and would make every text alike;
                // bigrams join the content words on either side of them.
                if (is_stop_word(std::string_view(p, n))) continue;
                // Words and bigrams by stem ("governs", "governing" -> "govern"); the
                // character n-grams below keep the surface form.
                stem = stemmer(std::string(p, n));
                uint64_t h = hash_bytes(stem.data(), stem.size(), kSeedWord);
                count(with_kind(h, kWord));
                if (have_prev)
                    count(with_kind(mix64(prev ^ ((h << 17) | (h >> 47)) ^ kSeedBigram), kBigram));
                prev = h;
                have_prev = true;
                add_char_grams(p, n, &gram, &cp, count);
            }
            if (order.empty()) continue;  // only stop words: the zero vector
            for (uint32_t i : order) {
                uint32_t tf = counts[i];
                float w = kKindWeight[keys[i] & kKindMask] *
                          (tf < uint32_t(kTfTable) ? tf_weight_[tf] : 1.0f + std::log(float(tf)));
                scatter(keys[i], w, v);
            }

            double ss = 0;
            for (int d = 0; d < dim_; ++d) ss += double(v[d]) * v[d];
            if (ss > 0) {
                float inv = float(1.0 / std::sqrt(ss));
                for (int d = 0; d < dim_; ++d) v[d] *= inv;
            }
        }
    }

  private:
    static constexpr int kTfTable = 64;

    // Character 3..5-grams (in code points) of "<word>".
    template <typename CountFn>
    static void add_char_grams(const char* p, size_t n, std::string* gram,
                               std::vector<uint32_t>* cp, CountFn& count) {
        gram->assign(1, '<');
        gram->append(p, n);
        gram->push_back('>');
        cp->clear();
        for (size_t i = 0; i < gram->size(); ++i) {
            if ((static_cast<unsigned char>((*gram)[i]) & 0xC0) != 0x80) cp->push_back(uint32_t(i));
        }
        int ncp = int(cp->size());
        if (ncp - 2 > kMaxGramWord) return;
        cp->push_back(uint32_t(gram->size()));
        for (int g = 3; g <= 5; ++g) {
            for (int s = 0; s + g <= ncp; ++s) {
                uint32_t a = (*cp)[s], b = (*cp)[s + g];
                count(with_kind(hash_bytes(gram->data() + a, b - a, kSeedChar), kChar));
            }
        }
    }

    // Adds +-w to kScatter dimensions chosen by the feature hash.
    void scatter(uint64_t h, float w, float* v) const {
        for (int j = 0; j < kScatter; ++j) {
            uint64_t x = mix64(h + kSeedScatter * uint64_t(j + 1));
            uint32_t d = uint32_t(((x >> 32) * uint64_t(dim_)) >> 32);
            v[d] += (x & 1) ? w : -w;
        }
    }

    int dim_;
    float tf_weight_[kTfTable] = {};
};

}  // namespace

std::unique_ptr<Embedder> make_hashed_embedder(int dim) {
    if (dim <= 0 || dim > 65536) {
        throw Error(Error::Code::InvalidArgument,
                    "embedding dimension must be in 1..65536, got " + std::to_string(dim));
    }
    return std::make_unique<HashedEmbedder>(dim);
}

}  // namespace ragd
