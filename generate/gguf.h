// generate/gguf: a validating reader of GGUF files (versions 2 and 3) over mmap.
//
// A GGUF file is: magic "GGUF", version, n_tensors, n_kv, then n_kv key/value pairs, then
// n_tensors tensor descriptions (name, dims, type, offset), then padding to the alignment
// (general.alignment, default 32), then the tensor data. Every count, length, offset and
// size read from the file is checked against the file size before use, so a truncated or
// hostile file throws ragd::Error(Corrupt or Unsupported) with a message naming the field,
// never crashes and never allocates more than the file could describe.
//
// Nothing is copied: strings, arrays and tensor data are views into the mapping, which
// lives as long as the File (and any copy of it: the mapping is shared).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace ragd::gguf {

// Tensor element types, with the ids GGUF files use. Only the ones the engine reads are
// listed; other ids are reported as Unsupported by name where known.
enum class Type : uint32_t {
    F32 = 0,
    F16 = 1,
    Q4_0 = 2,
    Q4_1 = 3,
    Q5_0 = 6,
    Q5_1 = 7,
    Q8_0 = 8,
    Q8_1 = 9,
    Q2_K = 10,
    Q3_K = 11,
    Q4_K = 12,
    Q5_K = 13,
    Q6_K = 14,
    Q8_K = 15,
    BF16 = 30,
};

struct TypeInfo {
    const char* name;    // "Q4_K"
    int block;           // elements per block (1 for float types)
    size_t block_bytes;  // bytes per block
    bool supported;      // the engine can compute with it
};

// Layout of a type id, or nullptr for an id GGUF does not define.
const TypeInfo* type_info(uint32_t type_id);

// Bytes of a row of n elements of type t; n must be a multiple of the block size.
size_t row_bytes(Type t, int64_t n);

// Metadata value types, with the ids GGUF files use.
enum class ValueType : uint32_t {
    U8 = 0,
    I8 = 1,
    U16 = 2,
    I16 = 3,
    U32 = 4,
    I32 = 5,
    F32 = 6,
    BOOL = 7,
    STRING = 8,
    ARRAY = 9,
    U64 = 10,
    I64 = 11,
    F64 = 12,
};

// One metadata value. Scalars are held decoded; strings and arrays are views into the map.
struct Value {
    ValueType type = ValueType::U8;
    // scalars
    uint64_t u = 0;        // every unsigned integer and bool
    int64_t i = 0;         // every signed integer (and unsigned ones that fit)
    double f = 0;          // F32 and F64
    std::string_view str;  // STRING
    // ARRAY: element type and count; elements start at `data` in the mapping. Arrays of
    // strings are also decoded into `strings` (views) when the file is opened.
    ValueType elem_type = ValueType::U8;
    uint64_t count = 0;
    const uint8_t* data = nullptr;
    std::vector<std::string_view> strings;
};

struct Tensor {
    std::string name;
    Type type = Type::F32;
    int n_dims = 0;
    int64_t ne[4] = {1, 1, 1, 1};   // ne[0] is the row length (contiguous)
    uint64_t offset = 0;            // from the start of the data section
    const uint8_t* data = nullptr;  // in the mapping
    size_t nbytes = 0;

    int64_t n_elements() const { return ne[0] * ne[1] * ne[2] * ne[3]; }
    int64_t n_rows() const { return ne[1] * ne[2] * ne[3]; }
};

// How File::open brings a file's bytes in. Read copies them into anonymous memory (huge
// pages where allowed): a second or so per 4 GB to load, but decode streams weights
// 1.6-2.3x faster than from the page cache's 4 KiB pages (bench/README.md, section 5).
// Auto reads when the file takes at most half of the memory available, else maps.
enum class Load { Auto, Map, Read };

// The mode the --mmap / --no-mmap flags ask for (neither: Auto); both is an
// InvalidArgument error.
Load load_mode(bool mmap_flag, bool no_mmap_flag);

class File {
  public:
    // Opens and validates PATH. Throws ragd::Error: NotFound/IO for the file system,
    // Corrupt for malformed content, Unsupported for a valid file ragd cannot use (a
    // version other than 2 or 3).
    static File open(const std::string& path, Load how = Load::Map);
    // Validates a file image held in memory (tests build hostile files byte by byte).
    // The bytes are copied.
    static File parse(const void* bytes, size_t size);

    uint32_t version() const { return version_; }
    size_t size() const { return size_; }
    size_t alignment() const { return alignment_; }
    size_t data_offset() const { return data_offset_; }  // start of the tensor data section

    // Metadata, in file order, and by key. Lookups return nullptr when absent.
    const std::vector<std::pair<std::string, Value>>& metadata() const { return kv_; }
    const Value* find(const std::string& key) const;

    // Typed getters: the default when absent; throw Corrupt when present with a type that
    // cannot convert (a string where an integer is expected, a negative value for an
    // unsigned use, an array where a scalar is expected).
    std::string get_string(const std::string& key, const std::string& def = "") const;
    int64_t get_int(const std::string& key, int64_t def) const;
    double get_float(const std::string& key, double def) const;
    bool get_bool(const std::string& key, bool def) const;
    // Arrays: empty when absent; throw Corrupt on a wrong element type.
    std::vector<std::string_view> get_strings(const std::string& key) const;
    std::vector<float> get_floats(const std::string& key) const;  // any numeric elements
    std::vector<int64_t> get_ints(const std::string& key) const;  // any integer elements

    const std::vector<Tensor>& tensors() const { return tensors_; }
    const Tensor* tensor(const std::string& name) const;  // nullptr when absent

  private:
    struct Mapping;
    std::shared_ptr<Mapping> map_;
    size_t size_ = 0;
    uint32_t version_ = 0;
    size_t alignment_ = 32;
    size_t data_offset_ = 0;
    std::vector<std::pair<std::string, Value>> kv_;
    std::unordered_map<std::string, size_t> kv_index_;
    std::vector<Tensor> tensors_;
    std::unordered_map<std::string, size_t> tensor_index_;

    void load(const uint8_t* base, size_t size);
};

}  // namespace ragd::gguf
