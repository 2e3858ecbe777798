// tests/generate/gguf_writer: builds GGUF files for tests and benchmarks (random-weight
// models, tokenizer vocabularies, hostile files). Header-only; writes version 3 by
// default, little-endian, with the layout the GGUF specification gives.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "generate/gguf.h"
#include "generate/quant.h"

namespace ragd::test {

class GGUFWriter {
  public:
    using VT = gguf::ValueType;

    void add_string(const std::string& key, const std::string& v) {
        begin_kv(key, VT::STRING);
        put_str(kv_, v);
        ++n_kv_;
    }
    void add_u32(const std::string& key, uint32_t v) { add_scalar(key, VT::U32, &v, 4); }
    void add_i32(const std::string& key, int32_t v) { add_scalar(key, VT::I32, &v, 4); }
    void add_u64(const std::string& key, uint64_t v) { add_scalar(key, VT::U64, &v, 8); }
    void add_f32(const std::string& key, float v) { add_scalar(key, VT::F32, &v, 4); }
    void add_bool(const std::string& key, bool v) {
        uint8_t b = v ? 1 : 0;
        add_scalar(key, VT::BOOL, &b, 1);
    }
    void add_strings(const std::string& key, const std::vector<std::string>& v) {
        begin_kv(key, VT::ARRAY);
        put_u32(kv_, uint32_t(VT::STRING));
        put_u64(kv_, v.size());
        for (const auto& s : v) put_str(kv_, s);
        ++n_kv_;
    }
    void add_f32s(const std::string& key, const std::vector<float>& v) {
        add_array(key, VT::F32, v.data(), v.size(), 4);
    }
    void add_i32s(const std::string& key, const std::vector<int32_t>& v) {
        add_array(key, VT::I32, v.data(), v.size(), 4);
    }

    // A tensor from floats, converted row by row to type t. ne[0] is the row length.
    void add_tensor(const std::string& name, gguf::Type t, std::vector<int64_t> ne,
                    const float* values) {
        int64_t rows = 1;
        for (size_t d = 1; d < ne.size(); ++d) rows *= ne[d];
        size_t rb = gguf::row_bytes(t, ne[0]);
        std::vector<uint8_t> bytes(rb * rows);
        for (int64_t r = 0; r < rows; ++r)
            quant::quantize_row(t, values + r * ne[0], bytes.data() + r * rb, ne[0]);
        add_tensor_raw(name, t, std::move(ne), std::move(bytes));
    }
    // A tensor whose bytes are given as they are stored.
    void add_tensor_raw(const std::string& name, gguf::Type t, std::vector<int64_t> ne,
                        std::vector<uint8_t> bytes) {
        size_t n = bytes.size();
        tensors_.push_back({name, t, std::move(ne), std::move(bytes), nullptr, n});
    }
    // A tensor whose bytes are made only when the file is written (multi-GB models are
    // streamed to disk one tensor at a time). make_row(r, values) fills row r; it is
    // called from several threads at once, for different rows.
    void add_tensor_lazy(const std::string& name, gguf::Type t, std::vector<int64_t> ne,
                         std::function<void(int64_t row, float* values)> make_row) {
        int64_t rows = 1;
        for (size_t d = 1; d < ne.size(); ++d) rows *= ne[d];
        const int64_t cols = ne[0];
        const size_t rb = gguf::row_bytes(t, cols);
        auto make = [t, rows, cols, rb, make_row]() {
            std::vector<uint8_t> bytes(rb * size_t(rows));
            const int n_threads = int(std::max(1u, std::thread::hardware_concurrency()));
            std::vector<std::thread> threads;
            for (int i = 0; i < n_threads; ++i)
                threads.emplace_back([&, i] {
                    std::vector<float> row(static_cast<size_t>(cols));
                    for (int64_t r = i; r < rows; r += n_threads) {
                        make_row(r, row.data());
                        quant::quantize_row(t, row.data(), bytes.data() + size_t(r) * rb, cols);
                    }
                });
            for (auto& th : threads) th.join();
            return bytes;
        };
        tensors_.push_back({name, t, std::move(ne), {}, make, rb * size_t(rows)});
    }

    // The header, the metadata, the tensor descriptions and the padding before the data.
    std::vector<uint8_t> header(uint32_t version = 3, uint64_t alignment = 32) const {
        std::vector<uint8_t> out;
        for (char c : {'G', 'G', 'U', 'F'}) out.push_back(uint8_t(c));
        put_u32(out, version);
        put_u64(out, tensors_.size());
        put_u64(out, n_kv_);
        out.insert(out.end(), kv_.begin(), kv_.end());
        uint64_t offset = 0;
        for (const auto& t : tensors_) {
            put_str(out, t.name);
            put_u32(out, uint32_t(t.ne.size()));
            for (int64_t n : t.ne) put_u64(out, uint64_t(n));
            put_u32(out, uint32_t(t.type));
            put_u64(out, offset);
            offset += pad(t.nbytes, alignment);
        }
        out.resize(pad(out.size(), alignment), 0);
        return out;
    }

    // The whole file image.
    std::vector<uint8_t> bytes(uint32_t version = 3, uint64_t alignment = 32) const {
        std::vector<uint8_t> out = header(version, alignment);
        for (const auto& t : tensors_) {
            if (t.make) {
                std::vector<uint8_t> b = t.make();
                out.insert(out.end(), b.begin(), b.end());
            } else {
                out.insert(out.end(), t.bytes.begin(), t.bytes.end());
            }
            out.resize(pad(out.size(), alignment), 0);
        }
        return out;
    }

    // Writes the file, making lazy tensors one at a time.
    void write(const std::string& path, uint32_t version = 3, uint64_t alignment = 32) const {
        FILE* f = std::fopen(path.c_str(), "wb");
        if (!f) throw std::runtime_error("cannot write " + path);
        bool ok = true;
        auto put = [&](const std::vector<uint8_t>& b) {
            ok = ok && (b.empty() || std::fwrite(b.data(), 1, b.size(), f) == b.size());
        };
        put(header(version, alignment));
        for (const auto& t : tensors_) {
            put(t.make ? t.make() : t.bytes);
            put(std::vector<uint8_t>(pad(t.nbytes, alignment) - t.nbytes, 0));
        }
        ok = std::fclose(f) == 0 && ok;
        if (!ok) throw std::runtime_error("short write to " + path);
    }

    // Little-endian encoders, public so hostile-file tests can build headers by hand.
    static void put_u32(std::vector<uint8_t>& out, uint32_t v) {
        for (int i = 0; i < 4; ++i) out.push_back(uint8_t(v >> (8 * i)));
    }
    static void put_u64(std::vector<uint8_t>& out, uint64_t v) {
        for (int i = 0; i < 8; ++i) out.push_back(uint8_t(v >> (8 * i)));
    }
    static void put_str(std::vector<uint8_t>& out, const std::string& s) {
        put_u64(out, s.size());
        out.insert(out.end(), s.begin(), s.end());
    }

  private:
    struct PendingTensor {
        std::string name;
        gguf::Type type;
        std::vector<int64_t> ne;
        std::vector<uint8_t> bytes;
        std::function<std::vector<uint8_t>()> make;  // lazy tensors
        size_t nbytes = 0;
    };
    std::vector<uint8_t> kv_;
    uint64_t n_kv_ = 0;
    std::vector<PendingTensor> tensors_;

    static uint64_t pad(uint64_t n, uint64_t a) { return (n + a - 1) / a * a; }

    void begin_kv(const std::string& key, VT type) {
        put_str(kv_, key);
        put_u32(kv_, uint32_t(type));
    }
    void add_scalar(const std::string& key, VT type, const void* v, size_t n) {
        begin_kv(key, type);
        const auto* p = static_cast<const uint8_t*>(v);
        kv_.insert(kv_.end(), p, p + n);  // x86-64 is little-endian, as GGUF
        ++n_kv_;
    }
    void add_array(const std::string& key, VT elem, const void* v, size_t count,
                   size_t elem_bytes) {
        begin_kv(key, VT::ARRAY);
        put_u32(kv_, uint32_t(elem));
        put_u64(kv_, count);
        const auto* p = static_cast<const uint8_t*>(v);
        kv_.insert(kv_.end(), p, p + count * elem_bytes);
        ++n_kv_;
    }
};

}  // namespace ragd::test
