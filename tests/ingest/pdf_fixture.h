// A tiny PDF writer for tests: pages of Helvetica text, optionally encrypted with the
// standard security handler (revision 2: RC4, 40-bit key), with a correct xref table.
//
// Header-only because the test build compiles only tests/STAGE/*_test.cpp files.
//
// Layout of the file written:
//   1 0 obj Catalog, 2 0 obj Pages, 3 0 obj Font (Type1 Helvetica, WinAnsiEncoding),
//   4+2i 0 obj Page i, 5+2i 0 obj its content stream, then the Encrypt dictionary if any;
//   xref with the byte offset of every object, trailer (with /ID when encrypted).
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

namespace ragd::test {

// ---- MD5 (RFC 1321) and RC4, which the standard security handler needs ----

inline std::string md5(const std::string& msg) {
    static const uint32_t K[64] = {
        0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613,
        0xfd469501, 0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193,
        0xa679438e, 0x49b40821, 0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d,
        0x02441453, 0xd8a1e681, 0xe7d3fbc8, 0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed,
        0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a, 0xfffa3942, 0x8771f681, 0x6d9d6122,
        0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70, 0x289b7ec6, 0xeaa127fa,
        0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665, 0xf4292244,
        0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
        0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb,
        0xeb86d391};
    static const int R[64] = {7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22,
                              5, 9,  14, 20, 5, 9,  14, 20, 5, 9,  14, 20, 5, 9,  14, 20,
                              4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23,
                              6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21};
    std::string m = msg;
    uint64_t bits = uint64_t(msg.size()) * 8;
    m += char(0x80);
    while (m.size() % 64 != 56) m += char(0);
    for (int i = 0; i < 8; ++i) m += char(bits >> (8 * i));
    uint32_t h[4] = {0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476};
    for (size_t off = 0; off < m.size(); off += 64) {
        uint32_t w[16];
        for (int i = 0; i < 16; ++i) {
            const unsigned char* p = reinterpret_cast<const unsigned char*>(m.data() + off + 4 * i);
            w[i] =
                uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
        }
        uint32_t a = h[0], b = h[1], c = h[2], d = h[3];
        for (int i = 0; i < 64; ++i) {
            uint32_t f;
            int g;
            if (i < 16)
                f = (b & c) | (~b & d), g = i;
            else if (i < 32)
                f = (d & b) | (~d & c), g = (5 * i + 1) % 16;
            else if (i < 48)
                f = b ^ c ^ d, g = (3 * i + 5) % 16;
            else
                f = c ^ (b | ~d), g = (7 * i) % 16;
            uint32_t x = a + f + K[i] + w[g];
            a = d;
            d = c;
            c = b;
            b = b + (x << R[i] | x >> (32 - R[i]));
        }
        h[0] += a, h[1] += b, h[2] += c, h[3] += d;
    }
    std::string out;
    for (uint32_t v : h)
        for (int i = 0; i < 4; ++i) out += char(v >> (8 * i));
    return out;
}

inline std::string rc4(const std::string& key, const std::string& data) {
    unsigned char s[256];
    for (int i = 0; i < 256; ++i) s[i] = static_cast<unsigned char>(i);
    for (int i = 0, j = 0; i < 256; ++i) {
        j = (j + s[i] + static_cast<unsigned char>(key[i % key.size()])) & 255;
        std::swap(s[i], s[j]);
    }
    std::string out = data;
    for (size_t k = 0, i = 0, j = 0; k < out.size(); ++k) {
        i = (i + 1) & 255;
        j = (j + s[i]) & 255;
        std::swap(s[i], s[j]);
        out[k] = static_cast<char>(out[k] ^ s[(s[i] + s[j]) & 255]);
    }
    return out;
}

inline std::string hex(const std::string& bytes) {
    static const char* digits = "0123456789abcdef";
    std::string out;
    for (unsigned char c : bytes) out += digits[c >> 4], out += digits[c & 15];
    return out;
}

// ---- the writer ----

struct PdfOptions {
    bool encrypt = false;
    std::string user_password;  // needed to open the file; "" opens without one
    std::string owner_password = "owner";
};

// A PDF with one page per string; '\n' separates lines of a page. Text should be ASCII.
inline std::string make_pdf(const std::vector<std::string>& pages, const PdfOptions& opt = {}) {
    // Standard security handler, revision 2 (PDF 1.7 spec, 7.6.3, algorithms 2, 3 and 4).
    static const char kPad[] =
        "\x28\xBF\x4E\x5E\x4E\x75\x8A\x41\x64\x00\x4E\x56\xFF\xFA\x01\x08"
        "\x2E\x2E\x00\xB6\xD0\x68\x3E\x80\x2F\x0C\xA9\xFE\x64\x53\x69\x7A";
    auto pad = [](const std::string& pw) { return (pw + std::string(kPad, 32)).substr(0, 32); };
    const std::string id = md5("ragd test pdf");
    const int32_t perms = -4;
    std::string key, o, u;
    if (opt.encrypt) {
        o = rc4(md5(pad(opt.owner_password)).substr(0, 5), pad(opt.user_password));
        std::string p4;
        for (int i = 0; i < 4; ++i) p4 += char(uint32_t(perms) >> (8 * i));
        key = md5(pad(opt.user_password) + o + p4 + id).substr(0, 5);
        u = rc4(key, std::string(kPad, 32));
    }
    auto seal = [&](int num, const std::string& data) {  // encrypts a stream of object num
        if (!opt.encrypt) return data;
        std::string k = key;
        k += char(num), k += char(num >> 8), k += char(num >> 16), k += char(0), k += char(0);
        return rc4(md5(k).substr(0, 10), data);
    };

    const int n = static_cast<int>(pages.size());
    const int encrypt_obj = 4 + 2 * n;
    const int n_objs = opt.encrypt ? encrypt_obj : encrypt_obj - 1;
    std::string out = "%PDF-1.4\n%\xE2\xE3\xCF\xD3\n";
    std::vector<size_t> offsets(n_objs + 1, 0);
    auto begin_obj = [&](int num) {
        offsets[num] = out.size();
        out += std::to_string(num) + " 0 obj\n";
    };
    begin_obj(1);
    out += "<< /Type /Catalog /Pages 2 0 R >>\nendobj\n";
    begin_obj(2);
    out += "<< /Type /Pages /Kids [";
    for (int i = 0; i < n; ++i) out += ' ' + std::to_string(4 + 2 * i) + " 0 R";
    out += " ] /Count " + std::to_string(n) + " >>\nendobj\n";
    begin_obj(3);
    out +=
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>\n"
        "endobj\n";
    for (int i = 0; i < n; ++i) {
        std::string content;
        if (!pages[i].empty()) {
            content = "BT\n/F1 12 Tf\n14 TL\n72 720 Td\n";
            size_t pos = 0;
            for (bool first = true;; first = false) {
                size_t nl = pages[i].find('\n', pos);
                std::string line = pages[i].substr(pos, nl == std::string::npos ? nl : nl - pos);
                std::string esc;
                for (char c : line) {
                    if (c == '(' || c == ')' || c == '\\') esc += '\\';
                    esc += c;
                }
                content += first ? "(" : "T* (";
                content += esc;
                content += ") Tj\n";
                if (nl == std::string::npos) break;
                pos = nl + 1;
            }
            content += "ET\n";
        }
        int page_obj = 4 + 2 * i, content_obj = page_obj + 1;
        begin_obj(page_obj);
        out +=
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 "
            "3 0 R >> >> /Contents " +
            std::to_string(content_obj) + " 0 R >>\nendobj\n";
        std::string data = seal(content_obj, content);
        begin_obj(content_obj);
        out += "<< /Length " + std::to_string(data.size()) + " >>\nstream\n" + data +
               "\nendstream\nendobj\n";
    }
    if (opt.encrypt) {
        begin_obj(encrypt_obj);
        out += "<< /Filter /Standard /V 1 /R 2 /O <" + hex(o) + "> /U <" + hex(u) + "> /P " +
               std::to_string(perms) + " >>\nendobj\n";
    }
    size_t xref = out.size();
    out += "xref\n0 " + std::to_string(n_objs + 1) + "\n0000000000 65535 f \n";
    for (int i = 1; i <= n_objs; ++i) {
        char line[32];
        std::snprintf(line, sizeof line, "%010zu 00000 n \n", offsets[i]);
        out += line;
    }
    out += "trailer\n<< /Size " + std::to_string(n_objs + 1) + " /Root 1 0 R";
    if (opt.encrypt)
        out += " /Encrypt " + std::to_string(encrypt_obj) + " 0 R /ID [<" + hex(id) + "> <" +
               hex(id) + ">]";
    out += " >>\nstartxref\n" + std::to_string(xref) + "\n%%EOF\n";
    return out;
}

}  // namespace ragd::test
