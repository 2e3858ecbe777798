// generate/gguf: see gguf.h for the layout and the promise that nothing read from the file
// is used before it is checked against the file size.
#include "generate/gguf.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cassert>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include "config/config.h"

namespace ragd::gguf {

// Values are decoded with memcpy in host order; GGUF is little-endian (big-endian files are
// detected by their version and refused).
static_assert(std::endian::native == std::endian::little);

namespace {

using Code = Error::Code;

// Indexed by type id. Ids ggml has retired (4 and 5: Q4_2, Q4_3; 31-33 and 36-38: the
// repacked Q4_0_x_y and IQ4_NL_x_y layouts, now repacked at load time instead) have no
// name: a file using them is rejected as unknown. Known types the engine cannot compute
// with still load, so the engine can name them when it refuses the model.
constexpr TypeInfo kTypes[] = {
    {"F32", 1, 4, true},          // 0
    {"F16", 1, 2, true},          // 1
    {"Q4_0", 32, 18, true},       // 2
    {"Q4_1", 32, 20, false},      // 3
    {nullptr, 0, 0, false},       // 4
    {nullptr, 0, 0, false},       // 5
    {"Q5_0", 32, 22, false},      // 6
    {"Q5_1", 32, 24, false},      // 7
    {"Q8_0", 32, 34, true},       // 8
    {"Q8_1", 32, 36, false},      // 9
    {"Q2_K", 256, 84, false},     // 10
    {"Q3_K", 256, 110, false},    // 11
    {"Q4_K", 256, 144, true},     // 12
    {"Q5_K", 256, 176, true},     // 13
    {"Q6_K", 256, 210, true},     // 14
    {"Q8_K", 256, 292, true},     // 15
    {"IQ2_XXS", 256, 66, false},  // 16
    {"IQ2_XS", 256, 74, false},   // 17
    {"IQ3_XXS", 256, 98, false},  // 18
    {"IQ1_S", 256, 50, false},    // 19
    {"IQ4_NL", 32, 18, false},    // 20
    {"IQ3_S", 256, 110, false},   // 21
    {"IQ2_S", 256, 82, false},    // 22
    {"IQ4_XS", 256, 136, false},  // 23
    {"I8", 1, 1, false},          // 24
    {"I16", 1, 2, false},         // 25
    {"I32", 1, 4, false},         // 26
    {"I64", 1, 8, false},         // 27
    {"F64", 1, 8, false},         // 28
    {"IQ1_M", 256, 56, false},    // 29
    {"BF16", 1, 2, true},         // 30
    {nullptr, 0, 0, false},       // 31
    {nullptr, 0, 0, false},       // 32
    {nullptr, 0, 0, false},       // 33
    {"TQ1_0", 256, 54, false},    // 34
    {"TQ2_0", 256, 66, false},    // 35
    {nullptr, 0, 0, false},       // 36
    {nullptr, 0, 0, false},       // 37
    {nullptr, 0, 0, false},       // 38
    {"MXFP4", 32, 17, false},     // 39
};

// The smallest encodings, used to bound counts before anything is allocated for them: a
// key/value pair is a key length (8), a value type (4) and at least a one-byte value; a
// tensor description is a name length (8), a one-byte name, n_dims (4), one dimension (8),
// a type (4) and an offset (8). An array nested in an array is a type (4) and a count (8).
constexpr uint64_t kMinKvBytes = 8 + 4 + 1;
constexpr uint64_t kMinTensorBytes = 8 + 1 + 4 + 8 + 4 + 8;
constexpr uint64_t kMinArrayBytes = 4 + 8;
// Arrays of arrays are legal GGUF but nothing uses them; one level is accepted (and
// skipped), deeper nesting is refused so hostile files cannot recurse without bound.
constexpr int kMaxArrayDepth = 2;
constexpr uint64_t kMaxAlignment = 1 << 16;

[[noreturn]] void corrupt(const std::string& message) {
    throw Error(Code::Corrupt, message);
}

bool known_value_type(uint32_t t) {
    return t <= uint32_t(ValueType::F64);
}

const char* value_type_name(ValueType t) {
    static const char* const names[] = {"u8",   "i8",     "u16",   "i16", "u32", "i32", "f32",
                                        "bool", "string", "array", "u64", "i64", "f64"};
    return names[size_t(t)];
}

// Bytes of one scalar of type t; 0 for strings and arrays, whose size is in the file.
size_t scalar_bytes(ValueType t) {
    switch (t) {
        case ValueType::U8:
        case ValueType::I8:
        case ValueType::BOOL:
            return 1;
        case ValueType::U16:
        case ValueType::I16:
            return 2;
        case ValueType::U32:
        case ValueType::I32:
        case ValueType::F32:
            return 4;
        case ValueType::U64:
        case ValueType::I64:
        case ValueType::F64:
            return 8;
        default:
            return 0;
    }
}

bool is_integer(ValueType t) {
    return scalar_bytes(t) != 0 && t != ValueType::BOOL && t != ValueType::F32 &&
           t != ValueType::F64;
}

template <typename T>
T load_as(const uint8_t* p) {
    T v;
    std::memcpy(&v, p, sizeof v);
    return v;
}

// Decodes the scalar of type t at p into v.u / v.i / v.f.
void decode_scalar(ValueType t, const uint8_t* p, Value& v) {
    bool is_signed = false;
    switch (t) {
        case ValueType::U8:
        case ValueType::BOOL:
            v.u = p[0];
            break;
        case ValueType::U16:
            v.u = load_as<uint16_t>(p);
            break;
        case ValueType::U32:
            v.u = load_as<uint32_t>(p);
            break;
        case ValueType::U64:
            v.u = load_as<uint64_t>(p);
            break;
        case ValueType::I8:
            v.i = load_as<int8_t>(p), is_signed = true;
            break;
        case ValueType::I16:
            v.i = load_as<int16_t>(p), is_signed = true;
            break;
        case ValueType::I32:
            v.i = load_as<int32_t>(p), is_signed = true;
            break;
        case ValueType::I64:
            v.i = load_as<int64_t>(p), is_signed = true;
            break;
        case ValueType::F32:
            v.f = load_as<float>(p);
            return;
        case ValueType::F64:
            v.f = load_as<double>(p);
            return;
        default:
            return;
    }
    if (is_signed)
        v.u = v.i >= 0 ? uint64_t(v.i) : 0;
    else
        v.i = v.u <= uint64_t(INT64_MAX) ? int64_t(v.u) : 0;
}

// A cursor over the file image. Every read checks the bytes left first; CTX names the
// metadata key or tensor being read and FIELD the part of it, for the error message.
class Reader {
  public:
    Reader(const uint8_t* base, size_t size) : base_(base), size_(size) {}

    size_t pos() const { return pos_; }
    size_t left() const { return size_ - pos_; }
    const uint8_t* here() const { return base_ + pos_; }

    const uint8_t* take(size_t n, const std::string& ctx, const char* field) {
        if (n > left()) corrupt(ctx + ": " + field + " past end of file");
        const uint8_t* p = base_ + pos_;
        pos_ += n;
        return p;
    }
    uint32_t u32(const std::string& ctx, const char* field) {
        return load_as<uint32_t>(take(4, ctx, field));
    }
    uint64_t u64(const std::string& ctx, const char* field) {
        return load_as<uint64_t>(take(8, ctx, field));
    }
    std::string_view str(const std::string& ctx, const char* field) {
        uint64_t n = u64(ctx, field);
        if (n > left())
            corrupt(ctx + ": " + field + " length " + std::to_string(n) + " past end of file");
        return {reinterpret_cast<const char*>(take(n, ctx, field)), size_t(n)};
    }

  private:
    const uint8_t* base_;
    size_t size_;
    size_t pos_ = 0;
};

void check_bool(uint8_t b, const std::string& ctx) {
    if (b > 1) corrupt(ctx + ": bool value " + std::to_string(b) + " (must be 0 or 1)");
}

// Reads an array's element type, count and elements into v (strings decoded, nested arrays
// validated and skipped).
void read_array(Reader& r, const std::string& ctx, Value& v, int depth) {
    if (depth > kMaxArrayDepth) corrupt(ctx + ": arrays nested too deep");
    uint32_t elem = r.u32(ctx, "array element type");
    if (!known_value_type(elem))
        corrupt(ctx + ": unknown array element type " + std::to_string(elem));
    v.elem_type = ValueType(elem);
    v.count = r.u64(ctx, "array count");
    // Every element takes at least MIN bytes, so the count is bounded before it drives a
    // loop or a reserve.
    size_t es = scalar_bytes(v.elem_type);
    size_t min = es ? es : v.elem_type == ValueType::STRING ? 8 : kMinArrayBytes;
    if (v.count > r.left() / min)
        corrupt(ctx + ": array of " + std::to_string(v.count) + " " + value_type_name(v.elem_type) +
                " past end of file");
    if (es) {
        v.data = r.take(v.count * es, ctx, "array");
        if (v.elem_type == ValueType::BOOL)
            for (uint64_t k = 0; k < v.count; ++k) check_bool(v.data[k], ctx);
    } else if (v.elem_type == ValueType::STRING) {
        // Capped: a hostile count within the bound still must not reserve twice the file.
        v.strings.reserve(std::min<uint64_t>(v.count, 1 << 20));
        for (uint64_t k = 0; k < v.count; ++k) v.strings.push_back(r.str(ctx, "string"));
    } else {
        v.data = r.here();
        for (uint64_t k = 0; k < v.count; ++k) {
            Value inner;
            read_array(r, ctx, inner, depth + 1);
        }
    }
}

void read_value(Reader& r, const std::string& ctx, Value& v) {
    if (v.type == ValueType::STRING) {
        v.str = r.str(ctx, "string");
    } else if (v.type == ValueType::ARRAY) {
        read_array(r, ctx, v, 1);
    } else {
        const uint8_t* p = r.take(scalar_bytes(v.type), ctx, value_type_name(v.type));
        if (v.type == ValueType::BOOL) check_bool(p[0], ctx);
        decode_scalar(v.type, p, v);
    }
}

std::string describe(const Value& v) {
    if (v.type == ValueType::ARRAY) return std::string("array of ") + value_type_name(v.elem_type);
    return value_type_name(v.type);
}

[[noreturn]] void wrong_type(const std::string& key, const char* expected, const Value& v) {
    corrupt("metadata key '" + key + "': expected " + expected + ", found " + describe(v));
}

}  // namespace

const TypeInfo* type_info(uint32_t type_id) {
    if (type_id >= std::size(kTypes) || !kTypes[type_id].name) return nullptr;
    return &kTypes[type_id];
}

size_t row_bytes(Type t, int64_t n) {
    const TypeInfo* info = type_info(uint32_t(t));
    assert(info && n >= 0 && n % info->block == 0);
    return size_t(n / info->block) * info->block_bytes;
}

// The bytes behind a File: a read-only private mapping of the file, or a heap copy.
struct File::Mapping {
    void* addr = nullptr;
    size_t size = 0;
    bool mapped = false;
    Mapping(void* a, size_t n, bool m) : addr(a), size(n), mapped(m) {}
    ~Mapping() {
        if (mapped)
            ::munmap(addr, size);
        else
            std::free(addr);
    }
    Mapping(const Mapping&) = delete;
    Mapping& operator=(const Mapping&) = delete;
};

Load load_mode(bool mmap_flag, bool no_mmap_flag) {
    if (mmap_flag && no_mmap_flag)
        throw Error(Code::InvalidArgument, "--mmap and --no-mmap exclude each other");
    return mmap_flag ? Load::Map : no_mmap_flag ? Load::Read : Load::Auto;
}

namespace {

// MemAvailable from /proc/meminfo in bytes, or 0 where it cannot be read.
size_t memory_available() {
    FILE* f = std::fopen("/proc/meminfo", "r");
    if (!f) return 0;
    char line[256];
    size_t kib = 0;
    while (std::fgets(line, sizeof line, f))
        if (std::sscanf(line, "MemAvailable: %zu kB", &kib) == 1) break;
    std::fclose(f);
    return kib * 1024;
}

}  // namespace

File File::open(const std::string& path, Load how) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        throw Error(e == ENOENT ? Code::NotFound : Code::IO,
                    "cannot open " + path + ": " + std::strerror(e));
    }
    struct stat st;
    if (::fstat(fd, &st) != 0) {
        int e = errno;
        ::close(fd);
        throw Error(Code::IO, "cannot stat " + path + ": " + std::strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        ::close(fd);
        throw Error(Code::IO, "cannot open " + path + ": not a regular file");
    }
    File f;
    size_t size = size_t(st.st_size);
    const bool read_into_memory =
        how == Load::Read || (how == Load::Auto && size <= memory_available() / 2);
    if (size > 0 && read_into_memory) {
        // Anonymous memory in huge pages where the kernel allows: the hardware prefetcher
        // and the TLB then see 2 MiB pages instead of the page cache's 4 KiB ones.
        void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) {
            int e = errno;
            ::close(fd);
            throw Error(Code::IO, "cannot allocate " + std::to_string(size) + " bytes for " + path +
                                      ": " + std::strerror(e));
        }
        f.map_ = std::make_shared<Mapping>(p, size, true);
        ::madvise(p, size, MADV_HUGEPAGE);
        // Several readers, one per 16 MiB up to the number of CPUs: most of the time goes
        // to the kernel zeroing the fresh pages (more than to copying them, in a VM), and
        // that parallelises.
        const size_t cpus = std::clamp(std::thread::hardware_concurrency(), 1u, 8u);
        const int n_readers = int(std::clamp<size_t>(size >> 24, 1, cpus));
        std::vector<int> errors(size_t(n_readers), 0);
        std::vector<std::thread> readers;
        const size_t share = (size + size_t(n_readers) - 1) / size_t(n_readers);
        for (int r = 0; r < n_readers; ++r)
            readers.emplace_back([&, r] {
                const size_t end = std::min(size, share * size_t(r + 1));
                for (size_t done = share * size_t(r); done < end;) {
                    ssize_t n = ::pread(fd, static_cast<char*>(p) + done,
                                        std::min<size_t>(end - done, 1 << 26), off_t(done));
                    if (n <= 0) {
                        errors[size_t(r)] = n < 0 ? errno : EIO;
                        return;
                    }
                    done += size_t(n);
                }
            });
        for (auto& t : readers) t.join();
        for (int e : errors)
            if (e != 0) {
                ::close(fd);
                throw Error(Code::IO, "cannot read " + path + ": " + std::strerror(e));
            }
        ::close(fd);
    } else if (size > 0) {
        void* p = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
        int e = errno;
        ::close(fd);
        if (p == MAP_FAILED) throw Error(Code::IO, "cannot map " + path + ": " + std::strerror(e));
        f.map_ = std::make_shared<Mapping>(p, size, true);
    } else {
        ::close(fd);  // mmap refuses length 0; load() reports the empty file
    }
    try {
        f.load(f.map_ ? static_cast<const uint8_t*>(f.map_->addr) : nullptr, size);
    } catch (const Error& e) {
        throw Error(e.code(), path + ": " + e.what());
    }
    return f;
}

File File::parse(const void* bytes, size_t size) {
    // Page-aligned like a mapping, so tensor data is as aligned as the file says it is.
    constexpr size_t kPage = 4096;
    size_t alloc = (std::max<size_t>(size, 1) + kPage - 1) / kPage * kPage;
    void* p = std::aligned_alloc(kPage, alloc);
    if (!p) throw Error(Code::Internal, "out of memory copying a GGUF image");
    File f;
    f.map_ = std::make_shared<Mapping>(p, alloc, false);
    if (size) std::memcpy(p, bytes, size);
    f.load(static_cast<const uint8_t*>(p), size);
    return f;
}

void File::load(const uint8_t* base, size_t size) {
    size_ = size;
    Reader r(base, size);
    const std::string header = "header";
    if (size < 4 || std::memcmp(base, "GGUF", 4) != 0) corrupt("not a GGUF file (bad magic)");
    r.take(4, header, "magic");
    version_ = r.u32(header, "version");
    if (version_ != 2 && version_ != 3) {
        uint32_t swapped = __builtin_bswap32(version_);
        if (swapped >= 1 && swapped <= 3)
            throw Error(Code::Unsupported, "big-endian GGUF files are not supported");
        if (version_ == 0) corrupt("GGUF version 0");
        throw Error(Code::Unsupported, "GGUF version " + std::to_string(version_) +
                                           " is not supported (only versions 2 and 3)");
    }
    uint64_t n_tensors = r.u64(header, "n_tensors");
    uint64_t n_kv = r.u64(header, "n_kv");
    // Bound both counts by the bytes left before either drives a loop or an allocation.
    if (n_kv > r.left() / kMinKvBytes)
        corrupt("n_kv " + std::to_string(n_kv) + ": more metadata than the file can hold");
    if (n_tensors > r.left() / kMinTensorBytes)
        corrupt("n_tensors " + std::to_string(n_tensors) + ": more tensors than the file can hold");

    for (uint64_t k = 0; k < n_kv; ++k) {
        std::string ctx = "metadata entry " + std::to_string(k);
        std::string key(r.str(ctx, "key"));
        ctx = "metadata key '" + key + "'";
        uint32_t type = r.u32(ctx, "value type");
        if (!known_value_type(type)) corrupt(ctx + ": unknown value type " + std::to_string(type));
        Value v;
        v.type = ValueType(type);
        read_value(r, ctx, v);
        if (!kv_index_.emplace(key, kv_.size()).second)
            corrupt("duplicate metadata key '" + key + "'");
        kv_.emplace_back(std::move(key), std::move(v));
    }

    if (const Value* a = find("general.alignment")) {
        if (a->type != ValueType::U32) wrong_type("general.alignment", "u32", *a);
        if (a->u == 0 || a->u > kMaxAlignment || (a->u & (a->u - 1)) != 0)
            corrupt("general.alignment " + std::to_string(a->u) +
                    " is not a power of two in [1, 65536]");
        alignment_ = a->u;
    }

    if (n_tensors > r.left() / kMinTensorBytes)
        corrupt("n_tensors " + std::to_string(n_tensors) + ": more tensors than the file can hold");
    tensors_.reserve(std::min<uint64_t>(n_tensors, 1 << 16));  // as for strings
    for (uint64_t k = 0; k < n_tensors; ++k) {
        std::string ctx = "tensor " + std::to_string(k);
        Tensor t;
        t.name = r.str(ctx, "name");
        if (t.name.empty()) corrupt(ctx + ": empty name");
        ctx = "tensor '" + t.name + "'";
        uint32_t n_dims = r.u32(ctx, "n_dims");
        if (n_dims < 1 || n_dims > 4)
            corrupt(ctx + ": n_dims " + std::to_string(n_dims) + " (must be 1 to 4)");
        t.n_dims = int(n_dims);
        int64_t elements = 1;
        for (uint32_t d = 0; d < n_dims; ++d) {
            uint64_t n = r.u64(ctx, "dimension");
            if (n == 0 || n > uint64_t(INT64_MAX))
                corrupt(ctx + ": dimension " + std::to_string(d) + " is " + std::to_string(n));
            t.ne[d] = int64_t(n);
            if (__builtin_mul_overflow(elements, t.ne[d], &elements))
                corrupt(ctx + ": element count overflows");
        }
        uint32_t type = r.u32(ctx, "type");
        const TypeInfo* info = type_info(type);
        if (!info) corrupt(ctx + ": unknown type id " + std::to_string(type));
        t.type = Type(type);
        if (t.ne[0] % info->block != 0)
            corrupt(ctx + ": row length " + std::to_string(t.ne[0]) + " is not a multiple of " +
                    info->name + "'s block of " + std::to_string(info->block));
        uint64_t nbytes = 0;
        if (__builtin_mul_overflow(uint64_t(t.ne[0] / info->block), info->block_bytes, &nbytes) ||
            __builtin_mul_overflow(nbytes, uint64_t(t.n_rows()), &nbytes))
            corrupt(ctx + ": size overflows");
        t.nbytes = nbytes;
        t.offset = r.u64(ctx, "offset");
        if (t.offset % alignment_ != 0)
            corrupt(ctx + ": offset " + std::to_string(t.offset) + " is not a multiple of the " +
                    "alignment " + std::to_string(alignment_));
        if (!tensor_index_.emplace(t.name, tensors_.size()).second)
            corrupt("duplicate tensor name '" + t.name + "'");
        tensors_.push_back(std::move(t));
    }

    // The data section starts at the next multiple of the alignment. A file without tensors
    // may end before that padding.
    data_offset_ = (r.pos() + alignment_ - 1) / alignment_ * alignment_;
    data_offset_ = std::min(data_offset_, size);
    uint64_t avail = size - data_offset_;
    for (Tensor& t : tensors_) {
        if (t.offset > avail || t.nbytes > avail - t.offset)
            corrupt("tensor '" + t.name + "': offset + size past end of file");
        t.data = base + data_offset_ + t.offset;
    }

    std::vector<const Tensor*> by_offset;
    by_offset.reserve(tensors_.size());
    for (const Tensor& t : tensors_) by_offset.push_back(&t);
    std::sort(by_offset.begin(), by_offset.end(),
              [](const Tensor* a, const Tensor* b) { return a->offset < b->offset; });
    for (size_t k = 1; k < by_offset.size(); ++k) {
        const Tensor* prev = by_offset[k - 1];
        if (prev->offset + prev->nbytes > by_offset[k]->offset)
            corrupt("tensors '" + prev->name + "' and '" + by_offset[k]->name + "' overlap");
    }
}

const Value* File::find(const std::string& key) const {
    auto it = kv_index_.find(key);
    return it == kv_index_.end() ? nullptr : &kv_[it->second].second;
}

const Tensor* File::tensor(const std::string& name) const {
    auto it = tensor_index_.find(name);
    return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

std::string File::get_string(const std::string& key, const std::string& def) const {
    const Value* v = find(key);
    if (!v) return def;
    if (v->type != ValueType::STRING) wrong_type(key, "a string", *v);
    return std::string(v->str);
}

int64_t File::get_int(const std::string& key, int64_t def) const {
    const Value* v = find(key);
    if (!v) return def;
    if (!is_integer(v->type)) wrong_type(key, "an integer", *v);
    bool is_unsigned = v->type == ValueType::U8 || v->type == ValueType::U16 ||
                       v->type == ValueType::U32 || v->type == ValueType::U64;
    if (is_unsigned && v->u > uint64_t(INT64_MAX))
        corrupt("metadata key '" + key + "': value " + std::to_string(v->u) + " out of range");
    return v->i;
}

double File::get_float(const std::string& key, double def) const {
    const Value* v = find(key);
    if (!v) return def;
    if (v->type == ValueType::F32 || v->type == ValueType::F64) return v->f;
    if (!is_integer(v->type)) wrong_type(key, "a number", *v);
    return v->type == ValueType::U64 ? double(v->u) : double(v->i);
}

bool File::get_bool(const std::string& key, bool def) const {
    const Value* v = find(key);
    if (!v) return def;
    if (v->type != ValueType::BOOL) wrong_type(key, "a bool", *v);
    return v->u != 0;
}

std::vector<std::string_view> File::get_strings(const std::string& key) const {
    const Value* v = find(key);
    if (!v) return {};
    if (v->type != ValueType::ARRAY || v->elem_type != ValueType::STRING)
        wrong_type(key, "an array of string", *v);
    return v->strings;
}

std::vector<float> File::get_floats(const std::string& key) const {
    const Value* v = find(key);
    if (!v) return {};
    if (v->type != ValueType::ARRAY ||
        !(is_integer(v->elem_type) || v->elem_type == ValueType::F32 ||
          v->elem_type == ValueType::F64))
        wrong_type(key, "an array of numbers", *v);
    std::vector<float> out(v->count);
    size_t es = scalar_bytes(v->elem_type);
    for (uint64_t k = 0; k < v->count; ++k) {
        Value e;
        decode_scalar(v->elem_type, v->data + k * es, e);
        switch (v->elem_type) {
            case ValueType::F32:
            case ValueType::F64:
                out[k] = float(e.f);
                break;
            case ValueType::U64:
                out[k] = float(e.u);
                break;
            default:
                out[k] = float(e.i);
        }
    }
    return out;
}

std::vector<int64_t> File::get_ints(const std::string& key) const {
    const Value* v = find(key);
    if (!v) return {};
    if (v->type != ValueType::ARRAY || !is_integer(v->elem_type))
        wrong_type(key, "an array of integers", *v);
    std::vector<int64_t> out(v->count);
    size_t es = scalar_bytes(v->elem_type);
    for (uint64_t k = 0; k < v->count; ++k) {
        Value e;
        decode_scalar(v->elem_type, v->data + k * es, e);
        if (v->elem_type == ValueType::U64 && e.u > uint64_t(INT64_MAX))
            corrupt("metadata key '" + key + "': element " + std::to_string(k) + " value " +
                    std::to_string(e.u) + " out of range");
        out[k] = e.i;
    }
    return out;
}

}  // namespace ragd::gguf
