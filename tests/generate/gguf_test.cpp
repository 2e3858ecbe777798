#include "generate/gguf.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "config/config.h"
#include "tests/generate/gguf_writer.h"
#include "tests/testutil.h"

namespace ragd {
namespace {

using Bytes = std::vector<uint8_t>;
using Code = Error::Code;
using VT = gguf::ValueType;
using W = test::GGUFWriter;

// Little-endian building blocks for files made byte by byte.
Bytes operator+(Bytes a, const Bytes& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
}
Bytes u16(uint16_t v) {
    return {uint8_t(v), uint8_t(v >> 8)};
}
Bytes u32(uint32_t v) {
    Bytes b;
    W::put_u32(b, v);
    return b;
}
Bytes u64(uint64_t v) {
    Bytes b;
    W::put_u64(b, v);
    return b;
}
Bytes f32(float v) {
    uint32_t u;
    std::memcpy(&u, &v, 4);
    return u32(u);
}
Bytes f64(double v) {
    uint64_t u;
    std::memcpy(&u, &v, 8);
    return u64(u);
}
Bytes str(const std::string& s) {
    Bytes b;
    W::put_str(b, s);
    return b;
}
// A key/value pair: key, value type, encoded value.
Bytes kv(const std::string& key, VT t, const Bytes& value) {
    return str(key) + u32(uint32_t(t)) + value;
}
// An array value: element type, count, encoded elements.
Bytes arr(VT elem, uint64_t count, const Bytes& elems = {}) {
    return u32(uint32_t(elem)) + u64(count) + elems;
}
// A tensor description.
Bytes info(const std::string& name, const std::vector<uint64_t>& ne, gguf::Type type,
           uint64_t offset) {
    Bytes b = str(name) + u32(uint32_t(ne.size()));
    for (uint64_t n : ne) b = b + u64(n);
    return b + u32(uint32_t(type)) + u64(offset);
}
// A whole file: header, BODY (key/value pairs, then tensor descriptions), zero padding to
// ALIGN, then DATA.
Bytes file(uint64_t n_tensors, uint64_t n_kv, const Bytes& body, const Bytes& data = {},
           uint32_t version = 3, size_t align = 32) {
    Bytes b = Bytes{'G', 'G', 'U', 'F'} + u32(version) + u64(n_tensors) + u64(n_kv) + body;
    b.resize((b.size() + align - 1) / align * align, 0);
    return b + data;
}
Bytes pattern(size_t n, uint8_t seed) {
    Bytes b(n);
    for (size_t i = 0; i < n; ++i) b[i] = uint8_t(seed + 7 * i);
    return b;
}

gguf::File parse(const Bytes& b) {
    return gguf::File::parse(b.data(), b.size());
}

// Parsing B throws ragd::Error with CODE and a message containing WHAT.
::testing::AssertionResult fails_with(const Bytes& b, Code code, const std::string& what) {
    try {
        parse(b);
    } catch (const Error& e) {
        if (e.code() == code && std::string(e.what()).find(what) != std::string::npos)
            return ::testing::AssertionSuccess();
        return ::testing::AssertionFailure() << "code " << int(e.code()) << ": " << e.what();
    }
    return ::testing::AssertionFailure() << "parsed without error";
}

// A small valid file with every value type, strings and arrays (one nested), and three
// tensors whose data ends exactly at the end of the file, so that any shorter prefix is
// a truncated file.
const uint64_t kSampleKv = 19;
Bytes sample_body() {
    return kv("u8", VT::U8, {200}) + kv("i8", VT::I8, {0xfb}) + kv("u16", VT::U16, u16(60000)) +
           kv("i16", VT::I16, u16(uint16_t(-300))) + kv("u32", VT::U32, u32(4000000000u)) +
           kv("i32", VT::I32, u32(uint32_t(-70000))) + kv("f32", VT::F32, f32(1.5f)) +
           kv("bool", VT::BOOL, {1}) + kv("string", VT::STRING, str("h\xc3\xa9llo")) +
           kv("u64", VT::U64, u64(UINT64_MAX)) +
           kv("i64", VT::I64, u64(uint64_t(-(int64_t(1) << 40)))) + kv("f64", VT::F64, f64(-2.25)) +
           kv("strings", VT::ARRAY, arr(VT::STRING, 3, str("a") + str("") + str("xyz"))) +
           kv("f32s", VT::ARRAY, arr(VT::F32, 2, f32(0.5f) + f32(-1))) +
           kv("i32s", VT::ARRAY, arr(VT::I32, 3, u32(1) + u32(uint32_t(-2)) + u32(3))) +
           kv("u8s", VT::ARRAY, arr(VT::U8, 2, {7, 9})) +
           kv("bools", VT::ARRAY, arr(VT::BOOL, 2, {0, 1})) +
           kv("nested", VT::ARRAY,
              arr(VT::ARRAY, 2, arr(VT::U16, 1, u16(5)) + arr(VT::STRING, 1, str("q")))) +
           kv("f64s", VT::ARRAY, arr(VT::F64, 0)) + info("q8", {32, 2}, gguf::Type::Q8_0, 0) +
           info("f16", {16}, gguf::Type::F16, 96) + info("f32", {4, 2}, gguf::Type::F32, 128);
}
Bytes sample_data() {
    Bytes q8 = pattern(68, 1), f16 = pattern(32, 2), f32s = pattern(32, 3);
    q8.resize(96, 0);
    return q8 + f16 + f32s;
}
Bytes sample() {
    return file(3, kSampleKv, sample_body(), sample_data());
}

TEST(Gguf, SampleFileParses) {
    Bytes b = sample();
    gguf::File f = parse(b);
    EXPECT_EQ(f.version(), 3u);
    EXPECT_EQ(f.size(), b.size());
    EXPECT_EQ(f.alignment(), 32u);
    EXPECT_EQ(f.metadata().size(), kSampleKv);
    EXPECT_EQ(f.metadata()[0].first, "u8");
    EXPECT_EQ(f.metadata()[18].first, "f64s");
    ASSERT_EQ(f.tensors().size(), 3u);
    EXPECT_EQ(f.data_offset() + 160, b.size());
    EXPECT_EQ(f.data_offset() % 32, 0u);
}

TEST(Gguf, ScalarValuesRoundTrip) {
    gguf::File f = parse(sample());
    EXPECT_EQ(f.get_int("u8", 0), 200);
    EXPECT_EQ(f.get_int("i8", 0), -5);
    EXPECT_EQ(f.get_int("u16", 0), 60000);
    EXPECT_EQ(f.get_int("i16", 0), -300);
    EXPECT_EQ(f.get_int("u32", 0), 4000000000);
    EXPECT_EQ(f.get_int("i32", 0), -70000);
    EXPECT_EQ(f.get_int("i64", 0), -(int64_t(1) << 40));
    EXPECT_EQ(f.find("u64")->u, UINT64_MAX);
    EXPECT_EQ(f.find("i8")->type, VT::I8);
    EXPECT_EQ(f.find("u32")->u, 4000000000u);
    EXPECT_EQ(f.get_float("f32", 0), 1.5);
    EXPECT_EQ(f.get_float("f64", 0), -2.25);
    EXPECT_EQ(f.get_float("i16", 0), -300.0);
    EXPECT_EQ(f.get_float("u64", 0), 18446744073709551615.0);
    EXPECT_TRUE(f.get_bool("bool", false));
    EXPECT_EQ(f.get_string("string"), "h\xc3\xa9llo");
    EXPECT_EQ(f.find("string")->str.size(), 6u);
}

TEST(Gguf, ArrayValuesRoundTrip) {
    gguf::File f = parse(sample());
    EXPECT_EQ(f.get_strings("strings"), (std::vector<std::string_view>{"a", "", "xyz"}));
    EXPECT_EQ(f.get_floats("f32s"), (std::vector<float>{0.5f, -1.0f}));
    EXPECT_EQ(f.get_floats("i32s"), (std::vector<float>{1, -2, 3}));
    EXPECT_EQ(f.get_floats("u8s"), (std::vector<float>{7, 9}));
    EXPECT_TRUE(f.get_floats("f64s").empty());
    EXPECT_EQ(f.get_ints("i32s"), (std::vector<int64_t>{1, -2, 3}));
    EXPECT_EQ(f.get_ints("u8s"), (std::vector<int64_t>{7, 9}));
    const gguf::Value* nested = f.find("nested");
    ASSERT_NE(nested, nullptr);
    EXPECT_EQ(nested->elem_type, VT::ARRAY);
    EXPECT_EQ(nested->count, 2u);
    const gguf::Value* bools = f.find("bools");
    ASSERT_NE(bools, nullptr);
    EXPECT_EQ(bools->count, 2u);
    EXPECT_EQ(bools->data[1], 1);
}

TEST(Gguf, AbsentKeysGiveDefaults) {
    gguf::File f = parse(sample());
    EXPECT_EQ(f.find("nope"), nullptr);
    EXPECT_EQ(f.get_string("nope", "d"), "d");
    EXPECT_EQ(f.get_int("nope", -7), -7);
    EXPECT_EQ(f.get_float("nope", 0.25), 0.25);
    EXPECT_TRUE(f.get_bool("nope", true));
    EXPECT_TRUE(f.get_strings("nope").empty());
    EXPECT_TRUE(f.get_floats("nope").empty());
    EXPECT_TRUE(f.get_ints("nope").empty());
    EXPECT_EQ(f.tensor("nope"), nullptr);
}

// Each getter applied to a value of the wrong kind throws Corrupt naming the key.
TEST(Gguf, GetterTypeErrors) {
    gguf::File f = parse(sample());
    auto corrupt = [](auto&& call, const std::string& key) {
        try {
            call();
        } catch (const Error& e) {
            return e.code() == Code::Corrupt &&
                   std::string(e.what()).find(key) != std::string::npos;
        }
        return false;
    };
    EXPECT_TRUE(corrupt([&] { f.get_int("string", 0); }, "'string'"));
    EXPECT_TRUE(corrupt([&] { f.get_int("f32", 0); }, "'f32'"));
    EXPECT_TRUE(corrupt([&] { f.get_int("bool", 0); }, "'bool'"));
    EXPECT_TRUE(corrupt([&] { f.get_int("i32s", 0); }, "'i32s'"));
    EXPECT_TRUE(corrupt([&] { f.get_int("u64", 0); }, "'u64'"));  // above INT64_MAX
    EXPECT_TRUE(corrupt([&] { f.get_string("u32"); }, "'u32'"));
    EXPECT_TRUE(corrupt([&] { f.get_string("strings"); }, "'strings'"));
    EXPECT_TRUE(corrupt([&] { f.get_float("string", 0); }, "'string'"));
    EXPECT_TRUE(corrupt([&] { f.get_float("bool", 0); }, "'bool'"));
    EXPECT_TRUE(corrupt([&] { f.get_bool("u8", false); }, "'u8'"));
    EXPECT_TRUE(corrupt([&] { f.get_strings("f32s"); }, "'f32s'"));
    EXPECT_TRUE(corrupt([&] { f.get_strings("string"); }, "'string'"));
    EXPECT_TRUE(corrupt([&] { f.get_floats("strings"); }, "'strings'"));
    EXPECT_TRUE(corrupt([&] { f.get_floats("bools"); }, "'bools'"));
    EXPECT_TRUE(corrupt([&] { f.get_floats("nested"); }, "'nested'"));
    EXPECT_TRUE(corrupt([&] { f.get_floats("f32"); }, "'f32'"));
    EXPECT_TRUE(corrupt([&] { f.get_ints("f32s"); }, "'f32s'"));
    EXPECT_TRUE(corrupt([&] { f.get_ints("strings"); }, "'strings'"));

    Bytes big = file(0, 1, kv("big", VT::ARRAY, arr(VT::U64, 2, u64(1) + u64(UINT64_MAX))));
    gguf::File g = parse(big);
    EXPECT_TRUE(corrupt([&] { g.get_ints("big"); }, "'big'"));
    EXPECT_EQ(g.get_floats("big")[0], 1.0f);
}

TEST(Gguf, TensorDataPointsAtItsBytes) {
    Bytes b = sample();
    gguf::File f = parse(b);
    const gguf::Tensor* q8 = f.tensor("q8");
    const gguf::Tensor* f16 = f.tensor("f16");
    const gguf::Tensor* f32 = f.tensor("f32");
    ASSERT_TRUE(q8 && f16 && f32);
    EXPECT_EQ(q8->type, gguf::Type::Q8_0);
    EXPECT_EQ(q8->n_dims, 2);
    EXPECT_EQ(q8->ne[0], 32);
    EXPECT_EQ(q8->ne[1], 2);
    EXPECT_EQ(q8->ne[2], 1);
    EXPECT_EQ(q8->n_rows(), 2);
    EXPECT_EQ(q8->nbytes, 68u);
    EXPECT_EQ(f16->nbytes, 32u);
    EXPECT_EQ(f16->n_elements(), 16);
    EXPECT_EQ(f32->offset, 128u);
    EXPECT_EQ(f32->n_elements(), 8);
    EXPECT_EQ(std::memcmp(q8->data, pattern(68, 1).data(), 68), 0);
    EXPECT_EQ(std::memcmp(f16->data, pattern(32, 2).data(), 32), 0);
    EXPECT_EQ(std::memcmp(f32->data, pattern(32, 3).data(), 32), 0);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(q8->data) % 32, 0u);
    EXPECT_EQ(&f.tensors()[1], f16);

    // A copy shares the bytes and keeps them alive after the original is gone.
    auto copy = std::make_unique<gguf::File>(f);
    f = parse(file(0, 0, {}));
    EXPECT_EQ(std::memcmp(copy->tensor("f32")->data, pattern(32, 3).data(), 32), 0);
    EXPECT_EQ(copy->get_strings("strings")[2], "xyz");
}

TEST(Gguf, OpenMapsOrReadsAFile) {
    test::TempDir dir;
    Bytes b = sample();
    test::write_file(dir / "m.gguf", std::string(b.begin(), b.end()));
    for (gguf::Load how : {gguf::Load::Map, gguf::Load::Read, gguf::Load::Auto}) {
        gguf::File f = gguf::File::open(dir / "m.gguf", how);
        EXPECT_EQ(f.size(), b.size());
        ASSERT_NE(f.tensor("f16"), nullptr);
        EXPECT_EQ(std::memcmp(f.tensor("f16")->data, pattern(32, 2).data(), 32), 0);
        EXPECT_EQ(f.get_int("i16", 0), -300);
    }
}

// A file large enough for several readers (one per 16 MiB): every byte of the tensor
// arrives where mapping puts it.
TEST(Gguf, ReadingALargeFileInPartsKeepsEveryByte) {
    test::TempDir dir;
    const size_t n = 40u << 20;  // 40 MiB of F32 data
    Bytes data = pattern(n, 5);
    for (size_t i = 0; i < n; i += 4093) data[i] = uint8_t(i >> 12);  // no short period
    Bytes b = file(1, 0, info("big", {n / 4}, gguf::Type::F32, 0), data);
    test::write_file(dir / "big.gguf", std::string(b.begin(), b.end()));
    gguf::File read = gguf::File::open(dir / "big.gguf", gguf::Load::Read);
    ASSERT_NE(read.tensor("big"), nullptr);
    EXPECT_EQ(std::memcmp(read.tensor("big")->data, data.data(), n), 0);
}

TEST(Gguf, LoadModeFromFlags) {
    EXPECT_EQ(gguf::load_mode(false, false), gguf::Load::Auto);
    EXPECT_EQ(gguf::load_mode(true, false), gguf::Load::Map);
    EXPECT_EQ(gguf::load_mode(false, true), gguf::Load::Read);
    EXPECT_THROW(gguf::load_mode(true, true), Error);
}

TEST(Gguf, OpenErrorsNameTheFile) {
    test::TempDir dir;
    // The error's code when mapping and reading fail alike, naming the file and WHAT.
    auto code_of = [](const std::string& path, const std::string& what) {
        int codes[2];
        for (gguf::Load how : {gguf::Load::Map, gguf::Load::Read}) {
            int& code = codes[how == gguf::Load::Read];
            code = -2;
            try {
                gguf::File::open(path, how);
            } catch (const Error& e) {
                std::string m = e.what();
                bool named = m.find(path) != std::string::npos && m.find(what) != std::string::npos;
                code = named ? int(e.code()) : -1;
            }
        }
        return codes[0] == codes[1] ? codes[0] : -3;
    };
    EXPECT_EQ(code_of(dir / "missing.gguf", "missing.gguf"), int(Code::NotFound));
    EXPECT_EQ(code_of(dir.path(), "not a regular file"), int(Code::IO));
    test::write_file(dir / "empty.gguf", "");
    EXPECT_EQ(code_of(dir / "empty.gguf", "bad magic"), int(Code::Corrupt));
    Bytes b = sample();
    b.pop_back();
    test::write_file(dir / "short.gguf", std::string(b.begin(), b.end()));
    EXPECT_EQ(code_of(dir / "short.gguf", "tensor 'f32': offset + size past end of file"),
              int(Code::Corrupt));
}

TEST(Gguf, WriterFilesParseInBothVersions) {
    test::GGUFWriter w;
    w.add_string("general.architecture", "llama");
    w.add_u32("llama.block_count", 2);
    w.add_f32("llama.rope.freq_base", 10000.0f);
    w.add_bool("tokenizer.ggml.add_bos_token", true);
    w.add_strings("tokenizer.ggml.tokens", {"<s>", "a", "b"});
    w.add_i32s("tokenizer.ggml.token_type", {3, 1, 1});
    w.add_tensor_raw("w", gguf::Type::F32, {8, 3}, pattern(96, 5));
    w.add_tensor_raw("n", gguf::Type::F32, {8}, pattern(32, 6));
    for (uint32_t version : {2u, 3u}) {
        gguf::File f = parse(w.bytes(version));
        EXPECT_EQ(f.version(), version);
        EXPECT_EQ(f.get_string("general.architecture"), "llama");
        EXPECT_EQ(f.get_int("llama.block_count", 0), 2);
        EXPECT_EQ(f.get_float("llama.rope.freq_base", 0), 10000.0);
        EXPECT_TRUE(f.get_bool("tokenizer.ggml.add_bos_token", false));
        EXPECT_EQ(f.get_strings("tokenizer.ggml.tokens").size(), 3u);
        EXPECT_EQ(f.get_ints("tokenizer.ggml.token_type"), (std::vector<int64_t>{3, 1, 1}));
        ASSERT_EQ(f.tensors().size(), 2u);
        EXPECT_EQ(f.tensor("w")->n_rows(), 3);
        EXPECT_EQ(std::memcmp(f.tensor("n")->data, pattern(32, 6).data(), 32), 0);
    }
}

TEST(Gguf, CustomAlignment) {
    test::GGUFWriter w;
    w.add_u32("general.alignment", 64);
    w.add_tensor_raw("a", gguf::Type::F32, {4}, pattern(16, 1));
    w.add_tensor_raw("b", gguf::Type::F32, {4}, pattern(16, 2));
    gguf::File f = parse(w.bytes(3, 64));
    EXPECT_EQ(f.alignment(), 64u);
    EXPECT_EQ(f.data_offset() % 64, 0u);
    EXPECT_EQ(f.tensor("b")->offset, 64u);
    EXPECT_EQ(std::memcmp(f.tensor("b")->data, pattern(16, 2).data(), 16), 0);
    EXPECT_EQ(parse(file(0, 1, kv("general.alignment", VT::U32, u32(1)))).alignment(), 1u);
}

TEST(Gguf, TypeTable) {
    const gguf::TypeInfo* t = gguf::type_info(0);
    ASSERT_NE(t, nullptr);
    EXPECT_STREQ(t->name, "F32");
    EXPECT_EQ(t->block, 1);
    EXPECT_EQ(t->block_bytes, 4u);
    struct Row {
        uint32_t id;
        const char* name;
        int block;
        size_t bytes;
        bool supported;
    };
    for (const Row& r :
         {Row{1, "F16", 1, 2, true}, Row{2, "Q4_0", 32, 18, true}, Row{3, "Q4_1", 32, 20, false},
          Row{8, "Q8_0", 32, 34, true}, Row{10, "Q2_K", 256, 84, false},
          Row{12, "Q4_K", 256, 144, true}, Row{13, "Q5_K", 256, 176, true},
          Row{14, "Q6_K", 256, 210, true}, Row{15, "Q8_K", 256, 292, true},
          Row{28, "F64", 1, 8, false}, Row{30, "BF16", 1, 2, true}}) {
        const gguf::TypeInfo* i = gguf::type_info(r.id);
        ASSERT_NE(i, nullptr) << r.name;
        EXPECT_STREQ(i->name, r.name);
        EXPECT_EQ(i->block, r.block) << r.name;
        EXPECT_EQ(i->block_bytes, r.bytes) << r.name;
        EXPECT_EQ(i->supported, r.supported) << r.name;
    }
    for (uint32_t id : {4u, 5u, 31u, 40u, 1000u, UINT32_MAX})
        EXPECT_EQ(gguf::type_info(id), nullptr);
    EXPECT_EQ(gguf::row_bytes(gguf::Type::Q4_K, 512), 288u);
    EXPECT_EQ(gguf::row_bytes(gguf::Type::Q8_0, 64), 68u);
    EXPECT_EQ(gguf::row_bytes(gguf::Type::BF16, 3), 6u);
}

// Known types the engine cannot compute with still load; the engine names them later.
TEST(Gguf, UnsupportedKnownTypeLoads) {
    Bytes b = file(1, 0, info("t", {256}, gguf::Type::Q2_K, 0), pattern(84, 1));
    gguf::File f = parse(b);
    EXPECT_FALSE(gguf::type_info(uint32_t(f.tensors()[0].type))->supported);
    EXPECT_EQ(f.tensors()[0].nbytes, 84u);
}

// A file of metadata only (a vocabulary) may end before the padding of the data section.
TEST(Gguf, MetadataOnlyFile) {
    Bytes b = Bytes{'G', 'G', 'U', 'F'} + u32(3) + u64(0) + u64(1) + kv("k", VT::U8, {1});
    gguf::File f = parse(b);
    EXPECT_EQ(f.get_int("k", 0), 1);
    EXPECT_TRUE(f.tensors().empty());
    EXPECT_LE(f.data_offset(), b.size());
}

TEST(Gguf, TruncationAtEveryByteThrows) {
    Bytes b = sample();
    ASSERT_NO_THROW(parse(b));
    for (size_t n = 0; n < b.size(); ++n) {
        Bytes prefix(b.begin(), b.begin() + n);
        EXPECT_TRUE(fails_with(prefix, Code::Corrupt, "")) << "prefix of " << n << " bytes";
    }
}

TEST(Gguf, BadMagicAndVersions) {
    Bytes b = sample();
    b[0] = 'X';
    EXPECT_TRUE(fails_with(b, Code::Corrupt, "bad magic"));
    EXPECT_TRUE(fails_with(file(0, 0, {}, {}, 1), Code::Unsupported, "version 1"));
    EXPECT_TRUE(fails_with(file(0, 0, {}, {}, 4), Code::Unsupported, "version 4"));
    EXPECT_TRUE(fails_with(file(0, 0, {}, {}, 0x03000000), Code::Unsupported, "big-endian"));
    EXPECT_TRUE(fails_with(file(0, 0, {}, {}, 0x02000000), Code::Unsupported, "big-endian"));
    EXPECT_TRUE(fails_with(file(0, 0, {}, {}, 0), Code::Corrupt, "version 0"));
    EXPECT_NO_THROW(parse(file(0, 0, {}, {}, 2)));
}

TEST(Gguf, HugeCountsRejectedBeforeAllocation) {
    EXPECT_TRUE(fails_with(file(uint64_t(1) << 63, 0, {}), Code::Corrupt, "n_tensors"));
    EXPECT_TRUE(fails_with(file(0, uint64_t(1) << 63, {}), Code::Corrupt, "n_kv"));
    EXPECT_TRUE(fails_with(file(UINT64_MAX, UINT64_MAX, {}), Code::Corrupt, "n_"));
    // Counts just above what the bytes could hold.
    EXPECT_TRUE(
        fails_with(file(0, 3, kv("a", VT::U8, {1}) + kv("b", VT::U8, {1})), Code::Corrupt, ""));
    EXPECT_TRUE(fails_with(file(2, 0, info("t", {1}, gguf::Type::F32, 0), pattern(64, 0)),
                           Code::Corrupt, ""));
}

TEST(Gguf, StringLengthsPastEnd) {
    EXPECT_TRUE(fails_with(file(0, 1, kv("x", VT::STRING, u64(uint64_t(1) << 63))), Code::Corrupt,
                           "metadata key 'x': string length 9223372036854775808 past end of file"));
    EXPECT_TRUE(fails_with(file(0, 1, kv("x", VT::STRING, u64(1000))), Code::Corrupt,
                           "metadata key 'x': string length 1000 past end"));
    EXPECT_TRUE(fails_with(file(0, 1, u64(UINT64_MAX) + u32(0) + Bytes(8)), Code::Corrupt,
                           "metadata entry 0: key length 18446744073709551615 past end"));
    EXPECT_TRUE(fails_with(file(1, 0, u64(UINT64_MAX) + Bytes(40)), Code::Corrupt,
                           "tensor 0: name length"));
    EXPECT_TRUE(fails_with(file(0, 1, kv("s", VT::ARRAY, arr(VT::STRING, 2, str("a") + u64(99)))),
                           Code::Corrupt, "metadata key 's': string length 99"));
}

TEST(Gguf, BadAlignment) {
    for (uint32_t a : {0u, 3u, 48u, 1u << 17, 1u << 31, UINT32_MAX})
        EXPECT_TRUE(fails_with(file(0, 1, kv("general.alignment", VT::U32, u32(a))), Code::Corrupt,
                               "general.alignment " + std::to_string(a)))
            << a;
    EXPECT_TRUE(fails_with(file(0, 1, kv("general.alignment", VT::U64, u64(32))), Code::Corrupt,
                           "general.alignment"));
    EXPECT_TRUE(fails_with(file(0, 1, kv("general.alignment", VT::STRING, str("32"))),
                           Code::Corrupt, "general.alignment"));
}

TEST(Gguf, DuplicateKeysAndNames) {
    EXPECT_TRUE(fails_with(file(0, 2, kv("k", VT::U8, {1}) + kv("k", VT::U32, u32(2))),
                           Code::Corrupt, "duplicate metadata key 'k'"));
    Bytes infos = info("w", {8}, gguf::Type::F32, 0) + info("w", {8}, gguf::Type::F32, 32);
    EXPECT_TRUE(
        fails_with(file(2, 0, infos, pattern(64, 0)), Code::Corrupt, "duplicate tensor name 'w'"));
    EXPECT_TRUE(fails_with(file(1, 0, info("", {8}, gguf::Type::F32, 0), pattern(32, 0)),
                           Code::Corrupt, "empty name"));
}

TEST(Gguf, UnknownValueTypes) {
    EXPECT_TRUE(fails_with(file(0, 1, kv("k", VT(13), {0, 0, 0, 0})), Code::Corrupt,
                           "metadata key 'k': unknown value type 13"));
    EXPECT_TRUE(fails_with(file(0, 1, kv("k", VT(0xffffffff), {0, 0, 0, 0})), Code::Corrupt,
                           "unknown value type"));
    EXPECT_TRUE(fails_with(file(0, 1, kv("k", VT::ARRAY, arr(VT(13), 0))), Code::Corrupt,
                           "unknown array element type 13"));
}

TEST(Gguf, BadArrays) {
    EXPECT_TRUE(fails_with(file(0, 1, kv("a", VT::ARRAY, arr(VT::U64, uint64_t(1) << 62))),
                           Code::Corrupt, "metadata key 'a': array of 4611686018427387904"));
    EXPECT_TRUE(
        fails_with(file(0, 1, kv("a", VT::ARRAY, arr(VT::U64, 3, u64(1) + u64(2))), {}, 3, 1),
                   Code::Corrupt, "past end of file"));
    EXPECT_TRUE(fails_with(file(0, 1, kv("a", VT::ARRAY, arr(VT::STRING, uint64_t(1) << 62))),
                           Code::Corrupt, "array of"));
    EXPECT_TRUE(fails_with(file(0, 1, kv("a", VT::ARRAY, arr(VT::ARRAY, UINT64_MAX))),
                           Code::Corrupt, "array of"));
    Bytes deep = arr(VT::ARRAY, 1, arr(VT::ARRAY, 1, arr(VT::U8, 1, {1})));
    EXPECT_TRUE(fails_with(file(0, 1, kv("a", VT::ARRAY, deep)), Code::Corrupt, "nested"));
    EXPECT_NO_THROW(parse(file(0, 1, kv("a", VT::ARRAY, arr(VT::ARRAY, 1, arr(VT::U8, 1, {1}))))));
}

TEST(Gguf, BoolMustBeZeroOrOne) {
    EXPECT_TRUE(fails_with(file(0, 1, kv("b", VT::BOOL, {2})), Code::Corrupt,
                           "metadata key 'b': bool value 2"));
    EXPECT_TRUE(fails_with(file(0, 1, kv("b", VT::ARRAY, arr(VT::BOOL, 3, {0, 1, 255}))),
                           Code::Corrupt, "bool value 255"));
}

// One tensor description with the given dims and type, its data zeroed.
Bytes one_tensor(const std::vector<uint64_t>& ne, uint32_t type = 0, uint64_t offset = 0,
                 size_t data = 64) {
    return file(1, 0, info("t", ne, gguf::Type(type), offset), Bytes(data));
}

TEST(Gguf, BadDims) {
    EXPECT_TRUE(fails_with(one_tensor({}), Code::Corrupt, "tensor 't': n_dims 0"));
    EXPECT_TRUE(fails_with(one_tensor({1, 1, 1, 1, 1}), Code::Corrupt, "tensor 't': n_dims 5"));
    EXPECT_TRUE(fails_with(one_tensor({UINT64_MAX}), Code::Corrupt, "dimension 0 is"));
    EXPECT_TRUE(fails_with(one_tensor({4, 0}), Code::Corrupt, "dimension 1 is 0"));
    EXPECT_TRUE(fails_with(one_tensor({uint64_t(INT64_MAX), 2, 1, 1}), Code::Corrupt,
                           "element count overflows"));
    EXPECT_TRUE(fails_with(one_tensor({uint64_t(1) << 62}), Code::Corrupt, "size overflows"));
    EXPECT_TRUE(fails_with(one_tensor({uint64_t(1) << 40, 1 << 20}), Code::Corrupt, "past end"));
    EXPECT_NO_THROW(parse(one_tensor({2, 2, 2, 2})));
}

TEST(Gguf, BadTypes) {
    for (uint32_t id : {4u, 31u, 40u, UINT32_MAX})
        EXPECT_TRUE(fails_with(one_tensor({32}, id), Code::Corrupt,
                               "tensor 't': unknown type id " + std::to_string(id)));
    EXPECT_TRUE(fails_with(one_tensor({16}, uint32_t(gguf::Type::Q8_0)), Code::Corrupt,
                           "row length 16 is not a multiple"));
    EXPECT_TRUE(
        fails_with(one_tensor({128}, uint32_t(gguf::Type::Q4_K)), Code::Corrupt, "block of 256"));
}

TEST(Gguf, BadOffsets) {
    EXPECT_TRUE(fails_with(one_tensor({8}, 0, 64), Code::Corrupt,
                           "tensor 't': offset + size past end of file"));
    EXPECT_TRUE(fails_with(one_tensor({8}, 0, UINT64_MAX - 31), Code::Corrupt, "past end"));
    EXPECT_TRUE(fails_with(one_tensor({8}, 0, 16), Code::Corrupt,
                           "offset 16 is not a multiple of the alignment 32"));
    EXPECT_TRUE(fails_with(one_tensor({17}), Code::Corrupt, "past end"));
    EXPECT_NO_THROW(parse(one_tensor({8}, 0, 32)));
    EXPECT_NO_THROW(parse(one_tensor({16})));

    Bytes overlap = info("a", {16}, gguf::Type::F32, 32) + info("b", {16}, gguf::Type::F32, 0);
    EXPECT_TRUE(
        fails_with(file(2, 0, overlap, Bytes(96)), Code::Corrupt, "tensors 'b' and 'a' overlap"));
    Bytes same = info("a", {8}, gguf::Type::F32, 0) + info("b", {8}, gguf::Type::F32, 0);
    EXPECT_TRUE(fails_with(file(2, 0, same, Bytes(64)), Code::Corrupt, "overlap"));
    Bytes apart = info("a", {8}, gguf::Type::F32, 32) + info("b", {8}, gguf::Type::F32, 0);
    EXPECT_NO_THROW(parse(file(2, 0, apart, Bytes(64))));
}

// Random overwrites of a valid file either parse or throw ragd::Error; the sanitizers and
// the catch below turn anything else into a failure.
TEST(Gguf, RandomMutationsNeverCrash) {
    const Bytes base = sample();
    const size_t header_end = base.size() - sample_data().size();
    const uint64_t specials[] = {
        0,          1,          2,         31, 32, 255, 0x7fffffffffffffff, 0x8000000000000000,
        UINT64_MAX, 1ull << 32, UINT32_MAX};
    std::mt19937_64 rng(42);
    int parsed = 0, rejected = 0;
    for (int iter = 0; iter < 4000; ++iter) {
        Bytes b = base;
        int edits = 1 + int(rng() % 4);
        for (int e = 0; e < edits; ++e) {
            size_t at = rng() % header_end;  // the data section only holds tensor bytes
            switch (rng() % 3) {
                case 0:
                    b[at] ^= uint8_t(1u << (rng() % 8));
                    break;
                case 1:
                    b[at] = uint8_t(rng());
                    break;
                default: {
                    uint64_t v = specials[rng() % std::size(specials)];
                    for (size_t k = 0; k < 8 && at + k < b.size(); ++k)
                        b[at + k] = uint8_t(v >> (8 * k));
                }
            }
        }
        if (rng() % 8 == 0) b.resize(rng() % b.size());
        try {
            gguf::File f = parse(b);
            for (const gguf::Tensor& t : f.tensors()) {
                volatile uint8_t last = t.data[t.nbytes - 1];  // in bounds under ASan
                (void)last;
            }
            for (const auto& [key, v] : f.metadata()) {
                if (v.type == VT::ARRAY && v.elem_type == VT::STRING) f.get_strings(key);
            }
            ++parsed;
        } catch (const Error&) {
            ++rejected;
        } catch (const std::exception& e) {
            FAIL() << "iteration " << iter << ": non-ragd exception " << e.what();
        }
    }
    // Both outcomes happen, so the mutations reach past the first check.
    EXPECT_GT(parsed, 0);
    EXPECT_GT(rejected, 0);
}

// llama.cpp's reference models (../shared/reference/models, see its README.md).
TEST(Gguf, ReferenceModels) {
    std::string ref = test::reference_dir();
    if (ref.empty()) GTEST_SKIP() << "no reference directory (set RAGD_REFERENCE_DIR)";
    struct Expect {
        const char* file;
        const char* arch;
        std::vector<const char*> types;
    };
    for (const Expect& m : {Expect{"tiny-llama-F32.gguf", "llama", {"F32"}},
                            Expect{"tiny-llama-Q8_0.gguf", "llama", {"F32", "Q8_0"}},
                            Expect{"tiny-llama-Q4_K_M.gguf", "llama", {"F32", "Q4_K", "Q6_K"}},
                            Expect{"tiny-bert-F32.gguf", "bert", {"F32"}}}) {
        SCOPED_TRACE(m.file);
        gguf::File f = gguf::File::open(ref + "/models/" + m.file);
        EXPECT_EQ(f.version(), 3u);
        EXPECT_EQ(f.get_string("general.architecture"), m.arch);
        std::string arch = m.arch;
        int64_t layers = f.get_int(arch + ".block_count", 0);
        EXPECT_EQ(layers, 4);
        EXPECT_EQ(f.get_int(arch + ".embedding_length", 0), 256);
        // llama: 9 tensors per layer plus embeddings, output norm and output; bert has more.
        EXPECT_GE(int64_t(f.tensors().size()), 9 * layers + 3);
        std::map<std::string, int> types;
        for (const gguf::Tensor& t : f.tensors()) {
            types[gguf::type_info(uint32_t(t.type))->name]++;
            EXPECT_LE(t.offset + t.nbytes, f.size() - f.data_offset()) << t.name;
            EXPECT_EQ(t.nbytes, gguf::row_bytes(t.type, t.ne[0]) * size_t(t.n_rows()));
        }
        std::vector<std::string> expected(m.types.begin(), m.types.end()), seen;
        for (const auto& [name, n] : types) seen.push_back(name);
        EXPECT_EQ(seen, expected);
        EXPECT_EQ(f.get_strings("tokenizer.ggml.tokens").size(), 1024u);
        if (arch == "llama") {
            EXPECT_EQ(f.get_int("tokenizer.ggml.bos_token_id", -1), 1021);
            EXPECT_EQ(f.get_string("tokenizer.ggml.model"), "gpt2");
            EXPECT_EQ(f.get_int("llama.attention.head_count_kv", 0), 4);
            const gguf::Tensor* emb = f.tensor("token_embd.weight");
            ASSERT_NE(emb, nullptr);
            EXPECT_EQ(emb->ne[0], 256);
            EXPECT_EQ(emb->ne[1], 1024);
        } else {
            EXPECT_EQ(f.get_int("tokenizer.ggml.bos_token_id", -1), 2);
        }
    }
}

}  // namespace
}  // namespace ragd
